"""svscan with real directories: which directories it starts (dot names,
symlinks, a run that comes later, names meant for another host, names that
are odd or not UTF-8), a directory removed or renamed, a ./run that leaves
daemons behind, the shutdown (a grace period, each service's own down
signal, the services it had to kill named), the zygote that forks each
supervise, what ps shows, and where ./check's output goes.

Covered elsewhere: svscan, a supervise or a logger killed and started again
(test_scan_restart); svscan as PID 1 (test_init, test_container).
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import read_state as state
from conftest import (SLEEPER, children, comm, lines_of, pid_alive, probe, proc_stat,
                      processes_under, program, run, start_svscan, status_bytes, status_json,
                      status_pid, supervise_pids, supervisors, wait_until, write_script)
from svtree.servicedir import meant_for_this_host


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


# --- which directories are services --------------------------------------------------

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


HOST = os.uname().nodename


def test_meant_for_this_host():
    assert meant_for_this_host("web")
    assert meant_for_this_host("web@db1", host="db1")
    assert meant_for_this_host("web@db1", host="db1.example.org")
    assert not meant_for_this_host("web@db2", host="db1")
    assert not meant_for_this_host("web@db1.example.org", host="db1")
    assert meant_for_this_host("mail@example.org@db1", host="db1")
    assert meant_for_this_host("trailing@", host="db1")     # no host named: a plain name
    assert meant_for_this_host(f"x@{HOST}")


def test_svscan_runs_only_the_services_meant_for_this_host(tmp_path, procs, service):
    scan = tmp_path / "scan"
    here = service(f"here@{HOST}", parent=scan)
    there = service(f"there@not-{HOST}", parent=scan)
    last = service("zzz", parent=scan)            # scanned after `there`
    scanner = start_svscan(procs, scan)
    wait_until(lambda: run("svok", here).returncode == 0 and run("svok", last).returncode == 0)
    # svscan forks in name order: a supervise for `there` would already exist
    # (its other child is the zygote, which forks them: zygote.py)
    comms = sorted(Path(f"/proc/{p}/comm").read_text().strip() for p in children(scanner.pid))
    assert comms == ["supervise", "supervise", "svscan-zygote"]
    assert not (there / "supervise").exists()
    code, records = status_json(scan)
    assert code == 0
    assert {r["service"]: r["state"] for r in records} == {
        str(here): "up", str(there): "skipped", str(last): "up"}
    r = run("svtree", "status", scan)
    assert re.search(rf"^{re.escape(str(there))} +skipped .*not for this host$", r.stdout, re.M)
    # a renamed tree: the same directory now meant for us is started
    os.rename(there, scan / f"there@{HOST}")
    wait_until(lambda: run("svok", scan / f"there@{HOST}").returncode == 0)


ODD_NAMES = ["with space", "ünïcødé ☃", "new\nline", "-dash"]


def test_odd_service_names(procs, strays, service, scandir):
    """svscan starts them; svc, svok and svstat work; svstat prints the name as is."""
    dirs = [service(name, parent=scandir) for name in ODD_NAMES]
    procs.start(program("svscan"), scandir)
    pids = [wait_until(lambda d=d: status_pid(d)) for d in dirs]
    up = "".join(re.escape(f"{d}: up (pid {pid}) ") + r"\d+ seconds\n"
                 for d, pid in zip(dirs, pids))
    assert re.fullmatch(up, run("svstat", *dirs).stdout)
    for d in dirs:
        assert run("svok", d).returncode == 0
    assert run("svc", "-d", *dirs).returncode == 0
    for d in dirs:
        wait_until(lambda d=d: status_pid(d) == 0 and status_bytes(d)[17:20] == b"d\0\0")
    down = "".join(re.escape(f"{d}: down ") + r"\d+ seconds, normally up\n" for d in dirs)
    assert re.fullmatch(down, run("svstat", *dirs).stdout)
    assert not any(map(pid_alive, pids))


def test_service_name_that_is_not_utf8(procs, strays, scandir):
    """A name is bytes: svstat prints them back as they are, and one ./run runs."""
    raw = os.fsencode(str(scandir)) + b"/caf\xe9 \xff"
    d = Path(os.fsdecode(raw))
    write_script(d / "run", SLEEPER)
    procs.start(program("svscan"), scandir)
    pid = wait_until(lambda: status_pid(d))
    out = subprocess.run([program("svstat"), raw], capture_output=True, timeout=30).stdout
    assert re.fullmatch(re.escape(raw + b": up (pid %d) " % pid) + rb"\d+ seconds\n", out)
    assert sorted(processes_under(d)) == sorted([pid, *supervisors(d)])   # one ./run
    assert subprocess.run([program("svc"), "-d", raw], timeout=30).returncode == 0
    wait_until(lambda: not pid_alive(pid))


# --- services that go away, and what they leave --------------------------------------

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


def test_service_dir_removed_while_running_leaves_nothing(procs, strays, service, scandir):
    doomed = service("doomed", parent=scandir, log="#!/bin/sh\nexec cat > /dev/null\n")
    keep = service("keep", parent=scandir)
    scanner = procs.start(program("svscan"), scandir)
    pids = [wait_until(lambda d=d: status_pid(d)) for d in (doomed, doomed / "log", keep)]
    sups = wait_until(lambda: len(supervisors(doomed) + supervisors(doomed / "log")) == 2
                      and supervisors(doomed) + supervisors(doomed / "log"))
    # rm -rf can race supervise re-creating status.new; as a person would, retry
    wait_until(lambda: subprocess.run(["rm", "-rf", doomed]).returncode == 0
               and not doomed.exists())
    wait_until(lambda: not processes_under(doomed), timeout=10,
               message="something still runs in the removed directory")
    # a process on its way out has no cwd any more but is not a zombie yet
    wait_until(lambda: not any(map(pid_alive, [*pids[:2], *sups])))
    wait_until(lambda: not children(scanner.pid, "Z"), message="svscan left a zombie")
    assert len(supervisors(keep)) == 1 and status_pid(keep) == pids[2]
    assert [p for p in children(scanner.pid) if comm(p) == "supervise"] == supervisors(keep)


def test_service_that_double_forks_and_exits(procs, strays, service, scandir):
    """./run leaves a daemon behind and exits: supervise restarts it once a
    second (no busy loop), the orphans go to svscan, the subreaper, which
    reaps them (no zombie stays), and the service stays controllable."""
    forker = service("forker", parent=scandir,
                     run="#!/bin/sh\ndate +%s.%N >> starts\n"
                         "sh -c 'sleep 1 & echo $! >> daemons'\nexit 0\n")
    scanner = procs.start(program("svscan"), scandir)
    daemon = int(wait_until(lambda: lines_of(forker / "daemons"))[0])
    # once the middle shell is gone, the daemon (alive for a second) is svscan's
    wait_until(lambda: (proc_stat(daemon) or ("", 0))[1] == scanner.pid)
    wait_until(lambda: len(lines_of(forker / "starts")) >= 3, timeout=10)
    times = [float(t) for t in lines_of(forker / "starts")]
    # a second apart, give or take how long each start took: no busy loop
    assert all(b - a >= 0.5 for a, b in zip(times, times[1:])), times
    assert len(supervisors(forker)) == 1
    assert run("svc", "-d", forker).returncode == 0
    wait_until(lambda: status_bytes(forker)[17:18] == b"d" and status_bytes(forker)[19] == 0)
    daemons = [int(p) for p in lines_of(forker / "daemons")]
    wait_until(lambda: not any(map(pid_alive, daemons)), timeout=5)
    wait_until(lambda: not children(scanner.pid, "Z"), message="svscan left a zombie")
    assert re.fullmatch(rf"{re.escape(str(forker))}: down \d+ seconds, normally up\n",
                        run("svstat", forker).stdout)


# --- shutdown ------------------------------------------------------------------------

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


def test_forced_shutdown_names_what_it_killed(procs, tmp_path):
    scan = tmp_path / "scan"
    write_script(scan / "stubborn" / "run", "#!/bin/sh\ntrap '' TERM\n"
                                           "while :; do sleep 0.1; done\n")
    write_script(scan / "polite" / "run", SLEEPER)
    proc = procs.start(program("svscan"), "-g", "1", scan)
    pid = wait_until(lambda: state(scan / "stubborn").get("pid"))
    wait_until(lambda: state(scan / "polite").get("pid"))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 111
    assert (f"svscan: warning: still running 1s after TERM, killed: stubborn (pid {pid})\n"
            in err.decode()), err
    assert b"polite" not in err


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


# --- the zygote, process titles, ./check's output, usage -----------------------------

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
    os.kill(wait_until(lambda: status_pid(a)), signal.SIGKILL)   # never 0: our own group
    os.kill(sup_a, signal.SIGKILL)
    wait_until(lambda: len(supervise_pids(scanner.pid)) == 2 and sup_a not in
               supervise_pids(scanner.pid), timeout=5)
    assert zygote_pids(scanner.pid) == []
    scanner.send_signal(signal.SIGTERM)
    assert scanner.wait(timeout=10) == 0
    told = scanner.stderr.read().decode()
    assert told.count("svscan forks each supervise itself") == 1, told


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().rstrip(b"\0").replace(b"\0", b" ").decode()


def test_ps_shows_what_each_supervise_runs(procs, tmp_path):
    scan = tmp_path / "scan"
    write_script(scan / "web" / "run", SLEEPER)
    write_script(scan / "web" / "log" / "run", "#!/bin/sh\nexec cat >/dev/null\n")
    proc = procs.start(program("svscan"), scan)
    wait_until(lambda: state(scan / "web").get("pid") and state(scan / "web" / "log").get("pid"))
    ps = subprocess.run(["ps", "-o", "args=", "--ppid", str(proc.pid)], capture_output=True,
                        text=True, timeout=10).stdout.split("\n")
    assert "supervise web" in ps and "supervise web/log" in ps, ps
    assert cmdline(proc.pid) == f"svscan {scan}"
    assert comm(proc.pid) == "svscan"
    children = [int(p) for p in subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)],
                                               capture_output=True, text=True,
                                               timeout=10).stdout.split()]
    # and the zygote that forks them (see zygote.py), named as such
    assert sorted(comm(p) for p in children) == ["supervise", "supervise", "svscan-zygote"]


def test_check_output_goes_to_the_service_log(procs, tmp_path):
    scan = tmp_path / "scan"
    sv = scan / "web"
    write_script(sv / "run", SLEEPER)
    write_script(sv / "check", "#!/bin/sh\necho check-complaint >&2\n[ -e ok ]\n")
    write_script(sv / "log" / "run", "#!/bin/sh\nexec cat >> captured\n")
    proc = procs.start(program("svscan"), scan)
    wait_until(lambda: b"check-complaint" in (sv / "log" / "captured").read_bytes()
               if (sv / "log" / "captured").exists() else False)
    (sv / "ok").touch()
    wait_until(lambda: state(sv).get("ready"))
    proc.send_signal(signal.SIGTERM)
    assert b"check-complaint" not in proc.communicate(timeout=20)[1]


def test_usage_errors():
    assert run("svscan", "-x").returncode == 100
    assert run("svscan", "a", "b").returncode == 100
    assert run("svscan", "-g", "soon", ".").returncode == 100
    r = run("svscan", "/nonexistent/dir")
    assert r.returncode == 111
    assert r.stderr == "svscan: fatal: unable to chdir to /nonexistent/dir: file does not exist\n"
