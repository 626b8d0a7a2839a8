"""svtree logs: the last lines with local times, following across rotations,
the log directory a logger's script names, and errors that name the argument.
"""

import os
import re
import signal
import subprocess

import pytest
from click.testing import CliRunner

from conftest import program, run, wait_until, write_script
from svtree.cli.svtree import svtree

LOCAL = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} ")


def fill(logdir, lines, *script):
    subprocess.run([program("multilog"), *script, f"./{logdir.name}"], input=lines,
                   cwd=logdir.parent, check=True)


def test_last_lines_across_rotated_files(tmp_path):
    service = tmp_path / "svc"
    (service / "log").mkdir(parents=True)
    fill(service / "log" / "main", b"".join(b"line %d\n" % i for i in range(2000)),
         "t", "s4096", "n100")
    r = run("svtree", "logs", "-n", "3", service)
    assert r.returncode == 0
    lines = r.stdout.encode().splitlines()
    assert [l.split(b" ", 2)[2] for l in lines] == [b"line 1997", b"line 1998", b"line 1999"]
    assert all(LOCAL.match(l) for l in lines)
    # more lines than current holds: they come from the rotated files too
    r = run("svtree", "logs", "-n", "600", "--raw", service / "log" / "main")
    assert len(r.stdout.splitlines()) == 600 and r.stdout.startswith("@")


def test_follow_sees_new_lines_and_survives_rotation(tmp_path, procs):
    logdir = tmp_path / "main"
    writer = procs.start(program("multilog"), "t", "./main", cwd=tmp_path, stdin=subprocess.PIPE)
    writer.stdin.write(b"before\n")
    writer.stdin.flush()
    wait_until(lambda: (logdir / "current").exists() and (logdir / "current").read_bytes())
    reader = procs.start(program("svtree"), "logs", "-f", "-n", "1", logdir)
    os.set_blocking(reader.stdout.fileno(), False)
    seen = []

    def got(text):
        chunk = reader.stdout.read()
        if chunk:
            seen.append(chunk)
        return text in b"".join(seen)

    wait_until(lambda: got(b"before"))
    writer.stdin.write(b"after\n")
    writer.stdin.flush()
    wait_until(lambda: got(b"after"))
    writer.send_signal(signal.SIGALRM)          # rotate
    wait_until(lambda: any(p.name.startswith("@") for p in logdir.iterdir()))
    writer.stdin.write(b"rotated\n")
    writer.stdin.flush()
    wait_until(lambda: got(b"rotated"))


def test_errors(tmp_path):
    assert run("svtree", "logs", "/nonexistent").returncode == 100
    assert run("svtree", "nonsense").returncode == 100
    r = run("svtree", "logs", tmp_path)
    assert r.returncode == 111 and "no log directory" in r.stderr
    assert "name the log directory itself: svtree logs DIR" in r.stderr


def test_the_directory_the_loggers_script_names(tmp_path):
    """multilog writing outside the service (a path in log/run, relative to
    log/ or absolute; svlogd's arguments too) is found from the script; a
    log directory is taken as it is."""
    elsewhere = tmp_path / "var" / "web"
    service = tmp_path / "svc"
    for d in (tmp_path / "var", service / "log"):
        d.mkdir(parents=True)
    fill(elsewhere, b"far away\n")
    fill(service / "log" / "near", b"near by\n")   # log/*/ as before
    (service / "log" / "run").write_text(
        f"#!/bin/sh\n# a comment\nexec setuidgid log multilog t s99999 {elsewhere} ./near 2>&1\n")
    r = run("svtree", "logs", "--raw", service)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["near by", "far away"]
    (service / "log" / "run").write_text("#!/bin/sh\nexec svlogd -tt ../../var/web\n")
    assert run("svtree", "logs", "--raw", service).stdout.splitlines() == ["near by", "far away"]
    assert run("svtree", "logs", "--raw", elsewhere).stdout.splitlines() == ["far away"]
    (service / "log" / "run").write_text("#!/bin/sh\nexec multilog t $LOGDIR\n")
    assert run("svtree", "logs", "--raw", service).stdout.splitlines() == ["near by"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")
def test_a_symlink_in_someone_elses_log_shows_only_their_directory(tmp_path):
    """A service's owner may link log/main to any directory: root's svtree
    logs shows it as that service's log only if it is the owner's own."""
    other = tmp_path / "other"
    other.mkdir()
    fill(other, b"not theirs\n")                       # root's
    sv = tmp_path / "svc"
    (sv / "log").mkdir(parents=True)
    (sv / "log" / "main").symlink_to(other)
    os.chown(sv / "log", 65534, 65534)
    r = run("svtree", "logs", "--raw", sv)
    assert r.returncode == 111 and "not theirs" not in r.stdout
    os.chown(other, 65534, 65534)
    assert run("svtree", "logs", "--raw", sv).stdout == "not theirs\n"


def test_logs_errors_name_the_argument(tmp_path):
    r = run("svtree", "logs", tmp_path / "missing")
    assert (r.returncode, r.stdout) == (100, "")
    assert r.stderr == f"svtree: fatal: unable to read {tmp_path}/missing: file does not exist\n"
    (tmp_path / "file").write_text("")
    r = run("svtree", "logs", tmp_path / "file")
    assert r.returncode == 100
    assert r.stderr == f"svtree: fatal: unable to read {tmp_path}/file: not a directory\n"
    r = run("svtree", "logs", tmp_path)
    assert r.returncode == 111
    assert r.stderr == (f"svtree: fatal: no log directory with a current file in {tmp_path}, "
                        "its log/, or where its logger's script writes; name the log directory "
                        "itself: svtree logs DIR\n")
    for name in ("a", "b"):
        (tmp_path / "svc" / "log" / name).mkdir(parents=True)
        (tmp_path / "svc" / "log" / name / "current").write_text("x\n")
    r = run("svtree", "logs", "-f", tmp_path / "svc")
    assert r.returncode == 100 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"svtree: fatal: {tmp_path}/svc has several log directories")
    result = CliRunner().invoke(svtree, ["logs", str(tmp_path / "missing")])
    assert result.exit_code == 100 and result.output.startswith("svtree: fatal: unable to read")


def test_a_logger_named_itself_shows_its_log(tmp_path):
    logdir = tmp_path / "svc" / "log" / "main"
    logdir.mkdir(parents=True)
    write_script(tmp_path / "svc" / "log" / "run", "#!/bin/sh\nexec multilog t ./main\n")
    (logdir / "current").write_text("one\n")
    r = run("svtree", "logs", tmp_path / "svc" / "log")
    assert (r.returncode, r.stdout) == (0, "one\n")


def test_a_nul_in_a_loggers_script_costs_no_traceback(tmp_path):
    sv = tmp_path / "svc"
    (sv / "log").mkdir(parents=True)
    (sv / "log" / "multilog").write_bytes(b"t ./ma\0in /x\0y\n")
    r = run("svtree", "logs", sv)
    assert r.returncode == 111 and "Traceback" not in r.stderr
    assert r.stderr.startswith("svtree: fatal: no log directory")
