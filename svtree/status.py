"""supervise/status: the binary record that svstat, svc, sv and svok read.

We write runit's 20-byte layout; daemontools' svstat reads its first 18 bytes
and runit's sv insists on all 20, so both work on our services:

    0..11   TAI64N of the last pid change (start of run, or its exit)
    12..15  pid, little-endian; 0 when down. While finish runs: finish's pid
    16      1 if paused (svc -p) while up
    17      want: b"u" up, b"d" down or once (daemontools writes b"\\0" for once)
    18      1 if TERM was sent and the process has not exited yet (runit)
    19      process state: 0 down, 1 run, 2 finish (runit)

"Once" (svc -o) is written by svtree's supervise as b"d", as runit does:
runit's `sv -v once` waits for that byte, and daemontools' svstat then says
", want down", which is true in the sense that matters (it will not be
restarted) and is what runit's own sv prints too. daemontools' supervise
writes 0 instead; unpack() reads both.

daemontools' own supervise writes only the first 18 bytes; unpack() accepts
both sizes and fills bytes 18 and 19 from the pid for the short form.
"""

import os

from .unix import NotRegular, read_regular

SIZE = 20
DAEMONTOOLS_SIZE = 18
TAI_BASE = 2**62 + 10      # see tai64n.py; repeated to keep svstat's imports tiny

DOWN, RUN, FINISH = 0, 1, 2
WANT_UP, WANT_DOWN, WANT_ONCE = b"u", b"d", b"\0"


class BadStatus(ValueError):
    """A status file of the wrong size or with impossible fields."""


class Status:
    """One decoded status record. Plain slots class: svstat must start fast."""

    __slots__ = ("seconds", "nanoseconds", "pid", "paused", "want", "term", "state")

    def __init__(self, seconds=0, nanoseconds=0, pid=0, paused=False,
                 want=WANT_UP, term=False, state=DOWN):
        self.seconds = seconds
        self.nanoseconds = nanoseconds
        self.pid = pid
        self.paused = paused
        self.want = want
        self.term = term
        self.state = state

    def __eq__(self, other):
        return isinstance(other, Status) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"Status({fields})"


def pack(s: Status) -> bytes:
    """The 20 bytes of s (runit layout)."""
    return ((TAI_BASE + s.seconds).to_bytes(8, "big")
            + s.nanoseconds.to_bytes(4, "big")
            + s.pid.to_bytes(4, "little")
            + bytes((1 if s.paused else 0,)) + s.want
            + bytes((1 if s.term else 0, s.state)))


def head(data: bytes) -> tuple[int, int, int, bool, bytes]:
    """(seconds, nanoseconds, pid, paused, want) from the first 18 bytes,
    unchecked: all daemontools' svstat reads of any status file."""
    return (int.from_bytes(data[:8], "big") - TAI_BASE, int.from_bytes(data[8:12], "big"),
            int.from_bytes(data[12:16], "little"), data[16] != 0, data[17:18])


def unpack(data: bytes) -> Status:
    """Decode 20 bytes (runit, svtree) or 18 bytes (daemontools)."""
    if len(data) not in (SIZE, DAEMONTOOLS_SIZE):
        raise BadStatus(f"{len(data)} bytes, expected {SIZE} or {DAEMONTOOLS_SIZE}")
    seconds, nano, pid, paused, want = head(data)
    if nano > 999_999_999:
        raise BadStatus(f"nanoseconds out of range: {nano}")
    if want not in (WANT_UP, WANT_DOWN, WANT_ONCE):
        raise BadStatus(f"unknown want byte {want!r}")
    if len(data) == SIZE:
        term, state = data[18] != 0, data[19]
        if state not in (DOWN, RUN, FINISH):
            raise BadStatus(f"unknown state byte {state}")
    else:
        term, state = False, (RUN if pid else DOWN)
    return Status(seconds, nano, pid, paused, want, term, state)


def read(service: str = ".", dir_fd: int | None = None) -> Status:
    """The status of SERVICE (relative to dir_fd, if given), read from
    SERVICE/supervise/status.

    Opened without blocking or following a symlink, and only if it is a
    regular file: a fifo planted there must not hang the reader.
    Raises OSError if the file cannot be read, BadStatus if it is malformed.
    """
    try:
        return unpack(read_regular(os.path.join(service, "supervise", "status"), dir_fd,
                                   SIZE + 1))
    except NotRegular as e:
        raise BadStatus(str(e)) from None
