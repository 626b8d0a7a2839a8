"""tai64n: put a TAI64N timestamp in front of each line of stdin.

Each output line is "@", the 24 lowercase hex digits of a TAI64N label, a
space, and the input line. The label is the time tai64n read the line's
first byte: all the lines that begin in one read(2) share one label, taken
right after that read returned, and a line split across reads keeps the
label of the read that brought its start. A last line without a newline
is stamped and copied as it is. Exit 0 at end of input, 111 if stdin or
stdout fails, with a message unless the reader of stdout went away
(daemontools' tai64n is silent, and dies of SIGPIPE there).

Arguments are ignored, as daemontools ignores them, except a first
--help or -h (usage) or --version: those answer on stdout and exit 0
without reading stdin, which on a terminal would wait for ever.
"""

import errno
import os
import sys

from .. import tai64n
from ..errors import TEMPORARY, tell
from ..unix import write_all
from .options import asked

HELP = """usage: tai64n < input
Copies stdin to stdout with "@", a TAI64N label of the moment the line was
read, and a space in front of each line. tai64nlocal turns the labels into
local time. See tai64n(8).
"""

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


def failed(prog: str, what: str, e: OSError) -> int:
    """Say why a filter stops, unless its reader has gone: that is how a
    pipeline ends, and daemontools' filters die of SIGPIPE there, quietly."""
    if e.errno != errno.EPIPE:
        tell(prog, "fatal", what, e)
    return TEMPORARY


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if asked("tai64n", argv, HELP, help_words=("--help", "-h")):
        return 0
    at_start = True
    while True:
        try:
            data = os.read(0, CHUNK)
        except OSError as e:
            return failed("tai64n", "unable to read input", e)
        if not data:
            return 0
        try:
            write_all(1, stamp(data, label(), at_start))
        except OSError as e:
            return failed("tai64n", "unable to write output", e)
        at_start = data[-1] == 10      # b"\n"


if __name__ == "__main__":
    sys.exit(main())
