"""svtree as an operator's tool: arguments that name no service, why a
service is failing (status -v, why, the NOTE, wait's timeout message),
readiness as shown, colour and NO_COLOR, the shape of every error, and the
new state.json fields read as hostile. Real supervise processes where the
words come from supervise; records written by hand where they must be
exact or forged.

Not tested here: the width a note is cut to on a real terminal of a given
size (lines(width=) is tested alone); colours other than the two an
operator must see (green up, red down-but-wanted-up); the exact words of
supervise's start errors (supervise's tests own them: here, only that they
reach the table, status -v, wait and the verbs).
"""

import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from conftest import start_supervise as supervise
from conftest import NOTIFY_WHEN_GO, program, run, terminal_output, wait_until, write_script
from svtree import table, tree
from svtree import wait as wait_
from svtree.cli.svtree import SECTIONS, svtree
from test_hostile import Fake, fakes, state_json, status_record  # noqa: F401  (fakes: a fixture)

def on_a_terminal(*argv, env=None):
    """(exit code, output) of one of our programs whose stdout is a terminal."""
    return terminal_output([program(argv[0]), *argv[1:]], env)


def record(sv):
    return tree.read(tree.Entry(Path(sv)))


# --- 1. arguments that name no service --------------------------------------------------

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


# --- 2. why: the table's note, status -v, wait --------------------------------------------

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


def test_wait_timeout_words(tmp_path, procs, service):
    """One line per service, the reason from its record, seconds in the plural
    but for 1."""
    never = service("never")                      # no supervise
    down = service("down", down=True)
    supervise(procs, down)
    r = run("svtree", "wait", "up", never, down, "--timeout", "1.5")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"svtree: warning: timed out after 1.5 seconds: {never} not up: supervise not running",
        f"svtree: warning: timed out after 1.5 seconds: {down} not up: down, want down"]
    r = run("svtree", "wait", "down", service("up_one"), "--timeout", "0")
    assert r.returncode == 1 and "timed out after 0 seconds" in r.stderr


def test_the_reason_a_backing_off_service_waits(fakes):
    """A record by hand: down, wanted up, 3 quick deaths, next start in 5 s."""
    sv = fakes()
    status, stamp = status_record(pid=0, state=0)
    sv.write(status=status, record=state_json(
        stamp, state="down", pid=0, ready=False, ready_since=None, quick_deaths=3,
        next_start=time.time() + 30, backoff=32.0, readiness="none"))
    r = run("svtree", "wait", "up", sv.path, "--timeout", "0.1")
    assert re.fullmatch(rf"svtree: warning: timed out after 0\.1 seconds: {re.escape(str(sv.path))} "
                        r"not up: backing off, next start in (30|29|28)s\n", r.stderr), r.stderr
    row = run("svtree", "status", sv.path).stdout.splitlines()[1]
    assert re.fullmatch(rf"{re.escape(str(sv.path))} +backing off .* up +next start in \d\ds", row)


# --- 3. readiness as shown ----------------------------------------------------------------

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


def test_a_record_without_readiness_is_shown_as_before(fakes):
    """state.json of an older supervise (no readiness field): ready means ready."""
    sv = fakes()
    sv.write()
    assert record(sv.path)["state"] == "ready" and record(sv.path)["readiness"] is None
    status, stamp = status_record()
    sv.write(status=status, record=state_json(stamp, readiness="none"))
    assert record(sv.path)["state"] == "up" and record(sv.path)["ready"] is True


# --- 4. colour ------------------------------------------------------------------------------

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


def test_down_but_wanted_up_is_red():
    """The state an operator must see, coloured as failed is."""
    rec = {**tree.blank(tree.Entry(Path("/s/web"))), "state": "down", "process": "down",
           "want": "up", "pid": 0, "seconds": 3.0, "normally_up": True}
    assert table.style(rec) == "down, want up"
    assert table.COLOURS["down, want up"] == {"fg": "red", "bold": True}
    assert table.style({**rec, "want": "down"}) == "down"
    painted = table.lines([rec], paint=lambda text, key: f"<{key}>{text.strip()}</>")
    assert "<down, want up>down</>" in painted[1]


# --- 5. the table's NOTE, pure ---------------------------------------------------------------

def fake_record(**fields):
    rec = {**tree.blank(tree.Entry(Path("/s/web"))), "process": "down", "pid": 0,
           "want": "up", "normally_up": True, "seconds": 3.0, "supervised": True,
           "source": "state.json", "starts": 4, "ready": False, "failed": False,
           "readiness": "none", "quick_deaths": 0, "backoff": 1.0}
    rec.update(fields)
    rec["state"] = fields.get("state", "down")
    return rec


NOW = 1_800_000_000.0
NOTES = [
    ({"error": "supervise not running", "state": "unknown"}, "supervise not running"),
    ({"start_error": "unable to start ./run: run is not executable (chmod +x run)"},
     "unable to start ./run: run is not executable (chmod +x run)"),
    ({"failed": True, "reason": "max-deaths 4 reached", "state": "failed", "want": "down"},
     "max-deaths 4 reached"),
    ({"failed": True, "state": "failed", "want": "down"}, ""),
    ({"quick_deaths": 3, "next_start": NOW + 2.5, "state": "backing off"}, "next start in 3s"),
    ({"quick_deaths": 0, "next_start": NOW + 0.4}, "next start in 1s"),
    ({"quick_deaths": 2, "state": "backing off"}, ""),
    ({"process": "run", "pid": 7, "readiness": "check", "state": "up"}, "waiting for ./check"),
    ({"process": "run", "pid": 7, "readiness": "notify", "state": "up"},
     "waiting for its notification-fd"),
    ({"process": "run", "pid": 7, "readiness": "none", "state": "up"}, ""),
    ({"process": "run", "pid": 7, "readiness": "notify", "ready": True, "state": "ready"}, ""),
    ({"normally_up": False, "want": "down"}, "normally down"),
]


@pytest.mark.parametrize(("fields", "note"), NOTES)
def test_the_note(fields, note):
    assert table.note(fake_record(**fields), NOW) == note


def test_why_words_a_failure_and_a_backoff_in_full():
    assert table.why(fake_record(failed=True, reason="finish exited 125"), NOW) == \
        "failed: finish exited 125"
    assert table.why(fake_record(quick_deaths=3, next_start=NOW + 59.5), NOW) == \
        "backing off, next start in 1m00s"


def test_a_long_note_is_cut_to_the_terminal():
    rec = fake_record(start_error="unable to start ./run: " + "x" * 300)
    full = table.lines([rec], now=NOW)[1]
    assert full.endswith("...") and len(full) < 300          # NOTE_MAX, in a pipe too
    cut = table.lines([rec], now=NOW, width=80)[1]
    assert len(cut) == 80 and cut.endswith("...")
    narrow = table.lines([rec], now=NOW, width=20)[1]         # never shorter than NOTE_MIN
    assert narrow.split("  ")[-1].startswith("unable to start ./run")


def test_sv_line_is_runits():
    """runit's `sv status` words, then svtree's."""
    up = fake_record(process="run", pid=4242, seconds=185.7, state="ready", ready=True,
                     readiness="notify")
    assert table.sv_line(up, NOW) == "run: /s/web: (pid 4242) 185s, ready"
    assert table.sv_line({**up, "normally_up": False, "paused": True, "want": "down",
                          "state": "paused"}, NOW) == \
        "run: /s/web: (pid 4242) 185s, normally down, paused, want down"
    down = fake_record(quick_deaths=2, next_start=NOW + 2, state="backing off")
    assert table.sv_line(down, NOW) == \
        "down: /s/web: 3s, normally up, want up, backing off, next start in 2s"
    assert table.sv_line(fake_record(want="down"), NOW) == "down: /s/web: 3s, normally up"
    unknown = {**tree.blank(tree.Entry(Path("/s/\x1b[31m"))), "error": "supervise not running"}
    assert table.sv_line(unknown, NOW) == "/s/\\x1b[31m: supervise not running"


# --- 6. the shape of errors --------------------------------------------------------------

def test_every_usage_error_is_one_line_and_100(tmp_path):
    for name in svtree.commands:
        r = run("svtree", name, "--bogus", tmp_path)
        assert r.returncode == 100, (name, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("svtree: fatal: "), r.stderr
        assert f"(svtree {name} --help)" in r.stderr
    for args in (["nonsense"], ["wait", "sideways", tmp_path], ["wait", "up"], ["start"],
                 ["stop", "-w", "-1", tmp_path], ["logs"], ["logs", "-n", "x", tmp_path]):
        r = run("svtree", *args)
        assert r.returncode == 100, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("svtree: fatal: "), r.stderr
        assert r.stdout == ""
    r = run("svtree", "start")
    assert r.stderr == "svtree: fatal: missing argument 'SERVICE...' (svtree start --help)\n"


def test_logs_errors_name_the_argument(tmp_path):
    r = run("svtree", "logs", tmp_path / "missing")
    assert (r.returncode, r.stdout) == (100, "")
    assert r.stderr == f"svtree: fatal: unable to read {tmp_path}/missing: file does not exist\n"
    (tmp_path / "file").write_text("")
    r = run("svtree", "logs", tmp_path / "file")
    assert r.returncode == 100
    assert r.stderr == f"svtree: fatal: unable to read {tmp_path}/file: not a directory\n"
    r = run("svtree", "logs", tmp_path)
    assert r.returncode == 111
    assert r.stderr == (f"svtree: fatal: no log directory with a current file in {tmp_path}, "
                        "its log/, or where its logger's script writes; name the log directory "
                        "itself: svtree logs DIR\n")
    for name in ("a", "b"):
        (tmp_path / "svc" / "log" / name).mkdir(parents=True)
        (tmp_path / "svc" / "log" / name / "current").write_text("x\n")
    r = run("svtree", "logs", "-f", tmp_path / "svc")
    assert r.returncode == 100 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"svtree: fatal: {tmp_path}/svc has several log directories")
    result = CliRunner().invoke(svtree, ["logs", str(tmp_path / "missing")])
    assert result.exit_code == 100 and result.output.startswith("svtree: fatal: unable to read")


def test_a_logger_named_itself_shows_its_log(tmp_path):
    logdir = tmp_path / "svc" / "log" / "main"
    logdir.mkdir(parents=True)
    write_script(tmp_path / "svc" / "log" / "run", "#!/bin/sh\nexec multilog t ./main\n")
    (logdir / "current").write_text("one\n")
    r = run("svtree", "logs", tmp_path / "svc" / "log")
    assert (r.returncode, r.stdout) == (0, "one\n")


# --- 7. help ------------------------------------------------------------------------------

def test_help_lists_the_commands_by_section():
    r = run("svtree", "--help")
    assert r.returncode == 0
    for title, names in SECTIONS:
        assert title + ":" in r.stdout
        for name in names:
            assert re.search(rf"^  {name} +\S", r.stdout, re.MULTILINE), name
    assert "start|stop|restart|once|kill" in r.stdout
    assert {name for _, names in SECTIONS for name in names} == set(svtree.commands)


# --- 8. the new state.json fields, as hostile as the rest ------------------------------------

BAD_FIELDS = {
    "readiness": ("maybe", "readiness is not notify, check or none"),
    "error": (5, "error is not a string"),
    "reason": (["x"], "reason is not a string"),
    "next_start": ("soon", "next_start is not a time"),
    "last_duration": (-1, "last_duration is not a duration"),
    "backoff": (float("inf"), "backoff is not a duration"),     # written as Infinity
}


@pytest.mark.parametrize("name", list(BAD_FIELDS))
def test_a_bad_new_field_costs_its_service_alone(fakes, name):
    value, why = BAD_FIELDS[name]
    sv = fakes()
    status, stamp = status_record()
    sv.write(status=status, record=state_json(stamp, **{name: value}))
    rec = record(sv.path)
    assert rec["state"] == "unknown"
    assert why in rec["error"]


NEW_FIELDS = st.fixed_dictionaries({}, optional={
    "readiness": st.sampled_from(["notify", "check", "none"]) | st.text(max_size=8),
    "error": st.text(max_size=600) | st.integers(), "reason": st.text(max_size=600),
    "next_start": st.floats(allow_nan=False) | st.integers(), "last_duration": st.floats(),
    "backoff": st.floats(min_value=-1, max_value=1e9) | st.none(),
    "ready": st.booleans(), "failed": st.booleans(), "quick_deaths": st.integers(-1, 40)})


@settings(max_examples=100, deadline=None)
@given(fields=NEW_FIELDS, process=st.sampled_from([0, 1, 2]))
def test_fuzz_the_new_fields(fields, process):
    """Any values of the new fields: a record or a one-line reason, and every
    view of it (table, sv_line, report) printable, one line a row, never an
    exception."""
    with tempfile.TemporaryDirectory() as d:
        sv = Fake(Path(d))
        try:
            pid = 4321 if process else 0
            status, stamp = status_record(pid=pid, state=process)
            sv.write(status=status, record=json.dumps(
                {**json.loads(state_json(stamp, pid=pid)), **fields}).encode())
            rec = record(sv.path)
        finally:
            sv.close()
    assert rec["state"] in tree.STATES
    texts = table.lines([rec]) + [table.sv_line(rec)] + table.report(rec)
    for text in texts:
        assert "\n" not in text and not re.search("[\x00-\x1f\x7f-\x9f\ud800-\udfff]", text)
    for key in ("start_error", "reason"):
        assert rec[key] is None or len(rec[key]) <= tree.TEXT_MAX


def test_texts_of_the_record_are_cut_and_escaped(fakes):
    sv = fakes()
    status, stamp = status_record(pid=0, state=0)
    evil = "unable to start ./run: \x1b]0;owned\x07\x9b2J " + "é" * 2000
    sv.write(status=status, record=state_json(
        stamp, state="down", pid=0, ready=False, error=evil, reason="\x1b[31mred",
        failed=True))
    rec = record(sv.path)
    assert len(rec["start_error"]) == tree.TEXT_MAX and rec["start_error"].endswith("...")
    assert rec["reason"] == "\x1b[31mred"                # exact in JSON (escaped there)
    for args in (["status"], ["status", "-v"], ["why"], ["wait", "up", "--timeout", "0"]):
        r = run("svtree", *args, sv.path)
        for text in (r.stdout, r.stderr):
            assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text
    r = run("svtree", "status", "--json", sv.path)
    assert "\\u001b]0;owned" in r.stdout
    assert "\\x1b]0;owned" in run("svtree", "status", sv.path).stdout


# --- 9. what the verbs wait for, pure ----------------------------------------------------------

def snap(process="run", pid=7, since=100.0, want="up", ready=True, readiness="none",
         failed=False, source="state.json"):
    return tree.Snapshot(process, pid, since, want, False, ready=ready, readiness=readiness,
                         failed=failed, source=source)


GOALS = [
    # verb, before, now, reached
    ("start", snap(process="down", pid=0), snap(), True),
    ("start", snap(process="down", pid=0), snap(process="down", pid=0), False),
    ("start", None, snap(readiness="notify", ready=False), False),
    ("start", None, snap(readiness="notify", ready=True), True),
    ("start", None, snap(readiness="check", ready=False), False),
    ("start", None, snap(readiness=None, ready=None, source="status"), True),   # runit
    ("start", None, snap(want="down"), False),               # the u not yet taken
    ("restart", snap(), snap(), False),                      # the same run
    ("restart", snap(), snap(pid=8, since=101.0), True),
    ("restart", snap(), snap(pid=8, since=101.0, readiness="notify", ready=False), False),
    ("restart", snap(process="down", pid=0), snap(), True),
    ("once", snap(process="down", pid=0, want="down"), snap(want="once"), True),
    ("once", snap(process="down", pid=0, want="down", since=90.0),
     snap(process="down", pid=0, want="down", since=95.0), True),    # a one-shot, over
    ("once", snap(process="down", pid=0, want="down"),
     snap(process="down", pid=0, want="down"), False),
    ("stop", snap(), snap(want="down"), False),              # TERM sent, not yet gone
    ("stop", snap(), snap(process="finish", pid=9, want="down"), False),
    ("stop", snap(), snap(process="down", pid=0, want="down"), True),
    ("stop", snap(), snap(process="down", pid=0, want="up"), False),     # the d not yet taken
    ("kill", snap(), snap(), False),
    ("kill", snap(), snap(process="finish", pid=9), True),
    ("kill", snap(), snap(pid=8, since=101.0), True),
    ("kill", snap(process="down", pid=0), snap(process="down", pid=0), True),
]


@pytest.mark.parametrize(("verb", "before", "now", "reached"), GOALS)
def test_what_a_verb_waits_for(verb, before, now, reached):
    assert wait_.after(verb, before).reached(now) is reached


def test_a_failure_is_hopeless_only_after_the_command():
    failed_before = snap(process="down", pid=0, want="down", failed=True)
    goal = wait_.after("start", failed_before)
    assert goal.hopeless(failed_before) is None                  # the u not yet taken
    again = snap(process="down", pid=0, want="down", failed=True, since=200.0)
    assert "failed for good" in goal.hopeless(again)
    assert wait_.after("stop", failed_before).hopeless(again) is None
