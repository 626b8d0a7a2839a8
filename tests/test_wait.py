"""svtree wait (wait.py) against real supervise processes (ours and
daemontools') and records written by hand: woken by supervise's events (a
fifo in supervise/event/) or by inotify, not fooled by the state.json of
another run, several services at once, the words of a timeout, the errors;
and, pure, what each control verb waits for.

Covered elsewhere: the verbs themselves (test_verbs).
"""

import json
import os
import re
import time

import pytest
from click.testing import CliRunner

from conftest import start_supervise as supervise
from conftest import (fake_supervised, open_ok, peer, program, run, state_json, status_pid,
                      status_record, wait_until, watch_mask)
from svtree import tree
from svtree import verbs
from svtree.cli.svtree import svtree


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


# --- the words of a timeout ----------------------------------------------------------

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


# --- what the verbs wait for, pure ---------------------------------------------------

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
    assert verbs.after(verb, before).reached(now) is reached


def test_a_failure_is_hopeless_only_after_the_command():
    failed_before = snap(process="down", pid=0, want="down", failed=True)
    goal = verbs.after("start", failed_before)
    assert goal.hopeless(failed_before) is None                  # the u not yet taken
    again = snap(process="down", pid=0, want="down", failed=True, since=200.0)
    assert "failed for good" in goal.hopeless(again)
    assert verbs.after("stop", failed_before).hopeless(again) is None
