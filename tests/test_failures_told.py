"""Failures told where the operator looks (issue: operator experience).

Each test runs the real supervise or svscan on a scratch service and reads
what an operator would: supervise/state.json (what `svtree status` shows),
the event fifodir, the service's own log, svscan's stderr and exit code,
and what ps shows.
"""

import json
import os
import signal
import subprocess
import time

from conftest import SLEEPER, pid_alive, program, run, wait_until, write_script
from conftest import read_state as state, start_supervise as supervise


def stderr_of(proc, timeout=10):
    proc.wait(timeout=timeout)
    return proc.stderr.read().decode(errors="replace")


# --- a run that cannot start says why -------------------------------------------

def test_crlf_line_endings_name_the_missing_interpreter(procs, service):
    """The kernel says ENOENT for `/bin/sh\\r`: the cause is the interpreter
    and the line endings, not a missing ./run; state.json says so too, and
    the error goes once the file is mended."""
    sv = service(run=None)
    (sv / "run").write_bytes(b"#!/bin/sh\r\nexec sleep 1000\r\n")
    (sv / "run").chmod(0o755)
    proc = supervise(procs, sv)
    error = wait_until(lambda: state(sv).get("error"))
    assert error == ("unable to start ./run: its interpreter /bin/sh\\r does not exist:"
                     " run has CRLF line endings (dos2unix)")
    assert state(sv)["state"] == "down" and state(sv)["want"] == "up"
    write_script(sv / "run", SLEEPER)
    wait_until(lambda: state(sv).get("state") == "run")
    assert state(sv)["error"] is None
    proc.send_signal(signal.SIGTERM)
    err = stderr_of(proc)
    assert err.count("supervise: warning: unable to start") == 1, err   # said once
    assert "/run: its interpreter /bin/sh\\r does not exist" in err


def test_missing_exec_bit_and_bad_interpreter_are_named(procs, service):
    noexec = service("noexec", run=None)
    (noexec / "run").write_text(SLEEPER)
    (noexec / "run").chmod(0o644)
    bad = service("bad", run="#!/no/such/shell -e\nexit 0\n")
    notscript = service("notscript", run="exec sleep 1000\n")
    for sv in (noexec, bad, notscript):
        supervise(procs, sv)
    assert wait_until(lambda: state(noexec).get("error")) == \
        "unable to start ./run: run is not executable (chmod +x run)"
    assert wait_until(lambda: state(bad).get("error")) == \
        "unable to start ./run: its interpreter /no/such/shell (the #! line of run) does not exist"
    assert wait_until(lambda: state(notscript).get("error")) == \
        "unable to start ./run: run is neither a program nor a script starting with #!"


# --- backoff, failure and their reasons --------------------------------------------

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


# --- what "ready" means -------------------------------------------------------------

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


def test_no_readiness_mechanism_ready_after_a_second_up(procs, service):
    sv = service()
    supervise(procs, sv)
    s = wait_until(lambda: state(sv).get("ready") and state(sv), timeout=5)
    assert s["readiness"] == "none"
    assert s["ready_since"] - s["since"] >= 0.99


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


# --- an adoption keeps the history --------------------------------------------------

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


# --- svscan: ./check's output, a forced shutdown, process titles ---------------------

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


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().rstrip(b"\0").replace(b"\0", b" ").decode()


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


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


def test_a_run_that_is_a_fifo_or_names_a_nul_interpreter_hangs_nothing(procs, service):
    """./run is its owner's: a fifo named run (mode 755), or a #! line with a
    NUL in it, gets a clear error, never a hung or crashed supervise."""
    fifo = service("fifo", run=None)
    os.mkfifo(fifo / "run", 0o755)
    nul = service("nul", run=None)
    (nul / "run").write_bytes(b"#!/bin/\0sh\nexit 0\n")
    (nul / "run").chmod(0o755)
    procs_ = [supervise(procs, sv) for sv in (fifo, nul)]
    for sv in (fifo, nul):
        assert wait_until(lambda: state(sv).get("error"), timeout=5).startswith(
            "unable to start ./run: ")
        assert run("svc", "-d", sv).returncode == 0
        wait_until(lambda: state(sv).get("want") == "down")
    for p in procs_:
        p.send_signal(signal.SIGTERM)
        assert "Traceback" not in stderr_of(p)


def test_a_nul_in_a_loggers_script_costs_no_traceback(tmp_path):
    sv = tmp_path / "svc"
    (sv / "log").mkdir(parents=True)
    (sv / "log" / "multilog").write_bytes(b"t ./ma\0in /x\0y\n")
    r = run("svtree", "logs", sv)
    assert r.returncode == 111 and "Traceback" not in r.stderr
    assert r.stderr.startswith("svtree: fatal: no log directory")
