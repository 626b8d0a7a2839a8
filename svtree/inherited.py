"""Supervise processes an earlier svscan left running (that svscan was
killed, or restarted): found, reached, and handed over without losing a
line.

Such a supervise is nobody's child here: svscan reaches it only through
its control and ok fifos (held open, they work even after its directory
is removed), and only in a supervise/ directory that is ours (trust.py),
since a fifo someone else planted is nobody's supervise. A logged
service's pipe between the two supervise processes is taken over from
them (join_pipe), so the supervise started in place of either, when the
other exits later, joins the same pipe with what the kernel holds in it.

What is believed comes from the kernel (procfs.py): /proc/locks says who
holds supervise/lock, and that process must be ours in every uid, work in
that directory and hold that lock open before its descriptors are used.
"""

import os
import select
import stat

from . import procfs, trust, unix
from .errors import NotRunning


class Inherited:
    """The supervise processes of an earlier svscan that svscan reaches
    through their fifos, and which of them it has told to go."""

    def __init__(self):
        self.by_ok = {}            # ok fd -> (Service, Proc)
        self.told = []             # told to go (tell): probed until gone
        self.poller = None         # the main loop's: an inherited supervise's exit wakes it

    def reach(self, service, proc):
        """Keep a way to reach proc, a supervise of an earlier svscan: its
        control and ok fifos, opened once."""
        if proc.control >= 0:
            return
        sdir = open_supervise(proc.path)
        if sdir is None:
            return
        try:
            proc.control = unix.open_fifo_writer("control", sdir)
            proc.ok = unix.open_fifo_writer("ok", sdir)
        except (OSError, NotRunning):
            self.forget(proc)
            return
        finally:
            os.close(sdir)
        # POLLERR on our end of its ok fifo: its last reader, that supervise, is gone
        self.by_ok[proc.ok] = (service, proc)
        if self.poller is not None:
            self.poller.register(proc.ok, 0)

    def gone(self, fd):
        """The supervise whose ok fifo fd is has exited: forgotten. Its
        Service, for one of ours to take its place; None if fd is unknown."""
        service, proc = self.by_ok.get(fd, (None, None))
        if proc is not None:
            self.forget(proc)
        return service

    def forget(self, proc):
        if proc.ok in self.by_ok:
            del self.by_ok[proc.ok]
            if self.poller is not None:
                self.poller.unregister(proc.ok)
        for fd in (proc.control, proc.ok):
            if fd >= 0:
                os.close(fd)
        proc.control = proc.ok = -1
        if proc in self.told:
            self.told.remove(proc)

    def tell(self, service):
        """Bring the service down: each of its supervise processes gets d
        and x, the logger's x, so it exits once its logger has drained the
        pipe."""
        for proc in service.runs():
            self.tell_one(proc, b"dx")
        if service.log is not None:
            self.tell_one(service.log, b"x")

    def tell_one(self, proc, letters):
        if proc.control >= 0:
            try:
                os.write(proc.control, letters)
                self.told.append(proc)
            except OSError:
                self.forget(proc)

    def probe(self):
        """Forget the supervise processes told to go that are gone: a byte
        written to their ok fifo (which supervise never reads) meets EPIPE.
        Their exit cannot be waited for: svscan probes 10 times a second."""
        for proc in list(self.told):
            try:
                os.write(proc.ok, b"\0")
            except BlockingIOError:
                pass               # full after hours of probing: still there
            except OSError:
                self.forget(proc)

    def kill(self):
        """The grace period is over: each supervise told to go is asked to
        KILL its service (we cannot check what it runs). The paths of the
        services' (not the loggers') supervise processes asked."""
        asked = []
        for proc in self.told:
            if not proc.path.endswith("/log"):
                tell_kill(proc)
                asked.append(proc.path)
        return asked

    def kill_all(self):
        """The last call: every one told is asked to KILL, and forgotten
        (each exits when its service has gone)."""
        for proc in self.told:
            tell_kill(proc)
        self.told = []


def join_pipe(service):
    """A service whose supervise (or its logger's) an earlier svscan
    started, and which still runs: take the pipe between the two from it,
    so that the supervise we start in place of either (when the other
    exits later) is joined to the same pipe, with what the kernel holds in
    it, rather than to a new one nobody else writes or reads."""
    found = [p for p in (inherited_pipe(service.main.path, 1),
                         inherited_pipe(service.log.path, 0)) if p]
    own = {identity(fd) for fd in (1, 2)}      # ours: no service's log pipe
    good = [p for p in found if p[2] not in own]
    if len(good) == 2 and good[0][2] != good[1][2]:
        good = []               # both alive, not joined to each other: leave them be
    for r, w, _ in found:
        if not good or (r, w) != good[0][:2]:
            os.close(r)
            os.close(w)
    if good:
        for end in service.pipe:
            os.close(end)
        service.pipe = good[0][:2]


def open_supervise(path):
    """An fd of path/supervise/ if it is one we may believe (trust.py), or None."""
    # access() first: a new service (the usual case here, just before its
    # supervise is forked) raises no exception. What svscan allocates
    # between two forks dirties pages the children it forked still share.
    if not os.access(os.path.join(path, trust.SUPERVISE), os.F_OK, follow_symlinks=False):
        return None
    try:
        here = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        sdir = trust.open_supervise(here)
    except (OSError, trust.Untrusted):
        return None
    finally:
        os.close(here)
    try:
        trust.check(sdir)
    except (OSError, trust.Untrusted):
        os.close(sdir)
        return None
    return sdir


def identity(fd):
    """(device, inode) of what fd is, or None."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def inherited_pipe(path, fd):
    """(read end, write end, (device, inode)) of the pipe on descriptor fd
    of the supervise that holds path/supervise/lock, if that is a process
    of ours, working in path, with that very lock open (the kernel's word
    on each: /proc/locks, its uid, its cwd, its fds); None otherwise."""
    sdir = open_supervise(path)
    if sdir is None:
        return None
    try:
        lock = os.stat("lock", dir_fd=sdir, follow_symlinks=False)
        here = os.stat(path)
    except OSError:
        return None
    finally:
        os.close(sdir)
    for pid in procfs.lock_holders(lock.st_ino):
        pipe = pipe_of(pid, fd, (here.st_dev, here.st_ino), (lock.st_dev, lock.st_ino))
        if pipe:
            return pipe
    return None


def pipe_of(pid, fd, here, lock):
    """(read end, write end, (device, inode)) of the pipe on descriptor fd
    of process pid, if pid is ours in every uid, works in directory here,
    holds the file lock open (both (device, inode)), and has not that pipe
    as its stderr too (a supervise started in someone's pipeline, or whose
    stdout is a terminal or svscan's own output, has no log pipe to give);
    None otherwise.

    Its uids are checked first (nothing of another user's is looked at:
    a cwd on a hung file system must not hang us). All checks come after a
    pidfd is open, and the process must still be alive after the pipe was
    opened: the ends are of the process the pidfd holds."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    ends = []
    try:
        proc = f"/proc/{pid}"
        if procfs.proc_uids(pid) != [os.geteuid()] * 4:
            return None
        end = f"{proc}/fd/{fd}"
        st = os.stat(end)
        pipe = st.st_dev, st.st_ino
        if (not stat.S_ISFIFO(st.st_mode) or not procfs.same_file(f"{proc}/cwd", here)
                or not procfs.holds(pid, lock) or procfs.same_file(f"{proc}/fd/2", pipe)):
            return None
        for flags in (os.O_RDONLY, os.O_WRONLY):     # reader first: no ENXIO
            ends.append(os.open(end, flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC))
        if any(identity(e) != pipe for e in ends):
            return None
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        if p.poll(0):                 # it exited meanwhile: the number may be another's
            return None
        for e in ends:
            os.set_blocking(e, True)
        r, w = ends
        ends = []
        return r, w, pipe
    except OSError:
        return None
    finally:
        for e in ends:
            os.close(e)
        os.close(pidfd)


def is_supervised(path):
    """True if some supervise already reads path/supervise/ok, in a
    supervise/ that is ours."""
    sdir = open_supervise(path)
    if sdir is None:
        return False
    try:
        os.close(unix.open_fifo_writer("ok", sdir))
        return True
    except (OSError, NotRunning):
        return False
    finally:
        os.close(sdir)


def tell_kill(proc):
    """A supervise of an earlier svscan is not our child: we cannot check
    what it runs, so it is asked (k on its control fifo) to KILL its own."""
    try:
        os.write(proc.control, b"k")
    except OSError:
        pass


