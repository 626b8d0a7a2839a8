"""A ./run that cannot start, as supervise tells it: once on its stderr, and
in state.json's error (what `svtree status` shows) until a start succeeds,
with the cause named (no such file, no exec bit, CRLF line endings, a
missing interpreter, a directory, a fifo, a NUL in the #! line). supervise
retries once a second, never hangs or crashes on it, obeys svc meanwhile,
and starts ./run once it is mended.
"""

import os
import signal

from conftest import read_state as state, start_supervise as supervise
from conftest import (SLEEPER, pid_alive, run, status_bytes, status_pid, wait_until,
                      write_script)


def stderr_of(proc, timeout=10):
    proc.wait(timeout=timeout)
    return proc.stderr.read().decode(errors="replace")


def retried(sv, times):
    """A predicate: has supervise retried a failed ./run `times` times since?
    After each failed start, state.json says when the next one is due, a
    second later: each new due time is a retry to come."""
    due = []

    def seen():
        when = state(sv).get("next_start")
        if when and (not due or when > due[-1] + 0.5):
            due.append(when)
        return len(due) > times
    return seen


def test_missing_run_warns_once_and_stays_controllable(procs, service):
    sv = service(run=None)
    proc = supervise(procs, sv)
    assert run("svc", "-d", sv).returncode == 0
    wait_until(lambda: status_bytes(sv)[17:18] == b"d")
    write_script(sv / "run", "#!/bin/sh\nexec sleep 1000\n")
    run("svc", "-u", sv)
    wait_until(lambda: status_pid(sv))
    run("svc", "-dx", sv)
    proc.wait(timeout=10)
    err = proc.stderr.read().decode()
    assert err.count("unable to start") == 1, err
    assert f"supervise: warning: unable to start {sv}/run: file does not exist" in err


def test_non_executable_run_is_retried(procs, service):
    sv = service(run="#!/bin/sh\necho ok > ran\nexec sleep 1000\n")
    (sv / "run").chmod(0o644)
    supervise(procs, sv)
    wait_until(lambda: len(status_bytes(sv)) == 20)
    (sv / "run").chmod(0o755)
    wait_until(lambda: (sv / "ran").exists(), timeout=5)


def test_run_that_is_a_directory_warns_once_and_is_retried(procs, service, tmp_path):
    sv = service(run=None)
    (sv / "run").mkdir()
    err_path = tmp_path / "stderr"
    with open(err_path, "wb") as err:
        proc = supervise(procs, sv, stderr=err)
    warning = f"supervise: warning: unable to start {sv}/run: access denied\n"
    wait_until(lambda: warning in err_path.read_text())
    # Saying nothing new is the point, so let supervise retry twice (one
    # retry a second) before looking again.
    wait_until(retried(sv, 2), timeout=5)
    assert err_path.read_text() == warning
    assert run("svok", sv).returncode == 0
    assert run("svc", "-d", sv).returncode == 0
    wait_until(lambda: status_bytes(sv)[17:18] == b"d")
    assert run("svc", "-u", sv).returncode == 0
    wait_until(lambda: status_bytes(sv)[17:18] == b"u")
    (sv / "run").rmdir()
    write_script(sv / "run", "#!/bin/sh\ntouch ran\nexec sleep 1000\n")
    wait_until(lambda: (sv / "ran").exists(), timeout=5)
    pid = wait_until(lambda: status_pid(sv))
    assert run("svc", "-dx", sv).returncode == 0
    assert proc.wait(timeout=10) == 0
    assert not pid_alive(pid)
    assert err_path.read_text() == warning


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
