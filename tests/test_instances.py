"""A service's instances file: N copies of one service, each a complete
service of its own (SERVICE/instance/K/supervise/, INSTANCE=K), one logger
for all of them, scaled live by editing the file."""

import os
import subprocess

from conftest import peer, program, run, wait_until, write_script


def environ_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    except OSError:
        return {}


def pid_of(d):
    r = run("svstat", d)
    words = r.stdout.split()
    return int(words[words.index("(pid") + 1].rstrip(")")) if "(pid" in words else 0


def copies(scandir, n):
    d = scandir / "web"
    write_script(d / "run", "#!/bin/sh\ntrap 'echo \"$INSTANCE stopped\" >> ../stops; exit 0' TERM\n"
                            "echo \"instance $INSTANCE up\"\n"
                            "while :; do sleep 0.02; done\n")
    (d / "instances").write_text(f"{n}\n")
    (d / "log").mkdir()
    (d / "log" / "multilog").write_text("t ./main\n")
    return d


def test_three_instances_each_a_service_of_its_own(procs, scandir):
    d = copies(scandir, 3)
    procs.start(program("svscan"), scandir, stderr=subprocess.DEVNULL)
    paths = [d / "instance" / str(k) for k in (1, 2, 3)]
    wait_until(lambda: all(pid_of(p) for p in paths))
    pids = [pid_of(p) for p in paths]
    assert len(set(pids)) == 3
    assert [environ_of(pid).get(b"INSTANCE") for pid in pids] == [b"1", b"2", b"3"]
    for p in paths:
        assert run("svok", p).returncode == 0
        assert run("svstat", p).stdout.startswith(f"{p}: up (pid ")
        if peer("svstat"):                               # daemontools' own reads them too
            out = subprocess.run([peer("svstat"), p], capture_output=True, text=True).stdout
            assert out.startswith(f"{p}: up (pid "), out
    wait_until(lambda: (d / "log" / "main" / "current").exists()
               and all(f"instance {k} up" in (d / "log" / "main" / "current").read_text()
                       for k in (1, 2, 3)))               # one logger for all of them
    r = run("svtree", "status", d)
    assert [line.split()[0] for line in r.stdout.splitlines()[1:]] == [
        *map(str, paths), str(d / "log")], r.stdout


def test_lowered_to_one_the_others_go_down_cleanly_and_the_first_stays(procs, scandir):
    d = copies(scandir, 3)
    procs.start(program("svscan"), scandir, stderr=subprocess.DEVNULL)
    first, second, third = (d / "instance" / str(k) for k in (1, 2, 3))
    wait_until(lambda: all(pid_of(p) for p in (first, second, third)))
    kept = pid_of(first)
    (d / "instances").write_text("1\n")
    stops = scandir / "stops"                                 # ../stops, from web/
    wait_until(lambda: stops.exists() and sorted(stops.read_text().split()) ==
               ["2", "3", "stopped", "stopped"])
    wait_until(lambda: run("svok", second).returncode == 100
               and run("svok", third).returncode == 100)     # their supervise exited
    assert pid_of(first) == kept                              # not restarted
    assert "1 stopped" not in stops.read_text()
    (d / "instances").write_text("2\n")                       # and up again
    wait_until(lambda: pid_of(second) and pid_of(second) not in (0, kept))
    assert pid_of(first) == kept


def test_the_verbs_act_on_every_instance_or_on_one(procs, scandir):
    d = copies(scandir, 2)
    procs.start(program("svscan"), scandir, stderr=subprocess.DEVNULL)
    first, second = d / "instance" / "1", d / "instance" / "2"
    wait_until(lambda: pid_of(first) and pid_of(second))
    r = run("svtree", "stop", d)
    assert r.returncode == 0 and r.stdout.count("ok: down:") == 2, r.stdout
    r = run("svtree", "start", second)
    assert r.returncode == 0 and r.stdout.count("ok: run:") == 1, r.stdout
    assert pid_of(second) and not pid_of(first)
    assert os.path.isdir(first / "supervise")
