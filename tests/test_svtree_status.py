"""svtree status (and why) against real trees (svscan or supervise started by
the test) and records written by hand: the JSON and its typed description
(tree.Record), the table in a pipe and on a terminal, colour and NO_COLOR,
the exit codes (LSB's 0, 3 and 4), arguments that name no service, why a
service is down (the NOTE, status -v), readiness as shown, and the layouts
of daemontools and runit.

Not tested here: colour names beyond "some ANSI on a terminal", and colours
other than the two an operator must see (green up, red down-but-wanted-up);
the width a note is cut to on a real terminal of a given size
(table.lines(width=) is tested alone, in test_table); the exact words of
supervise's start errors (test_start_errors: here, only that they reach the
table, status -v and wait).
"""

import json
import os
import pty
import re
import subprocess
import time
import types
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import start_supervise as supervise
from conftest import (NOTIFY_WHEN_GO, fake_supervised, open_ok, peer, program, record, run,
                      states, status_json, status_pid, terminal_output, wait_until,
                      write_script)
from svtree import table, tree
from svtree.cli.svtree import svtree


# --- the typed description of the JSON -----------------------------------------------

def conforms(value, hint) -> bool:
    """Does a JSON value match a type hint of tree.Record? (a tiny validator)"""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if typing.is_typeddict(hint):
        hints = typing.get_type_hints(hint)
        required = hint.__required_keys__
        return (isinstance(value, dict) and required <= value.keys() <= hints.keys()
                and all(conforms(v, hints[k]) for k, v in value.items()))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def assert_records(records):
    hints = typing.get_type_hints(tree.Record)
    for rec in records:
        assert rec.keys() == hints.keys(), rec
        for key, value in rec.items():
            assert conforms(value, hints[key]), (key, value, hints[key])
        assert rec["state"] in tree.STATES
        if rec["last_exit"] is not None:
            assert len(rec["last_exit"]) == 1


def test_the_validator_itself():
    """conforms() rejects what the description forbids (so the tests above mean something)."""
    assert conforms(None, int | None) and conforms(3, int | None)
    assert not conforms(True, int) and not conforms("3", int | None)
    assert conforms({"code": 1}, tree.LastExit) and not conforms({"code": "1"}, tree.LastExit)
    assert not conforms({"exit": 1}, tree.LastExit)
    assert conforms("run", typing.Literal["down", "run"]) and not conforms("up", typing.Literal["down", "run"])


# --- status --------------------------------------------------------------------------

def test_status_json_describes_every_service(mixed_tree):
    code, records = status_json(mixed_tree)
    assert code == 3                          # crash and failed: wanted up, but down
    assert_records(records)
    by = {Path(r["service"]).relative_to(mixed_tree).as_posix(): r for r in records}
    assert list(by) == ["crash", "down", "failed", "logged", "logged/log", "notready", "ready"]
    assert by["failed"]["failed"] is True and by["failed"]["last_exit"] == {"code": 2}
    assert by["failed"]["starts"] == 1 and by["failed"]["pid"] == 0
    assert by["crash"]["last_exit"] == {"code": 1} and by["crash"]["want"] == "up"
    assert by["down"]["normally_up"] is False and by["down"]["want"] == "down"
    assert by["down"]["starts"] == 0
    assert by["notready"]["ready"] is False and by["notready"]["pid"] > 0
    assert by["ready"]["ready"] is True and by["ready"]["source"] == "state.json"
    assert by["ready"]["pid"] == status_pid(mixed_tree / "ready")
    assert by["logged/log"]["logger_of"] == str(mixed_tree / "logged")
    assert all(r["supervised"] and r["error"] is None for r in records)
    assert all(0 <= r["seconds"] < 60 for r in records)


def test_status_table_is_plain_in_a_pipe(mixed_tree):
    r = run("svtree", "status", mixed_tree)
    assert r.returncode == 3 and "\x1b" not in r.stdout
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "STATE", "PID", "TIME", "STARTS", "LAST", "WANT",
                                "NOTE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    logged = [i for i, line in enumerate(lines) if line.startswith(f"{mixed_tree}/logged ")][0]
    assert lines[logged + 1].startswith(f"  {mixed_tree}/logged/log ")   # under its service
    assert " backing off " in rows[f"{mixed_tree}/crash"]
    assert " exit 1 " in rows[f"{mixed_tree}/crash"]
    assert rows[f"{mixed_tree}/down"].endswith("down  normally down")
    assert re.search(r" ready +\d+ +\d+s +1 +- +up$", rows[f"{mixed_tree}/ready"])


def test_status_is_coloured_on_a_terminal(tmp_path, procs, service):
    sv = service()
    supervise(procs, sv)
    wait_until(lambda: states(sv) == {str(sv): "up"})
    master, slave = pty.openpty()
    try:
        code = subprocess.run([program("svtree"), "status", sv], stdout=slave,
                              timeout=30).returncode
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:                  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    assert code == 0
    assert b"\x1b[32mup" in out             # green
    # and CliRunner asks for colour explicitly, or gets none
    result = CliRunner().invoke(svtree, ["status", str(sv)], color=True)
    assert result.exit_code == 0 and "\x1b[" in result.output
    result = CliRunner().invoke(svtree, ["status", str(sv)])
    assert result.exit_code == 0 and "\x1b[" not in result.output


def test_status_exit_codes(tmp_path, procs, service):
    up = service("up")
    normally_down = service("idle", down=True)
    never = service("never")                         # has run, but no supervise
    supervise(procs, up)
    supervise(procs, normally_down)
    wait_until(lambda: states(up) == {str(up): "up"})
    assert run("svtree", "status", up, normally_down).returncode == 0
    assert CliRunner().invoke(svtree, ["status", str(up)]).exit_code == 0
    run("svc", "-d", up)                              # wanted down: still all well
    wait_until(lambda: states(up) == {str(up): "down"})
    assert run("svtree", "status", up).returncode == 0
    run("svc", "-u", normally_down)
    run("svc", "-o", up)
    wait_until(lambda: states(up, normally_down) == {str(up): "up", str(normally_down): "up"})
    # LSB 3: wanted up but down (the machinery says so through CliRunner too)
    write_script(normally_down / "run", "#!/bin/sh\nexit 5\n")
    run("svc", "-k", normally_down)
    wait_until(lambda: states(normally_down)[str(normally_down)] in ("down", "backing off"))
    assert run("svtree", "status", up, normally_down).returncode == 3
    assert CliRunner().invoke(svtree, ["status", str(normally_down)]).exit_code == 3
    # LSB 4: unknown -- not supervised, or no such directory
    code, (rec,) = status_json(never)
    assert code == 4 and rec["state"] == "unknown" and rec["error"] == "supervise not running"
    r = run("svtree", "status", "--json", tmp_path / "missing")   # no service: no record
    assert (r.returncode, json.loads(r.stdout)) == (4, [])
    assert r.stderr == f"svtree: warning: unable to chdir to {tmp_path}/missing: " \
                       "file does not exist\n"
    assert run("svtree", "status", up, never).returncode == 4


def test_status_defaults_to_the_current_directory(tmp_path, procs, service):
    scan = tmp_path / "scan"
    sv = service("one", parent=scan)
    supervise(procs, sv)
    wait_until(lambda: states(sv) == {str(sv): "up"})
    r = subprocess.run([program("svtree"), "status", "--json"], cwd=scan, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and [rec["service"] for rec in json.loads(r.stdout)] == ["one"]
    r = subprocess.run([program("svtree"), "status", "--json"], cwd=sv, capture_output=True,
                       text=True, timeout=30)                # a service itself: its own row
    assert r.returncode == 0 and [rec["service"] for rec in json.loads(r.stdout)] == ["."]


def test_status_of_a_daemontools_layout(tmp_path):
    """18 bytes and no state.json: the status file alone, a real fifo for ok."""
    sv = fake_supervised(tmp_path, "dt")
    reader = open_ok(sv)
    try:
        stamp = int(time.time()) - 30
        data = ((2**62 + 10 + stamp).to_bytes(8, "big") + bytes(4)
                + (4321).to_bytes(4, "little") + b"\0" + b"u")
        (sv / "supervise" / "status").write_bytes(data)
        code, (rec,) = status_json(sv)
        assert code == 0
        assert rec == {**rec, "state": "up", "process": "run", "pid": 4321, "want": "up",
                       "ready": None, "starts": None, "source": "status", "supervised": True}
        assert 29 <= rec["seconds"] < 90
        assert_records([rec])
        (sv / "supervise" / "status").write_bytes(data[:12] + bytes(4) + b"\0u")
        code, (rec,) = status_json(sv)
        assert code == 3 and rec["state"] == "down"
    finally:
        os.close(reader)


@pytest.mark.parametrize("peer_name", ["supervise", "runsv"])
def test_status_of_peer_supervisors(tmp_path, procs, service, peer_name):
    prog = peer(peer_name)
    sv = service()
    procs.start(prog, sv)
    wait_until(lambda: status_pid(sv))
    code, (rec,) = status_json(sv)
    assert code == 0 and rec["state"] == "up" and rec["source"] == "status"
    assert rec["pid"] == status_pid(sv)
    assert run("svtree", "wait", "up", sv, "--timeout", "5").returncode == 0
    assert run("svtree", "wait", "ready", sv, "--timeout", "5").returncode == 0   # up is ready
    run("svc", "-d", sv)
    assert run("svtree", "wait", "down", sv, "--timeout", "10").returncode == 0


# --- arguments that name no service --------------------------------------------------

def test_status_says_which_argument_names_no_service(tmp_path, procs, service):
    """`svtree status /tmp`, a typo, a file: one line each on stderr, exit 4
    (LSB's unknown); the services of the other arguments are still shown."""
    empty = tmp_path / "empty"
    (empty / "not-a-service").mkdir(parents=True)
    (tmp_path / "file").write_text("x")
    r = run("svtree", "status", empty)
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == f"svtree: warning: {empty}: not a service directory, and no services in it\n"
    sv = service("good")
    supervise(procs, sv)
    r = run("svtree", "status", tmp_path / "typo", sv, tmp_path / "file")
    assert r.returncode == 4
    assert r.stderr.splitlines() == [
        f"svtree: warning: unable to chdir to {tmp_path}/typo: file does not exist",
        f"svtree: warning: unable to chdir to {tmp_path}/file: not a directory"]
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["SERVICE", str(sv)]
    r = run("svtree", "status", "--json", empty, sv)
    assert r.returncode == 4 and [rec["service"] for rec in json.loads(r.stdout)] == [str(sv)]
    # the wrong working directory
    r = subprocess.run([program("svtree"), "status"], cwd=empty, capture_output=True, text=True,
                       timeout=30, check=False)
    assert r.returncode == 4
    assert r.stderr == "svtree: warning: .: not a service directory, and no services in it\n"
    r = run("svtree", "why", empty)
    assert r.returncode == 4 and "not a service directory" in r.stderr


def test_an_unreadable_directory_is_said_so(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every directory")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    r = run("svtree", "status", locked)
    assert r.returncode == 4 and r.stderr == f"svtree: warning: unable to read {locked}: " \
                                             "access denied\n"


# --- why: the table's note, status -v ------------------------------------------------

def test_a_run_that_cannot_start_says_why_everywhere(tmp_path, procs, service):
    """./run not executable: the start error in the NOTE, in status -v (and
    why), in the JSON, and as the reason wait times out."""
    sv = service("broken")
    (sv / "run").chmod(0o644)
    supervise(procs, sv)
    rec = wait_until(lambda: (r := record(sv))["start_error"] and r)
    assert rec["state"] == "down" and rec["want"] == "up" and rec["process"] == "down"
    assert rec["start_error"].startswith("unable to start ./run: ")
    assert "not executable" in rec["start_error"]
    r = run("svtree", "status", sv)
    assert r.returncode == 3
    assert r.stdout.splitlines()[1].endswith(f"up    {rec['start_error']}")
    for args in (["status", "-v"], ["why"]):
        r = run("svtree", *args, sv)
        assert r.returncode == 3 and r.stderr == ""
        lines = r.stdout.splitlines()
        assert lines[0].startswith(f"{sv}: down ")
        assert f"  start error  {rec['start_error']}" in lines
        assert "  failed       no" in lines
        assert "  last exit    none yet (0 starts)" in lines
        assert any(line.startswith("  log          none found") for line in lines)
    r = run("svtree", "wait", "up", sv, "--timeout", "1")
    assert r.returncode == 1
    assert r.stderr == (f"svtree: warning: timed out after 1 second: {sv} not up: "
                        f"{rec['start_error']}\n")


def test_status_v_tells_backoff_failure_readiness_and_the_log(tmp_path, procs, service):
    scan = tmp_path / "scan"
    crash = service("crash", run="#!/bin/sh\necho crashing\nexit 1\n",
                    log="#!/bin/sh\nexec multilog t ./main\n", parent=scan)
    failed = service("failed", run="#!/bin/sh\nexit 2\n", parent=scan)
    (failed / "max-deaths").write_text("1\n")
    notify = service("notify", run=NOTIFY_WHEN_GO, parent=scan)
    (notify / "notification-fd").write_text("3\n")
    procs.start(program("svscan"), scan)
    wait_until(lambda: (record(crash)["quick_deaths"] or 0) >= 2
               and record(failed)["state"] == "failed" and record(notify)["pid"], timeout=20)
    wait_until(lambda: b"crashing" in (crash / "log" / "main" / "current").read_bytes()
               if (crash / "log" / "main" / "current").exists() else False)
    r = run("svtree", "status", "-v", scan)
    assert r.returncode == 3
    blocks = {b.splitlines()[0].split(":")[0]: b.splitlines() for b in r.stdout.split("\n\n")}
    assert list(blocks) == [str(crash), f"{crash}/log", str(failed), str(notify)]
    lines = blocks[str(crash)]
    backoff = next(line for line in lines if line.startswith("  backoff"))
    assert re.search(r"\d+ quick deaths in a row, delay \d", backoff), backoff
    assert re.search(r"  last exit    exit 1, after \d+\.\ds \(\d+ starts\)", "\n".join(lines))
    assert f"  log          {crash}/log/main, the last" in "\n".join(lines)
    assert any(re.fullmatch(r"    \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} crashing", line)
               for line in lines), lines
    assert f"  log          writes {crash}/log/main" in blocks[f"{crash}/log"]
    assert "  failed       yes: max-deaths 1 reached" in blocks[str(failed)]
    assert ("  readiness    notify (a newline on its notification-fd), not ready"
            in blocks[str(notify)])
    # the table's notes
    r = run("svtree", "status", scan)
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert rows[str(failed)].endswith(" down  max-deaths 1 reached")
    assert rows[str(notify)].endswith(" up    waiting for its notification-fd")
    assert re.search(r" backing off .* up    next start in \d+s$", rows[str(crash)]) or \
        rows[str(crash)].endswith(" up")            # at the very moment of a start
    (notify / "go").touch()
    wait_until(lambda: record(notify)["state"] == "ready")
    r = run("svtree", "why", notify)
    assert "  readiness    notify (a newline on its notification-fd), ready" in r.stdout


def test_a_check_service_waits_for_its_check(procs, service):
    sv = service()
    write_script(sv / "check", "#!/bin/sh\ntest -e go\n")
    supervise(procs, sv)
    wait_until(lambda: record(sv)["pid"])
    rec = record(sv)
    assert (rec["state"], rec["readiness"], table.why(rec)) == ("up", "check",
                                                                "waiting for ./check")
    r = run("svtree", "wait", "ready", sv, "--timeout", "0.3")
    assert r.stderr == (f"svtree: warning: timed out after 0.3 seconds: {sv} not ready: "
                        "waiting for ./check\n")
    (sv / "go").touch()
    wait_until(lambda: record(sv)["state"] == "ready")


# --- readiness as shown --------------------------------------------------------------

def test_ready_is_shown_only_for_services_that_can_say_so(procs, service):
    """A plain service (readiness none) and its logger show up even once their
    ready field turns true; a notify service shows ready once it said so;
    wait ready waits for the field (so a plain service: a second up)."""
    plain = service("plain", log="#!/bin/sh\nexec cat > /dev/null\n")
    notify = service("notify", run="#!/bin/sh\necho >&3\nexec sleep 1000\n")
    (notify / "notification-fd").write_text("3\n")
    procs.start(program("svscan"), plain.parent)
    assert run("svtree", "wait", "ready", plain, plain / "log", notify,
               "--timeout", "15").returncode == 0
    recs = {r["service"]: r for r in json.loads(run("svtree", "status", "--json",
                                                    plain.parent).stdout)}
    assert recs[str(plain)]["ready"] is True and recs[str(plain)]["readiness"] == "none"
    assert recs[str(plain)]["state"] == "up" and recs[str(plain / "log")]["state"] == "up"
    assert recs[str(notify)]["state"] == "ready" and recs[str(notify)]["readiness"] == "notify"
    assert recs[str(plain)]["seconds"] >= 0.9          # ready after a second, as supervise says


# --- colour --------------------------------------------------------------------------

def on_a_terminal(*argv, env=None):
    """(exit code, output) of one of our programs whose stdout is a terminal."""
    return terminal_output([program(argv[0]), *argv[1:]], env)


def test_no_color_and_the_colour_options(procs, service):
    sv = service()
    supervise(procs, sv)
    wait_until(lambda: record(sv)["state"] == "up")
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    code, out = on_a_terminal("svtree", "status", sv, env=env)
    assert code == 0 and b"\x1b[32mup" in out
    code, out = on_a_terminal("svtree", "status", sv, env={**env, "NO_COLOR": "1"})
    assert code == 0 and b"\x1b" not in out and b" up " in out
    code, out = on_a_terminal("svtree", "status", sv, env={**env, "NO_COLOR": ""})
    assert b"\x1b[32mup" in out                          # set but empty: colour
    code, out = on_a_terminal("svtree", "--no-color", "status", sv, env=env)
    assert b"\x1b" not in out
    code, out = on_a_terminal("svtree", "status", "--no-color", sv, env=env)
    assert b"\x1b" not in out
    code, out = on_a_terminal("svtree", "why", sv, env={**env, "NO_COLOR": "yes"})
    assert b"\x1b" not in out and out.startswith(f"{sv}: up ".encode())
    # in a pipe: plain, unless asked for; an explicit option wins over NO_COLOR
    assert "\x1b" not in run("svtree", "status", sv).stdout
    r = run("svtree", "status", "--color", sv, env={**env, "NO_COLOR": "1"})
    assert "\x1b[32mup" in r.stdout
    r = run("svtree", "--color", "start", sv, env={**env, "NO_COLOR": "1"})
    assert r.stdout.startswith("\x1b[32mok:\x1b[0m run: ")
    result = CliRunner().invoke(svtree, ["status", str(sv)], color=True, env={"NO_COLOR": "1"})
    assert result.exit_code == 0 and "\x1b" not in result.output
    result = CliRunner().invoke(svtree, ["status", str(sv)], color=True)
    assert "\x1b[32m" in result.output
