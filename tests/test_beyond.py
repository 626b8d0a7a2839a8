"""Beyond the peers: readiness, health checks, backoff, failure, stopping,
history and events, with real processes (issue: readiness and friends)."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import peer, pid_alive, program, run, status_bytes, status_pid, wait_until, write_script

SLEEPER = "#!/bin/sh\nexec sleep 1000\n"


def state(sv):
    try:
        return json.loads((sv / "supervise" / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def start(procs, sv):
    proc = procs.start(program("supervise"), sv)
    wait_until(lambda: run("svok", sv).returncode == 0)
    return proc


def test_notification_fd_readiness_after_a_delay(procs, service):
    sv = service(run="#!/bin/sh\nsleep 0.5\necho > /dev/fd/3\nexec sleep 1000\n")
    (sv / "notification-fd").write_text("3\n")
    start(procs, sv)
    wait_until(lambda: state(sv).get("state") == "run")
    assert state(sv)["ready"] is False
    began = time.monotonic()
    wait_until(lambda: state(sv).get("ready"))
    assert time.monotonic() - began > 0.2
    s = state(sv)
    assert s["ready_since"] >= s["since"] + 0.4


def test_check_script_decides_readiness(procs, service):
    sv = service()
    write_script(sv / "check", "#!/bin/sh\ntest -e ready-now\n")
    start(procs, sv)
    wait_until(lambda: state(sv).get("state") == "run")
    assert not state(sv)["ready"]
    (sv / "ready-now").touch()
    wait_until(lambda: state(sv).get("ready"))


def test_failing_health_check_restarts_the_service(procs, service):
    sv = service()
    write_script(sv / "check", "#!/bin/sh\ntest ! -e sick\n")
    (sv / "check-interval").write_text("0.1\n")
    (sv / "check-failures").write_text("2\n")
    start(procs, sv)
    wait_until(lambda: state(sv).get("ready"))
    pid = status_pid(sv)
    (sv / "sick").touch()
    wait_until(lambda: not pid_alive(pid))
    (sv / "sick").unlink()
    wait_until(lambda: status_pid(sv) not in (0, pid) and state(sv).get("ready"))
    assert state(sv)["starts"] == 2


def test_hanging_check_is_killed(procs, service):
    sv = service()
    write_script(sv / "check", "#!/bin/sh\necho $$ > check.pid\nexec sleep 1000\n")
    (sv / "check-timeout").write_text("0.3\n")
    start(procs, sv)
    pid = wait_until(lambda: (sv / "check.pid").exists() and int((sv / "check.pid").read_text() or 0))
    wait_until(lambda: not pid_alive(pid), timeout=5)


def test_crash_loop_backs_off_exponentially(procs, service):
    sv = service(run="#!/bin/sh\ndate +%s.%N >> starts\nexit 1\n")
    (sv / "backoff-max").write_text("4\n")
    start(procs, sv)
    wait_until(lambda: (sv / "starts").exists() and len((sv / "starts").read_text().split()) >= 5,
               timeout=20)
    times = [float(t) for t in (sv / "starts").read_text().split()]
    # Each time is taken by the run script, after a fork and two execs that a loaded
    # machine may delay by a few tenths of a second; supervise schedules each start
    # from the previous one, so the delays do not add up: compare with the schedule
    # counted from the first start.
    since_first = [t - times[0] for t in times[1:5]]
    for took, expected in zip(since_first, [1, 3, 7, 11]):  # doubling, capped at backoff-max
        assert expected - 0.4 <= took < expected + 1.0, since_first
    assert state(sv)["quick_deaths"] >= 4 and state(sv)["backoff"] == 4


def test_max_deaths_fails_the_service_until_svc_u(procs, service):
    sv = service(run="#!/bin/sh\necho x >> starts\nexit 3\n")
    (sv / "max-deaths").write_text("2\n")
    start(procs, sv)
    wait_until(lambda: state(sv).get("failed"), timeout=10)
    s = state(sv)
    assert s["state"] == "down" and s["want"] == "down" and s["last_exit"] == {"code": 3}
    assert (sv / "starts").read_text().count("x") == 2
    assert run("svstat", sv).stdout.startswith(f"{sv}: down ")
    (sv / "max-deaths").unlink()
    run("svc", "-u", sv)
    wait_until(lambda: (sv / "starts").read_text().count("x") == 3)
    assert not state(sv)["failed"] or state(sv)["starts"] >= 3


def test_finish_125_is_a_permanent_failure(procs, service):
    sv = service(run="#!/bin/sh\nexit 0\n", finish="#!/bin/sh\nexit 125\n")
    start(procs, sv)
    wait_until(lambda: state(sv).get("failed"))
    assert state(sv)["starts"] == 1


def test_restart_policy_on_failure_and_never(procs, service, tmp_path):
    ok = service("ok", run="#!/bin/sh\necho x >> starts\nexit 0\n")
    (ok / "restart").write_text("on-failure\n")
    bad = service("bad", run="#!/bin/sh\necho x >> starts\nexit 1\n")
    (bad / "restart").write_text("never\n")
    start(procs, ok)
    start(procs, bad)
    for sv in (ok, bad):
        wait_until(lambda: state(sv).get("starts") == 1 and state(sv).get("state") == "down"
                   and state(sv).get("want") == "down")
    run("svc", "-u", ok)
    wait_until(lambda: (ok / "starts").read_text().count("x") == 2)


def test_down_signal_and_timeout_kill_of_the_whole_group(procs, service):
    sv = service(run="#!/bin/sh\ntrap 'echo got INT >> log' INT\ntrap '' TERM\n"
                     "sleep 1000 &\necho $! > child\nwhile :; do sleep 0.05; done\n")
    (sv / "down-signal").write_text("SIGINT\n")
    (sv / "timeout-kill").write_text("300\n")
    start(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    child = wait_until(lambda: (sv / "child").exists() and int((sv / "child").read_text() or 0))
    run("svc", "-d", sv)
    wait_until(lambda: (sv / "log").exists() and "got INT" in (sv / "log").read_text())
    wait_until(lambda: not pid_alive(pid) and not pid_alive(child), timeout=5)


def test_restart_letter_and_group_signals(procs, service):
    sv = service(run="#!/bin/sh\nsleep 1000 &\necho $! > child\nwait\n")
    start(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    child = wait_until(lambda: (sv / "child").exists() and int((sv / "child").read_text() or 0))
    proc_state = lambda p: open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0]
    run("svc", "-P", sv)                               # STOP to the process group
    wait_until(lambda: proc_state(child) == "T")
    run("svc", "-C", sv)
    wait_until(lambda: proc_state(child) != "T")
    run("svc", "-r", sv)                               # restart
    wait_until(lambda: status_pid(sv) not in (0, pid))
    new_child = wait_until(lambda: int((sv / "child").read_text() or 0) != child
                           and int((sv / "child").read_text() or 0))
    run("svc", "-K", sv)                               # KILL to the group: child too
    wait_until(lambda: not pid_alive(new_child))
    os.kill(child, signal.SIGKILL)                     # r sent TERM to sh, not its child


def test_event_fifodir_stream(procs, service, tmp_path):
    sv = service(run="#!/bin/sh\nexit 1\n")
    start(procs, sv)
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


def test_state_json_record(procs, service):
    sv = service(run="#!/bin/sh\nexit 7\n", down=True)
    start(procs, sv)
    s = wait_until(lambda: state(sv))
    assert s == {**s, "state": "down", "want": "down", "pid": 0, "normally_up": False,
                 "starts": 0, "failed": False, "last_exit": None, "critical": False}
    run("svc", "-o", sv)
    wait_until(lambda: state(sv).get("last_exit") == {"code": 7})
    assert state(sv)["starts"] == 1 and state(sv)["last_duration"] < 5


def test_peers_still_read_the_status_while_waiting_for_readiness(procs, service):
    svstat, sv_prog = peer("svstat"), peer("sv")
    sv = service(run="#!/bin/sh\nexec sleep 1000\n")
    (sv / "notification-fd").write_text("3\n")
    start(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    out = subprocess.run([svstat, sv], capture_output=True, text=True).stdout
    assert out.startswith(f"{sv}: up (pid {pid}) ")
    out = subprocess.run([sv_prog, "status", sv], capture_output=True, text=True).stdout
    assert out.startswith(f"run: {sv}: (pid {pid}) ")
