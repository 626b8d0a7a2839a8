"""tai64n: put a TAI64N timestamp in front of each line of stdin.

Each output line is "@", the 24 lowercase hex digits of a TAI64N label, a
space, and the input line. The label is the time tai64n read the line's
first byte: all the lines that begin in one read(2) share one label, taken
right after that read returned, and a line split across reads keeps the
label of the read that brought its start. A last line without a newline
is stamped and copied as it is. Exit 0 at end of input, 111 (silently) if
stdin or stdout fails.
"""

import os
import sys

from .. import tai64n
from ..unix import write_all

# Big reads: a busy producer fills many lines per read, and every line of
# a read is stamped by one bytes.replace(). A slow producer gets each line
# stamped as soon as it arrives: read() returns whatever is there.
CHUNK = 1 << 17


def label() -> bytes:
    """b'@' + 24 hex digits + b' ' for the current time."""
    return b"@%s " % tai64n.pack(*tai64n.now()).hex().encode()


def stamp(data: bytes, prefix: bytes, at_start: bool) -> bytes:
    """data with prefix before every line that starts in it.

    at_start: whether data begins a line (the previous read ended with a
    newline). A newline at the very end of data starts no line yet: the
    next line's stamp is the time of the read that brings its first byte.
    """
    body = data[:-1].replace(b"\n", b"\n" + prefix) + data[-1:]
    return prefix + body if at_start else body


def main(argv=None) -> int:
    at_start = True
    try:
        while data := os.read(0, CHUNK):
            write_all(1, stamp(data, label(), at_start))
            at_start = data[-1] == 10      # b"\n"
    except OSError:
        return 111
    return 0


if __name__ == "__main__":
    sys.exit(main())
