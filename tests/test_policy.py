"""A service's policy files (config.py) and what supervise does with them, with
real processes: readiness through notification-fd or ./check (or a second
up), a failing or hanging health check, the restart backoff and how it
shows, max-deaths and finish's 125 (failed until svc -u), restart,
down-signal and timeout-kill. Peers still read the status of a service that
is not ready yet.
"""

import os
import signal
import subprocess
import time

from conftest import read_state as state, start_supervise as supervise
from conftest import SLEEPER, peer, pid_alive, run, status_pid, wait_until, write_script


# --- readiness and health checks -----------------------------------------------------

def test_notification_fd_readiness_after_a_delay(procs, service):
    sv = service(run="#!/bin/sh\nsleep 0.5\necho > /dev/fd/3\nexec sleep 1000\n")
    (sv / "notification-fd").write_text("3\n")
    supervise(procs, sv)
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
    supervise(procs, sv)
    wait_until(lambda: state(sv).get("state") == "run")
    assert not state(sv)["ready"]
    (sv / "ready-now").touch()
    wait_until(lambda: state(sv).get("ready"))


def test_no_readiness_mechanism_ready_after_a_second_up(procs, service):
    sv = service()
    supervise(procs, sv)
    s = wait_until(lambda: state(sv).get("ready") and state(sv), timeout=5)
    assert s["readiness"] == "none"
    assert s["ready_since"] - s["since"] >= 0.99


def test_peers_still_read_the_status_while_waiting_for_readiness(procs, service):
    svstat, sv_prog = peer("svstat"), peer("sv")
    sv = service(run="#!/bin/sh\nexec sleep 1000\n")
    (sv / "notification-fd").write_text("3\n")
    supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    out = subprocess.run([svstat, sv], capture_output=True, text=True).stdout
    assert out.startswith(f"{sv}: up (pid {pid}) ")
    out = subprocess.run([sv_prog, "status", sv], capture_output=True, text=True).stdout
    assert out.startswith(f"run: {sv}: (pid {pid}) ")


def test_failing_health_check_restarts_the_service(procs, service):
    sv = service()
    write_script(sv / "check", "#!/bin/sh\ntest ! -e sick\n")
    (sv / "check-interval").write_text("0.1\n")
    (sv / "check-failures").write_text("2\n")
    supervise(procs, sv)
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
    supervise(procs, sv)
    pid = wait_until(lambda: (sv / "check.pid").exists() and int((sv / "check.pid").read_text() or 0))
    wait_until(lambda: not pid_alive(pid), timeout=5)


# --- the backoff ---------------------------------------------------------------------

def test_crash_loop_backs_off_exponentially(procs, service):
    sv = service(run="#!/bin/sh\ndate +%s.%N >> starts\nexit 1\n")
    (sv / "backoff-max").write_text("4\n")
    supervise(procs, sv)
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


def test_backoff_is_visible_and_svc_u_skips_it(procs, service):
    sv = service(run="#!/bin/sh\nexit 1\n")
    (sv / "backoff-max").write_text("60\n")
    supervise(procs, sv)
    s = wait_until(lambda: state(sv).get("quick_deaths", 0) >= 3 and state(sv).get("next_start")
                   and state(sv), timeout=15)
    assert s["backoff"] >= 4 and s["state"] == "down" and s["want"] == "up"
    due = s["next_start"]
    assert due > time.time() + 1.5          # a delay of 4 s or more remains
    write_script(sv / "run", SLEEPER)       # mended: the operator asks for it now
    assert run("svc", "-u", sv).returncode == 0
    wait_until(lambda: state(sv).get("state") == "run", timeout=3)
    assert time.time() < due - 1            # it did not wait out the backoff
    s = state(sv)
    assert s["quick_deaths"] == 0 and s["backoff"] == 1.0 and s["next_start"] is None


def test_a_run_killed_from_outside_comes_back_without_backoff(procs, service):
    """SIGKILL from outside (an operator, the OOM killer) is no crash loop of
    the service's own making: back after the one-second throttle, three times
    in a row, as with daemontools, runit and s6 (a logger killed so must not
    leave its service blocked on a full pipe for 2, then 4 seconds). The
    deaths still count, and one that keeps being killed backs off after that."""
    sv = service()
    supervise(procs, sv)
    for n in (1, 2, 3):
        s = wait_until(lambda: state(sv).get("state") == "run" and state(sv))
        killed = time.time()
        os.kill(s["pid"], signal.SIGKILL)
        s = wait_until(lambda: state(sv).get("pid") not in (0, s["pid"]) and state(sv))
        assert s["quick_deaths"] == n and s["last_exit"] == {"signal": signal.SIGKILL}
        assert s["since"] - killed < s["backoff"] - 1 if n == 3 else True  # 1 s, not 4
    s = wait_until(lambda: state(sv).get("state") == "run" and state(sv))
    os.kill(s["pid"], signal.SIGKILL)              # a fourth in a row: the backoff
    later = wait_until(lambda: state(sv).get("next_start") and state(sv))
    assert later["backoff"] == 8 and later["next_start"] - s["since"] >= 7.5


# --- failed for good, until svc -u ---------------------------------------------------

def test_max_deaths_fails_the_service_until_svc_u(procs, service):
    sv = service(run="#!/bin/sh\necho x >> starts\nexit 3\n")
    (sv / "max-deaths").write_text("2\n")
    supervise(procs, sv)
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
    supervise(procs, sv)
    wait_until(lambda: state(sv).get("failed"))
    assert state(sv)["starts"] == 1


def test_failed_says_why_and_svc_u_revives(procs, service):
    sv = service(run="#!/bin/sh\nexit 1\n")
    (sv / "max-deaths").write_text("2\n")
    supervise(procs, sv)
    s = wait_until(lambda: state(sv).get("failed") and state(sv), timeout=10)
    assert s["reason"] == "max-deaths 2 reached" and s["want"] == "down"
    write_script(sv / "run", SLEEPER)
    run("svc", "-u", sv)
    s = wait_until(lambda: state(sv).get("state") == "run" and state(sv))
    assert s["failed"] is False and s["reason"] is None

    fin = service("fin", run="#!/bin/sh\nexit 0\n", finish="#!/bin/sh\nexit 125\n")
    supervise(procs, fin)
    s = wait_until(lambda: state(fin).get("failed") and state(fin))
    assert s["reason"] == "finish exited 125"


# --- restart and stopping ------------------------------------------------------------

def test_restart_policy_on_failure_and_never(procs, service, tmp_path):
    ok = service("ok", run="#!/bin/sh\necho x >> starts\nexit 0\n")
    (ok / "restart").write_text("on-failure\n")
    bad = service("bad", run="#!/bin/sh\necho x >> starts\nexit 1\n")
    (bad / "restart").write_text("never\n")
    supervise(procs, ok)
    supervise(procs, bad)
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
    supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    child = wait_until(lambda: (sv / "child").exists() and int((sv / "child").read_text() or 0))
    run("svc", "-d", sv)
    wait_until(lambda: (sv / "log").exists() and "got INT" in (sv / "log").read_text())
    wait_until(lambda: not pid_alive(pid) and not pid_alive(child), timeout=5)
