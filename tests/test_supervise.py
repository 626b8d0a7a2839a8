"""supervise with real processes, real fifos and a real status file: what it
makes in supervise/, the control letters and signals, the restart throttle,
the ./run a killed supervise left (adopted, not started twice), a status
file damaged or cut short, a megabyte of noise on the control fifo, and
symlinks planted in supervise/ before it starts.

Covered elsewhere: a ./run that cannot start (test_start_errors), the policy
files (test_policy), state.json and the event fifodir (test_history),
supervise killed under svscan (test_scan_restart), what a service's owner
may plant as another user (test_trust).

Not tested: symlinks planted before an ordinary user's supervise (same code
path as root's).
"""

import os
import random
import re
import select
import signal
import stat
import subprocess
import time

import pytest

from conftest import start_supervise as supervise
from conftest import (lines_of, peer, pid_alive, pipe_bytes, processes_under, run, sleepers_in,
                      status_bytes, status_pid, wait_until)
from svtree import machine as m


def test_files_and_modes(procs, service):
    sv = service()
    supervise(procs, sv)
    wait_until(lambda: status_pid(sv))
    sup = sv / "supervise"
    assert stat.S_IMODE(sup.stat().st_mode) == 0o700
    for fifo in ("control", "ok"):
        st = (sup / fifo).stat()
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert len(status_bytes(sv)) == 20
    data = status_bytes(sv)
    assert data[17:20] == b"u\0\1"


def test_run_gets_own_session_argv_and_cwd(procs, service):
    sv = service(run="#!/bin/sh\necho \"$0 $PWD $(ps -o sid= -p $$)\" > where\nexec sleep 1000\n")
    supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    where = wait_until(lambda: (sv / "where").exists() and (sv / "where").read_text().split())
    assert where[0] == "./run" and where[1] == str(sv)
    assert int(where[2]) == pid == os.getsid(pid)


def test_second_supervise_fails_on_the_lock(procs, service):
    sv = service()
    supervise(procs, sv)
    second = run("supervise", sv)
    assert second.returncode == 111
    assert second.stderr == f"supervise: fatal: unable to acquire {sv}/supervise/lock: temporary failure\n"


def test_restart_after_exit_with_finish_arguments(procs, service):
    sv = service(run="#!/bin/sh\necho start >> starts\nexit 7\n",
                 finish="#!/bin/sh\necho \"$1 $2\" >> finished\n")
    supervise(procs, sv)
    wait_until(lambda: (sv / "starts").exists() and len((sv / "starts").read_text().split()) >= 3)
    lines = (sv / "finished").read_text().splitlines()
    assert lines[0] == "7 0"


def test_finish_gets_minus_one_and_signal(procs, service):
    sv = service(finish="#!/bin/sh\necho \"$1 $2\" > finished\n")
    supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: (sv / "finished").exists() and (sv / "finished").read_text())
    assert (sv / "finished").read_text() == "-1 9\n"


def test_restarts_are_throttled_to_one_a_second(procs, service):
    sv = service(run="#!/bin/sh\ndate +%s.%N >> starts\nexit 1\n")
    supervise(procs, sv)
    wait_until(lambda: (sv / "starts").exists() and len((sv / "starts").read_text().split()) >= 3,
               timeout=10)
    times = [float(t) for t in (sv / "starts").read_text().split()]
    # the run script takes each time after a fork and two execs, which a loaded
    # machine may delay; supervise schedules each start a second after the last one
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(gap >= 0.6 for gap in gaps), gaps
    assert times[-1] - times[0] >= len(gaps) - 0.4, gaps


def test_control_is_served_while_the_throttle_runs(procs, service):
    """daemontools blocks for a second after each start; we answer at once."""
    sv = service(run="#!/bin/sh\nexit 1\n")
    supervise(procs, sv)
    wait_until(lambda: status_bytes(sv)[19:20] == b"\0")    # died, waiting to restart
    began = time.monotonic()
    assert run("svc", "-d", sv).returncode == 0
    wait_until(lambda: status_bytes(sv)[17:18] == b"d", timeout=0.9)
    assert time.monotonic() - began < 0.9     # well before the 1 s throttle ends


def test_svc_down_up_pause_continue(procs, service):
    sv = service()
    supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    assert run("svc", "-p", sv).returncode == 0
    wait_until(lambda: status_bytes(sv)[16] == 1)
    wait_until(lambda: open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T")
    run("svc", "-c", sv)
    wait_until(lambda: status_bytes(sv)[16] == 0)
    run("svc", "-d", sv)
    wait_until(lambda: not pid_alive(pid))
    wait_until(lambda: status_pid(sv) == 0 and status_bytes(sv)[17:18] == b"d")
    run("svc", "-u", sv)
    new = wait_until(lambda: status_pid(sv))
    assert new != pid


def test_down_of_a_paused_service_sends_cont(procs, service):
    sv = service()
    supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    run("svc", "-p", sv)
    wait_until(lambda: status_bytes(sv)[16] == 1)
    run("svc", "-d", sv)
    wait_until(lambda: not pid_alive(pid))


def test_down_file_and_once(procs, service):
    sv = service(run="#!/bin/sh\necho ran >> ran\nexit 0\n", down=True)
    supervise(procs, sv)
    wait_until(lambda: len(status_bytes(sv)) == 20)
    assert status_pid(sv) == 0 and status_bytes(sv)[17:18] == b"d"
    assert not (sv / "ran").exists()
    run("svc", "-o", sv)
    wait_until(lambda: (sv / "ran").exists())
    wait_until(lambda: status_bytes(sv)[19] == 0 and status_bytes(sv)[17:18] == b"d")  # once: runit's byte
    # once: not restarted; prove it by waiting past the throttle with a second "once"
    run("svc", "-o", sv)
    wait_until(lambda: (sv / "ran").read_text().count("ran") == 2)


def test_signals_reach_the_service(procs, service):
    sv = service(run="#!/bin/sh\n"
                     "for s in HUP ALRM INT QUIT USR1 USR2; do trap \"echo $s >> got\" $s; done\n"
                     "trap 'echo TERM >> got; exit 0' TERM\n"
                     "echo ready > ready\nwhile :; do sleep 0.05; done\n", down=False)
    supervise(procs, sv)
    wait_until(lambda: (sv / "ready").exists())
    for letter, name in zip("haiq12", ["HUP", "ALRM", "INT", "QUIT", "USR1", "USR2"]):
        run("svc", f"-{letter}", sv)
        wait_until(lambda: (sv / "got").exists() and name in (sv / "got").read_text())


def test_restart_letter_and_group_signals(procs, service):
    sv = service(run="#!/bin/sh\nsleep 1000 &\necho $! > child\nwait\n")
    supervise(procs, sv)
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


def test_svc_x_exits_supervise_when_down(procs, service):
    sv = service()
    proc = supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    run("svc", "-dx", sv)
    assert proc.wait(timeout=10) == 0
    assert not pid_alive(pid)
    assert run("svok", sv).returncode == 100


def test_term_to_supervise_means_down_and_exit(procs, service):
    sv = service()
    proc = supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert not pid_alive(pid)


def test_term_to_supervise_of_a_deaf_service_still_says_want_down(procs, service):
    """After TERM, supervise holds its status write a moment for ./run's exit
    (one write then says both); a service that stays must not keep it held."""
    sv = service(run="#!/bin/sh\ntrap '' TERM\ntouch deaf\nexec sleep 1000\n")
    proc = supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    wait_until(lambda: (sv / "deaf").exists())
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: status_bytes(sv)[17:18] == b"d", timeout=5)
    assert status_pid(sv) == pid and pid_alive(pid)
    assert run("svstat", sv).stdout.endswith(", want down\n")
    assert run("svc", "-k", sv).returncode == 0
    assert proc.wait(timeout=10) == 0
    assert status_bytes(sv)[12:20] == b"\0\0\0\0\0d\0\0"


def test_finish_is_killed_after_its_timeout(procs, service):
    sv = service(run="#!/bin/sh\nexit 0\n", finish="#!/bin/sh\necho $$ > finish.pid\nexec sleep 1000\n")
    supervise(procs, sv)
    pid = wait_until(lambda: (sv / "finish.pid").exists() and int((sv / "finish.pid").read_text() or 0))
    wait_until(lambda: status_bytes(sv)[19] == 2 and status_pid(sv) == pid)
    wait_until(lambda: not pid_alive(pid), timeout=10)


def test_supervise_dir_symlink_to_missing_target(procs, service, tmp_path):
    """runit's read-only-tree trick: supervise -> a writable place made on demand."""
    sv = service()
    target = tmp_path / "state" / "svc"
    target.parent.mkdir()
    (sv / "supervise").symlink_to(target)
    supervise(procs, sv)
    wait_until(lambda: status_pid(sv))
    assert (target / "status").exists()


def test_usage():
    r = run("supervise")
    assert r.returncode == 100 and r.stderr == "supervise: usage: supervise dir\n"
    r = run("supervise", "/nonexistent/x")
    assert r.returncode == 111
    assert r.stderr == "supervise: fatal: unable to chdir to /nonexistent/x: file does not exist\n"


# --- a supervise killed, a status file damaged ---------------------------------------

def test_a_new_supervise_adopts_the_run_left_by_a_killed_one(procs, service):
    """supervise SIGKILLed: the next one adopts ./run instead of starting a second."""
    sv = service(finish="#!/bin/sh\necho \"$1 $2\" >> finished\n")
    first = supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    first.kill()
    first.wait()
    assert pid_alive(pid)
    supervise(procs, sv)
    wait_until(lambda: run("svok", sv).returncode == 0)
    assert status_pid(sv) == pid                     # adopted, not restarted
    assert sleepers_in(sv) == [pid]
    run("svc", "-d", sv)                             # and it is really under control
    wait_until(lambda: not pid_alive(pid))
    wait_until(lambda: (sv / "finished").exists())
    assert (sv / "finished").read_text() == "-1 0\n"  # its exit status is unknowable
    run("svc", "-u", sv)
    wait_until(lambda: status_pid(sv) not in (0, pid))


def test_damaged_status_is_rewritten(procs, service):
    sv = service()
    supervise(procs, sv)
    wait_until(lambda: status_pid(sv))
    (sv / "supervise" / "status").write_bytes(b"garbage")
    assert run("svstat", sv).stdout == f"{sv}: unable to read supervise/status: bad format\n"
    run("svc", "-c", sv)                             # any control byte mends it
    wait_until(lambda: len(status_bytes(sv)) == 20)
    assert run("svstat", sv).stdout.startswith(f"{sv}: up (pid ")


@pytest.mark.parametrize("size", [18, 0])
def test_truncated_status_file_is_reported_then_rewritten(procs, service, size):
    """18 bytes is daemontools' own layout: svstat still reads it, runit's sv
    (which needs all 20) says bad format; 0 bytes is bad format to both. Any
    byte on the control fifo, even one that is no command, rewrites the file."""
    sv_prog = peer("sv")
    sv = service()
    supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    (sv / "supervise" / "status").write_bytes(status_bytes(sv)[:size])
    svstat = run("svstat", sv).stdout
    if size == 18:
        assert re.fullmatch(rf"{re.escape(str(sv))}: up \(pid {pid}\) \d+ seconds\n", svstat)
    else:
        assert svstat == f"{sv}: unable to read supervise/status: bad format\n"
    theirs = subprocess.run([sv_prog, "status", sv], capture_output=True, text=True, timeout=10)
    assert theirs.stdout == f"warning: {sv}: unable to read supervise/status: bad format\n"
    assert theirs.returncode == 1
    fd = os.open(sv / "supervise" / "control", os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"\xfe")                              # not a command letter
    os.close(fd)
    wait_until(lambda: len(status_bytes(sv)) == 20)
    assert status_pid(sv) == pid and status_bytes(sv)[17:20] == b"u\0\1"
    assert re.fullmatch(rf"{re.escape(str(sv))}: up \(pid {pid}\) \d+ seconds\n",
                        run("svstat", sv).stdout)
    theirs = subprocess.run([sv_prog, "status", sv], capture_output=True, text=True, timeout=10)
    assert re.fullmatch(rf"run: {re.escape(str(sv))}: \(pid {pid}\) \d+s\n", theirs.stdout)


# --- bad input on the control fifo ---------------------------------------------------

def flood(path, data, timeout=60):
    """Write data to a fifo in non-blocking 4 KiB chunks, waiting while it is full."""
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + timeout
    try:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view[:4096]):]
            except BlockingIOError:
                assert time.monotonic() < deadline, "supervise stopped reading its control fifo"
                poller.poll(100)
        wait_until(lambda: pipe_bytes(fd) == 0, timeout=timeout)
    finally:
        os.close(fd)


def test_a_megabyte_of_random_bytes_on_the_control_fifo(procs, service):
    """Bytes that are no command do nothing at all; a megabyte of anything
    (but `x`, which is a valid request to exit) leaves supervise alive, obeying
    the letters in it at no more than one start a second; then `dx` still
    brings it down and out cleanly."""
    sv = service(run="#!/bin/sh\necho $$ >> starts\nexec sleep 1000\n")
    proc = supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    control = sv / "supervise" / "control"
    rng = random.Random(7)
    letters = bytes(sorted(m.COMMANDS))
    noise = rng.randbytes(2 << 20).translate(None, letters)[:1 << 20]
    assert len(noise) == 1 << 20
    flood(control, noise)
    assert run("svc", "-p", sv).returncode == 0      # ordered after the noise
    wait_until(lambda: status_bytes(sv)[16] == 1)
    assert status_pid(sv) == pid and status_bytes(sv)[17:20] == b"u\0\1"
    assert len(lines_of(sv / "starts")) == 1
    assert run("svc", "-c", sv).returncode == 0

    began = time.monotonic()
    anything = rng.randbytes(1 << 20).replace(b"x", b"")
    flood(control, anything)
    took = time.monotonic() - began
    assert run("svok", sv).returncode == 0
    starts = len(lines_of(sv / "starts"))
    assert starts <= 2 + took + 1, (starts, took)          # the throttle held
    assert run("svc", "-dx", sv).returncode == 0
    assert proc.wait(timeout=15) == 0
    assert status_bytes(sv)[12:20] == b"\0\0\0\0\0d\0\0"   # down, want down
    last = int(lines_of(sv / "starts")[-1])
    assert not pid_alive(last)
    assert b"Traceback" not in proc.stderr.read()


# --- symlinks planted in supervise/ --------------------------------------------------

def plant(sv, tmp_path):
    """Symlinks in supervise/ before supervise starts: to files that must stay
    as they are, and to places where nothing may appear."""
    sup = sv / "supervise"
    sup.mkdir(mode=0o700)
    victims, nowhere = {}, {}
    for name in ("status.new", "control", "ok", "state.json.new"):
        victim = tmp_path / f"victim-{name}"
        victim.write_bytes(b"precious\n")
        victim.chmod(0o640)
        (sup / name).symlink_to(victim)
        victims[victim] = victim.stat()
    for name in ("status", "state.json", "event"):
        target = tmp_path / f"nowhere-{name}"
        (sup / name).symlink_to(target)
        nowhere[name] = target
    return victims, nowhere


def test_supervise_follows_no_symlink_planted_in_its_directory(procs, service, tmp_path):
    """Files are opened with O_NOFOLLOW and fifos replaced, not followed: the
    targets keep their bytes, modes and times, and nothing appears at the
    dangling ones. The service still starts and obeys svc."""
    sv = service(run="#!/bin/sh\necho $$ > pid\nexec sleep 1000\n")
    victims, nowhere = plant(sv, tmp_path)
    supervise(procs, sv)
    pid = wait_until(lambda: (sv / "pid").exists() and int((sv / "pid").read_text() or 0))
    for name in ("control", "ok"):
        assert stat.S_ISFIFO((sv / "supervise" / name).lstat().st_mode)
    assert run("svc", "-d", sv).returncode == 0
    wait_until(lambda: not pid_alive(pid))
    (sv / "pid").unlink()
    assert run("svc", "-u", sv).returncode == 0
    wait_until(lambda: (sv / "pid").exists())
    assert run("svok", sv).returncode == 0
    for victim, before in victims.items():
        after = victim.stat()
        assert victim.read_bytes() == b"precious\n"
        assert (after.st_mode, after.st_uid, after.st_mtime_ns, after.st_ino) == \
            (before.st_mode, before.st_uid, before.st_mtime_ns, before.st_ino)
    assert not any(os.path.lexists(t) for t in nowhere.values())


def test_supervise_writes_its_status_despite_a_planted_status_new(procs, service, tmp_path):
    sv = service(run="#!/bin/sh\necho $$ > pid\nexec sleep 1000\n")
    plant(sv, tmp_path)
    supervise(procs, sv)
    pid = wait_until(lambda: (sv / "pid").exists() and int((sv / "pid").read_text() or 0))
    wait_until(lambda: status_pid(sv) == pid, timeout=3)


def test_supervise_refuses_a_planted_lock_symlink(service, tmp_path):
    """lock is created with O_NOFOLLOW: a symlink there stops supervise with
    a plain message rather than locking (or creating) whatever it points to."""
    sv = service()
    (sv / "supervise").mkdir(mode=0o700)
    victim = tmp_path / "victim-lock"
    victim.write_bytes(b"precious\n")
    (sv / "supervise" / "lock").symlink_to(victim)
    r = run("supervise", sv, timeout=10)
    assert r.returncode == 111
    assert r.stderr == \
        f"supervise: fatal: unable to acquire {sv}/supervise/lock: symbolic link loop\n"
    assert victim.read_bytes() == b"precious\n"
    assert not processes_under(sv)
