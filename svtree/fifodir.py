"""supervise/event/, a fifodir as in s6: both ends of its protocol.

A reader creates a fifo in it (any name not starting with a dot), opens it
for reading, and gets one JSON line per state change: {"service", "event",
"time", "pid", "state", "want", "ready"} with event one of up, ready,
exited, down, failed, unhealthy, waiting (with "waiting_for": the
dependencies not ready) and blocked (with "blocked_by": those that cannot
be, and why). down, waiting and blocked are said again when a command
changes only what supervise wants of a service that is down.
supervise opens each fifo without blocking: a fifo with no reader is
removed, a reader whose pipe is full misses the line; nothing waits. The
lines of a change are written after status and state.json, so a reader who
looks at them on hearing of it finds it there.

The lines themselves are statejson.py's (event_fields, pack): this module
only carries bytes, so a reader (svtree events, svtree wait) loads no
daemon code.
"""

import os
import select

from . import unix

EVENT_DIR = "event"


def make_event_dir(sdir, gid):
    """supervise/event/: readers of group gid (root's unless the service's
    access file names a group) add fifos here. When the group changes, the
    fifos of the old one go: access taken back is taken back."""
    if not os.access(EVENT_DIR, os.F_OK, dir_fd=sdir, follow_symlinks=False):
        os.mkdir(EVENT_DIR, 0o700, dir_fd=sdir)
    fd = os.open(EVENT_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=sdir)
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (os.geteuid(), gid):
            os.fchown(fd, os.geteuid(), gid)
            os.fchmod(fd, 0o700)
            for name in os.listdir(fd):
                try:
                    os.unlink(name, dir_fd=fd)
                except OSError:
                    pass
        os.fchmod(fd, 0o3730)
    finally:
        os.close(fd)


def announce(sdir, lines):
    """Write lines (JSON lines as bytes) to every fifo of supervise/event/
    that has a reader. lines is consumed only if a fifo is there: given as
    a generator, no line is even made when nobody listens."""
    try:
        fd = os.open(EVENT_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=sdir)
    except OSError:
        return
    try:
        try:
            names = [n for n in os.listdir(fd) if not n.startswith(".")]
        except OSError:                          # out of descriptors: nobody told
            return
        if names:
            writes = whole_writes(lines)
            for name in names:
                tell(fd, name, writes)
    finally:
        os.close(fd)


def whole_writes(lines):
    """lines joined into as few writes as keep each within PIPE_BUF, so that
    a reader never gets part of a line (a longer line goes alone)."""
    writes, current = [], b""
    for line in lines:
        if current and len(current) + len(line) > select.PIPE_BUF:
            writes.append(current)
            current = b""
        current += line
    if current:
        writes.append(current)
    return writes


def tell(dfd, name, writes):
    try:
        w = unix.open_fifo_writer(name, dfd)
    except unix.NotRunning:                      # its reader is gone: tidy up
        try:
            os.unlink(name, dir_fd=dfd)
        except OSError:
            pass
        return
    except OSError:
        return
    try:
        for data in writes:
            os.write(w, data)                    # <= PIPE_BUF: whole lines or nothing
    except OSError:
        pass                                     # full: this reader misses the line
    finally:
        os.close(w)


class Subscription:
    """A reader's fifo in a service's supervise/event/, both ends open (our
    own write end keeps it from reading end of file between two writers).

    Raises OSError if the service has no event/ (not svtree's supervise, or
    not yet) or the fifo cannot be made. close() removes the fifo.
    """

    __slots__ = ("dir", "name", "r", "w")

    def __init__(self, service_path, name):
        self.r = self.w = -1
        self.dir = os.open(os.path.join(service_path, "supervise", EVENT_DIR),
                           os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        self.name = name               # set before it exists: an interrupt right
        try:                           # after mkfifo still has close() remove it
            unix.make_fifo(name, self.dir, 0o620)   # the group of event/: a supervise
                                                    # run as the service's owner writes
            self.r, self.w = unix.open_fifo_reader(name, self.dir)
        except BaseException:
            self.close()
            raise

    def close(self):
        for fd in (self.r, self.w):
            if fd >= 0:
                os.close(fd)
        self.r = self.w = -1
        if self.dir >= 0:
            try:
                os.unlink(self.name, dir_fd=self.dir)
            except OSError:
                pass
            os.close(self.dir)
            self.dir = -1
