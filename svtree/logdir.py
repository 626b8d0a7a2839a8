"""One automatically rotated log directory, kept as multilog keeps it.

    current           the file being written: 0644 while open, 0744 once
                      cleanly finished (fsynced and closed)
    @TAI64N.s         a rotated file, safely on disk (and processed)
    @TAI64N.u         a current found unfinished at start-up (the logger was
                      killed): kept whole, nothing lost, nothing repeated
    state, newstate   the processor's state (its fd 4 and fd 5)
    previous, processed   a rotation in progress with a processor
    lock              held (flock) by the one logger writing here

Rotation: fsync current, mark it 0744, then either rename it to @TAI64N.s,
or (with a processor) rename it to previous, run `sh -c PROCESSOR` with
stdin previous, stdout processed, fd 4 state and fd 5 newstate, and keep
processed as @TAI64N.s. Old files beyond NUM-1 are deleted, oldest first.

A write that the disk refuses (full, read-only, I/O error) is reported and
retried every second; the line is never dropped, so a full disk holds the
service back through its pipe instead of losing its output. room() tells
the logger how much the file system can still take, so that it reads no
more than that from the pipe (see logger.py).
"""

import _signal      # plain ints, without signal's enum module
import os
import stat
import time

from . import tai64n, unix
from .errors import describe, tell

class Locked(Exception):
    """Another logger holds the directory's lock."""


def warn(what):
    tell("multilog", "warning", what)


ROOM_MARGIN = 8 << 20   # bytes: an answer of statvfs this far from full is believed...
ROOM_AGE = 1.0          # ...for this many seconds, less what we appended since
# a !processor starts with these at their defaults, whatever multilog does with them
PROCESSOR_DEFAULTS = (_signal.SIGTERM, _signal.SIGALRM, _signal.SIGHUP, _signal.SIGPIPE,
                      _signal.SIGXFSZ)


class LogDir:
    def __init__(self, path, size, num, processor=None, *, clock=time.time_ns, pause=time.sleep):
        self.path, self.size, self.num, self.processor = path, size, num, processor
        self.clock, self.pause = clock, pause
        self.root = os.geteuid() == 0          # now: a built-in logger forks, then setuid()s
        self.appended = 0                      # bytes written, ever (room() counts down)
        self.room_seen, self.room_base, self.room_until = None, 0, 0.0
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        self.dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.lock = unix.lock_nb("lock", self.dfd)
        except BlockingIOError:
            raise Locked(path) from None
        if not os.access("state", os.F_OK, dir_fd=self.dfd):
            os.close(os.open("state", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=self.dfd))
        self.recover()
        self.fd = None
        self.open_current()

    # --- start-up --------------------------------------------------------------

    def recover(self):
        """Deal with what a killed logger left: a rotation, an unfinished current."""
        if os.access("processed", os.F_OK, dir_fd=self.dfd):
            os.unlink("processed", dir_fd=self.dfd)      # the processor runs again
        if os.access("previous", os.F_OK, dir_fd=self.dfd):
            self.process("previous")
        try:
            st = os.stat("current", dir_fd=self.dfd)
        except FileNotFoundError:
            return
        if not st.st_mode & 0o100 and st.st_size:
            fd = os.open("current", os.O_WRONLY, dir_fd=self.dfd)
            try:
                os.fsync(fd)
                os.fchmod(fd, 0o744)
            finally:
                os.close(fd)
            os.rename("current", self.stamped(".u"), src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
            self.purge()

    def open_current(self):
        self.fd = os.open("current", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644,
                          dir_fd=self.dfd)
        os.fchmod(self.fd, 0o644)
        self.used = os.fstat(self.fd).st_size

    # --- writing -----------------------------------------------------------------

    def write(self, blob: bytes):
        """Append complete lines, rotating as multilog(8) says: at the first
        newline within 2000 bytes of the size, or in mid-line at the size."""
        while blob:
            threshold = self.size - 2000
            if self.used + len(blob) < threshold:
                self.append(blob)
                return
            limit = self.size - self.used              # bytes until current is full
            nl = blob.find(b"\n", max(0, threshold - self.used - 1), limit)
            if nl != -1:
                cut = nl + 1
            elif len(blob) >= limit:
                cut = limit
            else:
                self.append(blob)
                return
            self.append(blob[:cut])
            blob = blob[cut:]
            self.rotate()

    def append(self, data):
        """Write all of data, pausing and retrying while the disk refuses it."""
        view = memoryview(data)
        complained = False
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError as e:
                if not complained:
                    warn(f"unable to write to {self.path}/current, pausing: {describe(e)}")
                    complained = True
                self.pause(1)
                continue
            view = view[n:]
            self.used += n
            self.appended += n

    def room(self):
        """Bytes the directory's file system can still take, as statvfs says:
        root may use the blocks reserved for it. None if it does not say
        (no size at all: some network and pseudo file systems).

        Asked before every read, it cost as much as reading a line: an
        answer more than ROOM_MARGIN from full, less what we appended
        since, stands for ROOM_AGE seconds. Near full (the case it is
        asked for, and where others' writes count) it is asked every time."""
        now = time.monotonic()
        if self.room_seen is not None and now < self.room_until:
            left = self.room_seen - (self.appended - self.room_base)
            if left > ROOM_MARGIN:
                return left
        try:
            st = os.fstatvfs(self.dfd)
        except OSError:
            return None
        if not st.f_blocks:
            return None
        room = (st.f_bfree if self.root else st.f_bavail) * st.f_frsize
        self.room_seen, self.room_base, self.room_until = room, self.appended, now + ROOM_AGE
        return room

    # --- rotation ------------------------------------------------------------------

    def rotate(self):
        """Close current safely and start a new one. A step the directory
        refuses (a rename, the new current) is retried every second: the
        logger pauses, it does not die."""
        if self.used == 0 and self.fd is not None:
            return
        complained = False
        while True:
            try:
                self.rotate_once()
                return
            except OSError as e:
                if not complained:
                    warn(f"unable to rotate {self.path}, pausing: {describe(e)}")
                    complained = True
                self.pause(1)

    def rotate_once(self):
        """The steps of a rotation, each safe to try again."""
        if self.fd is not None:
            self.finish()
        if os.access("current", os.F_OK, dir_fd=self.dfd, follow_symlinks=False):
            target = "previous" if self.processor else self.stamped(".s")
            os.rename("current", target, src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
        if self.processor and os.access("previous", os.F_OK, dir_fd=self.dfd):
            self.process("previous")
        self.purge()
        self.open_current()

    def finish(self):
        """fsync and mark current as cleanly finished (0744)."""
        while True:
            try:
                os.fsync(self.fd)
                break
            except OSError as e:
                warn(f"unable to fsync {self.path}/current, pausing: {describe(e)}")
                self.pause(1)
        os.fchmod(self.fd, 0o744)
        os.close(self.fd)
        self.fd = None

    def process(self, name):
        """Run the processor on NAME until it succeeds; keep its output as @ts.s."""
        if not self.processor:
            os.rename(name, self.stamped(".s"), src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
            return
        while not self.run_processor(name):
            warn(f"processor failed in {self.path}, trying again in a second")
            self.pause(1)
        os.unlink(name, dir_fd=self.dfd)
        os.rename("newstate", "state", src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
        os.link("processed", self.stamped(".s"), src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
        os.unlink("processed", dir_fd=self.dfd)

    def run_processor(self, name):
        opened = []
        try:
            fds = [os.open(name, os.O_RDONLY, dir_fd=self.dfd),
                   os.open("processed", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644,
                           dir_fd=self.dfd),
                   os.open("state", os.O_RDONLY, dir_fd=self.dfd),
                   os.open("newstate", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644,
                           dir_fd=self.dfd)]
            opened = fds
            actions = [(os.POSIX_SPAWN_DUP2, fd, target)
                       for fd, target in zip(fds, (0, 1, 4, 5))]
            pid = os.posix_spawn("/bin/sh", ["sh", "-c", self.processor], os.environ,
                                 file_actions=actions, setsigdef=PROCESSOR_DEFAULTS)
            _, wstatus = os.waitpid(pid, 0)
            if wstatus != 0:
                return False
            os.fsync(fds[1])
            os.fchmod(fds[1], 0o744)
            os.fsync(fds[3])
            return True
        except OSError as e:
            warn(f"unable to run processor in {self.path}: {describe(e)}")
            return False
        finally:
            for fd in opened:
                os.close(fd)

    def stamped(self, suffix):
        """A fresh @TAI64N name: the time of finishing, made unique."""
        while True:
            seconds, nano = divmod(self.clock(), 1_000_000_000)
            name = tai64n.format(tai64n.pack(seconds, nano)) + suffix
            if not os.access(name, os.F_OK, dir_fd=self.dfd):
                return name

    def purge(self):
        """Keep at most num - 1 old files, deleting the oldest."""
        old = sorted(n for n in os.listdir(self.dfd)
                     if n.startswith("@") and n[-2:] in (".s", ".u") and self.regular(n))
        while len(old) >= self.num:
            os.unlink(old.pop(0), dir_fd=self.dfd)

    def regular(self, name):
        try:
            return stat.S_ISREG(os.stat(name, dir_fd=self.dfd, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def close(self):
        """At exit: current is fsynced and marked finished (0744)."""
        if self.fd is not None:
            self.finish()
