"""svtree events: one JSON line per change, for the services of a tree and
for those that appear later, from svtree's supervise (a fifo in
supervise/event/) and from daemontools' (inotify); quiet when its reader
goes or on Ctrl-C, and no fifo left behind.

Not tested here: events for a logger directory created after its service
was followed.
"""

import os
import signal

from conftest import start_supervise as supervise
from conftest import (Reader, peer, program, run, start_svscan, status_pid, wait_until,
                      watching)


def our_fifos(sv):
    event = sv / "supervise" / "event"
    return sorted(p.name for p in event.iterdir() if p.name.startswith("svtree-events-")) \
        if event.is_dir() else []


def test_events_follow_changes_and_new_services(tmp_path, procs, service):
    scan = tmp_path / "scan"
    a = service("a", parent=scan)
    start_svscan(procs, scan)
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
