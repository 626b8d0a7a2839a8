"""Interop with the real daemontools (0.76) and runit (2.1.2) programs.

Both directions, with real processes in tmp_path:

* daemontools' svc/svstat/svok and runit's sv drive and read svtree's supervise;
* svtree's svc/svstat/svok drive and read daemontools' supervise (18-byte
  status) and runit's runsv (20-byte status);
* the status file svtree writes means, byte for byte, what runsv's means.

Our programs and daemontools' share names: program(name) is ours (in the
venv), peer(name) is theirs (in /usr/bin; the test skips if not installed).
runit's sv is run with SVDIR unset and "./s" names, so it never looks in
/etc/service.
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

from conftest import pid_alive, program, peer, run, status_bytes, wait_until

NORMAL = "#!/bin/sh\nexec sleep 1000\n"
DEAF = "#!/bin/sh\ntrap '' TERM\nexec sleep 1000\n"     # ignores TERM (and so does sleep)
FINISHER = "#!/bin/sh\nexec sleep 1001\n"                # a finish that lasts

SUPERVISORS = ("svtree", "daemontools", "runit")


# --- cleanup -----------------------------------------------------------------

def processes_in(directory: Path):
    """Pids of the processes whose working directory is under directory."""
    found = []
    prefix = str(directory)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == prefix or cwd.startswith(prefix + "/"):
            found.append(int(entry))
    return found


@pytest.fixture(autouse=True)
def sweep(tmp_path):
    """Kill what the supervisors started in tmp_path.

    svtree's supervise runs ./run in a session of its own, so killing the
    supervise's process group (the procs fixture) does not reach it. Every
    supervisor and every service here runs in a directory under tmp_path:
    kill those, by pid, until none is left. (Set up before procs, so torn
    down after it.)
    """
    yield
    deadline = time.monotonic() + 10
    while True:
        pids = [pid for pid in processes_in(tmp_path) if pid_alive(pid)]
        if not pids or time.monotonic() > deadline:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


# --- running the programs ----------------------------------------------------

def theirs(name, *args, cwd=None):
    """Run a peer's program (daemontools or runit), SVDIR unset."""
    env = {k: v for k, v in os.environ.items() if k != "SVDIR"}
    return subprocess.run([peer(name), *map(str, args)], capture_output=True, text=True,
                          timeout=30, env=env, cwd=cwd)


def ours(name, *args, cwd=None):
    return run(name, *args, cwd=cwd)


def ok_fifo_open(d: Path) -> bool:
    """The liveness probe, done here so as to depend on neither svok."""
    try:
        fd = os.open(d / "supervise" / "ok", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    os.close(fd)
    return True


SUPERVISE_PROGRAM = {
    "svtree": lambda: program("supervise"),
    "daemontools": lambda: peer("supervise"),
    "runit": lambda: peer("runsv"),
}


def start(procs, who: str, d: Path):
    """Start supervisor `who` on d; return once it answers and has written its status."""
    proc = procs.start(SUPERVISE_PROGRAM[who](), d)
    wait_until(lambda: ok_fifo_open(d) and len(status_bytes(d)) >= 18 or proc.poll() is not None,
               message=f"{who} supervise of {d} did not come up")
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc


# --- reading the status file --------------------------------------------------

class Fields(NamedTuple):
    size: int
    seconds: int
    nanoseconds: int
    pid: int
    paused: int
    want: bytes
    term: int | None       # runit layout only
    state: int | None      # runit layout only


def fields(d: Path) -> Fields | None:
    data = status_bytes(d)
    if len(data) < 18:
        return None
    long = len(data) >= 20
    return Fields(len(data), int.from_bytes(data[:8], "big") - (2**62 + 10),
                  int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "little"),
                  data[16], data[17:18], data[18] if long else None, data[19] if long else None)


def proc_state(pid: int) -> str | None:
    """The one-letter state of /proc/PID/stat (R, S, T, Z...), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def stopped(pid: int) -> bool:
    """True if the process is stopped (SIGSTOP)."""
    return proc_state(pid) in ("T", "t")


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def execed(pid: int) -> bool:
    """True once the process is our `sleep` (a supervisor writes the pid of its
    child before the child has exec'd ./run, and ./run execs sleep)."""
    return cmdline(pid)[:1] == ["sleep"] and pid_alive(pid)


def running(d: Path):
    """The pid of ./run if the status says it runs and it has become sleep, else 0."""
    f = fields(d)
    if not f or not f.pid or f.state not in (None, 1) or not execed(f.pid):
        return 0
    return f.pid


def down(d: Path) -> bool:
    f = fields(d)
    return bool(f) and f.pid == 0 and f.state in (None, 0)


def stays(predicate, seconds: float, interval=0.02):
    """Assert predicate holds all through the next `seconds` (a negative check:
    something that would have happened by then did not)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert predicate(), "condition stopped holding"
        time.sleep(interval)


# --- comparing the words -----------------------------------------------------

def seconds_free(line: str) -> str:
    """A status line without the seconds counts, which depend on the clock."""
    line = re.sub(r"\b\d+ seconds\b", "N seconds", line)
    return re.sub(r"(: |\) )\d+s\b", r"\1Ns", line)


SV_LINE = re.compile(r"^(run|down|finish): (.+?): (?:\(pid (\d+)\) )?(\d+)s(.*)$")


def sv_as_svstat(line: str) -> str:
    """runit's `sv status` line in daemontools' svstat words.

    sv and svstat decide the suffixes by the same rules; sv adds ", got TERM"
    (byte 18), which the 18 bytes svstat reads cannot say, and says `finish:`
    where svstat says `up` (the pid is finish's).
    """
    m = SV_LINE.match(line)
    assert m, f"not an sv status line: {line!r}"
    _word, name, pid, secs, rest = m.groups()
    head = f"up (pid {pid}) " if pid else "down "
    return f"{name}: {head}{secs} seconds{rest.replace(', got TERM', '')}"


def svstat_lines(parent: Path, name="./s"):
    """(daemontools' svstat, ours) for name, seconds left out."""
    theirs_out = theirs("svstat", name, cwd=parent)
    ours_out = ours("svstat", name, cwd=parent)
    assert theirs_out.returncode == 0 and ours_out.returncode == 0
    assert ours_out.stderr == ""
    return (seconds_free(theirs_out.stdout).splitlines(),
            seconds_free(ours_out.stdout).splitlines())


def assert_svstat_agrees(parent: Path, expected: str, name="./s"):
    """daemontools' svstat and ours print the same line, and it is `expected`."""
    dt, mine = svstat_lines(parent, name)
    assert mine == dt
    assert mine == [seconds_free(expected)]


def sv_status(parent: Path, name="./s"):
    out = theirs("sv", "status", name, cwd=parent)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.rstrip("\n")


# --- the states that every reader must word alike ----------------------------

class State(NamedTuple):
    run: str
    down_file: bool
    letters: str                  # given to our svc once the service is in place
    settled: Callable              # (service dir) -> true once the state is reached
    svstat: str                    # daemontools' words after "./s: ", {pid} filled in
    sv: str                        # runit's words, {pid} filled in
    finish: str | None = None
    runit_layout_only: bool = False   # not visible in daemontools' 18 bytes


def _pid_is(d, cond):
    f = fields(d)
    return bool(f) and f.pid and execed(f.pid) and cond(f)


STATES = {
    "up": State(NORMAL, False, "",
                lambda d: _pid_is(d, lambda f: f.state in (None, 1) and not f.paused),
                "up (pid {pid}) 0 seconds", "run: ./s: (pid {pid}) 0s"),
    "paused": State(NORMAL, False, "p",
                    lambda d: _pid_is(d, lambda f: f.paused and stopped(f.pid)),
                    "up (pid {pid}) 0 seconds, paused", "run: ./s: (pid {pid}) 0s, paused"),
    "down": State(NORMAL, False, "d",
                  lambda d: down(d) and fields(d).want == b"d",
                  "down 0 seconds, normally up", "down: ./s: 0s, normally up"),
    "want down, TERM ignored": State(
        DEAF, False, "d",
        lambda d: _pid_is(d, lambda f: f.want == b"d" and f.term in (None, 1)),
        "up (pid {pid}) 0 seconds, want down", "run: ./s: (pid {pid}) 0s, want down, got TERM"),
    "got TERM, want up": State(
        DEAF, False, "t", lambda d: _pid_is(d, lambda f: f.want == b"u" and f.term == 1),
        "up (pid {pid}) 0 seconds", "run: ./s: (pid {pid}) 0s, got TERM",
        runit_layout_only=True),
    "normally down": State(NORMAL, True, "",
                           lambda d: down(d) and fields(d).want == b"d",
                           "down 0 seconds", "down: ./s: 0s"),
    "up, normally down": State(NORMAL, True, "u",
                               lambda d: _pid_is(d, lambda f: f.want == b"u"),
                               "up (pid {pid}) 0 seconds, normally down",
                               "run: ./s: (pid {pid}) 0s, normally down"),
    "finish runs": State(NORMAL, False, "t",
                         lambda d: _pid_is(d, lambda f: f.state == 2
                                           and cmdline(f.pid)[-1:] == ["1001"]),
                         "up (pid {pid}) 0 seconds", "finish: ./s: (pid {pid}) 0s",
                         finish=FINISHER, runit_layout_only=True),
}


def bring_to(procs, service, who: str, state: State, parent: Path) -> Path:
    """A service `s` under parent, supervised by `who`, in `state`."""
    d = service("s", run=state.run, finish=state.finish, down=state.down_file, parent=parent)
    start(procs, who, d)
    if not state.down_file:
        wait_until(lambda: running(d), message=f"{who}: ./run did not start")
    if state.letters:
        r = ours("svc", f"-{state.letters}", d)
        assert r.returncode == 0, r.stderr
    wait_until(lambda: state.settled(d), message=f"{who}: state not reached: {fields(d)}")
    return d


def state_cases():
    for who in SUPERVISORS:
        for name, state in STATES.items():
            if who == "daemontools" and (state.finish or state.runit_layout_only):
                continue            # 0.76 has no finish, and no byte for got TERM
            yield pytest.param(who, name, id=f"{who}-{name}")


@pytest.mark.parametrize("who,state_name", list(state_cases()))
def test_readers_agree(procs, service, tmp_path, who, state_name):
    """daemontools' svstat, runit's sv status and our svstat word each state alike,
    whichever supervisor wrote the status file."""
    state = STATES[state_name]
    parent = tmp_path / who
    d = bring_to(procs, service, who, state, parent)
    pid = fields(d).pid
    assert_svstat_agrees(parent, "./s: " + state.svstat.format(pid=pid))
    if who == "daemontools":
        # runit's sv insists on 20 bytes: daemontools' 18 are "bad format" to it
        out = theirs("sv", "status", "./s", cwd=parent)
        assert "unable to read supervise/status: bad format" in out.stdout + out.stderr
        assert out.returncode == 1
        return
    sv_line = sv_status(parent)
    assert seconds_free(sv_line) == seconds_free(state.sv.format(pid=pid))
    # line by line, sv and svstat agree once sv's words are put in svstat's
    assert seconds_free(sv_as_svstat(sv_line)) == svstat_lines(parent)[1][0]


# --- byte level: svtree's status file against runsv's -------------------------

def byte_cases():
    for name in STATES:
        yield pytest.param(name, id=name)
    yield pytest.param("once", id="once, up")


ONCE = State(NORMAL, False, "o",
             lambda d: _pid_is(d, lambda f: f.want in (b"\0", b"d")), "", "")


@pytest.mark.parametrize("state_name", list(byte_cases()))
def test_status_bytes_match_runsv(procs, service, tmp_path, state_name):
    """Same state, same commands: svtree's 20 bytes mean what runsv's 20 bytes mean."""
    state = ONCE if state_name == "once" else STATES[state_name]
    before = time.time()
    mine = bring_to(procs, service, "svtree", state, tmp_path / "svtree")
    runit = bring_to(procs, service, "runit", state, tmp_path / "runit")
    a, b = fields(mine), fields(runit)
    assert (a.size, b.size) == (20, 20)
    for f in (a, b):    # 0..11: TAI64N of a moment of this test
        assert f.nanoseconds < 10**9
        assert int(before) - 1 <= f.seconds <= time.time() + 1
    # 12..15: a live pid, or 0, in both
    assert bool(a.pid) == bool(b.pid)
    if a.pid:
        assert pid_alive(a.pid) and pid_alive(b.pid)
        # the same program (runsv writes the pid before its child has exec'd)
        wait_until(lambda: cmdline(a.pid)[:1] == cmdline(b.pid)[:1],
                   message=f"{cmdline(a.pid)} vs {cmdline(b.pid)}")
    # 16 paused, 17 want, 18 got TERM, 19 state
    assert (a.paused, a.want, a.term, a.state) == (b.paused, b.want, b.term, b.state)


# --- daemontools' and runit's clients drive svtree's supervise ----------------

def alive_and_changed(d, old):
    pid = running(d)
    return pid if pid and pid != old else 0


def test_daemontools_svc_drives_svtree(procs, service, tmp_path):
    d = service("s", run=NORMAL)
    proc = start(procs, "svtree", d)
    svc = lambda letters: theirs("svc", letters, d)   # noqa: E731

    pid1 = wait_until(lambda: running(d))
    assert fields(d).want == b"u"

    assert svc("-p").returncode == 0
    wait_until(lambda: fields(d).paused == 1 and stopped(pid1))
    assert_svstat_agrees(tmp_path, f"./s: up (pid {pid1}) 0 seconds, paused")

    assert svc("-c").returncode == 0
    wait_until(lambda: fields(d).paused == 0 and pid_alive(pid1) and not stopped(pid1))
    assert running(d) == pid1

    assert svc("-d").returncode == 0
    wait_until(lambda: not pid_alive(pid1) and down(d))
    assert fields(d).want == b"d"
    assert_svstat_agrees(tmp_path, "./s: down 0 seconds, normally up")

    # -o: start once (after the restart throttle), never restart
    assert svc("-o").returncode == 0
    pid2 = wait_until(lambda: alive_and_changed(d, pid1))
    # want: 0 as daemontools writes it (svstat: no want), or 'd' as runsv does
    # (svstat: ", want down"); svtree writes 0 today, see test_runit_sv_wait_once
    want = fields(d).want
    assert want in (b"\0", b"d")
    assert_svstat_agrees(tmp_path, f"./s: up (pid {pid2}) 0 seconds"
                         + (", want down" if want == b"d" else ""))
    os.kill(pid2, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid2) and down(d))
    stays(lambda: down(d), 1.5)         # longer than the 1 s restart throttle
    assert not any(pid_alive(p) and cmdline(p)[:2] == ["sleep", "1000"]
                   for p in processes_in(d))

    assert svc("-u").returncode == 0
    pid3 = wait_until(lambda: alive_and_changed(d, pid2))
    assert fields(d).want == b"u"

    # -x alone does not stop the service; supervise exits once it is down
    assert svc("-x").returncode == 0
    stays(lambda: proc.poll() is None and running(d) == pid3, 0.3)
    assert theirs("svok", d).returncode == 0
    assert svc("-d").returncode == 0
    assert proc.wait(timeout=10) == 0
    assert not pid_alive(pid3)
    assert theirs("svok", d).returncode == 100
    assert_svstat_agrees(tmp_path, "./s: supervise not running")


def test_daemontools_svc_dx_on_svtree(procs, service):
    d = service("s", run=NORMAL)
    proc = start(procs, "svtree", d)
    pid = wait_until(lambda: running(d))
    assert theirs("svc", "-dx", d).returncode == 0
    assert proc.wait(timeout=10) == 0
    assert not pid_alive(pid)
    assert down(d) and fields(d).want == b"d"


def test_daemontools_svok_on_svtree(procs, service):
    d = service("s", run=NORMAL)
    assert theirs("svok", d).returncode == 100        # no supervise/ yet
    proc = start(procs, "svtree", d)
    wait_until(lambda: running(d))
    assert theirs("svok", d).returncode == 0
    os.kill(proc.pid, signal.SIGKILL)                 # fifo left behind, nobody reads it
    proc.wait()
    assert theirs("svok", d).returncode == 100
    assert theirs("svok", d.parent / "missing").returncode == 111


def test_runit_sv_drives_svtree(procs, service, tmp_path):
    d = service("s", run=NORMAL)
    start(procs, "svtree", d)

    def sv(command, name="./s"):
        r = theirs("sv", command, name, cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    pid1 = wait_until(lambda: running(d))
    assert seconds_free(sv("status")) == f"run: ./s: (pid {pid1}) Ns\n"
    assert seconds_free(sv("status", str(d))) == f"run: {d}: (pid {pid1}) Ns\n"

    sv("pause")
    wait_until(lambda: fields(d).paused == 1 and stopped(pid1))
    assert seconds_free(sv("status")) == f"run: ./s: (pid {pid1}) Ns, paused\n"

    sv("cont")
    wait_until(lambda: fields(d).paused == 0 and pid_alive(pid1) and not stopped(pid1))
    assert seconds_free(sv("status")) == f"run: ./s: (pid {pid1}) Ns\n"

    sv("term")                         # TERM; want is still up: a new ./run
    pid2 = wait_until(lambda: alive_and_changed(d, pid1))
    assert not pid_alive(pid1)
    assert fields(d).want == b"u"

    sv("down")
    wait_until(lambda: not pid_alive(pid2) and down(d))
    assert fields(d).want == b"d"
    assert seconds_free(sv("status")) == "down: ./s: Ns, normally up\n"

    sv("once")
    pid3 = wait_until(lambda: alive_and_changed(d, pid2))
    os.kill(pid3, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid3) and down(d))
    stays(lambda: down(d), 1.5)        # not restarted

    sv("up")
    pid4 = wait_until(lambda: alive_and_changed(d, pid3))
    assert fields(d).want == b"u"
    assert seconds_free(sv("status", str(d))) == f"run: {d}: (pid {pid4}) Ns\n"


def test_runit_sv_wait_checks_pass_on_svtree(procs, service, tmp_path):
    """`sv -w N cmd` reads the status until it shows the command's effect:
    it must find it in svtree's status file as it does in runsv's."""
    d = service("s", run=NORMAL)
    start(procs, "svtree", d)
    pid1 = wait_until(lambda: running(d))

    def sv_wait(command):
        r = theirs("sv", "-w", "3", command, "./s", cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith("ok: "), r.stdout
        return seconds_free(r.stdout)

    assert sv_wait("pause") == f"ok: run: ./s: (pid {pid1}) Ns, paused\n"
    assert sv_wait("cont") == f"ok: run: ./s: (pid {pid1}) Ns\n"
    assert sv_wait("down") == "ok: down: ./s: Ns, normally up\n"
    assert not pid_alive(pid1)
    assert sv_wait("up").startswith("ok: run: ./s: (pid ")
    pid2 = running(d)
    assert pid2 and pid2 != pid1
    # sv's check for term: "started at or after the second sv started". A run
    # started in the same second would pass before the TERM lands, with runsv
    # as with us; so let that second go by first.
    wait_until(lambda: int(time.time()) > fields(d).seconds)
    assert sv_wait("term").startswith("ok: run: ./s: (pid ")
    assert not pid_alive(pid2)


@pytest.mark.parametrize("who", [
    "runit",
    "svtree",
])
def test_runit_sv_wait_once(procs, service, tmp_path, who):
    d = service("s", run=NORMAL, parent=tmp_path / who)
    start(procs, who, d)
    wait_until(lambda: running(d))
    r = theirs("sv", "-w", "2", "once", "./s", cwd=d.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok: run: ./s: (pid "), r.stdout


# --- svtree's clients drive daemontools' supervise and runit's runsv ----------

@pytest.mark.parametrize("who", ["daemontools", "runit"])
def test_svtree_clients_drive_peer(procs, service, tmp_path, who):
    parent = tmp_path / who
    d = service("s", run=NORMAL, parent=parent)
    proc = start(procs, who, d)
    size = 18 if who == "daemontools" else 20
    svc = lambda letters: ours("svc", letters, d)    # noqa: E731

    pid1 = wait_until(lambda: running(d))
    assert len(status_bytes(d)) == size
    assert ours("svok", d).returncode == 0
    assert_svstat_agrees(parent, f"./s: up (pid {pid1}) 0 seconds")

    assert svc("-p").returncode == 0
    wait_until(lambda: fields(d).paused == 1 and stopped(pid1))
    assert_svstat_agrees(parent, f"./s: up (pid {pid1}) 0 seconds, paused")

    assert svc("-c").returncode == 0
    wait_until(lambda: fields(d).paused == 0 and pid_alive(pid1) and not stopped(pid1))
    assert_svstat_agrees(parent, f"./s: up (pid {pid1}) 0 seconds")

    assert svc("-d").returncode == 0
    wait_until(lambda: not pid_alive(pid1) and down(d))
    assert fields(d).want == b"d"
    assert_svstat_agrees(parent, "./s: down 0 seconds, normally up")

    assert svc("-u").returncode == 0
    pid2 = wait_until(lambda: alive_and_changed(d, pid1))
    assert fields(d).want == b"u"
    assert_svstat_agrees(parent, f"./s: up (pid {pid2}) 0 seconds")

    # -o: daemontools writes want 0 (svstat: no want), runit 'd' (", want down")
    assert svc("-o").returncode == 0
    once = b"\0" if who == "daemontools" else b"d"
    wait_until(lambda: fields(d).want == once)
    assert_svstat_agrees(parent, f"./s: up (pid {pid2}) 0 seconds"
                         + (", want down" if who == "runit" else ""))
    os.kill(pid2, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid2) and down(d))
    stays(lambda: down(d), 1.5)          # not restarted
    assert ours("svok", d).returncode == 0

    assert svc("-u").returncode == 0
    pid3 = wait_until(lambda: alive_and_changed(d, pid2))

    assert svc("-dx").returncode == 0
    assert proc.wait(timeout=10) == 0
    assert not pid_alive(pid3)
    assert ours("svok", d).returncode == 100
    assert_svstat_agrees(parent, "./s: supervise not running")


def test_svstat_error_lines_agree(tmp_path):
    """Where there is no status to read, our svstat words it as daemontools' does."""
    (tmp_path / "bare").mkdir()                               # no supervise/
    stale = tmp_path / "stale" / "supervise"                  # a supervise that died
    stale.mkdir(parents=True)
    os.mkfifo(stale / "ok")
    os.mkfifo(stale / "control")
    (tmp_path / "nothing").touch()
    names = ["./missing", "./bare", "./stale", "./nothing"]
    dt = theirs("svstat", *names, cwd=tmp_path)
    mine = ours("svstat", *names, cwd=tmp_path)
    assert (mine.returncode, mine.stdout) == (dt.returncode, dt.stdout)
    assert mine.stdout.splitlines()[:3] == [
        "./missing: unable to chdir: file does not exist",
        "./bare: unable to open supervise/ok: file does not exist",
        "./stale: supervise not running",
    ]
