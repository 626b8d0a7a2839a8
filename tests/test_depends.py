"""Dependencies (depends files) under svscan, with real processes: the start
order, what a waiting or blocked service says, a failed or missing
dependency, cycles, and the ordered shutdown under PID 1.

Every service appends what it does to one file, `journal`, as
"NAME WHAT SECONDS" lines; the order of those lines is what is checked.
"""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import program, run, wait_until, write_script

JOURNAL = "journal"


def note(name, what):
    """Shell that appends `NAME WHAT TIME` to the journal (scan directory)."""
    return f'echo "{name} {what} $(date +%s.%N)" >> ../{JOURNAL}'


def sleeper(name, ready_when=None, stop=0.0):
    """A run script: journal `start`; with ready_when, wait for that file,
    then journal `ready` and say so on fd 3; on TERM, journal `term`,
    take stop seconds, journal `last` and exit."""
    pause = f"sleep {stop}; " if stop else ""
    lines = ["#!/bin/sh", f"trap '{note(name, 'term')}; {pause}{note(name, 'last')}; exit 0' TERM",
             note(name, "start")]
    if ready_when:
        lines += [f"while [ ! -e ../{ready_when} ]; do sleep 0.01; done",
                  note(name, "ready"), "echo >&3"]           # journaled before it is told
    lines += ["while :; do sleep 0.02; done", ""]
    return "\n".join(lines)


def make(scandir, name, run_text, depends=None, notify=False, extra=None):
    d = scandir / name
    write_script(d / "run", run_text)
    if depends is not None:
        (d / "depends").write_text(depends)
    if notify:
        (d / "notification-fd").write_text("3\n")
    for fname, text in (extra or {}).items():
        (d / fname).write_text(text)
    return d


def journal(scandir):
    """[(name, what)] in the order written."""
    path = scandir / JOURNAL
    if not path.exists():
        return []
    return [tuple(line.split()[:2]) for line in path.read_text().splitlines() if line.strip()]


def state(d):
    try:
        return json.loads((d / "supervise" / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def svscan(procs, scandir):
    return procs.start(program("svscan"), scandir, stderr=subprocess.PIPE)


def chain(scandir, stop=0.0):
    """db (ready only once the file go exists) <- api <- web."""
    make(scandir, "db", sleeper("db", ready_when="go", stop=stop), notify=True)
    make(scandir, "api", sleeper("api", stop=stop), depends="db\n")
    make(scandir, "web", sleeper("web", stop=stop), depends="# the front end\napi\n")


def test_each_service_starts_once_its_dependencies_are_ready(procs, scandir):
    chain(scandir)
    svscan(procs, scandir)
    wait_until(lambda: state(scandir / "api").get("waiting_for") == ["db"])
    wait_until(lambda: state(scandir / "web").get("waiting_for") == ["api"])
    wait_until(lambda: ("db", "start") in journal(scandir))
    assert not [e for e in journal(scandir) if e[0] in ("api", "web")]
    assert state(scandir / "api")["starts"] == 0          # held, not failing
    (scandir / "go").touch()
    wait_until(lambda: ("web", "start") in journal(scandir))
    order = [e for e in journal(scandir) if e[1] in ("ready", "start")]
    assert order.index(("db", "ready")) < order.index(("api", "start")) \
        < order.index(("web", "start")), order
    wait_until(lambda: state(scandir / "web").get("pid") and state(scandir / "web")
               .get("waiting_for") is None)            # what it said once it wrote again


def test_a_waiting_service_says_what_it_waits_for(procs, scandir):
    chain(scandir)
    svscan(procs, scandir)
    wait_until(lambda: state(scandir / "api").get("waiting_for") == ["db"])
    r = run("svtree", "status", scandir / "api")
    assert "waiting" in r.stdout and "waiting for db" in r.stdout, r.stdout
    r = run("svtree", "status", "-v", scandir / "web")
    assert "depends      api (not ready)" in r.stdout, r.stdout
    r = run("svtree", "status", "--json", scandir / "api")
    (rec,) = json.loads(r.stdout)
    assert (rec["state"], rec["depends"], rec["waiting_for"]) == ("waiting", ["db"], ["db"])


def test_a_failed_dependency_blocks_its_dependents_without_restarts(procs, scandir):
    make(scandir, "db", "#!/bin/sh\nexit 1\n", extra={"max-deaths": "1\n"})
    make(scandir, "api", sleeper("api"), depends="db\n")
    svscan(procs, scandir)
    wait_until(lambda: (state(scandir / "api").get("blocked_by") or {}).get("db", "")
               .startswith("failed"))
    assert state(scandir / "api")["starts"] == 0
    r = run("svtree", "status", scandir / "api")
    assert "blocked" in r.stdout and "blocked by db (failed" in r.stdout, r.stdout
    r = run("svtree", "wait", "-t", "5", "ready", scandir / "api")
    assert r.returncode == 111 and "blocked by db" in r.stderr, r.stderr
    # mended: db starts again, and then api, once
    write_script(scandir / "db" / "run", sleeper("db"))
    assert run("svc", "-u", scandir / "db").returncode == 0
    wait_until(lambda: ("api", "start") in journal(scandir))
    wait_until(lambda: state(scandir / "api").get("pid")
               and state(scandir / "api").get("blocked_by") is None)
    assert [e for e in journal(scandir) if e == ("api", "start")] == [("api", "start")]


def test_a_dependency_that_is_no_service_is_said_once_and_blocks(procs, scandir):
    make(scandir, "web", sleeper("web"), depends="nosuch\n")
    proc = svscan(procs, scandir)
    wait_until(lambda: (state(scandir / "web").get("blocked_by") or {}).get("nosuch")
               == "no such service")
    make(scandir, "nosuch", sleeper("nosuch"))        # it appears: web follows
    wait_until(lambda: ("web", "start") in journal(scandir))
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=20)[1].decode()
    said = [line for line in err.splitlines() if "nosuch" in line]
    assert said == ["svscan: warning: web depends on nosuch, which is no service: "
                    "web waits until it is one"], err


def test_a_cycle_is_said_and_its_members_start_as_without_depends(procs, scandir):
    make(scandir, "a", sleeper("a"), depends="b\n")
    make(scandir, "b", sleeper("b"), depends="a\n")
    make(scandir, "c", sleeper("c"), depends="a\n")         # outside the cycle: waits for a
    proc = svscan(procs, scandir)
    wait_until(lambda: {("a", "start"), ("b", "start"), ("c", "start")} <= set(journal(scandir)))
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=20)[1].decode()
    assert [line for line in err.splitlines() if "cycle" in line] == [
        "svscan: warning: dependency cycle: a -> b -> a: each starts as if it had no "
        "depends file"], err


def test_a_dependency_restart_leaves_a_running_dependent_alone(procs, scandir):
    chain(scandir)
    (scandir / "go").touch()
    svscan(procs, scandir)
    wait_until(lambda: ("web", "start") in journal(scandir))
    api_pid = state(scandir / "api")["pid"]
    run("svc", "-r", scandir / "db")
    wait_until(lambda: journal(scandir).count(("db", "ready")) == 2)
    assert state(scandir / "api")["pid"] == api_pid
    assert journal(scandir).count(("api", "start")) == 1


def test_svtree_start_starts_the_dependencies_first_and_waits_through_them(procs, scandir):
    chain(scandir)
    for name in ("db", "api", "web"):
        (scandir / name / "down").touch()
    svscan(procs, scandir)
    wait_until(lambda: all(state(scandir / n).get("want") == "down" for n in ("db", "api", "web")))
    (scandir / "go").touch()
    r = run("svtree", "start", "-w", "20", scandir / "web")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [line.split(":")[0] for line in r.stdout.splitlines()] == ["ok"] * 3, r.stdout
    wait_until(lambda: ("web", "start") in journal(scandir))   # up, its first line may lag
    order = [e for e in journal(scandir) if e[1] in ("ready", "start")]
    assert order.index(("db", "ready")) < order.index(("api", "start")) \
        < order.index(("web", "start")), order


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare")
def test_shutdown_under_pid_1_takes_dependents_down_first(procs, scandir):
    """SIGTERM to svscan as PID 1: web's and api's last lines are written
    before db gets its TERM; an unrelated service goes at once."""
    chain(scandir, stop=0.2)
    make(scandir, "other", sleeper("other", stop=0.2))
    (scandir / "go").touch()
    init = procs.start("unshare", "--pid", "--fork", "--mount-proc", program("svscan"),
                       scandir)
    wait_until(lambda: {("web", "start"), ("other", "start")} <= set(journal(scandir)))
    wait_until(lambda: state(scandir / "web").get("ready"))      # up a second: settled
    pid1 = wait_until(lambda: next((int(p) for p in os.listdir("/proc") if p.isdigit()
                                    and ppid(int(p)) == init.pid), 0))
    started = time.monotonic()
    os.kill(pid1, signal.SIGTERM)
    assert init.wait(timeout=20) == 0
    took = time.monotonic() - started
    events = journal(scandir)
    assert events.index(("web", "last")) < events.index(("api", "term")), events
    assert events.index(("api", "last")) < events.index(("db", "term")), events
    assert events.index(("other", "term")) < events.index(("api", "term")), events
    assert took < 7.0                                         # within the grace period


def ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def test_stopping_a_waiting_service_is_done_at_once(procs, scandir):
    """svc -d to a service held down changes only what supervise wants:
    the stop is told all the same, not waited out to its timeout."""
    chain(scandir)
    svscan(procs, scandir)
    wait_until(lambda: state(scandir / "api").get("waiting_for") == ["db"])
    r = run("svtree", "stop", "-w", "30", scandir / "api")    # unwoken, it would time out
    assert r.returncode == 0 and r.stdout.startswith("ok: down:"), r.stdout + r.stderr
