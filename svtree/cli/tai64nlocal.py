"""tai64nlocal: turn the TAI64N labels that begin lines into local time.

A line that begins with "@" and 24 lowercase hex digits, a valid TAI64N
label as tai64n(8) prints, has those 25 bytes replaced by its local time,
"YYYY-MM-DD HH:MM:SS.nnnnnnnnn"; the rest of the line is copied. Any other
line, a partial or malformed label included, is copied unchanged. Exit 0
at end of input, 111 if stdin or stdout fails, with a message unless the
reader of stdout went away (see tai64n.failed).

Arguments are ignored, as daemontools ignores them, except a first
--help or -h (usage) or --version: those answer on stdout and exit 0
without reading stdin, which on a terminal would wait for ever.
"""

import os
import sys

from .. import tai64n
from ..unix import write_all
from .options import asked
from .tai64n import failed

HELP = """usage: tai64nlocal < input
Copies stdin to stdout, turning the TAI64N label that begins a line (as
tai64n and multilog's t write it) into local time:
YYYY-MM-DD HH:MM:SS.nnnnnnnnn. Example: tai64nlocal < log/main/current.
See tai64nlocal(8).
"""

CHUNK = 1 << 17
WIDTH = 25                        # "@" + 24 hex digits
HEX = frozenset(b"0123456789abcdef")


class Converter:
    """Stream state: lines may start and end anywhere across reads.

    A line's head is held back until WIDTH bytes (or its end) have arrived,
    so a label split between two reads is still seen whole; the rest of a
    long line passes straight through, however long the line.
    """

    def __init__(self):
        self.held = b""           # the start of a line, shorter than WIDTH
        self.inside = False       # the current line's head is already out
        self.heads = {}           # b"@" + 24 hex digits -> local time
        self.seconds = {}         # the label's 16 hex digits of seconds -> local time

    def feed(self, data: bytes) -> bytes:
        """The output for data, the next bytes of the input."""
        out = b""
        if self.inside:
            end = data.find(b"\n")
            if end < 0:
                return data
            out, data = data[:end + 1], data[end + 1:]
            self.inside = False
        lines = (self.held + data).split(b"\n")
        partial = lines.pop()
        if lines:
            out += b"\n".join(map(self.convert, lines)) + b"\n"
        self.held = b""
        if len(partial) >= WIDTH or partial[:1] not in (b"", b"@"):
            out += self.convert(partial)
            self.inside = True
        else:
            self.held = partial
        return out

    def end(self) -> bytes:
        """The output for a last line that never got its newline."""
        return self.convert(self.held)

    def convert(self, line: bytes) -> bytes:
        """line with its label, if it starts with one, in local time."""
        if line[:1] != b"@":
            return line
        # tai64n gives every line of one read the same label, and the lines
        # of one second share the date: each is worked out once.
        head = self.heads.get(line[:WIDTH])
        if head is None:
            head = self.local(line[:WIDTH])
            if head is None:
                return line
            if len(self.heads) >= 4096:
                self.heads.clear()
            self.heads[line[:WIDTH]] = head
        return head + line[WIDTH:]

    def local(self, label: bytes) -> bytes | None:
        """b"@" + 24 hex digits in local time, or None if it is no label."""
        if len(label) < WIDTH or not HEX.issuperset(label[1:]):
            return None
        nano = int(label[17:], 16)
        if nano > 999_999_999:
            return None
        text = self.seconds.get(label[1:17])
        if text is None:
            try:
                text = tai64n.local_seconds(int(label[1:17], 16) - tai64n.BASE).encode()
            except (OverflowError, OSError):
                return None
            if len(self.seconds) >= 4096:
                self.seconds.clear()
            self.seconds[label[1:17]] = text
        return b"%s.%09d" % (text, nano)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if asked("tai64nlocal", argv, HELP, help_words=("--help", "-h")):
        return 0
    converter = Converter()
    while True:
        try:
            data = os.read(0, CHUNK)
        except OSError as e:
            return failed("tai64nlocal", "unable to read input", e)
        try:
            write_all(1, converter.feed(data) if data else converter.end())
        except OSError as e:
            return failed("tai64nlocal", "unable to write output", e)
        if not data:
            return 0


if __name__ == "__main__":
    sys.exit(main())
