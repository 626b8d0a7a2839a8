"""Fixtures: real service directories, real programs, polling with a deadline.

Rules (trio's): no sleeping to "give it time" -- poll a condition with a
deadline; every process a test starts is killed by its process group at the
end; nothing of the OS is mocked.
"""

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
    data = status_bytes(service_dir)
    return int.from_bytes(data[12:16], "little") if len(data) >= 16 else 0


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


# --- our programs run as another user --------------------------------------------------

NOBODY = ("nobody", 65534, 65534)          # (name, uid, gid), as test_faults' two_users


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
