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

from ..tai64n import Converter
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
