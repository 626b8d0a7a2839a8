"""The multilog loop: read the service's output, stamp it, select it, file it.

Input is read in large chunks; every line that starts in a chunk gets that
chunk's timestamp (the moment its first byte was read, as in multilog).
When the script has no patterns, `e` or `=file`, whole runs of complete lines
go to each directory at once; otherwise each line is decided alone.

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
from .logdir import LogDir

CHUNK = 1 << 16
LONGEST = 1 << 20        # a line longer than this is filed in pieces
SIGALRM, SIGTERM = 14, 15


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
        self.dirs = dirs                      # Dir action -> LogDir, in order
        self.clock = clock
        self.stamp = {"t": stamp_t, "T": stamp_T}.get(script.stamp)
        self.pending = b""                    # an incomplete line, already stamped
        self.at_line_start = True

    def feed(self, data: bytes):
        """Take newly read bytes; file every line they complete."""
        if self.stamp:
            prefix = self.stamp(self.clock())
            if self.at_line_start:
                data = prefix + data
            data = data.replace(b"\n", b"\n" + prefix)
            if data.endswith(b"\n" + prefix):
                data = data[:-len(prefix)]
        self.at_line_start = data.endswith(b"\n")
        data = self.pending + data
        cut = data.rfind(b"\n") + 1
        self.pending = data[cut:]
        if cut:
            self.file(data[:cut])
        if len(self.pending) > LONGEST:
            self.file(self.pending + b"\n")
            self.pending = b""

    def flush(self):
        """EOF: the last line, given the newline it lacked."""
        if self.pending:
            self.file(self.pending + b"\n")
            self.pending = b""

    def file(self, lines: bytes):
        """Complete lines (each ending in a newline) through the script."""
        if self.script.plain:
            for action in self.script.actions:
                self.dirs[id(action[1])].write(lines)
            return
        for line in lines.splitlines(keepends=True):
            self.file_line(line)

    def file_line(self, line: bytes):
        body = line[:-1]
        selected = True
        for action in self.script.actions:
            kind = action[0]
            if kind == "select":
                if selected != action[1] and logscript.matches(action[2], body):
                    selected = action[1]
            elif not selected:
                continue
            elif kind == "dir":
                self.dirs[id(action[1])].write(line)
            elif kind == "alert":
                try:
                    os.write(2, body[:logscript.ALERT_SPAN] + b"\n")
                except OSError:
                    pass            # nobody reads the alerts: the logs still matter
            elif kind == "status":
                write_status(action[1], body)

    def rotate(self):
        for d in self.dirs.values():
            d.rotate()

    def close(self):
        for d in self.dirs.values():
            d.close()


def write_status(name, body):
    """=file: the line's first 1000 bytes, padded with newlines to 1001."""
    data = body[:logscript.STATUS_SIZE - 1].ljust(logscript.STATUS_SIZE, b"\n")
    try:
        unix.replace_file(name, data)
    except OSError as e:
        tell("multilog", "warning", f"unable to write {name}", e)


def _note(signum, frame):
    """The wakeup pipe carries the signal to the loop."""


def run(logger: Logger, fd: int = 0) -> int:
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    _signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    _signal.signal(SIGALRM, _note)
    _signal.signal(SIGTERM, _note)
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
                data = os.read(fd, CHUNK)
                if not data:
                    logger.flush()
                    return 0
                logger.feed(data)
            if terminating and not logger.pending:
                return 0
    finally:
        logger.close()
