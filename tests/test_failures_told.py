"""Failures told where the operator looks (issue: operator experience).

Each test runs the real supervise or svscan on a scratch service and reads
what an operator would: supervise/state.json (what `svtree status` shows),
the event fifodir, the service's own log, svscan's stderr and exit code,
and what ps shows.
"""

import signal
import subprocess

from conftest import SLEEPER, program, run, wait_until, write_script
from conftest import read_state as state


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


def test_a_nul_in_a_loggers_script_costs_no_traceback(tmp_path):
    sv = tmp_path / "svc"
    (sv / "log").mkdir(parents=True)
    (sv / "log" / "multilog").write_bytes(b"t ./ma\0in /x\0y\n")
    r = run("svtree", "logs", sv)
    assert r.returncode == 111 and "Traceback" not in r.stderr
    assert r.stderr.startswith("svtree: fatal: no log directory")
