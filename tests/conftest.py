"""Fixtures: real service directories, real programs, polling with a deadline.

Rules (trio's): no sleeping to "give it time" -- poll a condition with a
deadline; every process a test starts is killed by its process group at the
end; nothing of the OS is mocked.
"""

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from svtree import status, tree

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

# A suite started in the background of a script (`.ci/run &`, nohup) inherits
# SIGINT ignored, and so would every program it starts: the tests that send
# SIGINT (Ctrl-C) would then wait for an exit that never comes. A handler of
# our own here is reset to the default in each program exec'd from the tests.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def program(name):
    """The path of one of our console scripts (installed next to python)."""
    path = BIN / name
    assert path.exists(), f"{name} not installed in {BIN}: run make test"
    return str(path)


def wait_until(predicate, timeout=10.0, interval=0.005, message=None):
    """Poll predicate until it returns something true; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def poll_until(predicate, timeout, interval=0.005):
    """Poll predicate until it returns something true or timeout seconds have
    passed, and return its last value without failing: for a test that
    asserts on what it finds then, where wait_until would fail with words of
    its own."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


def write_script(path: Path, text: str, mode=0o755):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def descendants(pid):
    """Every process below pid, found through the parent links in /proc."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


class Processes:
    """Starts programs in their own process group and kills them all at teardown."""

    def __init__(self):
        self.procs = []

    def start(self, *argv, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen([str(a) for a in argv], start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def kill_all(self):
        """KILL each process, its group, and every descendant (services run
        in sessions of their own, so the group alone would leave them)."""
        for proc in self.procs:
            doomed = descendants(proc.pid)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for pid in doomed:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            proc.wait()
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                if stream:
                    stream.close()


@pytest.fixture
def procs():
    p = Processes()
    yield p
    p.kill_all()


@pytest.fixture
def service(tmp_path):
    """Factory: service(name, run=..., finish=..., log=..., down=False) -> Path."""
    def make(name="svc", run="#!/bin/sh\nexec sleep 1000\n", finish=None, log=None,
             down=False, parent=None):
        d = (parent or tmp_path) / name
        d.mkdir(parents=True)
        if run is not None:
            write_script(d / "run", run)
        if finish is not None:
            write_script(d / "finish", finish)
        if log is not None:
            write_script(d / "log" / "run", log)
        if down:
            (d / "down").touch()
        return d
    return make


@pytest.fixture
def scandir(tmp_path):
    """An empty scan directory, tmp_path/service."""
    d = tmp_path / "service"
    d.mkdir()
    return d


def run(prog, *args, **kw):
    """Run one of our programs to completion; CompletedProcess with text output."""
    kw.setdefault("timeout", 30)
    return subprocess.run([program(prog), *map(str, args)], capture_output=True,
                          text=True, **kw)


SLEEPER = "#!/bin/sh\nexec sleep 1000\n"
NOTIFY_WHEN_GO = ("#!/bin/sh\nwhile [ ! -e go ]; do sleep 0.01; done\necho >&3\n"
                  "exec sleep 1000\n")


def start_supervise(procs, service_dir, **kw):
    """svtree's supervise on service_dir, once svok says it runs."""
    proc = procs.start(program("supervise"), service_dir, **kw)
    wait_until(lambda: run("svok", service_dir).returncode == 0)
    return proc


def read_state(service_dir):
    """supervise/state.json as a dict; {} while there is none (yet)."""
    try:
        return json.loads((Path(service_dir) / "supervise" / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def terminal_output(argv, env=None):
    """(exit code, output) of argv run with a terminal (a pty) as stdout."""
    import pty
    master, slave = pty.openpty()
    try:
        code = subprocess.run([str(a) for a in argv], stdout=slave, env=env, timeout=30,
                              check=False).returncode
        os.close(slave)
        slave = None
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:                        # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    return code, out


def status_bytes(service_dir):
    try:
        return (Path(service_dir) / "supervise" / "status").read_bytes()
    except FileNotFoundError:
        return b""


def status_pid(service_dir):
    """The pid the status file says (0 without one), read as svstat reads it."""
    data = status_bytes(service_dir)
    return status.head(data)[2] if len(data) >= status.DAEMONTOOLS_SIZE else 0


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
    return True


def peer(name):
    """The path of a peer's program (daemontools, runit, s6), or skip."""
    # daemontools' svc and ours share a name: look only where Debian puts the peers
    path = shutil.which(name, path="/usr/bin:/usr/sbin:/bin:/sbin")
    if not path:
        pytest.skip(f"{name} not installed")
    return path


# --- processes seen through /proc ------------------------------------------------------

def proc_stat(pid):
    """(state, ppid) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1])


def children(pid, state=None):
    """The children of pid (those in state, if given: "Z" for zombies), sorted."""
    return sorted(p for p in all_pids() if (st := proc_stat(p)) and st[1] == pid
                  and (state is None or st[0] == state))


def comm(pid):
    """The command name of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode(errors="replace")
    except OSError:
        return None


def all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def cwd_of(pid):
    """The working directory of pid (bytes), without the " (deleted)" mark."""
    try:
        cwd = os.readlink(b"/proc/%d/cwd" % pid)
    except OSError:
        return None
    return cwd[:-len(b" (deleted)")] if cwd.endswith(b" (deleted)") else cwd


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


def supervise_pids(scanner_pid):
    """Children of svscan that are forked supervise processes."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if int(fields[1]) == scanner_pid and comm == "supervise" and fields[0] != "Z":
            pids.append(int(entry.name))
    return sorted(pids)


def sleepers_in(d):
    """`sleep 1000` processes whose working directory is d (/proc read with care:
    processes come and go while we look)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if (open(f"/proc/{p}/cmdline", "rb").read() == b"sleep\x001000\x00"
                    and os.readlink(f"/proc/{p}/cwd") == str(d)):
                found.append(int(p))
        except OSError:
            pass
    return found


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
    """Roots whose processes are killed at the end (tmp_path is one): services
    whose svscan was SIGKILLed are nobody's descendants any more, and procs
    alone would leave them running."""
    roots = [tmp_path]
    yield roots
    kill_everything(procs, roots)


# --- svscan and supervise at work ---------------------------------------------------------

def start_svscan(procs, scandir, *args, **kw):
    return procs.start(program("svscan"), *args, scandir, **kw)


def probe(scandir, name="probe"):
    """Add a service and wait for it to run: proof that svscan has scanned
    everything that happened before (it handles events in order)."""
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


def archives(d):
    return sorted(p.name for p in Path(d).iterdir() if p.name.startswith("@"))


def everything(d):
    """All lines in a log directory, oldest file first (retried if a rotation
    renames a file between listing and reading)."""
    d = Path(d)
    while True:
        if not d.exists():
            return []
        try:
            data = b"".join((d / name).read_bytes() for name in archives(d))
            if (d / "current").exists():
                data += (d / "current").read_bytes()
            return data.splitlines()
        except FileNotFoundError:
            continue


def pipe_bytes(fd):
    """Bytes waiting in the pipe behind fd (FIONREAD works on either end)."""
    import fcntl
    import termios
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4), "little")


def watch_mask(pid, path):
    """The mask of process pid's inotify watch on path, or None (/proc/PID/fdinfo)."""
    ino = os.stat(path).st_ino
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return None
    for fd in fds:
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        m = re.search(rf"^inotify wd:\S+ ino:{ino:x} .*?mask:([0-9a-f]+)", text, re.M)
        if m:
            return int(m.group(1), 16)
    return None


def watching(pid, path):
    """Does process pid hold an inotify watch on path?"""
    return watch_mask(pid, path) is not None


# --- what svtree shows of a tree ------------------------------------------------------------

def record(sv):
    """svtree's record of one service (what status --json shows of it)."""
    return tree.read(tree.Entry(Path(sv)))


def status_json(*args):
    r = run("svtree", "status", "--json", *args)
    assert r.stderr == ""
    return r.returncode, json.loads(r.stdout)


def states(*args):
    return {rec["service"]: rec["state"] for rec in status_json(*args)[1]}


@pytest.fixture
def mixed_tree(tmp_path, procs, service):
    """ready, up (not ready), down (normally), backing off, failed, and a logger
    (up: with no way to say it is ready, that is all it is shown as)."""
    scan = tmp_path / "scan"
    ready = service("ready", run="#!/bin/sh\necho >&3\nexec sleep 1000\n", parent=scan)
    (ready / "notification-fd").write_text("3\n")
    notready = service("notready", parent=scan)
    (notready / "notification-fd").write_text("3\n")
    service("down", parent=scan, down=True)
    crash = service("crash", run="#!/bin/sh\nexit 1\n", parent=scan)
    (crash / "backoff-max").write_text("30\n")
    failed = service("failed", run="#!/bin/sh\nexit 2\n", parent=scan)
    (failed / "max-deaths").write_text("1\n")
    service("logged", log="#!/bin/sh\nexec cat > /dev/null\n", parent=scan)
    start_svscan(procs, scan)
    expected = {f"{scan}/{name}": state for name, state in (
        ("crash", "backing off"), ("down", "down"), ("failed", "failed"), ("logged", "up"),
        ("logged/log", "up"), ("notready", "up"), ("ready", "ready"))}
    wait_until(lambda: states(scan) == expected, timeout=15)
    return scan


class Reader:
    """The output of a running program, read without blocking."""

    def __init__(self, stream):
        self.stream = stream
        os.set_blocking(stream.fileno(), False)
        self.data = b""

    def text(self):
        chunk = self.stream.read()
        if chunk:
            self.data += chunk
        return self.data.decode()

    def events(self):
        return [json.loads(line) for line in self.text().splitlines()]


# --- services laid out by hand: supervise/ok a fifo held open, the records written -------

def fake_supervised(tmp_path, name):
    """A service dir laid out as a supervise leaves it, with no supervise:
    supervise/ok a real fifo; the test writes the status files itself."""
    sv = tmp_path / name
    (sv / "supervise").mkdir(parents=True)
    write_script(sv / "run", SLEEPER)
    os.mkfifo(sv / "supervise" / "ok")
    return sv


def open_ok(sv):
    """Hold supervise/ok open for reading, as a live supervise does."""
    return os.open(sv / "supervise" / "ok", os.O_RDONLY | os.O_NONBLOCK)


PID = 4321


def status_record(pid=PID, stamp=None, state=1):
    """20 status bytes: up (state 1) with pid since stamp, wanting up."""
    stamp = int(time.time()) if stamp is None else stamp
    return ((2**62 + 10 + stamp).to_bytes(8, "big") + bytes(4) + pid.to_bytes(4, "little")
            + b"\0u\0" + bytes([state])), stamp


def state_json(stamp, **fields):
    """A state.json that matches status_record(stamp=stamp): ready unless told."""
    record = {"service": "x", "state": "run", "want": "up", "pid": PID, "since": float(stamp),
              "ready": True, "ready_since": float(stamp), "starts": 1, "last_exit": None,
              "failed": False, "quick_deaths": 0}
    record.update(fields)
    return json.dumps(record).encode()


class Fake:
    """A service dir that looks supervised: supervise/ok is a fifo we hold open."""

    def __init__(self, parent: Path, name="svc"):
        self.path = parent / name
        (self.path / "supervise").mkdir(parents=True)
        write_script(self.path / "run", SLEEPER)
        os.mkfifo(self.path / "supervise" / "ok")
        self.ok = os.open(self.path / "supervise" / "ok", os.O_RDONLY | os.O_NONBLOCK)
        self.stamp = None

    def write(self, status=None, record=None):
        """Write status (default: up, now) and state.json (default: a ready
        record of that run; b"" removes it; anything else, as is)."""
        sup = self.path / "supervise"
        if status is None:
            status, self.stamp = status_record()
        replace(sup / "status", status)
        if record is None:
            record = state_json(self.stamp)
        if record == b"":
            with contextlib.suppress(FileNotFoundError):
                (sup / "state.json").unlink()
        else:
            replace(sup / "state.json", record)

    def close(self):
        os.close(self.ok)


def replace(path: Path, data):
    """Whatever is at path (a fifo, a symlink, a dir) gives way to data."""
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif os.path.lexists(path):
        path.unlink()
    path.write_bytes(data)


@pytest.fixture
def fakes(tmp_path):
    """Factory of Fake services in tmp_path/scan; their ok fifos closed at the end."""
    made = []

    def make(name="svc"):
        made.append(Fake(tmp_path / "scan", name))
        return made[-1]
    yield make
    for fake in made:
        fake.close()


# --- our programs run as another user --------------------------------------------------

NOBODY = ("nobody", 65534, 65534)          # (name, uid, gid), as test_trust's two_users


class StagedPrograms:
    """Our console scripts, staged where any user can read them, and run as
    another user through setpriv (so: as root only).

    The venv's scripts will not do: their interpreter may be a link into a
    directory only root can enter (/root/.pyenv), and the checkout itself may
    sit in one (a `mktemp -d`); the other user then gets "Permission denied".
    """

    def __init__(self, top: Path, python: str):
        self.top = top
        self.python = python
        self.bin = top / "bin"

    def program(self, name):
        path = self.bin / name
        assert path.exists(), f"{name} is not a console script in pyproject.toml"
        return str(path)

    def argv(self, user, prog, *args):
        _, uid, gid = user
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                self.program(prog), *map(str, args)]

    def run(self, user, prog, *args, **kw):
        """Run prog as user to completion; CompletedProcess with text output."""
        kw.setdefault("timeout", 30)
        kw.setdefault("cwd", "/")      # the test's own may be a directory user cannot enter
        return subprocess.run(self.argv(user, prog, *args), capture_output=True, text=True,
                              **kw)

    def start(self, procs, user, prog, *args, **kw):
        """Start prog as user through procs (a Processes), which kills it at teardown."""
        kw.setdefault("cwd", "/")
        return procs.start(*self.argv(user, prog, *args), **kw)


@pytest.fixture(scope="session")
def staged_programs():
    """StagedPrograms in a fresh 0755 directory, removed at the end of the session.
    Skips unless root with setpriv, or when no Python another user can run is found."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("acting as another user needs root and setpriv")
    top = Path(tempfile.mkdtemp(prefix="svtree-staged-"))
    try:
        yield stage_programs(top)
    finally:
        shutil.rmtree(top)


def stage_programs(top: Path) -> StagedPrograms:
    lib = top / "lib"
    project = pyproject()
    stage_sources(lib, project)
    make_readable(top)
    python = python_for_another_user(lib)
    for name, entry in project["scripts"].items():
        module, func = entry.split(":")
        write_script(top / "bin" / name, STAGED_SCRIPT.format(
            python=python, name=name, lib=str(lib), module=module, func=func))
    # byte code now, as root: the other user cannot write __pycache__ here, and
    # would otherwise compile every module at every start
    subprocess.run([python, "-I", "-m", "compileall", "-q", str(lib)], check=True,
                   stdout=subprocess.DEVNULL)
    make_readable(top)
    return StagedPrograms(top, python)


# -I: the caller's PYTHONPATH, user site and working directory stay out of sys.path
STAGED_SCRIPT = """\
#!{python} -I
# {name}, staged for another user: svtree and its dependencies from {lib}
import sys
sys.path.insert(0, {lib!r})
from {module} import {func}
sys.exit({func}())
"""


def pyproject():
    import tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def stage_sources(lib: Path, project):
    """svtree's source from the checkout, and the files of each run-time
    dependency (pure Python) from this venv, dist-info included
    (importlib.metadata reads it: click's version_option does)."""
    shutil.copytree(ROOT / "svtree", lib / "svtree",
                    ignore=shutil.ignore_patterns("__pycache__"))
    info = lib / f"svtree-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: svtree\nVersion: {project['version']}\n")
    for requirement in project["dependencies"]:
        dist = importlib.metadata.distribution(re.match(r"[\w.-]+", requirement).group())
        for file in dist.files:
            if file.parts[0] == ".." or "__pycache__" in file.parts:     # scripts, byte code
                continue
            (lib / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(file), lib / file)


def make_readable(top: Path):
    """0755 directories, 0644 files (0755 for scripts), whatever root's umask."""
    os.chmod(top, 0o755)
    for path in top.rglob("*"):
        executable = path.is_dir() or path.parent.name == "bin"
        os.chmod(path, 0o755 if executable else 0o644)


# what a staged program needs of its interpreter, printed to compare with root's view
PROBE = ("import sys; sys.path.insert(0, sys.argv[1]); import svtree.cli.svtree; "
         "print(sys.version_info >= (3, 11), sys.base_prefix)")


def python_for_another_user(lib: Path) -> str:
    """The venv's interpreter if another user can run it, else the system's;
    skip if neither works."""
    failures = []
    for python in (sys.executable, "/usr/bin/python3"):
        failure = runs_for_another_user(python, lib)
        if not failure:
            return python
        failures.append(f"{python}: {failure}")
    pytest.skip("no Python >= 3.11 that uid 65534 can run with svtree staged in "
                f"{lib}: {'; '.join(failures)}")


def runs_for_another_user(python: str, lib: Path) -> str:
    """Why uid 65534 cannot run python with the staged lib ("" if it can).

    The exec goes through sh: setpriv re-applies its capabilities after the
    uid change, so its own execve (and the kernel's #! lookup) still has
    root's, and would reach an interpreter nobody can reach alone. Its
    base_prefix must be root's: an interpreter that cannot read its own
    standard library falls back to whatever it finds under /usr.
    """
    probe = [python, "-I", "-B", "-c", PROBE, str(lib)]
    try:
        mine = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except OSError as e:
        return str(e)
    theirs = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "/bin/sh", "-c", 'exec "$@"', "sh", *probe],
                            capture_output=True, text=True, timeout=30, cwd="/")
    if theirs.returncode != 0:
        lines = theirs.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit {theirs.returncode}"
    if not theirs.stdout.startswith("True ") or theirs.stdout != mine.stdout:
        return f"sees {theirs.stdout.strip()!r}, root sees {mine.stdout.strip()!r}"
    return ""
