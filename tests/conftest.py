"""Fixtures: real service directories, real programs, polling with a deadline.

Rules (trio's): no sleeping to "give it time" -- poll a condition with a
deadline; every process a test starts is killed by its process group at the
end; nothing of the OS is mocked.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


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


def run(prog, *args, **kw):
    """Run one of our programs to completion; CompletedProcess with text output."""
    kw.setdefault("timeout", 30)
    return subprocess.run([program(prog), *map(str, args)], capture_output=True,
                          text=True, **kw)


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
