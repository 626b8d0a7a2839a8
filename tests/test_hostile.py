"""Records written by someone else (issue 10, "Trust boundary"), read by the
tree-wide tools, with the real programs and real fifos.

A service's owner can write its supervise/status and state.json (or plant a
fifo or a symlink there), anyone in the group of supervise/event/ can write
lines into an event fifo, and whoever runs a logger owns its log directory.
What such a record may cost is one service, with a one-line reason: never
the tree-wide command a traceback or a hang, nor the terminal an escape
sequence. The Hypothesis part at the end throws arbitrary bytes and JSON at
every file svtree reads back (status, state.json, event lines, policy files,
log directories), in-process so it stays fast.

Not tested here: a fifo planted as `current` while `svtree logs -f` follows
(reopened() is tested alone); event lines written as another user (the
fifo's mode is supervise's business, test_supervise); the supervise side of
the non-UTF-8 names beyond what its state.json and event lines say.
"""

import contextlib
import json
import os
import re
import select
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import start_supervise as supervise
from conftest import (PID, Fake, pipe_bytes, program, run, state_json, status_pid,
                      status_record, terminal_output, wait_until, watching, write_script)
from svtree import events, fifodir, logview, metrics, policy, statejson, table, tree, unix
from svtree import wait as wait_
from svtree.cli import svstat
from svtree.cli.svtree import for_terminal, json_text, svtree

# a control character on a terminal: C0 but newline, DEL, C1
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


# --- what the tools print -----------------------------------------------------------

def status_json(*args):
    r = run("svtree", "status", "--json", *args)
    assert r.stderr == ""
    return r.returncode, {rec["service"]: rec for rec in json.loads(r.stdout)}


def samples(text):
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def assert_printable(text):
    """Nothing in text would act on a terminal (newlines end lines)."""
    assert not CONTROL.search(text), repr(text)
    assert not re.search("[\ud800-\udfff]", text), repr(text)


# --- 1. a fifo (or a symlink, or a directory) where supervise/status belongs -----------

def plant(path: Path, kind, tmp_path):
    if os.path.lexists(path):
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    else:                                             # a symlink to a good-looking record
        target = tmp_path / "elsewhere"
        target.write_bytes(status_record()[0])
        path.symlink_to(target)


@pytest.mark.parametrize("kind", ["fifo", "dir", "symlink"])
def test_svstat_and_svtree_read_no_status_that_is_not_a_file(fakes, tmp_path, kind):
    """daemontools' svstat opens status non-blocking and says "bad format";
    svstat and svtree neither block on a fifo (with or without a writer),
    nor follow a symlink; svtree shows that one service unknown with the
    reason, and its neighbour as it is."""
    bad, good = fakes("bad"), fakes("good")
    bad.write()
    good.write()
    plant(bad.path / "supervise" / "status", kind, tmp_path)
    writer = None
    if kind == "fifo":           # a writer that never writes: a blocking read would hang
        writer = os.open(bad.path / "supervise" / "status", os.O_RDWR | os.O_NONBLOCK)
    try:
        reason = {"symlink": "unable to open supervise/status: symbolic link loop"}.get(
            kind, "unable to read supervise/status: bad format")
        r = run("svstat", bad.path, good.path, timeout=10)
        lines = r.stdout.splitlines()
        assert lines[0] == f"{bad.path}: {reason}"
        assert re.fullmatch(rf"{re.escape(str(good.path))}: up \(pid {PID}\) \d+ seconds",
                            lines[1])
        code, recs = status_json(bad.path.parent)
        assert code == 4
        want = ("symbolic link loop" if kind == "symlink" else "not a regular file")
        assert recs[str(bad.path)]["state"] == "unknown"
        assert recs[str(bad.path)]["error"].endswith(f"supervise/status: {want}")
        assert recs[str(good.path)]["state"] == "ready"
        r = run("svtree", "wait", "down", bad.path, "--timeout", "5", timeout=10)
        assert r.returncode == 111
        assert r.stderr == f"svtree: fatal: unable to read {bad.path}/supervise/status: {want}\n"
        r = run("svtree", "metrics", bad.path.parent, timeout=10)
        assert r.returncode == 0
        assert samples(r.stdout)[f'svtree_up{{service="{good.path}"}}'] == "1"
    finally:
        if writer is not None:
            os.close(writer)


def test_a_fifo_as_state_json_is_a_bad_record(fakes):
    """Only status counts for svstat; svtree reads a fifo at state.json as a
    record it cannot read, and does not wait for a writer."""
    sv = fakes()
    sv.write(record=b"")
    os.mkfifo(sv.path / "supervise" / "state.json")
    r = run("svstat", sv.path, timeout=10)
    assert re.fullmatch(rf"{re.escape(str(sv.path))}: up \(pid {PID}\) \d+ seconds\n", r.stdout)
    code, recs = status_json(sv.path)
    assert code == 4
    assert recs[str(sv.path)]["error"] == \
        "unable to read supervise/state.json: not a regular file"


# --- 2. fifos among the log files ---------------------------------------------------------

def test_logs_skip_fifos_and_symlinks_among_the_log_files(tmp_path):
    """A fifo named like a rotated file would hang a reader, a symlink named
    like one would show root's secrets: both are skipped; a fifo or a
    symlink as current is no log at all."""
    logdir = tmp_path / "svc" / "log" / "main"
    logdir.mkdir(parents=True)
    (logdir / "@400000005f000000000000000.s").write_bytes(b"old 1\nold 2\n")
    os.mkfifo(logdir / "@400000005f000000000000001.s")
    secret = tmp_path / "secret"
    secret.write_bytes(b"root's secret\n")
    (logdir / "@400000005f000000000000002.s").symlink_to(secret)
    (logdir / "current").write_bytes(b"new 1\n")
    r = run("svtree", "logs", "-n", "100", "--raw", tmp_path / "svc", timeout=10)
    assert (r.returncode, r.stdout, r.stderr) == (0, "old 1\nold 2\nnew 1\n", "")
    (logdir / "current").unlink()
    os.mkfifo(logdir / "current")
    for args in ([], ["-f"]):
        r = run("svtree", "logs", *args, tmp_path / "svc", timeout=10)
        assert r.returncode == 111 and "no log directory" in r.stderr
    (logdir / "current").unlink()
    (logdir / "current").symlink_to(secret)
    r = run("svtree", "logs", logdir, timeout=10)
    assert r.returncode == 111 and "secret" not in r.stdout


def test_a_fifo_swapped_in_as_current_is_waited_past(tmp_path):
    """follow() takes a new current only if it is a regular file."""
    logdir = tmp_path / "main"
    logdir.mkdir()
    (logdir / "current").write_bytes(b"x\n")
    fd = unix.open_regular(str(logdir / "current"))
    try:
        assert logview.reopened(logdir / "current", fd) is None       # the same file
        os.rename(logdir / "current", logdir / "@400000005f000000000000000.s")
        os.mkfifo(logdir / "current")
        assert logview.reopened(logdir / "current", fd) is None       # a fifo: not taken
        (logdir / "current").unlink()
        (logdir / "current").write_bytes(b"y\n")
        fresh = logview.reopened(logdir / "current", fd)
        assert fresh is not None
        os.close(fresh)
    finally:
        os.close(fd)


def test_tail_reads_only_the_end_of_a_big_log(tmp_path):
    """Lines come from the end, read backwards: a huge current costs no more
    than what is shown (and a line without end is shown cut)."""
    logdir = tmp_path / "main"
    logdir.mkdir()
    with open(logdir / "current", "wb") as f:
        f.truncate(1 << 34)                         # 16 GiB, sparse: no newline at all
        f.seek(0, os.SEEK_END)
        f.write(b"\nlast 1\nlast 2\n")
    began = time.monotonic()
    lines, seen = logview.tail(logdir, 2)
    assert lines == [b"last 1\n", b"last 2\n"] and seen == (1 << 34) + 15
    lines, _ = logview.tail(logdir, 3)
    assert len(lines[0]) <= 4 * logview.LINE_MAX and lines[1:] == [b"last 1\n", b"last 2\n"]
    assert time.monotonic() - began < 5


def on_a_terminal(*argv):
    return terminal_output(argv)


def test_log_lines_are_escaped_on_a_terminal_only(tmp_path):
    logdir = tmp_path / "main"
    logdir.mkdir()
    (logdir / "current").write_bytes(b"plain\tline\nevil \x1b]0;owned\x07 \x9b2J \xff\n")
    r = subprocess.run([program("svtree"), "logs", "--raw", logdir], capture_output=True,
                       timeout=30)
    assert r.stdout == b"plain\tline\nevil \x1b]0;owned\x07 \x9b2J \xff\n"    # for grep
    code, out = on_a_terminal(program("svtree"), "logs", "--raw", logdir)
    assert code == 0
    assert out.replace(b"\r\n", b"\n") == b"plain\tline\nevil \\x1b]0;owned\\x07 \\x9b2J \\xff\n"


# --- 3. state.json: deep, wrong, huge --------------------------------------------------

BAD_RECORDS = {
    "deep": (b"[" * 60000, "nested too deep"),
    "deep object": (b'{"pid": ' + b'{"a": ' * 10000, "nested too deep"),
    "not json": (b"\xff\xfe{garbage", "not JSON"),
    "a list": (b"[1, 2, 3]", "not a JSON object"),
    "huge": (b'{"pid": 4321, "x": "' + b"a" * 70000 + b'"}', "more than 65536 bytes"),
    "huge int": (b'{"pid": 4321, "starts": 1' + b"0" * 400 + b"}", "starts is not a count"),
    "int past the limit": (b'{"pid": 1' + b"0" * 5000 + b"}", "not JSON"),
    "pid string": ('{"pid": "4321"}', "pid is not a pid"),
    "since bool": ('{"pid": 4321, "since": true}', "since is not a time"),
    "since NaN": ('{"pid": 4321, "since": NaN}', "since is not a time"),
    "since huge": ('{"pid": 4321, "since": 1e999}', "since is not a time"),
    "ready string": ('{"pid": 4321, "ready": "yes"}', "ready is not true or false"),
    "starts list": ('{"pid": 4321, "starts": [1]}', "starts is not a count"),
    "starts negative": ('{"pid": 4321, "starts": -1}', "starts is not a count"),
    "last_exit string": ('{"pid": 4321, "last_exit": "1"}', "last_exit is not"),
    "last_exit code string": ('{"pid": 4321, "last_exit": {"code": "1"}}', "last_exit is not"),
    "last_exit both": ('{"pid": 4321, "last_exit": {"code": 1, "signal": 9}}',
                       "last_exit is not"),
    "want odd": ('{"pid": 4321, "want": "\\u001b[31m"}', "want is not up, down or once"),
}


@pytest.mark.parametrize("name", list(BAD_RECORDS))
def test_a_bad_state_json_costs_its_service_alone(fakes, name):
    """status, status --json, metrics and wait: the bad service is unknown
    (wait: not ready) with "bad format (why)", its neighbour unaffected."""
    data, why = BAD_RECORDS[name]
    bad, good = fakes("bad"), fakes("good")
    good.write()
    bad.write(record=data.encode() if isinstance(data, str) else data)
    scan = bad.path.parent
    code, recs = status_json(scan)
    assert code == 4
    rec = recs[str(bad.path)]
    assert rec["state"] == "unknown" and rec["pid"] == PID and rec["source"] == "status"
    assert rec["error"].startswith(f"unable to read supervise/state.json: bad format ({why}")
    assert recs[str(good.path)]["state"] == "ready" and recs[str(good.path)]["error"] is None
    r = run("svtree", "status", scan)
    assert r.returncode == 4 and r.stderr == ""
    row = [line for line in r.stdout.splitlines() if line.startswith(f"{bad.path} ")]
    assert len(row) == 1 and "unknown" in row[0] and f"bad format ({why}" in row[0]
    assert_printable(r.stdout)
    r = run("svtree", "metrics", scan)
    assert r.returncode == 0 and r.stderr == ""
    got = samples(r.stdout)
    assert got[f'svtree_ready{{service="{bad.path}"}}'] == "0"
    assert got[f'svtree_ready{{service="{good.path}"}}'] == "1"
    r = run("svtree", "wait", "ready", good.path, bad.path, "--timeout", "0.2")
    assert r.returncode == 1
    assert r.stderr == (f"svtree: warning: timed out after 0.2 seconds: {bad.path} not ready: "
                        f"{rec['error']}\n")
    assert run("svtree", "wait", "up", bad.path, "--timeout", "5").returncode == 0


def test_wait_ready_goes_on_once_the_record_is_mended(fakes, procs):
    """A bad record is no error for wait: the next good one ends the wait."""
    sv = fakes()
    sv.write(record=b'{"pid": "x"}')
    waiter = procs.start(program("svtree"), "wait", "ready", sv.path, "--timeout", "30")
    wait_until(lambda: watching(waiter.pid, sv.path / "supervise"))
    assert waiter.poll() is None
    tmp = sv.path / "supervise" / "state.json.new"
    tmp.write_bytes(state_json(sv.stamp))
    os.rename(tmp, sv.path / "supervise" / "state.json")
    wait_until(lambda: waiter.poll() is not None)
    assert waiter.returncode == 0, waiter.stderr.read()


# --- 4. event lines -----------------------------------------------------------------------

class Output:
    """A running program's stdout and stderr, read without blocking."""

    def __init__(self, proc):
        self.proc = proc
        self.data = {proc.stdout: b"", proc.stderr: b""}
        for stream in self.data:
            os.set_blocking(stream.fileno(), False)

    def read(self, stream):
        chunk = stream.read()
        if chunk:
            self.data[stream] += chunk
        return self.data[stream]

    def events(self):
        return [json.loads(line) for line in self.read(self.proc.stdout).splitlines()]

    def errors(self):
        return self.read(self.proc.stderr).decode().splitlines()


def write_fifo(path, data, timeout=10):
    """Write all of data to a fifo without ever blocking for good, and wait
    until it is read (supervise's own line must find room)."""
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    deadline = time.monotonic() + timeout
    try:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view[:65536]):]
            except BlockingIOError:
                assert time.monotonic() < deadline, "the reader stopped reading"
                select.select([], [fd], [], 0.1)
        wait_until(lambda: pipe_bytes(fd) == 0, timeout=timeout)
    finally:
        os.close(fd)


HOSTILE_LINES = [
    b"\xff\xfe\x00garbage\n",
    b"{not json\n",
    b"[" * 60000 + b"\n",
    b'{"event": "up", "time": "now", "pid": 1, "state": "run", "want": "up", "ready": true}\n',
    b'{"event": "\\u001b[2J", "time": 1, "pid": 1, "state": "run", "want": "up", '
    b'"ready": true}\n',
    b'{"event": "up", "time": 1, "pid": 1e400, "state": "run", "want": "up", "ready": 1}\n',
    b"[]\n",
    b"x" * 300000 + b"\n",                  # a huge line: more than a fifo holds
]


def test_hostile_event_lines_are_dropped_and_the_rest_flows(procs, service):
    sv = service()
    supervise(procs, sv)
    follower = procs.start(program("svtree"), "events", sv)
    out = Output(follower)
    event_dir = sv / "supervise" / "event"
    fifo = wait_until(lambda: [p for p in event_dir.iterdir()
                               if p.name.startswith("svtree-events-")])[0]
    for line in HOSTILE_LINES:
        write_fifo(fifo, line)
    write_fifo(fifo, b"y" * 200000)         # and one that does not end until supervise's does
    write_fifo(fifo, b"\n")
    run("svc", "-d", sv)
    wait_until(lambda: "down" in [e["event"] for e in out.events()])
    run("svc", "-u", sv)
    wait_until(lambda: [e["event"] for e in out.events()][-2:] == ["up", "ready"])
    assert follower.poll() is None
    assert {e["event"] for e in out.events()} <= {"exited", "down", "up", "ready"}
    assert all(e["service"] == str(sv) for e in out.events())
    assert all(list(e) == ["service", "event", "time", "pid", "state", "want", "ready"]
               for e in out.events())
    errors = out.errors()
    assert errors == [f"svtree: warning: dropped a line in {fifo.parent}: not JSON "
                      "(later bad lines there are dropped silently)"]


def test_split_lines_bounds_a_line_without_end():
    parts = [b"a" * (events.LINE_MAX - 1), b"bb", b"cc\nok\n", b"x" * 10]
    partial, got = b"", []
    for data in parts:
        lines, partial = events.split_lines(partial, data)
        got += lines
    assert got == [None, b"ok"] and partial == b"x" * 10


# --- 5 and 6. names: controls, and bytes that are not UTF-8 ---------------------------------

def test_control_characters_in_names_do_not_reach_the_terminal(fakes):
    evil = fakes("evil\x1b]0;owned\x07\x9b2J\x7f")
    evil.write()
    plain = fakes("plain")
    plain.write(record=b"{")
    scan = evil.path.parent
    r = run("svtree", "status", scan)
    assert r.returncode == 4
    assert_printable(r.stdout)
    assert f"{scan}/evil\\x1b]0;owned\\x07\\x9b2J\\x7f " in r.stdout
    r = run("svtree", "status", "--json", scan)
    assert_printable(r.stdout)
    assert [rec["service"] for rec in json.loads(r.stdout)] == [str(evil.path), str(plain.path)]
    r = run("svtree", "metrics", scan)
    assert_printable(r.stdout)
    shown = "evil\\\\x1b]0;owned\\\\x07\\\\x9b2J\\\\x7f"        # \\x1b, in the exposition
    assert f'svtree_up{{service="{scan}/{shown}"}} 1' in r.stdout
    (evil.path / "supervise" / "status").unlink()
    r = run("svtree", "wait", "ready", evil.path, "--timeout", "0.1")
    assert r.returncode == 1 and f"{scan}/evil\\x1b]0;owned" in r.stderr
    assert_printable(r.stderr)


def test_a_service_name_that_is_not_utf8_round_trips(procs, tmp_path):
    """supervise writes the name as \\udcff escapes (pure ASCII JSON); wait
    ready waits for real readiness, events deliver, metrics scrape, and
    every output is valid UTF-8 with the name given back or shown as \\xff."""
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9 \xff"    # Latin-1, and a stray byte
    sv = Path(os.fsdecode(raw))
    write_script(sv / "run", "#!/bin/sh\nwhile [ ! -e go ]; do sleep 0.01; done\necho >&3\n"
                             "exec sleep 1000\n")
    (sv / "notification-fd").write_text("3\n")
    supervise(procs, sv)
    wait_until(lambda: status_pid(sv))
    record = (sv / "supervise" / "state.json").read_bytes()
    assert record.isascii() and b"\\udcff" in record
    assert os.fsencode(json.loads(record)["service"]) == raw
    assert json.loads(record)["ready"] is False
    r = subprocess.run([program("svtree"), "wait", "ready", raw, "--timeout", "0.3"],
                       capture_output=True, timeout=30)
    assert r.returncode == 1                 # up, but not ready: no false "ready"
    follower = procs.start(program("svtree"), "events", sv)      # str(sv): the raw bytes
    out = Output(follower)
    waiter = procs.start(program("svtree"), "wait", "ready", sv, "--timeout", "30")
    fifos = lambda: [p.name for p in (sv / "supervise" / "event").iterdir()]  # noqa: E731
    wait_until(lambda: any(n.startswith("svtree-events-") for n in fifos())
               and any(n.startswith("svtree-wait-") for n in fifos()))
    assert waiter.poll() is None
    (sv / "go").touch()
    wait_until(lambda: waiter.poll() is not None)
    assert waiter.returncode == 0
    wait_until(lambda: [e["event"] for e in out.events()] == ["ready"])
    (line,) = out.read(follower.stdout).splitlines()
    assert b"\\udcff" in line and os.fsencode(json.loads(line)["service"]) == raw
    r = subprocess.run([program("svtree"), "metrics", raw], capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stderr == b""
    text = r.stdout.decode("utf-8")          # strict: valid UTF-8
    assert 'svtree_ready{service="' + str(tmp_path) + '/caf\\\\xe9 \\\\xff"} 1' in text
    r = subprocess.run([program("svtree"), "status", raw], capture_output=True, timeout=30)
    assert r.returncode == 0
    assert r.stdout.decode("utf-8").splitlines()[1].startswith(f"{tmp_path}/caf\\xe9 \\xff ")
    r = subprocess.run([program("svtree"), "status", "--json", raw], capture_output=True,
                       timeout=30)
    assert os.fsencode(json.loads(r.stdout)[0]["service"]) == raw
    assert b"\\udcff" in r.stdout


def test_history_pack_is_ascii_and_reads_back():
    """Golden line, and the round trip of a name with every kind of byte."""
    assert statejson.pack({"service": "/s/caf\udcff é", "pid": 7, "ready": None,
                         "last_exit": {"code": 1}}) == \
        b'{"service": "/s/caf\\udcff \\u00e9", "pid": 7, "ready": null, ' \
        b'"last_exit": {"code": 1}}\n'
    name = os.fsdecode(bytes(range(1, 256)))
    line = statejson.pack({"service": name})
    assert line.isascii() and os.fsencode(json.loads(line)["service"]) == bytes(range(1, 256))


# --- 7. Hypothesis: every file svtree reads back -----------------------------------------

@contextlib.contextmanager
def scratch():
    """A temporary directory for one Hypothesis test (fixtures would be shared
    by every example anyway)."""
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def human_outputs(records):
    """Everything svtree prints for records: table, JSON, metrics."""
    return table.lines(records) + [json_text(records, indent=2), metrics.exposition(records)]


def check_tree(bad: Fake, good: Fake):
    """The properties: no exception, the bad one has a one-line reason if it is
    unknown, the good one is ready, nothing unprintable, the JSON reads back."""
    recs = [tree.read(tree.Entry(bad.path)), tree.read(tree.Entry(good.path))]
    assert recs[0]["state"] in tree.STATES
    if recs[0]["state"] == "unknown":
        assert recs[0]["error"] and "\n" not in recs[0]["error"]
    assert recs[1]["state"] == "ready" and recs[1]["error"] is None
    for text in human_outputs(recs):
        assert_printable(text)
    assert json.loads(json_text(recs)) == json.loads(json.dumps(recs))
    for args in (["status"], ["status", "--json"], ["metrics"]):
        result = CliRunner().invoke(svtree, [*args, str(bad.path), str(good.path)])
        assert result.exit_code in (0, 3, 4), result.output     # a traceback would be 1
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert_printable(result.output)
    try:
        wait_.wait([bad.path], "ready", 0, make_inotify=NoInotify)
    except wait_.WaitError as e:
        assert "\n" not in str(e)
    return recs


class NoInotify:
    """wait() with timeout 0 looks once: no inotify needed (nor its close's cost)."""

    def __init__(self):
        self.fd = os.open("/dev/null", os.O_RDONLY)

    def fileno(self):
        return self.fd

    def add_watch(self, path, mask):
        return 1

    def close(self):
        os.close(self.fd)


@FUZZ
@given(data=st.binary(max_size=64))
def test_fuzz_status_bytes(data):
    with scratch() as d:
        bad, good = Fake(d, "bad"), Fake(d, "good")
        try:
            good.write()
            bad.write(status=data, record=b"")
            recs = check_tree(bad, good)
            if len(data) not in (18, 20):
                assert recs[0]["state"] == "unknown"
            line = svstat.line(str(bad.path), time.time())
            assert "\n" not in line and line.startswith(f"{bad.path}: ")
        finally:
            bad.close()
            good.close()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)
RECORD_KEYS = ["pid", "since", "want", "ready", "ready_since", "starts", "last_exit",
               "failed", "quick_deaths", "service", "state"]


@st.composite
def records(draw):
    """Bytes of a state.json: anything, any JSON, or a near-miss record."""
    kind = draw(st.sampled_from(["bytes", "json", "record"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    fields = json.loads(state_json(draw(st.just(0))))
    fields.update(draw(st.dictionaries(st.sampled_from(RECORD_KEYS), JSON_VALUES, max_size=3)))
    return json.dumps(fields).encode()


@FUZZ
@given(data=records())
def test_fuzz_state_json(data):
    with scratch() as d:
        bad, good = Fake(d, "bad"), Fake(d, "good")
        try:
            good.write()
            status, stamp = status_record(stamp=0)
            bad.write(status=status, record=data)
            recs = check_tree(bad, good)
            assert recs[0]["pid"] == PID              # the status file is still believed
        finally:
            bad.close()
            good.close()


EVENT_LINE = (b'{"service": "x", "event": "down", "time": 1.5, "pid": 0, "state": "down", '
              b'"want": "down", "ready": false}\n')


@FUZZ
@given(chunks=st.lists(st.binary(max_size=300) | st.builds(
    lambda v: json.dumps(v).encode(), JSON_VALUES), max_size=5))
def test_fuzz_event_lines(chunks):
    """Whatever comes through the fifo first, a good line after a newline
    comes out, and nothing else but events of the right shape."""
    with scratch() as d:
        sv = d / "svc"
        (sv / "supervise" / "event").mkdir(parents=True)
        sub = fifodir.Subscription(str(sv), "reader")
        warned = []
        follower = events.Follower(None, warn=warned.append)
        f = events.Followed(sv)
        f.sub = sub
        follower.by_fd[sub.r] = f
        try:
            got = []
            for data in chunks + [b"\n" + EVENT_LINE]:
                os.write(sub.w, data)
                while select.select([sub.r], [], [], 0)[0]:
                    got += follower.on_fifo(sub.r)
            assert got[-1] == {**json.loads(EVENT_LINE), "service": str(sv)}
            for fields in got:
                assert list(fields) == ["service", *events.EVENT_FIELDS]
                assert_printable(json_text(fields))
            assert len(warned) <= 1 and all("\n" not in w for w in warned)
        finally:
            sub.close()


@FUZZ
@given(files=st.dictionaries(st.sampled_from([name for name, _, _ in policy.FILES]),
                             st.binary(max_size=300), max_size=4))
def test_fuzz_policy_files(files):
    """policy.read() in a service dir of hostile policy files: a policy, and a
    one-line warning per file it could not use."""
    with scratch() as d:
        for name, data in files.items():
            (d / name).write_bytes(data)
        warnings = []
        here = os.getcwd()
        os.chdir(d)
        try:
            got = policy.read(str(d), warnings.append)
        finally:
            os.chdir(here)
        assert isinstance(got, policy.Policy)
        assert all("\n" not in w for w in warnings) and len(warnings) <= len(files) + 1
        assert got.restart in ("always", "on-failure", "never")
        assert got.notify_fd is None or got.notify_fd >= 3


LOG_NAMES = st.one_of(
    st.just("current"),
    st.builds(lambda n, s: f"@4000000{n:017x}{s}", st.integers(0, 2**40),
              st.sampled_from([".s", ".u", ".x", ""])),
    st.binary(min_size=1, max_size=12)              # any name, UTF-8 or not
    .filter(lambda n: b"/" not in n and b"\0" not in n and n not in (b".", b".."))
    .map(os.fsdecode))


@FUZZ
@given(entries=st.dictionaries(LOG_NAMES, st.tuples(st.sampled_from(["file", "fifo", "dir",
                                                                      "link"]),
                                                    st.binary(max_size=200)), max_size=6),
       count=st.integers(0, 20))
def test_fuzz_log_directories(entries, count):
    """tail() over any mix of files, fifos, directories and symlinks never
    blocks nor raises, and shows only what regular files hold; each line it
    gives is printable once escaped for a terminal."""
    with scratch() as d:
        logdir = d / "main"
        logdir.mkdir()
        secret = d / "secret"
        secret.write_bytes(b"SECRET\n")
        held = b""
        for name, (kind, data) in entries.items():
            path = logdir / name
            if kind == "file":
                path.write_bytes(data)
                held += data
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "dir":
                path.mkdir()
            else:
                path.symlink_to(secret)
        found = logview.logdirs(logdir)
        assert found == ([logdir] if entries.get("current", ("",))[0] == "file" else [])
        if not found:
            return
        lines, seen = logview.tail(logdir, count)
        assert len(lines) <= count and seen == len(entries["current"][1])
        assert all(line in held for line in lines)
        assert not any(b"SECRET" in line for line in lines)
        for line in lines:
            assert_printable(for_terminal(logview.humanize(line)).decode("utf-8")
                             .replace("\t", " "))
