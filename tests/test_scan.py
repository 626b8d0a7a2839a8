"""svscan with real directories: discovery, log pipes, restarts, removal."""

import os
import signal
import time
from pathlib import Path

from conftest import pid_alive, program, run, status_bytes, status_pid, wait_until, write_script

SLEEPER = "#!/bin/sh\nexec sleep 1000\n"


def start_svscan(procs, scandir, *args, **kw):
    return procs.start(program("svscan"), *args, scandir, **kw)


def supervise_pids(scanner_pid):
    """Children of svscan that are forked supervise processes."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if int(fields[1]) == scanner_pid and comm == "supervise" and fields[0] != "Z":
            pids.append(int(entry.name))
    return sorted(pids)


def probe(scandir, name="probe"):
    """Add a service and wait for it to run: proof that svscan has scanned
    everything that happened before (it handles events in order)."""
    d = scandir / name
    write_script(d / "run", SLEEPER)
    wait_until(lambda: status_pid(d), timeout=5)


def test_starts_every_service_and_skips_dot_names(procs, service, scandir):
    a = service("a", parent=scandir)
    b = service("b", parent=scandir)
    hidden = service(".hidden", parent=scandir)
    (scandir / "file").write_text("not a service")
    scanner = start_svscan(procs, scandir)
    wait_until(lambda: status_pid(a) and status_pid(b))
    assert not (hidden / "supervise").exists()
    assert len(supervise_pids(scanner.pid)) == 2


def test_new_symlinked_service_is_noticed_at_once(procs, service, scandir, tmp_path):
    """inotify, not a 5-second poll: well under a second from ln -s to run."""
    start_svscan(procs, scandir)
    probe(scandir)                            # svscan is up and watching
    real = service("real", run="#!/bin/sh\ntouch started\nexec sleep 1000\n")
    began = time.monotonic()
    (scandir / "linked").symlink_to(real)
    wait_until(lambda: (real / "started").exists(), timeout=5)
    assert time.monotonic() - began < 2.0     # the fallback scan would take 60 s


def test_directory_without_run_is_started_when_run_appears(procs, scandir):
    start_svscan(procs, scandir)
    d = scandir / "late"
    d.mkdir()
    probe(scandir)
    assert not (d / "supervise").exists()
    write_script(d / "run", "#!/bin/sh\ntouch started\nexec sleep 1000\n")
    wait_until(lambda: (d / "started").exists(), timeout=5)


def test_log_pipe_loses_nothing_when_either_side_restarts(procs, service, scandir):
    """Lines written while the logger is dead wait in the pipe svscan holds.

    The talker writes a batch, then waits for a go-file; the test kills the
    logger only once it has written the whole batch (it is then blocked in
    read(), so SIGKILL cannot take a line with it), and lets the next batch
    go while the logger is down. The talker itself is killed and restarted too.
    """
    talker = ("#!/bin/sh\nn=$(cat batch 2>/dev/null || echo 0)\n"
              "while [ $n -lt 4 ]; do\n"
              "  i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo batch $n line $i; done\n"
              "  n=$((n+1)); echo $n > batch\n"
              "  while [ ! -e go$n ]; do sleep 0.01; done\n"
              "done\nexec sleep 1000\n")
    sv = service("talker", run=talker, parent=scandir, log="#!/bin/sh\nexec cat >> ../out\n")
    start_svscan(procs, scandir)
    log = sv / "log"
    lines = lambda: (sv / "out").read_text().splitlines() if (sv / "out").exists() else []
    for n in range(1, 4):
        wait_until(lambda: len(lines()) == 100 * n)
        old = status_pid(log)
        os.kill(old, signal.SIGKILL)                 # the logger dies ...
        if n == 2:
            os.kill(status_pid(sv), signal.SIGKILL)  # ... and once the talker too
        (sv / f"go{n}").touch()                      # the next batch goes into the pipe
        wait_until(lambda: status_pid(log) not in (0, old))
    (sv / "go4").touch()
    wait_until(lambda: len(lines()) >= 400, timeout=15)
    assert lines() == [f"batch {n} line {i}" for n in range(4) for i in range(1, 101)]


def test_dead_supervise_is_restarted(procs, service, scandir):
    sv = service("a", parent=scandir)
    scanner = start_svscan(procs, scandir)
    wait_until(lambda: status_pid(sv))
    [sup] = wait_until(lambda: supervise_pids(scanner.pid))
    service_pid = status_pid(sv)
    os.kill(service_pid, signal.SIGKILL)          # no orphan left for the new supervise
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: supervise_pids(scanner.pid) not in ([], [sup]), timeout=5)
    wait_until(lambda: status_pid(sv) not in (0, service_pid), timeout=5)


def test_removed_service_is_brought_down_and_its_logger_drains(procs, service, scandir, tmp_path):
    real = service("real", run="#!/bin/sh\ntrap 'echo bye; exit 0' TERM\necho hello\n"
                               "while :; do sleep 0.05; done\n",
                   log="#!/bin/sh\nexec cat >> ../out\n")
    (scandir / "real").symlink_to(real)
    scanner = start_svscan(procs, scandir)
    pid = wait_until(lambda: status_pid(real))
    wait_until(lambda: len(supervise_pids(scanner.pid)) == 2)
    (scandir / "real").unlink()
    wait_until(lambda: not pid_alive(pid))
    wait_until(lambda: supervise_pids(scanner.pid) == [], timeout=5)
    assert (real / "out").read_text() == "hello\nbye\n"
    assert run("svok", real).returncode == 100
    assert run("svok", real / "log").returncode == 100


def test_no_second_supervise_where_one_runs(procs, service, scandir):
    sv = service("a", parent=scandir)
    procs.start(program("supervise"), sv)
    wait_until(lambda: status_pid(sv))
    first = status_pid(sv)
    scanner = start_svscan(procs, scandir)
    probe(scandir, "first")                        # svscan has scanned once
    os.kill(scanner.pid, signal.SIGHUP)            # and a rescan for good measure
    probe(scandir, "second")
    assert len(supervise_pids(scanner.pid)) == 2   # the probes' only
    assert status_pid(sv) == first


def test_renamed_service_keeps_its_supervise(procs, service, scandir):
    sv = service("a", parent=scandir)
    scanner = start_svscan(procs, scandir)
    pid = wait_until(lambda: status_pid(sv))
    sups = wait_until(lambda: supervise_pids(scanner.pid))
    os.rename(sv, scandir / "b")
    os.kill(scanner.pid, signal.SIGALRM)
    probe(scandir)
    assert len(supervise_pids(scanner.pid)) == 2 and set(sups) <= set(supervise_pids(scanner.pid))
    assert status_pid(scandir / "b") == pid


def test_sigterm_shuts_the_tree_down_cleanly(procs, service, scandir):
    a = service("a", parent=scandir, log="#!/bin/sh\nexec cat >> ../out\n",
                run="#!/bin/sh\ntrap 'echo last words; exit 0' TERM\n"
                    "while :; do sleep 0.05; done\n")
    b = service("b", parent=scandir)
    scanner = start_svscan(procs, scandir)
    pids = wait_until(lambda: all(map(status_pid, (a, b, a / "log"))) and
                      [status_pid(x) for x in (a, b, a / "log")])
    scanner.send_signal(signal.SIGTERM)
    assert scanner.wait(timeout=10) == 0
    assert not any(map(pid_alive, pids))
    assert (a / "out").read_text() == "last words\n"


def test_grace_period_then_kill(procs, service, scandir):
    stubborn = service("stubborn", parent=scandir,
                       run="#!/bin/sh\ntrap '' TERM\ntouch deaf\nwhile :; do sleep 0.05; done\n")
    scanner = start_svscan(procs, scandir, "-g", "0.5")
    pid = wait_until(lambda: status_pid(stubborn))
    wait_until(lambda: (stubborn / "deaf").exists())                 # its trap is set
    began = time.monotonic()
    scanner.send_signal(signal.SIGTERM)
    assert scanner.wait(timeout=10) == 111
    took = time.monotonic() - began
    assert 0.5 <= took < 5
    assert not pid_alive(pid)


def test_shutdown_gives_each_service_its_own_down_signal(procs, service, scandir):
    """svscan signals the services itself at shutdown (they end at once, not
    one supervise after another), with the signal each one's supervise would
    send; every supervise still records a wanted exit and restarts nothing."""
    hup = service("hup", parent=scandir,
                  run="#!/bin/sh\necho start >> starts\ntrap '' TERM\n"
                      "trap 'echo hup >> got; exit 0' HUP\ntouch deaf\n"
                      "while :; do sleep 0.05; done\n")
    (hup / "down-signal").write_text("HUP\n")
    plain = service("plain", parent=scandir,
                    run="#!/bin/sh\necho start >> starts\n"
                        "trap 'echo term >> got; exit 0' TERM\ntouch deaf\n"
                        "while :; do sleep 0.05; done\n")
    os.mkfifo(plain / "down-signal")            # unusable: its supervise says so, sends TERM
    scanner = start_svscan(procs, scandir, "-g", "20")
    wait_until(lambda: (hup / "deaf").exists() and (plain / "deaf").exists())
    began = time.monotonic()
    scanner.send_signal(signal.SIGTERM)
    assert scanner.wait(timeout=15) == 0         # no KILL was needed
    assert time.monotonic() - began < 10         # far from the 20 s grace period
    assert (hup / "got").read_text() == "hup\n"
    assert (plain / "got").read_text() == "term\n"
    for sv in (hup, plain):
        assert (sv / "starts").read_text() == "start\n"
        assert status_bytes(sv)[12:20] == b"\0\0\0\0\0d\0\0"   # down, want down


def test_usage_errors():
    assert run("svscan", "-x").returncode == 100
    assert run("svscan", "a", "b").returncode == 100
    assert run("svscan", "-g", "soon", ".").returncode == 100
    r = run("svscan", "/nonexistent/dir")
    assert r.returncode == 111
    assert r.stderr == "svscan: fatal: unable to chdir to /nonexistent/dir: file does not exist\n"


def test_killed_supervise_is_replaced_and_the_service_not_duplicated(procs, service, scandir):
    sv = service("a", parent=scandir)
    scanner = start_svscan(procs, scandir)
    pid = wait_until(lambda: status_pid(sv))
    [sup] = wait_until(lambda: supervise_pids(scanner.pid))
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: supervise_pids(scanner.pid) not in ([], [sup]), timeout=5)
    wait_until(lambda: run("svok", sv).returncode == 0)
    assert status_pid(sv) == pid and pid_alive(pid)
    from conftest import sleepers_in
    assert sleepers_in(sv) == [pid]


def zygote_pids(scanner_pid):
    """Children of svscan named svscan-zygote (see zygote.py)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (entry / "comm").read_text().strip()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == scanner_pid and comm == "svscan-zygote" and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def test_the_zygote_forks_each_supervise_as_a_child_of_svscan(procs, service, scandir):
    """One zygote; the supervise processes it forks are svscan's children,
    joined by svscan's pipe; at shutdown it goes with the tree."""
    a = service("a", parent=scandir, run="#!/bin/sh\necho hello\nexec sleep 1000\n",
                log="#!/bin/sh\nexec cat >> ../out\n")
    scanner = start_svscan(procs, scandir)
    wait_until(lambda: status_pid(a) and status_pid(a / "log"))
    [zygote] = zygote_pids(scanner.pid)
    assert len(supervise_pids(scanner.pid)) == 2
    wait_until(lambda: (a / "out").exists() and (a / "out").read_text() == "hello\n")
    scanner.send_signal(signal.SIGTERM)
    assert scanner.wait(timeout=10) == 0
    assert not pid_alive(zygote)


def test_without_its_zygote_svscan_forks_supervise_itself(procs, service, scandir):
    """A zygote killed from outside is said once; services made after it
    still get their supervise, forked by svscan, and a dead one comes back."""
    a = service("a", parent=scandir)
    scanner = start_svscan(procs, scandir)
    wait_until(lambda: status_pid(a))
    [zygote] = zygote_pids(scanner.pid)
    os.kill(zygote, signal.SIGKILL)
    b = service("b", parent=scandir)
    wait_until(lambda: status_pid(b), timeout=5)
    [sup_a] = [p for p in supervise_pids(scanner.pid)
               if os.readlink(f"/proc/{p}/cwd") == str(a)]
    os.kill(status_pid(a), signal.SIGKILL)
    os.kill(sup_a, signal.SIGKILL)
    wait_until(lambda: len(supervise_pids(scanner.pid)) == 2 and sup_a not in
               supervise_pids(scanner.pid), timeout=5)
    assert zygote_pids(scanner.pid) == []
    scanner.send_signal(signal.SIGTERM)
    assert scanner.wait(timeout=10) == 0
    told = scanner.stderr.read().decode()
    assert told.count("svscan forks each supervise itself") == 1, told
