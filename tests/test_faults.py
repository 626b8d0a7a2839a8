"""Faults, bad input and permissions (issue 7, items 1-3), with real processes.

Every process a test starts is killed at the end: the procs fixture takes the
process groups and descendants, and `strays` takes whatever still has its
working directory in the test's tree (services whose svscan was SIGKILLed are
nobody's descendants any more). Waits poll a condition with a deadline.

Covered elsewhere and not repeated here: supervise SIGKILLed under svscan
(test_scan), a new supervise adopting the ./run a killed one left
(test_supervise), multilog SIGKILLed while idle and a full disk
(test_multilog), a garbage status file mended by `svc -c` and the modes of
supervise/ as an ordinary user (test_supervise), the status codec's
Hypothesis properties (test_status), the state machine under any control
bytes (test_machine), the script parser and the pattern matcher
(test_logscript), setuidgid dropping groups (test_kit).

Not tested: a logger SIGKILLed while multilog runs a processor; svscan
SIGKILLed while it shuts the tree down; symlinks planted before an
ordinary user's supervise (same code path as root's).
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import pid_alive, program, run, status_bytes, status_pid, wait_until, write_script

SLEEPER = "#!/bin/sh\nexec sleep 1000\n"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (useradd, chown)")


# --- processes seen through /proc ------------------------------------------------

def cwd_of(pid):
    """The working directory of pid (bytes), without the " (deleted)" mark."""
    try:
        cwd = os.readlink(b"/proc/%d/cwd" % pid)
    except OSError:
        return None
    return cwd[:-len(b" (deleted)")] if cwd.endswith(b" (deleted)") else cwd


def all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def proc_stat(pid):
    """(state, ppid) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1])


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode(errors="replace")
    except OSError:
        return None


def processes_under(root):
    """Live processes whose working directory is root or below it."""
    root = os.fsencode(str(root))
    found = []
    for pid in all_pids():
        cwd = cwd_of(pid)
        st = proc_stat(pid)
        if cwd and st and st[0] != "Z" and (cwd == root or cwd.startswith(root + b"/")):
            found.append(pid)
    return found


def supervisors(service_dir):
    """The supervise processes working in service_dir: comm and cwd, as ps would show."""
    target = os.fsencode(str(service_dir))
    return sorted(p for p in all_pids() if comm(p) == "supervise" and cwd_of(p) == target
                  and proc_stat(p) and proc_stat(p)[0] != "Z")


def children(pid, state=None):
    return sorted(p for p in all_pids() if (st := proc_stat(p)) and st[1] == pid
                  and (state is None or st[0] == state))


def kill_everything(procs, roots):
    """The tests' own processes first, so no svscan restarts what is being
    killed; then whatever still works under one of roots."""
    procs.kill_all()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [p for root in roots for p in processes_under(root) if p != os.getpid()]
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


@pytest.fixture
def strays(procs, tmp_path):
    """Roots whose processes are killed at the end (tmp_path is one)."""
    roots = [tmp_path]
    yield roots
    kill_everything(procs, roots)


def probe(scandir, name="probe"):
    """Add a service and wait for it to run: svscan has scanned since."""
    d = scandir / name
    write_script(d / "run", SLEEPER)
    wait_until(lambda: status_pid(d), timeout=10)
    return d


def lines_of(path):
    """The complete lines of a file (a last line without newline is not one yet)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return data[:data.rfind(b"\n") + 1].splitlines()


# --- svscan SIGKILLed and started again -----------------------------------------------

COUNTER = "#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo $i; sleep 0.005; done\n"
CAT_LOG = "#!/bin/sh\nexec cat >> ../out\n"


def test_svscan_killed_and_restarted_duplicates_nothing_and_logs_flow(procs, strays, service,
                                                                      scandir):
    """The old supervise processes outlive svscan; the new svscan sees them
    (supervise/ok has a reader) and starts no second one, on its first scan
    and on a rescan. The service and its logger keep their pids, and the
    counter's lines go on arriving with no number missing."""
    talker = service("talker", run=COUNTER, log=CAT_LOG, parent=scandir)
    quiet = service("quiet", parent=scandir)
    dirs = [talker, talker / "log", quiet]
    first = procs.start(program("svscan"), scandir)
    out = talker / "out"
    wait_until(lambda: len(lines_of(out)) >= 20)
    sups = {d: wait_until(lambda d=d: len(supervisors(d)) == 1 and supervisors(d)) for d in dirs}
    pids = {d: status_pid(d) for d in dirs}
    first.kill()
    first.wait()
    seen = len(lines_of(out))
    second = procs.start(program("svscan"), scandir)
    probe(scandir, "first-scan")
    os.kill(second.pid, signal.SIGHUP)                  # and a full rescan
    probe(scandir, "rescan")
    wait_until(lambda: len(lines_of(out)) >= seen + 100)
    assert {d: supervisors(d) for d in dirs} == sups
    assert {d: status_pid(d) for d in dirs} == pids
    assert all(map(pid_alive, pids.values()))
    numbers = [int(n) for n in lines_of(out)]
    assert numbers == list(range(1, len(numbers) + 1))


@pytest.mark.parametrize("which", ["log", "main"])
def test_restarted_svscan_joins_a_new_supervise_to_the_old_pipe(procs, strays, service,
                                                                  scandir, which):
    """svscan SIGKILLed and started again; later the logger's supervise (or
    the service's) exits. The new svscan starts one in its place joined to
    the pipe the earlier svscan made, which it took from the survivor
    (/proc/PID/fd of the supervise holding supervise/lock): the service
    never meets a pipe with no reader (SIGPIPE, restarts), and not one
    line is lost, those the pipe held meanwhile included."""
    # multilog reads to the end of the line it is in when it gets TERM (cat
    # would lose what it had read but not written)
    # the count goes on across restarts of ./run (a number may come twice, none is skipped)
    counter = ("#!/bin/sh\ni=$(cat n 2>/dev/null || echo 0)\n"
               "while :; do i=$((i+1)); echo $i; echo $i > n; sleep 0.005; done\n")
    talker = service("talker", run=counter, log=f"#!/bin/sh\nexec {program('multilog')} ./main\n",
                     parent=scandir)
    first = procs.start(program("svscan"), scandir)
    out = talker / "log" / "main" / "current"
    wait_until(lambda: len(lines_of(out)) >= 20)
    pid = status_pid(talker)
    first.kill()
    first.wait()
    second = procs.start(program("svscan"), scandir)
    probe(scandir, "first-scan")
    gone = talker / "log" if which == "log" else talker
    old = supervisors(gone)
    if which == "log":
        run("svc", "-dx", gone)              # the logger and its supervise exit
    else:
        os.kill(old[0], signal.SIGKILL)      # its ./run lives on, adopted
    wait_until(lambda: supervisors(gone) and supervisors(gone) != old, timeout=10)
    if which == "main":                      # a ./run the new supervise starts itself
        wait_until(lambda: run("svok", talker).returncode == 0)
        run("svc", "-t", talker)
        pid = wait_until(lambda: status_pid(talker) not in (0, pid) and status_pid(talker))
    seen = len(lines_of(out))
    wait_until(lambda: len(lines_of(out)) >= seen + 100, timeout=10)
    assert status_pid(talker) == pid and pid_alive(pid)
    numbers = [int(n) for n in lines_of(out)]
    assert sorted(set(numbers)) == list(range(1, max(numbers) + 1))
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=20)


def test_restarted_svscan_brings_the_inherited_tree_down_on_sigterm(procs, strays, service,
                                                                    scandir):
    a = service("a", parent=scandir)
    first = procs.start(program("svscan"), scandir)
    pid = wait_until(lambda: status_pid(a))
    first.kill()
    first.wait()
    second = procs.start(program("svscan"), "-g", "1", scandir)
    probe(scandir)
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=15)
    wait_until(lambda: not pid_alive(pid), timeout=3,
               message="the service svscan inherited is still running")


def test_restarted_svscan_brings_down_an_inherited_service_that_is_removed(procs, strays,
                                                                           service, scandir):
    a = service("a", parent=scandir)
    first = procs.start(program("svscan"), scandir)
    pid = wait_until(lambda: status_pid(a))
    first.kill()
    first.wait()
    procs.start(program("svscan"), scandir)
    probe(scandir)
    subprocess.run(["rm", "-rf", a], check=True)
    wait_until(lambda: not pid_alive(pid), timeout=3,
               message="the removed service svscan inherited is still running")


# --- a logger restarted during a 20 000-line stream ------------------------------------

TOTAL = 20000
LINE = b"%06d abcdefghij"                  # 18 bytes with its newline: counts are sizes
WIDTH = len(LINE % 0) + 1
STREAM = f"""#!/bin/sh
i=0
while [ $i -lt {TOTAL} ]; do
  seq -f '%06g abcdefghij' $((i+1)) $((i+100))
  i=$((i+100))
  sleep 0.01
done
touch done
exec sleep 1000
"""


def logged_bytes(d):
    total = 0
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return 0
    for name in names:
        if name == "current" or name.startswith("@"):
            try:
                total += os.stat(os.path.join(d, name)).st_size
            except FileNotFoundError:
                pass            # renamed by a rotation: counted again next time
    return total


def everything(d):
    """Every line in a log directory, oldest file first."""
    d = Path(d)
    while True:
        try:
            names = sorted(p.name for p in d.iterdir() if p.name.startswith("@"))
            data = b"".join((d / n).read_bytes() for n in names) + (d / "current").read_bytes()
            return data.splitlines()
        except FileNotFoundError:
            continue             # a rotation renamed a file under us: read again


def stream_through_restarts(procs, service, scandir, letter):
    """Run the 20 000-line talker under svscan with multilog as its logger;
    send `svc -LETTER` to the logger at 5 000, 10 000 and 15 000 lines filed.
    Returns every line filed once the talker is done and the logger idle."""
    ml = program("multilog")
    talker = service("talker", run=STREAM, log=f"#!/bin/sh\nexec {ml} s16384 n1000 ./main\n",
                     parent=scandir)
    log, main = talker / "log", talker / "log" / "main"
    procs.start(program("svscan"), scandir)
    for mark in (5000, 10000, 15000):
        wait_until(lambda: logged_bytes(main) >= mark * WIDTH, timeout=30, interval=0.01)
        assert not (talker / "done").exists(), "the stream ended before the restart"
        old = status_pid(log)
        assert run("svc", f"-{letter}", log).returncode == 0
        wait_until(lambda: status_pid(log) not in (0, old), timeout=10)
    wait_until(lambda: (talker / "done").exists(), timeout=30)
    last = LINE % TOTAL
    wait_until(lambda: everything(main)[-1:] == [last], timeout=30, interval=0.05)
    return everything(main)


def test_logger_terminated_three_times_mid_stream_files_every_line_once(procs, strays, service,
                                                                        scandir):
    """svc -t: multilog finishes the line it holds and exits; what it has not
    read waits in the pipe svscan holds, for the next multilog."""
    lines = stream_through_restarts(procs, service, scandir, "t")
    assert len(lines) == TOTAL
    assert lines == [LINE % i for i in range(1, TOTAL + 1)]


def test_logger_sigkilled_three_times_mid_stream_repeats_nothing(procs, strays, service,
                                                                 scandir):
    """svc -k (SIGKILL, as kill -9, but without the backoff supervise applies to
    deaths it did not ask for): nothing is ever repeated, because a killed
    multilog's unfinished current is kept whole as @….u and never read back.

    Lines can be lost in one window only: multilog read() a chunk of the pipe
    (up to 64 KiB) and was killed before write() had filed it, and with it
    the unfinished line it held. The next multilog then starts in the middle
    of a line and files its tail: a torn line. So per kill, at most one run
    of missing lines no longer than a chunk, and at most one torn line.
    The counts are printed (pytest -s): typically 0 lost, as multilog spends
    its time waiting in poll(), not between read and write."""
    lines = stream_through_restarts(procs, service, scandir, "k")
    well_formed = re.compile(rb"\d{6} abcdefghij")
    good = [int(l[:6]) for l in lines if well_formed.fullmatch(l)]
    torn = len(lines) - len(good)
    repeated = len(good) - len(set(good))
    lost = sorted(set(range(1, TOTAL + 1)) - set(good))
    runs = [n for i, n in enumerate(lost) if i == 0 or lost[i - 1] != n - 1]
    print(f"\nmultilog SIGKILLed 3 times in {TOTAL} lines: lost {len(lost)} "
          f"(in {len(runs)} runs), repeated {repeated}, torn {torn}")
    assert repeated == 0
    assert good == sorted(good)
    assert len(runs) <= 3 and torn <= 3
    assert len(lost) <= 3 * ((1 << 16) // WIDTH + 2)


# --- odd services --------------------------------------------------------------------

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


# --- nonsense arguments to every program ------------------------------------------------

LONG = "x" * 5000
BAD = "\udcff\udcfe"             # the bytes ff fe: not UTF-8


def case(prog, args, code, bug=None):
    shown = " ".join(a if len(a) < 20 else a[:6] + "…" for a in args)
    marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
    return pytest.param(prog, args, code, marks=marks,
                        id=f"{prog} {shown}".strip().encode("unicode_escape").decode())


NONSENSE = [
    case("svscan", ["-Z"], 100), case("svscan", ["--bogus"], 100), case("svscan", ["-g"], 100),
    case("svscan", ["-g", "soon", "."], 100), case("svscan", ["-gnan", "."], 100),
    case("svscan", ["a", "b"], 100), case("svscan", ["--"], 100), case("svscan", [""], 111),
    case("svscan", ["a\nb"], 111), case("svscan", [LONG], 111),
    case("svscan", [BAD], 111),
    case("supervise", [], 100), case("supervise", ["-Z"], 100),
    case("supervise", ["a", "b"], 100), case("supervise", [""], 111),
    case("supervise", ["a\nb"], 111), case("supervise", [LONG], 111),
    case("supervise", [BAD], 111),
    case("svc", ["-Z", "d"], 100), case("svc", ["--bogus"], 100), case("svc", ["-u", ""], 111),
    case("svc", ["-u", "a\nb"], 111), case("svc", ["-u", LONG], 111),
    case("svc", ["-u", BAD], 111),
    case("svstat", ["-Z"], 0), case("svstat", [""], 0), case("svstat", [BAD], 0),
    case("svstat", [LONG], 0),
    case("svok", [], 100), case("svok", ["-Z"], 100), case("svok", [""], 111),
    case("svok", ["a\nb"], 111), case("svok", [BAD], 111), case("svok", [LONG], 111),
    case("multilog", [], 0), case("multilog", ["./a/b/c"], 111),
    case("multilog", ["/proc/nope/x"], 111), case("multilog", ["./" + LONG], 111),
    case("multilog", ["-Z", BAD, LONG, "=", "!", "s", "n0"], 0),
    case("multilog", ["s²", "./main"], 0),
    case("svtree", [], 100), case("svtree", ["-Z"], 100), case("svtree", ["logs"], 100),
    case("svtree", ["logs", "/nonexistent"], 100), case("svtree", ["logs", "-n", "x", "."], 100),
    case("svtree", [BAD], 100), case("svtree", ["logs", "."], 111),
    case("tai64n", ["-Z", BAD], 0), case("tai64nlocal", ["-Z", BAD], 0),
    case("setuidgid", [], 100), case("setuidgid", ["root"], 100),
    case("setuidgid", [BAD, "true"], 111), case("setuidgid", ["", "true"], 111),
    case("setuidgid", [LONG, "true"], 111),
    case("envuidgid", [], 100), case("envuidgid", ["x"], 100),
    case("envuidgid", [BAD, "true"], 111),
    case("envdir", [], 100), case("envdir", ["d"], 100), case("envdir", [BAD, "true"], 111),
    case("envdir", [LONG, "true"], 111),
    case("softlimit", [], 100), case("softlimit", ["-Z", "true"], 100),
    case("softlimit", ["-o"], 100), case("softlimit", ["-o", "x", "true"], 100),
    case("softlimit", ["-o", "²", "true"], 100), case("softlimit", ["-t", "9" * 30, "true"], 0),
    case("softlimit", [BAD], 111),
    case("setlock", [], 100), case("setlock", ["-Z", "f", "true"], 100),
    case("setlock", ["f"], 100), case("setlock", ["nodir/f", "true"], 111),
    case("setlock", [LONG, "true"], 111), case("setlock", ["f", BAD], 111),
    case("pgrphack", [], 100), case("pgrphack", [BAD], 111), case("pgrphack", [LONG], 111),
]
# daemontools prints an illegal option and the usage on two lines (kept for
# compatibility, see test_kit); every other message is one line
MESSAGE_LINES = {"svc": 2, "softlimit": 2, "setlock": 2}


@pytest.mark.parametrize("prog,args,code", NONSENSE)
def test_nonsense_arguments(prog, args, code, tmp_path):
    """The documented exit code, a short message naming the program, and no traceback."""
    r = subprocess.run([program(prog), *map(os.fsencode, args)], cwd=tmp_path,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    err = r.stderr.decode(errors="replace")
    assert "Traceback" not in err
    assert r.returncode == code, err
    if prog != "svstat":
        assert r.stdout == b""
    if code == 0:
        # multilog, as daemontools', ignores words that are no action; it says so
        assert all(line.startswith("multilog: warning: ") for line in err.splitlines()) \
            if prog == "multilog" else err == "", err
        return
    lines = err.splitlines()
    assert lines, "an error without a message"
    if prog == "svtree" and args == []:
        assert lines[0].startswith("Usage: svtree"), err     # no command: the help
        return
    assert lines[0].startswith(f"{prog}: "), err
    newlines = sum(a.count("\n") for a in args)         # a name with a newline is printed as is
    assert len(lines) <= MESSAGE_LINES.get(prog, 1) + newlines, err


# --- permissions ---------------------------------------------------------------------------

@pytest.fixture
def two_users():
    """Two throwaway accounts, each with a group of its own: [(name, uid, gid)] * 2."""
    if os.geteuid() != 0:
        pytest.skip("needs root to add users")
    import pwd
    created = []
    try:
        for tag in "ab":
            name = f"svtf{os.getpid() % 100000}{tag}"
            subprocess.run(["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", name],
                           check=True, capture_output=True)
            created.append(name)
        yield [(n, pwd.getpwnam(n).pw_uid, pwd.getpwnam(n).pw_gid) for n in created]
    finally:
        for name in created:
            subprocess.run(["userdel", "-r", name], capture_output=True)
            subprocess.run(["groupdel", name], capture_output=True)


@pytest.fixture
def open_tree(procs):
    """A directory every user can reach (tmp_path's parents are root's 0700)."""
    top = Path(tempfile.mkdtemp(prefix="svtree-faults-"))
    os.chmod(top, 0o755)
    yield top
    kill_everything(procs, [top])       # or supervise writes as rmtree deletes
    shutil.rmtree(top)


@pytest.fixture
def as_user(staged_programs):
    """as_user(user, prog, *args): one of our programs run to completion as
    user, from copies user can read wherever the checkout lives (conftest)."""
    return staged_programs.run
