"""The built-in logger: log/multilog (a script, as data) and no log/run.

The logger's supervise forks multilog's code instead of exec'ing a new
interpreter; everything else is as with `exec multilog ...` in log/run:
rotation, ALRM and TERM through svc, svstat on SERVICE/log, nothing lost when
the logger restarts (svscan holds the pipe). Real svscan, real processes.

Not tested here: the memory it saves (bench/run.py), running as the owner of
a script someone else wrote or as log/user's account (needs a second user:
the logic is builtinlog.account's, tested below with stat results).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import program, run, status_pid, wait_until, write_script

from svtree import builtinlog

TALKER = ("#!/bin/sh\nn=$(cat batch 2>/dev/null || echo 0)\n"
          "while [ $n -lt 3 ]; do\n"
          "  i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo batch $n line $i; done\n"
          "  n=$((n+1)); echo $n > batch\n"
          "  while [ ! -e go$n ]; do sleep 0.01; done\n"
          "done\nexec sleep 1000\n")


def logged(scandir, script, run_text=TALKER, name="talker"):
    sv = scandir / name
    write_script(sv / "run", run_text)
    (sv / "log").mkdir()
    (sv / "log" / "multilog").write_text(script)
    return sv


def lines_of(logdir: Path):
    """The log's whole lines (one being written is left for the next
    look), oldest file first, without their TAI64N labels."""
    if not logdir.exists():
        return []
    names = sorted(n for n in os.listdir(logdir) if n.startswith("@")) + ["current"]
    out = []
    for n in names:
        if (logdir / n).exists():
            out += [line.partition(" ")[2] for line in (logdir / n).read_text().split("\n")[:-1]]
    return out


def logger_comm(pid):
    return Path(f"/proc/{pid}/comm").read_text().strip()


def test_builtin_logger_files_lines_and_is_a_forked_multilog(procs, scandir):
    """The logger is a child of the log's supervise, in its own session, shown
    as `multilog SCRIPT`, with no new interpreter (same executable as svscan)."""
    sv = logged(scandir, "# the service's log\nt s100000 n5 ./main\n")
    scanner = procs.start(program("svscan"), scandir)
    (sv / "go1").touch()
    (sv / "go2").touch()
    (sv / "go3").touch()
    main = sv / "log" / "main"
    wait_until(lambda: (main / "current").exists() and len(lines_of(main)) == 300)
    assert lines_of(main) == [f"batch {n} line {i}" for n in range(3) for i in range(1, 101)]
    pid = status_pid(sv / "log")
    assert logger_comm(pid) == "multilog"
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"multilog t s100000 n5 ./main")
    assert os.getsid(pid) == pid
    assert os.readlink(f"/proc/{pid}/exe") == os.readlink(f"/proc/{scanner.pid}/exe")
    out = run("svstat", sv / "log")
    assert out.stdout.startswith(f"{sv}/log: up (pid {pid}) ")


def test_alrm_rotates_and_term_restarts_losing_nothing(procs, scandir):
    """svc -a rotates current into an @ file; svc -t ends the logger at a line
    boundary and supervise starts another; SIGKILL too loses no line: what is
    written meanwhile waits in svscan's pipe."""
    sv = logged(scandir, "t n10 ./main\n")
    procs.start(program("svscan"), scandir)
    main = sv / "log" / "main"
    wait_until(lambda: len(lines_of(main)) == 100)
    assert run("svc", "-a", sv / "log").returncode == 0
    wait_until(lambda: any(n.startswith("@") for n in os.listdir(main)))
    first = status_pid(sv / "log")
    assert run("svc", "-t", sv / "log").returncode == 0
    (sv / "go1").touch()                                  # batch 1 while it restarts
    wait_until(lambda: status_pid(sv / "log") not in (0, first))
    wait_until(lambda: len(lines_of(main)) == 200)
    second = status_pid(sv / "log")
    os.kill(second, signal.SIGKILL)
    (sv / "go2").touch()                                  # batch 2 while it is dead
    wait_until(lambda: status_pid(sv / "log") not in (0, second), timeout=15)
    wait_until(lambda: len(lines_of(main)) == 300)
    assert lines_of(main) == [f"batch {n} line {i}" for n in range(3) for i in range(1, 101)]


def test_processor_runs_at_rotation(procs, scandir):
    """!processor as with exec multilog: its output becomes the @...s file."""
    sv = logged(scandir, "n10 '!tr a-z A-Z' ./main\n",
                run_text="#!/bin/sh\necho quiet line\nexec sleep 1000\n", name="quiet")
    procs.start(program("svscan"), scandir)
    main = sv / "log" / "main"
    wait_until(lambda: (main / "current").exists()
               and (main / "current").read_text() == "quiet line\n")
    run("svc", "-a", sv / "log")
    wait_until(lambda: any(n.startswith("@") and n.endswith(".s") for n in os.listdir(main)))
    done = [n for n in os.listdir(main) if n.startswith("@")]
    assert (main / done[0]).read_text() == "QUIET LINE\n"


def test_a_bad_script_is_said_once_and_svstat_still_works(procs, scandir, tmp_path):
    """An unterminated quote: one warning, the error in state.json, no logger;
    mended, the logger starts at the next try."""
    sv = logged(scandir, "t 'unterminated ./main\n",
                run_text="#!/bin/sh\necho hi\nexec sleep 1000\n", name="bad")
    err = tmp_path / "err"
    procs.start(program("svscan"), scandir, stderr=err.open("w"))
    wait_until(lambda: "its script multilog cannot be used" in err.read_text())
    record = sv / "log" / "supervise" / "state.json"
    wait_until(lambda: record.exists() and b"unable to start" in record.read_bytes())
    assert status_pid(sv / "log") == 0
    (sv / "log" / "multilog").write_text("./main\n")
    wait_until(lambda: status_pid(sv / "log") != 0, timeout=70)
    wait_until(lambda: (sv / "log" / "main" / "current").exists()
               and (sv / "log" / "main" / "current").read_text() == "hi\n")
    assert err.read_text().count("its script multilog cannot be used") == 1


@pytest.mark.parametrize("make", [
    lambda log: os.symlink("/etc/hostname", log / "multilog"),
    lambda log: os.mkfifo(log / "multilog"),
    lambda log: (log / "multilog").write_text("t " + "x" * 5000 + "\n"),
    lambda log: (log / "multilog").write_text("# nothing but a comment\n"),
], ids=["symlink", "fifo", "too-long", "empty"])
def test_hostile_scripts_are_refused(tmp_path, make):
    """A symlink is not followed, a fifo not opened for long, a huge file not
    read whole, an empty script refused: BadScript, never a hang."""
    log = tmp_path / "log"
    log.mkdir()
    make(log)
    cwd = os.getcwd()
    os.chdir(log)
    try:
        assert builtinlog.is_builtin()
        with pytest.raises(builtinlog.BadScript):
            builtinlog.script()
    finally:
        os.chdir(cwd)


def test_account_from_user_file_only_if_ours(tmp_path):
    """log/user names the account only in a file of ours in a directory only
    we can write, and one that cannot be used stops the logger (never runs
    it with more privileges than asked for); a script owned by someone else
    runs as that owner when we are root, with the groups of their account,
    never the file's group (root's, often); as we are otherwise."""
    import pwd
    log = tmp_path / "log"
    log.mkdir(mode=0o755)
    os.chmod(log, 0o755)
    (log / "user").write_text(f"{os.geteuid()}\n")
    cwd = os.getcwd()
    os.chdir(log)
    try:
        me = os.stat("user")
        pw = pwd.getpwuid(os.geteuid())
        assert builtinlog.account(me) == (
            os.geteuid(), pw.pw_gid, os.getgrouplist(pw.pw_name, pw.pw_gid))
        os.chmod("user", 0o666)
        with pytest.raises(builtinlog.BadScript, match="not a file of uid"):
            builtinlog.account(me)
        os.chmod("user", 0o644)
        (log / "user").write_text("no-such-account-here\n")
        with pytest.raises(builtinlog.BadScript, match="no account"):
            builtinlog.account(me)
        os.unlink("user")
        nobody = pwd.getpwnam("nobody")
        theirs = os.stat_result((0o100644, 0, 0, 1, nobody.pw_uid, 0, 0, 0, 0, 0))  # group root
        if os.geteuid() == 0:
            uid, gid, groups = builtinlog.account(theirs)
            assert (uid, gid) == (nobody.pw_uid, nobody.pw_gid) and 0 not in groups
            unknown = os.stat_result((0o100644, 0, 0, 1, 4242, 4343, 0, 0, 0, 0))
            with pytest.raises(builtinlog.BadScript, match="no account"):
                builtinlog.account(unknown)
        else:
            assert builtinlog.account(theirs) is None
    finally:
        os.chdir(cwd)


def test_log_run_wins_over_multilog(procs, scandir):
    """A log/run is run as before, even beside a multilog file."""
    sv = logged(scandir, "t ./main\n", run_text="#!/bin/sh\necho hi\nexec sleep 1000\n",
                name="both")
    write_script(sv / "log" / "run", "#!/bin/sh\nexec cat > out\n")
    procs.start(program("svscan"), scandir)
    wait_until(lambda: (sv / "log" / "out").exists()
               and (sv / "log" / "out").read_text() == "hi\n")
    assert not (sv / "log" / "main").exists()


def test_svtree_sees_a_builtin_logger(procs, scandir):
    """svtree status names SERVICE/log a service (it has no run, but a
    multilog script), lists it under its service, and svtree logs finds
    the directory its script names."""
    sv = logged(scandir, "t '../../lines here'\n")
    procs.start(program("svscan"), scandir)
    for n in (1, 2, 3):
        (sv / f"go{n}").touch()
    out = scandir / "lines here"
    wait_until(lambda: len(lines_of(out)) == 300)
    wait_until(lambda: run("svtree", "status", sv / "log").returncode == 0)
    r = run("svtree", "status", sv / "log")
    assert r.stdout.splitlines()[1].split()[:2] == [str(sv / "log"), "up"]
    listed = run("svtree", "status", "--json", scandir).stdout
    assert f'"{sv / "log"}"' in listed
    r = run("svtree", "logs", "-n", "1", "--raw", sv)
    assert r.returncode == 0 and r.stdout.endswith(" batch 2 line 100\n"), r.stderr


# --- a log/run that only execs svtree's multilog -----------------------------------

def with_our_bin(path=None):
    """Our environment with svtree's programs first in PATH (or path first)."""
    first = path or os.path.dirname(program("multilog"))
    return {**os.environ, "PATH": f"{first}:{os.environ.get('PATH', os.defpath)}"}


def exec_run(scandir, log_run, name="talker"):
    sv = scandir / name
    write_script(sv / "run", TALKER)
    write_script(sv / "log" / "run", log_run)
    return sv


def forked(pid):
    """Whether pid runs multilog's code forked by its supervise rather than
    in an interpreter exec'd for it (the console script runs itself again
    as `python -I -S`), or a C multilog (daemontools')."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    return cmdline.startswith(b"multilog ") and b"\0-S\0" not in cmdline


@pytest.mark.parametrize("log_run", [
    "#!/bin/sh\nexec multilog t n5 ./main\n",
    "#!/bin/sh\n# the usual\nexec 2>&1\n\nexec multilog t n5 './main'\n",
])
def test_a_log_run_that_execs_our_multilog_runs_as_the_builtin_logger(procs, scandir, log_run):
    """`exec multilog t ./main` with svtree's multilog first in PATH: the
    logger is forked by its supervise, no shell and no new interpreter;
    every line is there, svc -t restarts it losing nothing, svstat sees it."""
    sv = exec_run(scandir, log_run)
    procs.start(program("svscan"), scandir, env=with_our_bin())
    main = sv / "log" / "main"
    wait_until(lambda: len(lines_of(main)) == 100 and status_pid(sv / "log"))
    pid = status_pid(sv / "log")
    assert forked(pid), Path(f"/proc/{pid}/cmdline").read_bytes()
    assert os.getsid(pid) == pid
    assert run("svc", "-t", sv / "log").returncode == 0
    wait_until(lambda: status_pid(sv / "log") not in (0, pid))
    (sv / "go1").touch()
    (sv / "go2").touch()
    wait_until(lambda: len(lines_of(main)) == 300)
    assert lines_of(main) == [f"batch {n} line {i}" for n in range(3) for i in range(1, 101)]
    assert forked(status_pid(sv / "log"))
    assert run("svstat", sv / "log").stdout.startswith(f"{sv}/log: up (pid ")


@pytest.mark.parametrize("merged", [False, True])
def test_the_loggers_stderr_is_where_sh_would_leave_it(procs, scandir, tmp_path, merged):
    """multilog's e copies each line to its stderr: svscan's stderr, or with
    `exec 2>&1` first, svscan's stdout, as with sh."""
    sv = exec_run(scandir, "#!/bin/sh\n" + ("exec 2>&1\n" if merged else "")
                  + "exec multilog e ./main\n")
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "wb") as o, open(err, "wb") as e:
        procs.start(program("svscan"), scandir, env=with_our_bin(), stdout=o, stderr=e)
    wait_until(lambda: len(lines_of(sv / "log" / "main")) == 100 and status_pid(sv / "log"))
    assert forked(status_pid(sv / "log"))
    wait_until(lambda: (out if merged else err).read_text().count("batch 0 line") == 100)
    assert "batch 0 line" not in (err if merged else out).read_text()


@pytest.mark.parametrize("log_run", [
    "#!/bin/sh\necho starting >&2\nexec multilog t ./main\n",     # more than the exec
    "#!/bin/sh\nexec multilog t ./main # said\n",                   # a comment sh would drop
    "#!/bin/sh\nexec multilog t ${DIR:-./main}\n",                  # an expansion
    "#!/bin/bash\nexec multilog t ./main\n",                        # another shell
])
def test_any_other_log_run_is_exec_d(procs, scandir, log_run):
    """Only the plain form is taken: anything sh could read otherwise runs
    as written, through sh and an exec'd multilog."""
    if log_run.startswith("#!/bin/bash") and not os.path.exists("/bin/bash"):
        pytest.skip("no /bin/bash")
    sv = exec_run(scandir, log_run)
    procs.start(program("svscan"), scandir, env=with_our_bin())
    wait_until(lambda: len(lines_of(sv / "log" / "main")) == 100 and status_pid(sv / "log"))
    pid = status_pid(sv / "log")
    assert not forked(pid)
    assert b"\0-S\0" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_a_symlinked_log_run_is_exec_d(procs, scandir, tmp_path):
    """Root reads no file a service's owner points at: a log/run that is a
    symlink is exec'd, whatever it holds."""
    sv = exec_run(scandir, "#!/bin/sh\nexec multilog t ./main\n")
    write_script(tmp_path / "shared-run", "#!/bin/sh\nexec multilog t ./main\n")
    (sv / "log" / "run").unlink()
    (sv / "log" / "run").symlink_to(tmp_path / "shared-run")
    procs.start(program("svscan"), scandir, env=with_our_bin())
    wait_until(lambda: len(lines_of(sv / "log" / "main")) == 100 and status_pid(sv / "log"))
    assert not forked(status_pid(sv / "log"))


def test_alerts_nobody_reads_lose_no_line(procs, scandir):
    """multilog e writes each line to stderr; with nobody left to read it,
    the built-in logger gets EPIPE, as an exec'd multilog does, and files
    every line (it is not killed by SIGPIPE)."""
    sv = exec_run(scandir, "#!/bin/sh\nexec multilog e t ./main\n")
    r, w = os.pipe()
    os.close(r)
    try:
        procs.start(program("svscan"), scandir, env=with_our_bin(), stderr=w)
    finally:
        os.close(w)
    wait_until(lambda: len(lines_of(sv / "log" / "main")) == 100 and status_pid(sv / "log"))
    pid = status_pid(sv / "log")
    assert forked(pid)
    (sv / "go1").touch()
    wait_until(lambda: len(lines_of(sv / "log" / "main")) == 200)
    assert status_pid(sv / "log") == pid


def test_an_unknown_account_is_setuidgids_error(procs, scandir, tmp_path):
    """`exec setuidgid nosuch multilog ...`: the account is looked up in the
    logger's child, which says what setuidgid says and exits 111."""
    sv = exec_run(scandir, "#!/bin/sh\nexec setuidgid no-such-account-here multilog t ./main\n")
    err = tmp_path / "err"
    with open(err, "wb") as e:
        procs.start(program("svscan"), scandir, env=with_our_bin(), stderr=e)
    wait_until(lambda: "setuidgid: fatal: unknown account no-such-account-here"
               in err.read_text())
    assert not (sv / "log" / "main" / "current").exists()


def test_another_multilog_first_in_path_is_exec_d(procs, scandir):
    """daemontools' multilog first in PATH is the one exec runs: it is left
    alone, and files the lines itself."""
    if not os.path.exists("/usr/bin/multilog"):
        pytest.skip("daemontools is not installed")
    sv = exec_run(scandir, "#!/bin/sh\nexec multilog t ./main\n")
    procs.start(program("svscan"), scandir, env=with_our_bin("/usr/bin"))
    wait_until(lambda: len(lines_of(sv / "log" / "main")) == 100 and status_pid(sv / "log"))
    assert os.readlink(f"/proc/{status_pid(sv / 'log')}/exe") == "/usr/bin/multilog"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change user")
def test_setuidgid_before_our_multilog_is_the_loggers_account(procs, scandir):
    """`exec setuidgid nobody multilog ...`: the forked logger runs as
    nobody, with nobody's primary group as its only group, as setuidgid
    would leave it."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    sv = exec_run(scandir, "#!/bin/sh\nexec setuidgid nobody multilog t ./main\n")
    (sv / "log").chmod(0o777)
    procs.start(program("svscan"), scandir, env=with_our_bin())
    wait_until(lambda: len(lines_of(sv / "log" / "main")) == 100 and status_pid(sv / "log"))
    pid = status_pid(sv / "log")
    assert forked(pid)
    status = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split()[:2] == [str(nobody.pw_uid)] * 2
    assert status["Gid"].split()[:2] == [str(nobody.pw_gid)] * 2
    assert status["Groups"].split() == [str(nobody.pw_gid)]
    assert (sv / "log" / "main").stat().st_uid == nobody.pw_uid


@pytest.mark.parametrize("script, words", [
    (b"#!/bin/sh\nexec multilog t ./main\n", (["multilog", "t", "./main"], False)),
    (b"#!/bin/sh \n\n# c\nexec 2>&1\n  exec\tmultilog t '!tai64nlocal' '-*' ./main  \n",
     (["multilog", "t", "!tai64nlocal", "-*", "./main"], True)),
    (b"#!/bin/sh\nexec setuidgid log multilog t s1000000 n20 =last ./main",
     (["setuidgid", "log", "multilog", "t", "s1000000", "n20", "=last", "./main"], False)),
    (b"#!/bin/sh\nexec multilog t ./main\nexit 1\n", None),
    (b"#!/bin/sh\nexec multilog t -* ./main\n", None),
    (b"#!/bin/sh\nexec multilog t ~/log\n", None),
    (b"#!/bin/sh\nexec multilog t \"./main\"\n", None),
    (b"#!/bin/sh\nexec multilog t './ma'in'\n", None),
    (b"#!/bin/sh\nexec multilog t ./main; echo\n", None),
    (b"#!/bin/sh\nexec multilog t ./main 2>/dev/null\n", None),
    (b"#!/bin/sh\nexec multilog t `pwd`/main\n", None),
    (b"#!/bin/sh\nX=1 exec multilog t ./main\n", None),
    (b"#!/bin/sh -e\nexec multilog t ./main\n", None),
    (b"#!/bin/sh\t\nexec multilog t ./main\n", (["multilog", "t", "./main"], False)),
    (b"#!/bin/sh\r\nexec multilog t ./main\n", None),           # the kernel wants "sh\r"
    (b"#!/bin/sh\nexec multilog t ./main\r\n", None),           # sh's last word: "./main\r"
    (b"#!/bin/sh\nexec multilog t\xc2\xa0./main\n", None),      # one word to sh
    (b"#!/bin/sh\nexec multilog t\x0b./main\n", None),
    (b"#!/bin/sh\nexec multilog t ./ma\x00in\n", None),
    (b"#!/bin/sh\nexec\n", None),
    (b"#!/bin/sh\n", None),
    (b"exec multilog t ./main\n", None),
])
def test_exec_words(script, words):
    assert builtinlog.exec_words(script) == words


# --- which log/run scripts are taken: exec_script in a scratch directory ----------------

OURS = os.path.dirname(sys.executable)     # the venv's bin/, where our console scripts are


@pytest.fixture
def in_log_dir(tmp_path, monkeypatch):
    """A scratch log directory as the current directory, our bin/ first in
    PATH, no PYTHONPATH: what supervise sees of a logger."""
    d = tmp_path / "log"
    d.mkdir()
    monkeypatch.chdir(d)
    monkeypatch.setenv("PATH", f"{OURS}:/usr/bin:/bin")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("PYTHONHOME", raising=False)
    return d


def test_exec_script_takes_the_plain_forms(in_log_dir):
    write_script(in_log_dir / "run", "#!/bin/sh\nexec 2>&1\nexec multilog t s100 ./main\n")
    assert builtinlog.exec_script() == (["t", "s100", "./main"], None, True)
    write_script(in_log_dir / "run", "#!/bin/sh\nexec setuidgid log multilog t ./main\n")
    assert builtinlog.exec_script() == (["t", "./main"], "log", False)
    write_script(in_log_dir / "run", f"#!/bin/sh\nexec {OURS}/multilog t ./main\n")
    assert builtinlog.exec_script() == (["t", "./main"], None, False)


@pytest.mark.parametrize("case", ["no x bit", "symlink", "PYTHONPATH", "no PATH", "help",
                                  "a copy first in PATH", "not svtree's next to python"])
def test_exec_script_leaves_the_rest_to_exec(in_log_dir, tmp_path, monkeypatch, case):
    text = "#!/bin/sh\nexec multilog t ./main\n"
    write_script(in_log_dir / "run", text)
    if case == "no x bit":
        (in_log_dir / "run").chmod(0o644)
    elif case == "symlink":
        write_script(tmp_path / "elsewhere", text)
        (in_log_dir / "run").unlink()
        (in_log_dir / "run").symlink_to(tmp_path / "elsewhere")
    elif case == "PYTHONPATH":
        monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    elif case == "no PATH":
        monkeypatch.delenv("PATH")
    elif case == "help":
        write_script(in_log_dir / "run", "#!/bin/sh\nexec setuidgid --help multilog t ./main\n")
    elif case == "a copy first in PATH":      # the same bytes, another file
        (tmp_path / "bin").mkdir()
        write_script(tmp_path / "bin" / "multilog", Path(OURS, "multilog").read_text())
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{OURS}")
    elif case == "not svtree's next to python":   # a system Python beside daemontools
        (tmp_path / "bin").mkdir()
        write_script(tmp_path / "bin" / "multilog", "#!/bin/sh\nexec cat\n")
        monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python3"))
        monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert builtinlog.exec_script() is None


def test_exec_script_without_an_interpreter_path(in_log_dir, monkeypatch):
    write_script(in_log_dir / "run", "#!/bin/sh\nexec multilog t ./main\n")
    for exe in (None, "", "python3"):
        monkeypatch.setattr(sys, "executable", exe)
        assert builtinlog.exec_script() is None


def test_an_unknown_account_ends_the_logger_with_111(tmp_path):
    """builtinlog.fork's child looks the account up, says what setuidgid
    says, and exits 111 without ever returning to its caller."""
    code = ("import os, sys\nfrom svtree import builtinlog\n"
            "pid = builtinlog.fork(['./main'], 'no-such-account-here', 'x')\n"
            "print('returned in', 'parent' if pid else 'child', flush=True)\n"
            "_, status = os.waitpid(pid, 0)\nprint(os.waitstatus_to_exitcode(status))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.stdout.splitlines() == ["returned in parent", "111"]
    assert "setuidgid: fatal: unknown account no-such-account-here" in r.stderr
