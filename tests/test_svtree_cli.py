"""svtree status, wait, events, metrics and shell
completion, against real trees (svscan or supervise started by the test).

Not tested here: colour names beyond "some ANSI on a terminal"; IPv6 --listen;
events for a logger directory created after its service was followed;
completion for shells other than bash (click's own code).
"""

import json
import os
import pty
import re
import signal
import socket
import subprocess
import time
import types
import typing
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import peer, program, run, status_pid, wait_until, write_script
from svtree import metrics, tree
from svtree.cli.svtree import svtree

SLEEPER = "#!/bin/sh\nexec sleep 1000\n"


def svscan(procs, scandir):
    return procs.start(program("svscan"), scandir)


def supervise(procs, sv):
    proc = procs.start(program("supervise"), sv)
    wait_until(lambda: run("svok", sv).returncode == 0)
    return proc


def status_json(*args):
    r = run("svtree", "status", "--json", *args)
    assert r.stderr == ""
    return r.returncode, json.loads(r.stdout)


def states(*args):
    return {rec["service"]: rec["state"] for rec in status_json(*args)[1]}


def children(pid):
    """The direct children of pid, from /proc."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def watching(pid, path):
    """Does process pid hold an inotify watch on path? (/proc/PID/fdinfo)"""
    return watch_mask(pid, path) is not None


class Reader:
    """The output of a running program, read without blocking."""

    def __init__(self, stream):
        self.stream = stream
        os.set_blocking(stream.fileno(), False)
        self.data = b""

    def text(self):
        chunk = self.stream.read()
        if chunk:
            self.data += chunk
        return self.data.decode()

    def events(self):
        return [json.loads(line) for line in self.text().splitlines()]


# --- the typed description of the JSON -------------------------------------------

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


# --- status -----------------------------------------------------------------------

@pytest.fixture
def mixed_tree(tmp_path, procs, service):
    """ready, up (not ready), down (normally), backing off, failed, and a logger
    (up: with no way to say it is ready, that is all it is shown as)."""
    scan = tmp_path / "scan"
    ready = service("ready", run="#!/bin/sh\necho >&3\nexec sleep 1000\n", parent=scan)
    (ready / "notification-fd").write_text("3\n")
    notready = service("notready", parent=scan)
    (notready / "notification-fd").write_text("3\n")
    service("down", parent=scan, down=True)
    crash = service("crash", run="#!/bin/sh\nexit 1\n", parent=scan)
    (crash / "backoff-max").write_text("30\n")
    failed = service("failed", run="#!/bin/sh\nexit 2\n", parent=scan)
    (failed / "max-deaths").write_text("1\n")
    service("logged", log="#!/bin/sh\nexec cat > /dev/null\n", parent=scan)
    svscan(procs, scan)
    expected = {f"{scan}/{name}": state for name, state in (
        ("crash", "backing off"), ("down", "down"), ("failed", "failed"), ("logged", "up"),
        ("logged/log", "up"), ("notready", "up"), ("ready", "ready"))}
    wait_until(lambda: states(scan) == expected, timeout=15)
    return scan


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


def fake_supervised(tmp_path, name):
    """A service dir laid out as a supervise leaves it, with no supervise:
    supervise/ok a real fifo; the test writes the status files itself."""
    sv = tmp_path / name
    (sv / "supervise").mkdir(parents=True)
    write_script(sv / "run", SLEEPER)
    os.mkfifo(sv / "supervise" / "ok")
    return sv


def open_ok(sv):
    """Hold supervise/ok open for reading, as a live supervise does."""
    return os.open(sv / "supervise" / "ok", os.O_RDONLY | os.O_NONBLOCK)


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


# --- wait -------------------------------------------------------------------------

def test_wait_for_a_service_whose_supervise_starts_later(procs, service):
    """A run script's `svtree wait ready ../db` may start before db's supervise;
    readiness that arrives later wakes the waiter at once (inotify)."""
    sv = service(run="#!/bin/sh\nwhile [ ! -e go ]; do sleep 0.01; done\necho >&3\n"
                     "exec sleep 1000\n")
    (sv / "notification-fd").write_text("3\n")
    waiter = procs.start(program("svtree"), "wait", "ready", sv, "--timeout", "30")
    supervise(procs, sv)
    wait_until(lambda: tree.read(tree.Entry(sv))["state"] == "up")
    assert waiter.poll() is None
    began = time.monotonic()
    (sv / "go").touch()
    wait_until(lambda: waiter.poll() is not None, interval=0.001)
    latency = time.monotonic() - began
    assert waiter.returncode == 0, waiter.stderr.read()
    assert latency < 1.0                       # the run script's own poll is 0.01 s


def test_wait_up_woken_by_a_start(procs, service):
    sv = service(down=True)
    supervise(procs, sv)
    waiter = procs.start(program("svtree"), "wait", "up", sv, "--timeout", "30")
    r = run("svtree", "wait", "up", sv, "--timeout", "0.2")
    assert r.returncode == 1
    assert r.stderr == f"svtree: warning: timed out after 0.2 seconds: {sv} not up: down, want down\n"
    assert waiter.poll() is None
    run("svc", "-u", sv)
    wait_until(lambda: waiter.poll() is not None)
    assert waiter.returncode == 0


def watch_mask(pid, path):
    """The mask of process pid's inotify watch on path, or None."""
    ino = os.stat(path).st_ino
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        m = re.search(rf"^inotify wd:\S+ ino:{ino:x} .*?mask:([0-9a-f]+)", text, re.M)
        if m:
            return int(m.group(1), 16)
    return None


def test_wait_up_woken_by_the_open_of_ok(tmp_path, procs):
    """supervise writes its first status before it opens supervise/ok: when the
    status already says up, the open of ok alone must wake the waiter."""
    sv = fake_supervised(tmp_path, "sv")
    (sv / "supervise" / "status").write_bytes(
        (2**62 + 10 + int(time.time())).to_bytes(8, "big") + bytes(4)
        + (4321).to_bytes(4, "little") + b"\0u\0\1")
    waiter = procs.start(program("svtree"), "wait", "up", sv, "--timeout", "30")
    wait_until(lambda: (watch_mask(waiter.pid, sv / "supervise") or 0) & 0x20)   # IN_OPEN
    assert waiter.poll() is None
    reader = open_ok(sv)
    try:
        wait_until(lambda: waiter.poll() is not None)
        assert waiter.returncode == 0
    finally:
        os.close(reader)


def inotify_fds(pid):
    """How many inotify descriptors process pid holds."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            count += "inotify" in os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return count


def test_wait_on_svtree_services_listens_on_a_fifo(procs, service):
    """Our supervise tells every change in supervise/event/: the waiter makes a
    fifo there and needs no inotify (whose close would cost it milliseconds);
    the fifo is gone once it returns, and after a timeout too."""
    sv = service(down=True)
    supervise(procs, sv)
    waiter = procs.start(program("svtree"), "wait", "up", sv, "--timeout", "30")
    event = sv / "supervise" / "event"
    fifo = wait_until(lambda: [p for p in event.iterdir() if p.name.startswith("svtree-wait-")])
    assert len(fifo) == 1 and fifo[0].is_fifo()
    assert inotify_fds(waiter.pid) == 0
    run("svc", "-u", sv)
    wait_until(lambda: waiter.poll() is not None)
    assert waiter.returncode == 0
    assert not fifo[0].exists()
    run("svc", "-d", sv)
    assert run("svtree", "wait", "up", sv, "--timeout", "0.2").returncode == 1
    assert not [p for p in event.iterdir() if p.name.startswith("svtree-wait-")]


def test_wait_under_daemontools_in_a_directory_svtree_once_ran(procs, service):
    """supervise/event/ left over from svtree, but daemontools' supervise
    writes status unannounced: the waiter must watch through inotify too."""
    prog = peer("supervise")
    sv = service()
    (sv / "supervise" / "event").mkdir(parents=True)
    procs.start(prog, sv)
    wait_until(lambda: status_pid(sv))
    waiter = procs.start(program("svtree"), "wait", "down", sv, "--timeout", "20")
    wait_until(lambda: [p for p in (sv / "supervise" / "event").iterdir()])   # listening
    assert waiter.poll() is None
    run("svc", "-d", sv)
    wait_until(lambda: waiter.poll() is not None, timeout=15)
    assert waiter.returncode == 0


def test_wait_ready_does_not_believe_a_state_json_of_another_run(tmp_path, procs):
    """status renamed, state.json not yet: the old state.json must not make a
    service that is only up count as ready; one left by another supervisor
    (no change comes) is set aside after a moment."""
    sv = fake_supervised(tmp_path, "sv")
    reader = open_ok(sv)
    try:
        now = int(time.time())
        (sv / "supervise" / "status").write_bytes(
            (2**62 + 10 + now).to_bytes(8, "big") + bytes(4)
            + (4321).to_bytes(4, "little") + b"\0u\0\1")
        (sv / "supervise" / "state.json").write_text(json.dumps(
            {"service": str(sv), "state": "run", "pid": 1234, "since": now - 60.0,
             "ready": True}))
        waiter = procs.start(program("svtree"), "wait", "ready", sv, "--timeout", "30")
        began = time.monotonic()
        wait_until(lambda: waiter.poll() is not None)
        assert waiter.returncode == 0
        assert time.monotonic() - began >= 0.2           # not believed at once
        # the record that follows the status says "not ready": no waiter returns
        (sv / "supervise" / "state.json.new").write_text(json.dumps(
            {"service": str(sv), "state": "run", "pid": 4321, "since": float(now),
             "ready": False}))
        os.rename(sv / "supervise" / "state.json.new", sv / "supervise" / "state.json")
        assert run("svtree", "wait", "ready", sv, "--timeout", "0.5").returncode == 1
    finally:
        os.close(reader)


def test_wait_down_and_finished(procs, service):
    sv = service(finish="#!/bin/sh\nwhile [ ! -e release ]; do sleep 0.01; done\n")
    supervise(procs, sv)
    assert run("svtree", "wait", "up", sv, "--timeout", "10").returncode == 0
    finished = procs.start(program("svtree"), "wait", "finished", sv, "--timeout", "30")
    run("svc", "-d", sv)
    assert run("svtree", "wait", "down", sv, "--timeout", "10").returncode == 0
    assert tree.read(tree.Entry(sv))["state"] == "finish"
    assert run("svtree", "wait", "finished", sv, "--timeout", "0.2").returncode == 1
    assert finished.poll() is None
    (sv / "release").touch()
    wait_until(lambda: finished.poll() is not None)
    assert finished.returncode == 0
    # after svc -dx supervise is gone, and the service is still down
    run("svc", "-x", sv)
    wait_until(lambda: run("svok", sv).returncode != 0)
    assert run("svtree", "wait", "finished", sv, "--timeout", "5").returncode == 0
    assert run("svtree", "wait", "up", sv, "--timeout", "0.1").returncode == 1


def test_wait_for_several_services(procs, service):
    a, b = service("a"), service("b", down=True)
    supervise(procs, a)
    supervise(procs, b)
    waiter = procs.start(program("svtree"), "wait", "ready", a, b, "--timeout", "30")
    assert run("svtree", "wait", "ready", a, "--timeout", "10").returncode == 0
    assert waiter.poll() is None
    run("svc", "-u", b)
    wait_until(lambda: waiter.poll() is not None)
    assert waiter.returncode == 0


def test_wait_errors(tmp_path, procs, service):
    r = run("svtree", "wait", "up", tmp_path / "missing", "--timeout", "1")
    assert r.returncode == 100
    assert r.stderr == f"svtree: fatal: unable to watch {tmp_path}/missing: file does not exist\n"
    failed = service(run="#!/bin/sh\nexit 3\n")
    (failed / "max-deaths").write_text("1\n")
    supervise(procs, failed)
    wait_until(lambda: tree.read(tree.Entry(failed))["state"] == "failed")
    r = run("svtree", "wait", "ready", failed)
    assert r.returncode == 111 and "failed for good" in r.stderr
    assert run("svtree", "wait", "down", failed, "--timeout", "5").returncode == 0
    assert run("svtree", "wait", "sideways", failed).returncode == 100
    assert run("svtree", "wait", "up").returncode == 100
    assert run("svtree", "wait", "up", failed, "--timeout", "-1").returncode == 100
    result = CliRunner().invoke(svtree, ["wait", "sideways", str(failed)])
    assert result.exit_code == 100
    result = CliRunner().invoke(svtree, ["wait", "up", str(tmp_path / "missing")])
    assert result.exit_code == 100


# --- events -----------------------------------------------------------------------

def our_fifos(sv):
    event = sv / "supervise" / "event"
    return sorted(p.name for p in event.iterdir() if p.name.startswith("svtree-events-")) \
        if event.is_dir() else []


def test_events_follow_changes_and_new_services(tmp_path, procs, service):
    scan = tmp_path / "scan"
    a = service("a", parent=scan)
    svscan(procs, scan)
    wait_until(lambda: run("svok", a).returncode == 0)
    follower = procs.start(program("svtree"), "events", scan)
    out = Reader(follower.stdout)
    wait_until(lambda: our_fifos(a))
    run("svc", "-d", a)
    wait_until(lambda: any(e["event"] == "down" for e in out.events()))
    run("svc", "-u", a)
    wait_until(lambda: [e["event"] for e in out.events()][-2:] == ["up", "ready"])
    assert {e["service"] for e in out.events()} == {str(a)}
    down = [e for e in out.events() if e["event"] == "down"][0]
    assert down["state"] == "down" and down["want"] == "down" and down["pid"] == 0
    # a service that appears later is followed too (moved in whole, as svscan wants)
    staged = service("b", parent=tmp_path / "staging", log="#!/bin/sh\nexec cat > /dev/null\n")
    b = scan / "b"
    os.rename(staged, b)
    wait_until(lambda: {str(b), str(b / "log")} <= {e["service"] for e in out.events()})
    wait_until(lambda: our_fifos(b) and our_fifos(b / "log"))
    run("svc", "-d", b)
    wait_until(lambda: any(e["service"] == str(b) and e["event"] == "down"
                           for e in out.events()))
    assert out.text().endswith("\n")
    follower.send_signal(signal.SIGTERM)
    assert follower.wait(timeout=10) == 0
    assert follower.stderr.read() == b""
    assert our_fifos(a) == our_fifos(b) == our_fifos(b / "log") == []


def test_events_end_quietly_when_their_reader_goes(procs, service):
    sv = service()
    supervise(procs, sv)
    follower = procs.start(program("svtree"), "events", sv)
    wait_until(lambda: our_fifos(sv))
    follower.stdout.close()                   # as `svtree events | head -1` does
    wait_until(lambda: follower.poll() is not None)
    assert follower.stderr.read() == b""
    assert our_fifos(sv) == []
    interrupted = procs.start(program("svtree"), "events", sv)
    wait_until(lambda: our_fifos(sv))
    interrupted.send_signal(signal.SIGINT)
    assert interrupted.wait(timeout=10) == 0
    assert interrupted.stderr.read() == b"" and our_fifos(sv) == []


def test_events_of_a_daemontools_service(procs, service):
    prog = peer("supervise")
    sv = service()
    procs.start(prog, sv)
    wait_until(lambda: status_pid(sv))
    follower = procs.start(program("svtree"), "events", sv)
    out = Reader(follower.stdout)
    wait_until(lambda: watching(follower.pid, sv / "supervise"))
    run("svc", "-d", sv)
    wait_until(lambda: run("svtree", "wait", "down", sv, "--timeout", "5").returncode == 0)
    run("svc", "-u", sv)
    wait_until(lambda: any(e["event"] == "up" for e in out.events()))
    up = [e for e in out.events() if e["event"] == "up"][-1]
    assert up["service"] == str(sv) and up["ready"] is None and up["pid"] == status_pid(sv)


def test_events_usage(tmp_path):
    r = run("svtree", "events", tmp_path / "missing")
    assert r.returncode == 100
    assert r.stderr == f"svtree: fatal: unable to follow {tmp_path}/missing: file does not exist\n"


# --- metrics ----------------------------------------------------------------------

SAMPLE = re.compile(r'^(svtree_[a-z_]+)\{service="([^"\\]|\\.)*"\} -?[0-9.]+$')


def check_exposition(text):
    helped, typed = set(), set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            typed.add(line.split()[2])
            assert line.split()[3] in ("gauge", "counter")
        else:
            assert SAMPLE.match(line), line
    assert helped == typed >= {"svtree_up", "svtree_ready", "svtree_starts_total",
                               "svtree_last_exit_code", "svtree_seconds_in_state",
                               "svtree_failed"}


def test_metrics_text(mixed_tree):
    r = run("svtree", "metrics", mixed_tree)
    assert r.returncode == 0 and r.stderr == ""
    check_exposition(r.stdout)
    samples = dict(line.rsplit(" ", 1) for line in r.stdout.splitlines()
                   if not line.startswith("#"))

    def value(metric, name):
        return samples.get(f'{metric}{{service="{mixed_tree}/{name}"}}')
    assert value("svtree_up", "ready") == "1" and value("svtree_ready", "ready") == "1"
    assert value("svtree_up", "notready") == "1" and value("svtree_ready", "notready") == "0"
    assert value("svtree_up", "down") == "0" and value("svtree_starts_total", "down") == "0"
    assert value("svtree_failed", "failed") == "1" and value("svtree_failed", "ready") == "0"
    assert value("svtree_last_exit_code", "failed") == "2"
    assert value("svtree_last_exit_code", "ready") is None        # never exited
    assert value("svtree_up", "logged/log") == "1"
    assert 0 <= float(value("svtree_seconds_in_state", "down")) < 60
    lines = r.stdout.splitlines()
    assert lines.index("# TYPE svtree_starts_total counter") == \
        lines.index("# HELP svtree_starts_total How many times supervise has started ./run.") + 1


def test_metrics_escape_labels_and_leave_out_the_unknown():
    rec = {**tree.blank(tree.Entry(Path('we"ird\\name\nx'))), "normally_up": True,
           "error": "supervise not running"}
    skipped = {**tree.blank(tree.Entry(Path("other@elsewhere"))), "state": "skipped"}
    text = metrics.exposition([rec, skipped])
    check_exposition(text)
    assert 'svtree_up{service="we\\"ird\\\\name\\nx"} 0' in text
    assert 'svtree_supervised{service="we\\"ird\\\\name\\nx"} 0' in text
    assert "svtree_starts_total{" not in text and "elsewhere" not in text


def test_metrics_over_http(procs, service):
    sv = service()
    supervise(procs, sv)
    server = procs.start(program("svtree"), "metrics", "--listen", "127.0.0.1:0", sv)
    err = Reader(server.stderr)
    announced = wait_until(lambda: re.search(r"http://127\.0\.0\.1:(\d+)/metrics\n", err.text()))
    url = f"http://127.0.0.1:{announced.group(1)}"
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = response.read().decode()
    check_exposition(body)
    assert f'svtree_up{{service="{sv}"}} 1' in body
    run("svc", "-d", sv)                      # every scrape reads the tree afresh
    wait_until(lambda: states(sv) == {str(sv): "down"})
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        assert f'svtree_up{{service="{sv}"}} 0' in response.read().decode()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "/", timeout=10)
    assert e.value.code == 404
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0


def test_metrics_listen_errors():
    assert run("svtree", "metrics", "--listen", "nonsense").returncode == 100
    assert run("svtree", "metrics", "--listen", "127.0.0.1:99999").returncode == 100
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("svtree", "metrics", "--listen", f"127.0.0.1:{port}")
    assert r.returncode == 111 and r.stderr.startswith("svtree: fatal: unable to listen on ")


# --- completion, usage, the manual ---------------------------------------------------

def test_shell_completion():
    env = {**os.environ, "_SVTREE_COMPLETE": "bash_source"}
    r = subprocess.run([program("svtree")], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "_svtree_completion" in r.stdout
    assert "complete -o nosort -F _svtree_completion svtree" in r.stdout

    def complete(*words):
        env = {**os.environ, "_SVTREE_COMPLETE": "bash_complete",
               "COMP_WORDS": " ".join(["svtree", *words]), "COMP_CWORD": str(len(words))}
        r = subprocess.run([program("svtree")], env=env, capture_output=True, text=True,
                           timeout=30)
        return r.stdout.splitlines()
    assert {"plain,status", "plain,wait", "plain,events", "plain,metrics", "plain,logs"} <= \
        set(complete(""))
    assert complete("wa") == ["plain,wait"]
    assert complete("wait", "") == [f"plain,{goal}" for goal in ("up", "ready", "down",
                                                                  "finished")]


def test_usage_errors_exit_100():
    assert run("svtree", "status", "--bogus").returncode == 100
    assert CliRunner().invoke(svtree, ["status", "--bogus"]).exit_code == 100
    assert CliRunner().invoke(svtree, ["nonsense"]).exit_code == 100
    assert CliRunner().invoke(svtree, ["--help"]).exit_code == 0


def test_the_manual_names_every_subcommand():
    page = (Path(__file__).resolve().parent.parent / "man" / "svtree.1").read_text()
    for name in svtree.commands:
        assert f'.SS "svtree {name}' in page or f".SS svtree {name}" in page, name
