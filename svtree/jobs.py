"""Transient jobs: services a program makes, watches and removes with
`svtree run` and `svtree rm`, the way a web service starts a background job
and checks back on it.

`svtree run [--once] [--name NAME] SCANDIR -- COMMAND ARGS...` builds the
service directory aside, in SCANDIR/.NAME.new (svscan skips names starting
with a dot), then renames it to SCANDIR/NAME, so svscan never sees half a
service. It holds:

    run          cd to the directory svtree run was started in, exec COMMAND
    log/multilog `t DIR`: the built-in logger, writing to SCANDIR/.log/NAME,
                 outside the service directory, so the log outlives it
    down         with --once: supervise waits for the `o` that svtree run
                 sends once it is up, so the job runs once, never restarted
    .svtree-run  the mark `svtree rm` asks for before it removes anything

The command runs with svscan's environment, not the caller's (a service's
environment is its run script's business: env in COMMAND, or envdir).

`svtree rm SCANDIR/NAME` renames the directory out of svscan's sight
(SCANDIR/.NAME.rm), which makes svscan bring the service down and its
logger drain (as for any removed service), waits until its supervise is
gone, then deletes the directory. The log directory stays. Only a
directory with the mark is removed: `svtree rm /service/db` of a service
someone wrote by hand is refused.
"""

import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from . import control, inotify, servicedir, unix
from .trust import INSTANCE_DIR

MARK = ".svtree-run"
LOGS = ".log"                   # SCANDIR/.log/NAME: the jobs' log directories
# no @: svscan reads NAME@HOST as a service for host HOST only
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class JobError(Exception):
    """A job that cannot be made or removed: the words say why."""


def check_name(name: str) -> str:
    if not name or name[0] in ".-" or not set(name) <= NAME_CHARS or len(name) > 200:
        raise JobError(f"not a usable service name: {name!r} (letters, digits, . _ -;"
                       " not starting with . or -)")
    return name


def new_name(scandir: Path, argv: list[str]) -> str:
    """The command's base name and a random suffix: sleep-3f9a2c."""
    base = "".join(c if c in NAME_CHARS else "_" for c in os.path.basename(argv[0]))
    base = base.lstrip(".-") or "job"
    while True:
        name = f"{base[:40]}-{os.urandom(3).hex()}"
        if not os.path.lexists(scandir / name):
            return name


def make(scandir: Path, argv: list[str], name: str | None = None, once: bool = False,
         cwd: str | None = None) -> Path:
    """Make the job's service directory in scandir (see the module
    docstring); its path. Raises JobError, OSError."""
    if not argv:
        raise JobError("no command given (svtree run SCANDIR -- COMMAND ARGS...)")
    if not scandir.is_dir():
        raise JobError(f"{scandir} is not a directory")
    name = check_name(name) if name else new_name(scandir, argv)
    final = scandir / name
    if os.path.lexists(final):
        raise JobError(f"{final} exists already")
    aside = Path(tempfile.mkdtemp(prefix=f".{name}.new.", dir=scandir))   # skipped by svscan
    logdir = (scandir / LOGS / name).absolute()
    try:
        os.chmod(aside, 0o755)
        (aside / "log").mkdir()
        cwd = os.getcwd() if cwd is None else cwd
        write(aside / "run", f"#!/bin/sh\nexec 2>&1\ncd {shlex.quote(cwd)} || exit 111\n"
                             f"exec {shlex.join(argv)}\n", 0o755)
        logdir.parent.mkdir(exist_ok=True)
        write(aside / "log" / "multilog", f"t {shlex.quote(str(logdir))}\n")
        write(aside / MARK, f"{shlex.join(argv)}\n")
        if once:
            write(aside / "down", "")
        os.rename(aside, final)
    except BaseException:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    return final


def write(path: Path, text: str, mode: int = 0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        unix.write_all(fd, text.encode())
    finally:
        os.close(fd)


def supervised(path: Path) -> bool:
    """Does a supervise hold path's ok fifo? One we cannot tell of counts."""
    try:
        return control.is_up(None, str(path))
    except OSError:
        return True


def any_supervised(path: Path) -> bool:
    """Does a supervise of path, its logger or one of its instances run?"""
    places = [path, path / "log"]
    try:
        places += [path / INSTANCE_DIR / k for k in os.listdir(path / INSTANCE_DIR)]
    except OSError:
        pass
    return any(supervised(p) for p in places)


def until(predicate, watches, timeout: float) -> bool:
    """Wait until predicate() is true, looking again at each inotify event
    on watches ((path, mask) pairs; one not there yet is skipped); False
    after timeout seconds (None: no limit)."""
    if predicate():
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    watcher = inotify.make()
    try:
        while True:
            for path, mask in watches:
                try:
                    watcher.add_watch(str(path), mask)
                except OSError:
                    pass            # not made yet: its parent's watch says when
            if predicate():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            watcher.read(timeout=None if left is None else max(1, int(left * 1000)))
    finally:
        watcher.close()


def supervise_watches(path: Path):
    """What changes when a supervise of path starts or ends: supervise/
    made, its ok fifo opened by it, or closed at its exit."""
    return [(path, inotify.CREATE | inotify.MOVED_TO),
            (path / "supervise", inotify.OPEN | inotify.CLOSE_NOWRITE | inotify.DELETE_SELF)]


def remove(path: Path, timeout: float) -> Path | None:
    """Take the job at path out of svscan's sight, wait until its supervise
    (and its logger's) is gone, delete it; its log directory (kept), if
    known. Raises JobError."""
    if not (path / MARK).is_file() or path.is_symlink():
        if not servicedir.is_service(path):
            raise JobError(f"{path} is not a service directory")
        raise JobError(f"{path} was not made by svtree run: not removing it "
                       "(svc -dx, then rm -r, do it by hand)")
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.rm.", dir=path.parent)) / path.name
    os.rename(path, aside)
    try:
        gone = until(lambda: not any_supervised(aside),
                     supervise_watches(aside) + supervise_watches(aside / "log"), timeout)
    except BaseException:
        os.rename(aside, path)              # interrupted: put back as it was
        os.rmdir(aside.parent)
        raise
    if not gone:
        os.rename(aside, path)
        os.rmdir(aside.parent)
        raise JobError(f"its supervise is still running after {timeout:g}s "
                       "(is svscan running on its scan directory?); put back")
    shutil.rmtree(aside.parent)
    logdir = path.parent / LOGS / path.name
    return logdir if logdir.is_dir() else None
