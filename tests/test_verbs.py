"""svtree start, stop, restart, once and kill against real supervise
processes (ours, and daemontools' and runit's where installed): the letter
sent, what each waits for, the one line per service in runit's words, the
exit code, and that the wait is woken by supervise's events.

Compared with runit's own `sv -w` (2.1): `ok: run: ./foo: (pid 13760) 0s,
normally down`, `ok: down: ./foo: 1s`, `timeout: down: ./bad: 0s, want
up`, `fail: ./nonexist: unable to change to service directory: file does
not exist`, `fail: ./bad: runsv not running`; exit code the number of
services that failed or timed out, 99 at most.

Not tested here: a verb interrupted by Ctrl-C (exit 130, as wait); the t,
c, u that restart sends to daemontools' supervise (runsv's is tested; they
take the same letters).
"""

import os
import re
import subprocess
import time

from click.testing import CliRunner

from conftest import start_supervise as supervise
from conftest import (NOTIFY_WHEN_GO, peer, program, record, run, status_pid, wait_until,
                      write_script)
from svtree.cli.svtree import svtree


def line(outcome, body):
    """A regex for one line of output, with runit's seconds as \\d+s."""
    return re.compile(re.escape(f"{outcome}: {body}").replace("NNs", r"\d+s")
                      .replace("PID", r"\d+") + "\n")


def test_start_stop_a_service(procs, service):
    sv = service(down=True)
    supervise(procs, sv)
    r = run("svtree", "start", "-w", "10", sv)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == f"ok: run: {sv}: (pid {status_pid(sv)}) 0s, normally down\n"
    r = run("svtree", "start", sv)                      # already up: at once
    assert r.returncode == 0 and r.stdout.startswith(f"ok: run: {sv}: (pid {status_pid(sv)})")
    r = run("svtree", "stop", sv)
    assert (r.returncode, r.stdout) == (0, f"ok: down: {sv}: 0s\n")
    assert status_pid(sv) == 0 and record(sv)["want"] == "down"
    r = run("svtree", "stop", "-w", "0", sv)            # already down: looks once, done
    assert r.returncode == 0 and r.stdout.startswith(f"ok: down: {sv}: ")


def test_stop_waits_for_finish(procs, service):
    sv = service(finish="#!/bin/sh\nwhile [ ! -e release ]; do sleep 0.01; done\n")
    supervise(procs, sv)
    wait_until(lambda: status_pid(sv))
    r = run("svtree", "stop", "-w", "0.5", sv)
    assert r.returncode == 1
    assert line("timeout", f"finish: {sv}: (pid PID) NNs, want down").fullmatch(r.stdout), \
        r.stdout
    stopper = procs.start(program("svtree"), "stop", "-w", "30", sv)
    (sv / "release").touch()
    assert stopper.wait(timeout=30) == 0
    assert stopper.stdout.read().decode() == f"ok: down: {sv}: 0s, normally up\n"


def test_restart_waits_for_a_new_run_and_its_readiness(procs, service):
    sv = service(run=NOTIFY_WHEN_GO)
    (sv / "notification-fd").write_text("3\n")
    (sv / "go").touch()
    supervise(procs, sv)
    wait_until(lambda: record(sv)["state"] == "ready")
    before = status_pid(sv)
    r = run("svtree", "restart", "-w", "10", sv)
    assert r.returncode == 0
    after = status_pid(sv)
    assert after != before
    assert r.stdout == f"ok: run: {sv}: (pid {after}) 0s, ready\n"
    # not ready within the wait (the new run starts a second after the last
    # start at the earliest): a timeout that says what it waits for
    (sv / "go").unlink()
    r = run("svtree", "restart", "-w", "2", sv)
    assert r.returncode == 1
    assert line("timeout", f"run: {sv}: (pid PID) NNs, waiting for its notification-fd"
                ).fullmatch(r.stdout), r.stdout
    assert status_pid(sv) != after


def test_restart_of_a_backing_off_service_starts_it_at_once(procs, service):
    """After quick deaths supervise waits 4, 8, 16 s; an operator's restart
    starts ./run at once (only the second between two starts remains)."""
    sv = service(run="#!/bin/sh\n[ -e fixed ] || exit 1\nexec sleep 1000\n")
    supervise(procs, sv)
    wait_until(lambda: (record(sv)["quick_deaths"] or 0) >= 4, timeout=20)
    assert record(sv)["state"] == "backing off"
    (sv / "fixed").touch()
    began = time.monotonic()
    r = run("svtree", "restart", "-w", "5", sv)
    took = time.monotonic() - began
    assert r.returncode == 0, r.stdout
    assert r.stdout == f"ok: run: {sv}: (pid {status_pid(sv)}) 0s\n"
    assert took < 2.5, took


def test_start_of_a_failed_service(procs, service):
    """u revives a failed service; if it fails again (max-deaths) before it
    is ready, the verb says fail at once, not after the whole wait. (A
    service with readiness none is done once up, even for an instant.)"""
    sv = service(run="#!/bin/sh\nexit 3\n")
    (sv / "max-deaths").write_text("1\n")
    (sv / "notification-fd").write_text("3\n")
    supervise(procs, sv)
    wait_until(lambda: record(sv)["state"] == "failed")
    began = time.monotonic()
    r = run("svtree", "start", "-w", "20", sv)
    assert time.monotonic() - began < 10
    assert r.returncode == 1
    assert line("fail", f"down: {sv}: NNs, normally up, failed: max-deaths 1 reached").fullmatch(r.stdout), \
        r.stdout
    assert record(sv)["starts"] == 2
    write_script(sv / "run", "#!/bin/sh\necho >&3\nexec sleep 1000\n")
    r = run("svtree", "start", sv)
    assert r.returncode == 0 and r.stdout.startswith(f"ok: run: {sv}: ")
    assert r.stdout.endswith(", ready\n")


def test_once(procs, service):
    sv = service(down=True)
    supervise(procs, sv)
    r = run("svtree", "once", sv)
    assert r.returncode == 0
    assert r.stdout == f"ok: run: {sv}: (pid {status_pid(sv)}) 0s, normally down, want once\n"
    job = service("job", run="#!/bin/sh\nexit 0\n", down=True)     # a one-shot job
    supervise(procs, job)
    r = run("svtree", "once", "-w", "10", job)
    assert r.returncode == 0
    # seen while it runs, or already over
    assert line("ok", f"run: {job}: (pid PID) NNs, normally down, want once").fullmatch(
        r.stdout) or line("ok", f"down: {job}: NNs").fullmatch(r.stdout), r.stdout
    wait_until(lambda: record(job)["last_exit"] == {"code": 0})
    assert record(job)["starts"] == 1


def test_kill(procs, service):
    sv = service()
    supervise(procs, sv)
    wait_until(lambda: status_pid(sv))
    before = status_pid(sv)
    r = run("svtree", "kill", sv)
    assert r.returncode == 0
    assert re.fullmatch(rf"ok: down: {re.escape(str(sv))}: \d+s, normally up, want up"
                        r"(, next start in 1s)?\n", r.stdout) or \
        line("ok", f"run: {sv}: (pid PID) NNs").fullmatch(r.stdout), r.stdout
    assert record(sv)["last_exit"] == {"signal": 9}
    wait_until(lambda: status_pid(sv) not in (0, before))     # restarted, as wanted up
    idle = service("idle", down=True)
    supervise(procs, idle)
    r = run("svtree", "kill", "-w", "0", idle)                 # nothing to kill: done
    assert r.returncode == 0 and r.stdout.startswith(f"ok: down: {idle}: ")


def test_timeouts_failures_and_the_exit_code(tmp_path, procs, service):
    """Each service its line, as soon as it is known; the exit code counts
    those that timed out or failed."""
    good = service("good")
    broken = service("broken")
    (broken / "run").chmod(0o644)
    never = service("never")                          # no supervise
    supervise(procs, good)
    supervise(procs, broken)
    wait_until(lambda: record(broken)["start_error"])
    r = run("svtree", "start", "-w", "1", good, broken, never, tmp_path / "missing", tmp_path)
    assert r.returncode == 4, r.stdout
    lines = r.stdout.splitlines()
    assert lines[:3] == [f"fail: {never}: supervise not running",
                         f"fail: {tmp_path}/missing: unable to chdir: file does not exist",
                         f"fail: {tmp_path}: not a service directory (no run file)"]
    assert lines[3].startswith(f"ok: run: {good}: (pid ")
    assert re.fullmatch(rf"timeout: down: {re.escape(str(broken))}: \d+s, normally up, want up, "
                        r"unable to start \./run: .*not executable.*", lines[4]), lines[4]
    assert len(lines) == 5 and r.stderr == ""
    many = [tmp_path / f"missing{n}" for n in range(120)]
    r = run("svtree", "stop", *many)
    assert r.returncode == 99 and len(r.stdout.splitlines()) == 120


def test_a_logger_is_a_service_too(procs, service):
    sv = service(log="#!/bin/sh\nexec cat > /dev/null\n")
    procs.start(program("svscan"), sv.parent)
    wait_until(lambda: status_pid(sv / "log") and status_pid(sv))
    before, logger = status_pid(sv), status_pid(sv / "log")
    r = run("svtree", "restart", sv / "log")
    assert r.returncode == 0
    assert r.stdout == f"ok: run: {sv}/log: (pid {status_pid(sv / 'log')}) 0s\n"
    assert status_pid(sv / "log") != logger and status_pid(sv) == before


def test_the_wait_listens_to_supervise(procs, service):
    """No polling: the verb makes its fifo in supervise/event/ and holds no
    inotify descriptor; readiness that comes later ends it at once."""
    sv = service(run=NOTIFY_WHEN_GO, down=True)
    (sv / "notification-fd").write_text("3\n")
    supervise(procs, sv)
    starter = procs.start(program("svtree"), "start", "-w", "30", sv)
    event = sv / "supervise" / "event"
    fifo = wait_until(lambda: [p for p in event.iterdir() if p.name.startswith("svtree-wait-")])
    wait_until(lambda: status_pid(sv))
    fds = os.listdir(f"/proc/{starter.pid}/fd")
    assert not any("inotify" in os.readlink(f"/proc/{starter.pid}/fd/{fd}") for fd in fds
                   if os.path.exists(f"/proc/{starter.pid}/fd/{fd}"))
    assert starter.poll() is None
    began = time.monotonic()
    (sv / "go").touch()
    assert starter.wait(timeout=30) == 0
    assert time.monotonic() - began < 1.0              # the run script's own poll is 0.01 s
    assert starter.stdout.read().decode() == \
        f"ok: run: {sv}: (pid {status_pid(sv)}) 0s, normally down, ready\n"
    assert not fifo[0].exists()


def test_verbs_under_runit(procs, service):
    """runsv knows no r: restart sends t, c, u, as runit's sv restart does."""
    prog = peer("runsv")
    sv = service()
    procs.start(prog, sv)
    wait_until(lambda: status_pid(sv))
    before = status_pid(sv)
    r = run("svtree", "restart", "-w", "10", sv)
    assert r.returncode == 0, r.stdout
    assert r.stdout == f"ok: run: {sv}: (pid {status_pid(sv)}) 0s\n" and status_pid(sv) != before
    r = run("svtree", "stop", "-w", "10", sv)
    assert (r.returncode, r.stdout) == (0, f"ok: down: {sv}: 0s, normally up\n")
    r = run("svtree", "start", "-w", "10", sv)
    assert r.returncode == 0 and r.stdout.startswith(f"ok: run: {sv}: (pid ")
    # and runit's sv reads the same service the same way
    sv_prog = peer("sv")
    for args in (["up"], ["down"]):
        theirs = subprocess.run([sv_prog, "-w", "5", *args, sv], capture_output=True,
                                text=True, timeout=30, check=False).stdout
        verb = {"up": "start", "down": "stop"}[args[0]]
        mine = run("svtree", verb, "-w", "0", sv).stdout
        assert re.sub(r"\d+s", "Ns", mine) == re.sub(r"\d+s", "Ns", theirs)


def test_verbs_under_daemontools(procs, service):
    prog = peer("supervise")
    sv = service()
    procs.start(prog, sv)
    wait_until(lambda: status_pid(sv))
    r = run("svtree", "stop", "-w", "10", sv)
    assert (r.returncode, r.stdout) == (0, f"ok: down: {sv}: 0s, normally up\n")
    r = run("svtree", "start", "-w", "10", sv)
    assert r.returncode == 0 and r.stdout == f"ok: run: {sv}: (pid {status_pid(sv)}) 0s\n"


def test_a_dead_supervise_is_said_so(tmp_path, service):
    """ENXIO on supervise/control (a fifo no one reads): supervise not running,
    as svc says; through CliRunner the exit code is the count too."""
    sv = service()
    (sv / "supervise").mkdir()
    os.mkfifo(sv / "supervise" / "control")
    r = run("svtree", "restart", sv)
    assert (r.returncode, r.stdout) == (1, f"fail: {sv}: supervise not running\n")
    result = CliRunner().invoke(svtree, ["stop", str(sv), str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == f"fail: {sv}: supervise not running"
