"""svtree run and svtree rm: transient jobs under a running svscan, driven
by the commands alone, as a program would."""

import json
import os
import subprocess

from conftest import program, run, wait_until, write_script


def svscan(procs, scandir):
    return procs.start(program("svscan"), scandir, stderr=subprocess.DEVNULL)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_run_once_reports_the_exit_and_its_times(procs, scandir, tmp_path):
    svscan(procs, scandir)
    r = run("svtree", "run", "--once", "--name", "job", scandir, "--",
            "sh", "-c", "echo hello; exit 3", cwd=tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    name, pid = r.stdout.split()
    assert name == "job" and int(pid) > 0
    r = run("svtree", "status", "--json", scandir / "job")
    (rec,) = [rec for rec in json.loads(r.stdout) if rec["logger_of"] is None]   # not its logger
    assert rec["last_exit"] == {"code": 3}
    assert rec["last_pid"] == int(pid)
    assert rec["last_start"] <= rec["last_end"] and rec["process"] == "down"
    assert rec["starts"] == 1 and rec["want"] != "up"            # once: never restarted
    wait_until(lambda: b"hello" in run("svtree", "logs", scandir / "job").stdout.encode())


def test_run_keeps_a_job_up_and_rm_removes_it_keeping_its_log(procs, scandir, tmp_path):
    svscan(procs, scandir)
    r = run("svtree", "run", scandir, "--", "sh", "-c", "echo started; exec sleep 1000",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    name, pid = r.stdout.split()
    pid = int(pid)
    assert name.startswith("sh-") and alive(pid)
    assert os.readlink(f"/proc/{pid}/cwd") == str(tmp_path)      # where svtree run ran
    assert not [n for n in os.listdir(scandir) if n.endswith(".new")]
    r = run("svtree", "rm", scandir / name)
    assert r.returncode == 0, r.stderr
    assert not (scandir / name).exists()
    wait_until(lambda: not alive(pid))
    logdir = scandir / ".log" / name
    assert f"its log stays in {logdir}" in r.stdout
    assert "started" in (logdir / "current").read_text()


def test_rm_refuses_a_service_it_did_not_make(procs, scandir):
    svc = scandir / "db"
    write_script(svc / "run", "#!/bin/sh\nexec sleep 1000\n")
    svscan(procs, scandir)
    wait_until(lambda: run("svok", svc).returncode == 0)
    r = run("svtree", "rm", svc)
    assert r.returncode == 111
    assert "was not made by svtree run: not removing it" in r.stderr
    assert (svc / "run").exists() and run("svok", svc).returncode == 0


def test_run_refuses_a_name_in_use_and_a_bad_one(procs, scandir):
    svscan(procs, scandir)
    (scandir / "taken").mkdir()
    r = run("svtree", "run", "--name", "taken", scandir, "--", "true")
    assert r.returncode == 111 and "exists already" in r.stderr, r.stderr
    r = run("svtree", "run", "--name", "../escape", scandir, "--", "true")
    assert r.returncode == 111 and "not a usable service name" in r.stderr, r.stderr
    assert sorted(os.listdir(scandir)) == ["taken"]
