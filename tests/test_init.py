"""svscan as a container's init: PID 1 in a fresh PID namespace.

These run `unshare --pid --fork --mount-proc svscan ...`, which needs root;
they are skipped otherwise (CI runs as root).
"""

import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (NOBODY, SLEEPER, children, descendants, lines_of, poll_until, proc_stat,
                      program, read_state, run, wait_until, write_script)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")


def first(pids):
    return pids[0] if pids else 0


class Init:
    """svscan started as PID 1 of a new PID namespace, seen from outside."""

    def __init__(self, procs, scandir, *args, command=()):
        argv = ["unshare", "--pid", "--fork", "--mount-proc", program("svscan"), *args,
                str(scandir)]
        if command:
            argv += ["--", *command]
        self.proc = procs.start(*argv)
        # svscan may come and go (a critical service failing at once) before we look
        self.pid = wait_until(lambda: first(children(self.proc.pid))
                              or (self.proc.poll() is not None and "gone"))

    def signal(self, signum):
        assert isinstance(self.pid, int) and self.pid > 1, self.pid
        os.kill(self.pid, signum)

    def wait(self, timeout=20):
        return self.proc.wait(timeout=timeout)


def write_service(scandir, name, run=SLEEPER, log=None, extra=None):
    d = scandir / name
    write_script(d / "run", run)
    if log:
        write_script(d / "log" / "run", log)
    for fname, text in (extra or {}).items():
        (d / fname).write_text(text)
    return d


def service_started(d):
    data = (d / "supervise" / "status").read_bytes() if (d / "supervise" / "status").exists() else b""
    return len(data) == 20 and data[19] == 1


def zombies(pid):
    """The zombies among pid's descendants."""
    return {p for p in descendants(pid) if (proc_stat(p) or ("",))[0] == "Z"}


def test_orphans_are_reaped_and_no_zombie_stays(procs, scandir):
    """A service that keeps double-forking leaves nothing behind."""
    forker = write_service(scandir, "forker", run="#!/bin/sh\nwhile :; do (sh -c 'exit 0' &); "
                                                  "(sleep 0.01 &); echo >> loops; sleep 0.02; "
                                                  "done\n")
    init = Init(procs, scandir)
    wait_until(lambda: service_started(scandir / "forker"))
    # two orphans a loop: a few dozen before the first look, and more before each next one
    for loops in (15, 20, 25, 30, 35):
        wait_until(lambda: len(lines_of(forker / "loops")) >= loops)
        before = zombies(init.pid)
        poll_until(lambda: not (before & zombies(init.pid)), timeout=0.2)   # reaped by then?
        after = zombies(init.pid)
        assert not (before & after), f"zombies not reaped within 200 ms: {before & after}"
    init.signal(signal.SIGTERM)
    assert init.wait() == 0


def test_sigterm_brings_down_services_then_loggers_with_no_line_lost(procs, scandir):
    for name in ("a", "b", "c"):
        write_service(scandir, name,
                      run=f"#!/bin/sh\ntrap 'echo {name}: last line; exit 0' TERM\n"
                          f"echo {name}: first line\nwhile :; do sleep 0.05; done\n",
                      log="#!/bin/sh\nexec cat > ../log.txt\n")
    init = Init(procs, scandir)
    wait_until(lambda: all((scandir / n / "log.txt").exists() and
                           (scandir / n / "log.txt").read_text() for n in "abc"))
    began = time.monotonic()
    init.signal(signal.SIGTERM)
    assert init.wait() == 0
    assert time.monotonic() - began < 5
    for name in "abc":
        assert (scandir / name / "log.txt").read_text() == f"{name}: first line\n{name}: last line\n"


def test_shutdown_of_many_services_restarts_none_and_fails_none(procs, scandir):
    """svscan sends TERM to each supervise, then the down signal to its ./run;
    a supervise may see the child's death before its own TERM (the kernel runs
    the handler of the last signal set up first). It must still take the exit
    as wanted: no restart, no "critical service failed", finish told -1 15."""
    names = [f"s{i:02d}" for i in range(40)]
    for name in names:
        write_service(scandir, name,
                      run="#!/bin/sh\necho start >> starts\nexec sleep 1000\n",
                      extra={"critical": "1\n"})
        write_script(scandir / name / "finish", "#!/bin/sh\necho \"$1 $2\" >> finished\n")
    init = Init(procs, scandir)
    wait_until(lambda: all(service_started(scandir / n) for n in names), timeout=30)
    # Past the restart throttle, where a wrong restart would come at once, not
    # after the tree is down: a service with no readiness mechanism is ready
    # after the same second up.
    wait_until(lambda: all(read_state(scandir / n).get("ready") for n in names), timeout=30)
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=30) == 0
    for name in names:
        assert (scandir / name / "starts").read_text() == "start\n", name
        assert (scandir / name / "finished").read_text() == "-1 15\n", name
        state = json.loads((scandir / name / "supervise" / "state.json").read_text())
        assert state["want"] == "down" and not state["failed"], (name, state)
        assert state["last_exit"] == {"signal": 15}, (name, state)


def test_grace_period_then_sigkill_and_nonzero_exit(procs, scandir):
    write_service(scandir, "stubborn", run="#!/bin/sh\ntrap '' TERM\n(trap '' TERM; sleep 1000) &\n"
                                           "touch deaf\nwhile :; do sleep 0.05; done\n")
    init = Init(procs, scandir, "-g", "1")
    wait_until(lambda: (scandir / "stubborn" / "deaf").exists())     # its trap is set
    began = time.monotonic()
    init.signal(signal.SIGTERM)
    assert init.wait() == 111
    took = time.monotonic() - began
    assert 1.0 <= took < 4.0, took


def test_grace_from_the_environment(procs, scandir, monkeypatch):
    monkeypatch.setenv("SVSCAN_GRACE", "0.5")
    write_service(scandir, "stubborn", run="#!/bin/sh\ntrap '' TERM\ntouch deaf\n"
                                           "while :; do sleep 0.05; done\n")
    init = Init(procs, scandir)
    wait_until(lambda: (scandir / "stubborn" / "deaf").exists())     # its trap is set
    began = time.monotonic()
    init.signal(signal.SIGTERM)
    assert init.wait() == 111
    assert 0.5 <= time.monotonic() - began < 3.0


@pytest.mark.parametrize("command, code", [
    ("exit 3", 3),
    ("exit 0", 0),
    ("kill -USR1 $$", 128 + signal.SIGUSR1),
    ("exec /nonexistent/command", 127),
    ("exec /dev/null", 126),
])
def test_main_command_exit_code_becomes_ours(procs, scandir, tmp_path, command, code):
    """tini's rule: the command's code, or 128 + signal; 127/126 if it cannot run.
    The tree is brought down (the service says bye) before svscan exits."""
    svc = write_service(scandir, "a", run="#!/bin/sh\ntrap 'echo bye > ../bye; exit 0' TERM\n"
                                          "while :; do sleep 0.05; done\n")
    go = tmp_path / "go"
    init = Init(procs, scandir, command=["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.01; done; "
                                         + command])
    wait_until(lambda: service_started(svc))
    go.touch()
    assert init.wait() == code
    assert (scandir / "bye").read_text() == "bye\n"


def test_signals_are_forwarded_to_the_main_command(procs, scandir, tmp_path):
    out = tmp_path / "got"
    script = (f"trap 'echo USR1 >> {out}' USR1; trap 'echo HUP >> {out}' HUP; "
              f"trap 'echo WINCH >> {out}' WINCH; echo ready > {out}; "
              "while :; do sleep 0.02; done")
    init = Init(procs, scandir, command=["sh", "-c", script])
    wait_until(lambda: out.exists())
    for signum, name in ((signal.SIGUSR1, "USR1"), (signal.SIGHUP, "HUP"),
                         (signal.SIGWINCH, "WINCH")):
        init.signal(signum)
        wait_until(lambda: name in out.read_text())
    init.signal(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGTERM


def test_critical_service_failure_shuts_the_container_down(procs, scandir):
    write_service(scandir, "db", run="#!/bin/sh\nexit 4\n", extra={"critical": "2\n"})
    other = write_service(scandir, "web", run="#!/bin/sh\ntrap 'echo bye > bye; exit 0' TERM\n"
                                              "while :; do sleep 0.05; done\n")
    init = Init(procs, scandir)
    assert init.wait(timeout=20) == 4
    assert (other / "bye").read_text() == "bye\n"
    assert b"critical service db failed" in init.proc.stderr.read()


def test_critical_service_permanent_failure_from_finish(procs, scandir):
    write_service(scandir, "db", run="#!/bin/sh\nexit 0\n", extra={"critical": ""})
    write_script(scandir / "db" / "finish", "#!/bin/sh\nexit 125\n")
    init = Init(procs, scandir)
    assert init.wait(timeout=20) == 1          # run's own code was 0: never exit 0


@pytest.mark.parametrize("command, code", [(["/nonexistent/cmd"], 127), (["/dev/null"], 126)])
def test_main_command_that_cannot_run(procs, scandir, command, code):
    write_service(scandir, "a")
    init = Init(procs, scandir, command=command)
    assert init.wait() == code
    assert b"svscan: warning: unable to run" in init.proc.stderr.read()


def test_services_inherit_environment_and_write_to_our_stdout(procs, scandir):
    write_service(scandir, "hello", run="#!/bin/sh\necho \"hello $GREETING\"\n"
                                        "echo \"oops $GREETING\" >&2\ntouch said\n"
                                        "exec sleep 1000\n")
    init = Init.__new__(Init)
    init.proc = procs.start("unshare", "--pid", "--fork", "--mount-proc", program("svscan"),
                            scandir, env={**os.environ, "GREETING": "container"})
    init.pid = wait_until(lambda: first(children(init.proc.pid)))
    wait_until(lambda: (scandir / "hello" / "said").exists())
    init.signal(signal.SIGTERM)
    assert init.wait() == 0
    assert init.proc.stdout.read() == b"hello container\n"
    assert init.proc.stderr.read() == b"oops container\n"


def test_read_only_tree_with_supervise_symlinked_to_a_writable_place(procs, tmp_path):
    """runit's trick: the service tree is mounted read-only, supervise/ points elsewhere."""
    tree = tmp_path / "ro"
    state = tmp_path / "rw"
    state.mkdir()
    svc = write_service(tree, "web", run="#!/bin/sh\nexec sleep 1000\n")
    (svc / "supervise").symlink_to(state / "web")
    script = (f"mount --bind {tree} {tree} && mount -o remount,bind,ro {tree} {tree} && "
              f"exec {program('svscan')} {tree}")
    proc = procs.start("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
    wait_until(lambda: (state / "web" / "status").exists()
               and (state / "web" / "status").read_bytes()[19] == 1)
    assert run("svok", svc).returncode == 0
    assert run("svc", "-d", svc).returncode == 0
    wait_until(lambda: (state / "web" / "status").read_bytes()[19] == 0)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_runs_as_a_non_root_user(procs, staged_programs):
    """svscan, supervise and the services, all as nobody, on a tree nobody owns."""
    top = Path(tempfile.mkdtemp(prefix="svtree-nobody-"))
    try:
        os.chmod(top, 0o755)
        svc = write_service(top / "service", "web",
                            run="#!/bin/sh\nid -u > whoami\nexec sleep 1000\n")
        for path in [top / "service", svc, *svc.iterdir()]:
            os.chown(path, 65534, 65534)
        proc = staged_programs.start(procs, NOBODY, "svscan", top / "service")
        wait_until(lambda: ((svc / "whoami").exists() and (svc / "whoami").read_text())
                   or proc.poll() is not None)
        assert proc.poll() is None, proc.stderr.read().decode()
        assert (svc / "whoami").read_text() == "65534\n"
        assert (svc / "supervise").stat().st_uid == 65534
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_critical_failure_wins_over_the_main_commands_code(procs, scandir):
    write_service(scandir, "db", run="#!/bin/sh\nexit 4\n", extra={"critical": "1"})
    init = Init(procs, scandir, command=["sleep", "1000"])
    assert init.wait(timeout=20) == 4
