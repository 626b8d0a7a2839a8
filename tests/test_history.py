"""What supervise tells beyond the status file (history.py), with real
processes: state.json, rewritten at every change; the event fifodir, where a
change is told once both files say it; what "ready" means there (never
between two crashes), and whether an exit goes through ./finish; and the
history a new supervise keeps when it adopts the ./run of a killed one.

Covered elsewhere: the error of a start that failed (test_start_errors),
the backoff and failure fields (test_policy), records forged or broken
(test_hostile, test_tree).
"""

import json
import os
import select
import signal
import time

from conftest import read_state as state, start_supervise as supervise
from conftest import pid_alive, run, status_pid, wait_until
from svtree import fifodir


def test_state_json_record(procs, service):
    sv = service(run="#!/bin/sh\nexit 7\n", down=True)
    supervise(procs, sv)
    s = wait_until(lambda: state(sv))
    assert s == {**s, "state": "down", "want": "down", "pid": 0, "normally_up": False,
                 "starts": 0, "failed": False, "last_exit": None, "critical": False}
    run("svc", "-o", sv)
    wait_until(lambda: state(sv).get("last_exit") == {"code": 7})
    assert state(sv)["starts"] == 1 and state(sv)["last_duration"] < 5


def test_event_fifodir_stream(procs, service, tmp_path):
    sv = service(run="#!/bin/sh\nexit 1\n")
    supervise(procs, sv)
    fifo = sv / "supervise" / "event" / "reader"
    os.mkfifo(fifo)
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    got = []
    try:
        def events():
            try:
                got.append(os.read(r, 65536))
            except BlockingIOError:
                pass
            return [json.loads(l) for l in b"".join(got).splitlines()]
        # a run that dies at once is never ready (no readiness mechanism:
        # ready after a second up), and with no ./finish it exits straight down
        wait_until(lambda: [e["event"] for e in events()][:3] == ["up", "exited", "down"],
                   timeout=5)
        e = events()[0]
        assert e["service"] == str(sv) and e["state"] == "run" and e["pid"] > 0
        assert events()[1]["state"] == "down" and events()[1]["pid"] == 0
    finally:
        os.close(r)
    # with the reader gone, the next event removes the stale fifo and blocks nothing
    wait_until(lambda: not fifo.exists(), timeout=5)


def test_event_readers_find_the_change_in_the_files(procs, service):
    """supervise tells a change only once status and state.json say it."""
    sv = service(run="#!/bin/sh\nwhile [ ! -e go ]; do sleep 0.01; done\necho >&3\n"
                     "exec sleep 1000\n")
    (sv / "notification-fd").write_text("3\n")
    (sv / "down").touch()
    supervise(procs, sv)
    sub = fifodir.Subscription(str(sv), "reader")
    try:
        run("svc", "-u", sv)
        seen = []
        deadline = time.monotonic() + 10
        while "ready" not in seen and time.monotonic() < deadline:
            select.select([sub.r], [], [], 0.5)
            try:
                data = os.read(sub.r, 65536)
            except BlockingIOError:
                continue
            for line in data.splitlines():
                fields = json.loads(line)
                snap = json.loads((sv / "supervise" / "state.json").read_text())
                seen.append(fields["event"])
                if fields["event"] == "up":
                    assert snap["state"] == "run" and snap["pid"] == fields["pid"]
                    assert status_pid(sv) == fields["pid"]
                    (sv / "go").touch()
                elif fields["event"] == "ready":
                    assert snap["ready"] is True
        assert seen == ["up", "ready"]
    finally:
        sub.close()
    assert not (sv / "supervise" / "event" / "reader").exists()


# --- what "ready" means, told as events ----------------------------------------------

def events_reader(sv):
    fifo = sv / "supervise" / "event" / "reader"
    os.mkfifo(fifo)
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    got = []

    def events():
        try:
            got.append(os.read(r, 65536))
        except BlockingIOError:
            pass
        return [json.loads(line) for line in b"".join(got).splitlines()]
    return r, events


def test_a_crash_loop_is_never_ready(procs, service):
    """Up for a moment between crashes is not ready: a dependent waiting for
    `svtree wait ready` must not start then."""
    sv = service(run="#!/bin/sh\nsleep 0.2\nexit 1\n")
    (sv / "backoff-max").write_text("1\n")
    (sv / "down").touch()
    supervise(procs, sv)
    r, events = events_reader(sv)
    try:
        run("svc", "-u", sv)
        wait_until(lambda: sum(e["event"] == "exited" for e in events()) >= 3, timeout=15)
        names = [e["event"] for e in events()]
        assert "ready" not in names, names
        exited = [e for e in events() if e["event"] == "exited"]
        assert all(e["state"] == "down" and e["ready"] is False for e in exited)
    finally:
        os.close(r)


def test_exited_event_says_finish_only_with_a_finish_script(procs, service):
    sv = service(run="#!/bin/sh\nexit 3\n", finish="#!/bin/sh\nsleep 0.2\n", down=True)
    supervise(procs, sv)
    r, events = events_reader(sv)
    try:
        run("svc", "-o", sv)
        wait_until(lambda: "down" in [e["event"] for e in events()])
        exited = next(e for e in events() if e["event"] == "exited")
        assert exited["state"] == "finish"
    finally:
        os.close(r)


# --- an adoption keeps the history ---------------------------------------------------

def test_adoption_keeps_the_history(procs, service):
    sv = service(run="#!/bin/sh\n[ -e started ] && exec sleep 1000\ntouch started\nexit 3\n")
    first = supervise(procs, sv)
    before = wait_until(lambda: state(sv).get("state") == "run" and state(sv).get("ready")
                        and state(sv), timeout=10)
    assert before["starts"] == 2 and before["last_exit"] == {"code": 3}
    pid = before["pid"]
    try:
        first.kill()
        first.wait()
        assert pid_alive(pid)
        supervise(procs, sv)
        after = wait_until(lambda: state(sv).get("pid") == pid and state(sv).get("ready")
                           and state(sv))
        for key in ("starts", "last_exit", "last_duration", "since", "ready_since"):
            assert after[key] == before[key], key
        svstat = run("svstat", sv).stdout
        assert f"up (pid {pid})" in svstat
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
