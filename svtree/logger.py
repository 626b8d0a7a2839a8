"""The multilog loop: read the service's output, stamp it, select it, file it.

Input is read in chunks; every line that starts in a chunk gets that chunk's
timestamp (the moment it was read).

A line is decided once, as daemontools' multilog decides it: when it ends,
or as soon as its first PATTERN_SPAN bytes (label included) are in, whichever
comes first. The patterns, e and =file see those bytes; the directories
chosen then get the rest of the line as it arrives, however long it is, and
the next line is decided afresh. So the logger holds less than PATTERN_SPAN
bytes of a line, and no line is cut but by a rotation.

When the script has no patterns, e or =file, whole runs of complete lines go
to each directory at once; otherwise each line is decided alone, and each
directory gets a chunk's lines in one write.

A full disk: LogDir.append() pauses and retries, and nothing more is read
meanwhile, so the service is held back by its pipe. What the logger holds
then is lost if it is killed; what is still in the pipe is not, since svscan
keeps the pipe open for the next logger. So the logger reads less as a log
directory's file system fills up (budget()), and once statvfs says it is
full, one byte at a time: the line being written when the disk refuses it
is then the only one in this process, and a kill costs that line alone,
not a chunk. (If the disk goes on taking bytes statvfs says it has no room
for, the logger stops believing statvfs after TRICKLE of them.)

Signals: ALRM rotates every directory; TERM finishes the line in progress,
then exits 0. EOF: the last line gets a newline if it lacked one, every
current file is fsynced and marked finished, and the logger exits 0.
"""

import _signal
import os
import select
import time

from . import logscript, tai64n, unix
from .errors import tell

CHUNK = 1 << 16
TRICKLE = 1 << 16        # one-byte reads before a "full" disk that takes them is believed
SIGALRM, SIGTERM = _signal.SIGALRM, _signal.SIGTERM   # plain ints, unlike signal's


def stamp_t(ns):
    seconds, nano = divmod(ns, 1_000_000_000)
    return (tai64n.format(tai64n.pack(seconds, nano)) + " ").encode()


def stamp_T(ns):
    seconds, nano = divmod(ns, 1_000_000_000)
    return (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
            + f".{nano:09d}  ").encode()


class Logger:
    def __init__(self, script, dirs, clock=time.time_ns):
        self.script = script
        self.clock = clock
        self.stamp = {"t": stamp_t, "T": stamp_T}.get(script.stamp)
        # the script's actions with each Dir replaced by its LogDir
        self.actions = [("dir", dirs[id(a[1])]) if a[0] == "dir" else a for a in script.actions]
        self.dirs = [a[1] for a in self.actions if a[0] == "dir"]
        self.head = b""            # a line's start, stamped, not yet decided
        self.route = None          # the directories the rest of a decided line goes to
        self.alerts = []           # what e prints, written once per chunk
        self.statuses = {}         # =file name -> the latest line for it
        self.trickled = 0          # one-byte reads since statvfs last said there was room

    @property
    def at_line_start(self):
        return not self.head and self.route is None

    def feed(self, data: bytes):
        """Take newly read bytes; file what they complete."""
        if self.stamp:
            prefix = self.stamp(self.clock())
            start = self.at_line_start
            data = data.replace(b"\n", b"\n" + prefix)
            if data.endswith(b"\n" + prefix):
                data = data[:-len(prefix)]
            if start:
                data = prefix + data
        if self.route is not None:                 # the rest of a long line
            end = data.find(b"\n") + 1
            if not end:
                self.send(self.route, data)
                return
            self.send(self.route, data[:end])
            self.route = None
            data = data[end:]
        if self.head:
            data = self.head + data
            self.head = b""
        cut = data.rfind(b"\n") + 1
        if cut:
            self.file(data if cut == len(data) else data[:cut])
        rest = data[cut:]
        if len(rest) >= logscript.PATTERN_SPAN:    # long enough to decide
            self.route = self.decide(rest)
            self.send(self.route, rest)
        else:
            self.head = rest
        self.report()

    def flush(self):
        """EOF: the last line ends, given the newline it lacked."""
        if self.route is not None:
            self.send(self.route, b"\n")
            self.route = None
        elif self.head:
            self.file(self.head + b"\n")
            self.head = b""
        self.report()

    def file(self, lines: bytes):
        """Complete lines (each ending in a newline) through the script."""
        if self.script.plain:
            self.send(self.dirs, lines)
            return
        out = {}
        for body in lines[:-1].split(b"\n"):
            for d in self.decide(body):
                out.setdefault(d, []).append(body)
        for d, bodies in out.items():
            bodies.append(b"")
            d.write(b"\n".join(bodies))

    def decide(self, body: bytes) -> list:
        """Run the script on a line's first bytes (without a newline): queue
        what e and =file show, and return the directories that get the line."""
        selected = True
        route = []
        for action in self.actions:
            kind = action[0]
            if kind == "select":
                if selected != action[1] and logscript.matches(action[2], body):
                    selected = action[1]
            elif not selected:
                continue
            elif kind == "dir":
                route.append(action[1])
            elif kind == "alert":
                self.alerts.append(logscript.alert(body))
            elif kind == "status":
                self.statuses[action[1]] = body
        return route

    @staticmethod
    def send(route, data: bytes):
        for d in route:
            d.write(data)

    def report(self):
        """What e and =file have to show for the lines decided so far."""
        if self.alerts:
            try:
                unix.write_all(2, b"".join(self.alerts))
            except OSError:
                pass            # nobody reads the alerts: the logs still matter
            self.alerts = []
        if self.statuses:
            for name, body in self.statuses.items():
                write_status(name, body)
            self.statuses = {}

    def budget(self) -> int:
        """How much to read next: CHUNK, or half of what the fullest log
        directory's file system can take (shared between the directories),
        or one byte once it says it is full (see the module docstring)."""
        room = min((r for r in (d.room() for d in self.dirs) if r is not None), default=None)
        if room is None:
            return CHUNK
        if room:
            self.trickled = 0
            return max(1, min(CHUNK, room // (2 * len(self.dirs))))
        if self.trickled >= TRICKLE:
            return CHUNK
        self.trickled += 1
        return 1

    def rotate(self):
        for d in self.dirs:
            d.rotate()

    def close(self):
        for d in self.dirs:
            d.close()


def write_status(name, body):
    """=file, replaced whole: a reader never sees half of it."""
    try:
        unix.replace_file(name, logscript.status(body))
    except OSError as e:
        tell("multilog", "warning", f"unable to write {name}", e)


def run(logger: Logger, fd: int = 0) -> int:
    r = unix.wakeup_pipe((SIGALRM, SIGTERM))
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(r, select.POLLIN)
    terminating = False
    try:
        while True:
            for ready, _ in poller.poll():
                if ready == r:
                    for signum in unix.drain(r):
                        if signum == SIGALRM:
                            logger.rotate()
                        elif signum == SIGTERM:
                            terminating = True
                    continue
                data = os.read(fd, logger.budget())
                if not data:
                    logger.flush()
                    return 0
                logger.feed(data)
            if terminating and logger.at_line_start:
                return 0
    finally:
        logger.close()
