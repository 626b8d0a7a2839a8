"""The one home of syscalls that need care.

Python retries EINTR itself (PEP 475), so nothing here loops on it. Errors
that carry protocol meaning become named exceptions: ENXIO on a non-blocking
write-open of a fifo means no reader, i.e. supervise is not running.
"""

import _signal      # the C module: signal's enum wrappers cost a forked child memory
import errno
import os
import stat
import sys

from .errors import TEMPORARY, NotRunning, tell


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of data; a pipe or fifo may take it in pieces."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def replace_file(name: str, data: bytes, *, dir_fd: int | None = None,
                 mode: int = 0o644, durable: bool = False) -> None:
    """Readers see the old file or the new one, never half of either."""
    tmp = name + ".new"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
    except FileExistsError:    # whatever is there (a planted symlink, say) goes
        os.unlink(tmp, dir_fd=dir_fd)
        fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
    try:
        write_all(fd, data)
        if durable:            # logs: yes; supervise/status: no (runtime state)
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def open_dir(path: str) -> int:
    """An O_PATH descriptor of a directory: the `chdir` of the clients.

    Fails exactly where chdir(2) would (ENOENT, ENOTDIR, EACCES on the way)
    without changing the process's working directory.
    """
    return os.open(path, os.O_PATH | os.O_DIRECTORY)


class NotFifo(OSError):
    """What open_fifo_writer() opened is a regular file, a directory or a
    device, not a fifo."""

    def __str__(self):
        return "not a fifo"


def open_fifo_writer(name: str, dir_fd: int | None = None) -> int:
    """A non-blocking write end of a fifo, or NotRunning if nobody reads it.

    NAME is in a directory its owner may write: a regular file put there
    (or a hard link to someone else's) opens too, and what is written to
    it would land in that file. Only a fifo is returned; anything else
    raises NotFifo (an OSError) before a byte is written."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY,
                     dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise NotRunning() from None
        raise
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotFifo()
    return fd


def make_fifo(name: str, dir_fd: int, mode: int = 0o600, gid: int = -1,
              fresh: bool = False) -> None:
    """Ensure NAME in dir_fd is a fifo of the given mode and group (-1
    leaves it), replacing anything else; the mode and group are set through
    a descriptor of the fifo itself, never through a name.
    fresh: a new fifo even if one is there (whoever holds the old one open,
    from a time they were allowed to, holds nothing of ours any more).

    access() rather than catching FileNotFoundError: a forked supervise that
    raises no exception touches fewer of the pages it shares with svscan.
    """
    if not os.access(name, os.F_OK, dir_fd=dir_fd, follow_symlinks=False):
        os.mkfifo(name, mode, dir_fd=dir_fd)
    else:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if fresh or not stat.S_ISFIFO(st.st_mode):
            os.unlink(name, dir_fd=dir_fd)
            os.mkfifo(name, mode, dir_fd=dir_fd)
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):      # swapped meanwhile
            raise OSError(errno.EEXIST, f"{name} is not a fifo")
        if gid != -1:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


class NotRegular(ValueError):
    """What open_regular() found is a fifo, a directory or a device."""

    def __str__(self):
        return "not a regular file"


def open_regular(name: str, dir_fd: int | None = None) -> int:
    """A read-only fd of the regular file NAME, opened as a reader that
    trusts nothing its owner may have put there: without blocking (a fifo
    must not hang us: daemontools' open_read is non-blocking too), without
    following a symlink (to a device, or to a file we may read and its
    owner may not), without taking a terminal as controlling tty.

    Raises NotRegular for anything but a regular file, OSError otherwise.
    """
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY,
                 dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegular()
    return fd


def read_regular(name: str, dir_fd: int | None, size: int) -> bytes:
    """Up to size bytes of the regular file NAME (see open_regular)."""
    fd = open_regular(name, dir_fd)
    try:
        chunks = []
        while size > 0:
            data = os.read(fd, size)
            if not data:
                break
            chunks.append(data)
            size -= len(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


def open_fifo_reader(name: str, dir_fd: int) -> tuple[int, int]:
    """Open a fifo for reading and keep a writer too, so it never reads EOF.

    Returns (read fd, write fd); both are non-blocking and close-on-exec.
    """
    r = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=dir_fd)
    w = os.open(name, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=dir_fd)
    return r, w


def lock_nb(name: str, dir_fd: int) -> int:
    """Take an exclusive flock on NAME, or raise BlockingIOError (EAGAIN)."""
    import fcntl        # here, not at the top: svc, svstat and svok never lock
    fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                 0o600, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):      # a fifo must not be locked (or hang us)
            raise OSError(errno.EEXIST, f"{name} is not a regular file")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def kill(pid: int, signum: int) -> None:
    """Signal pid; nothing if it is gone, or someone else's now (a ./run
    that ran sudo): not ours to signal."""
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def copied_above(pairs):
    """pairs, (fd, target) to dup2() in a new process, with each fd first
    copied (close-on-exec) above every target: a source may be another
    pair's target, which its dup2() would clobber."""
    import fcntl        # svscan has it already (supervisedir.setup locks)
    top = max([2, *(target for _, target in pairs)]) + 1
    return [(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, top), target) for fd, target in pairs]


def _note(signum, frame):
    """Handlers do nothing: the wakeup pipe carries the signal to the loop."""


def wakeup_pipe(signals, ignored=()) -> int:
    """Route signals (plain ints) through a non-blocking pipe, whose read
    end is returned: a loop polls it with the rest of its fds and reads the
    signal numbers as bytes. ignored: signals set to SIG_IGN."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    _signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    for signum in signals:
        _signal.signal(signum, _note)
    for signum in ignored:
        _signal.signal(signum, _signal.SIG_IGN)
    return r


def reap():
    """Collect every child that has ended: yields (pid, wait status)."""
    while True:
        try:
            pid, wstatus = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, wstatus


def drain(fd: int, size: int = 4096) -> bytes:
    """Everything a non-blocking fd has to read right now."""
    chunks = []
    while True:
        try:
            data = os.read(fd, size)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
        if len(data) < size:
            break
    return b"".join(chunks)


def leave(code):
    """Exit a program at once: once its work is done and its output written,
    the interpreter's teardown (modules, objects, a last collection) only
    makes whoever waits for it wait longer. Output that cannot be written
    (a full disk, say) is an error, as it would be at a normal exit; a
    reader that went away (EPIPE) is not."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as e:
        if e.errno != errno.EPIPE and code == 0:
            prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "svtree"
            tell(prog, "fatal", "unable to write to standard output", e)
            code = TEMPORARY
    except ValueError:                      # closed
        pass
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)
