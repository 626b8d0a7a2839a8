"""svstat SERVICE...: one line of status per service, daemontools' words.

    DIR: up (pid N) S seconds[, normally down][, paused][, want down]
    DIR: down S seconds[, normally up][, want up]

Reads 18-byte daemontools and 20-byte runit status files alike. Like
daemontools, svstat exits 0 whatever it finds; errors are part of the line.
Every argument names a directory, as in daemontools, except a first "--",
which is skipped, and a first "--help" or "--version". No argument at all
prints nothing and exits 0 (a script may pass an empty list), with a
warning on stderr for the person who forgot the directory.

The status file is its owner's to plant: it is opened without blocking and
without following a symlink, and anything but a regular file is, as for
daemontools' svstat (whose open is non-blocking too), "bad format". DIR is
printed as given, byte for byte, as daemontools does.
"""

import os
import sys
import time

from .. import status
from ..errors import NotRunning, describe
from ..unix import NotRegular, open_dir, open_fifo_writer, read_regular
from .options import program

HELP = """usage: svstat dir...
Prints one line per dir, in daemontools' words:
  dir: up (pid N) S seconds[, normally down][, paused][, want down]
  dir: down S seconds[, normally up][, want up]
Problems go on the dir's line; the exit status is 0. svtree status shows
more (readiness, starts, the last exit, JSON). See svstat(8).
"""


def line(service: str, now: float) -> str:
    """The svstat line for one service (without the trailing newline)."""
    try:
        fd = open_dir(service)
    except OSError as e:
        return f"{service}: unable to chdir: {describe(e)}"
    try:
        return describe_service(service, fd, now)
    finally:
        os.close(fd)


def describe_service(service, fd, now):
    try:
        os.stat("down", dir_fd=fd)
        normally_up = False
    except FileNotFoundError:
        normally_up = True
    except OSError as e:
        return f"{service}: unable to stat down: {describe(e)}"
    try:
        os.close(open_fifo_writer("supervise/ok", fd))
    except NotRunning:
        return f"{service}: supervise not running"
    except OSError as e:
        return f"{service}: unable to open supervise/ok: {describe(e)}"
    try:
        data = read_regular("supervise/status", fd, status.DAEMONTOOLS_SIZE)
    except NotRegular:              # a fifo reads as nothing: daemontools' words
        data = b""
    except OSError as e:
        return f"{service}: unable to open supervise/status: {describe(e)}"
    if len(data) < status.DAEMONTOOLS_SIZE:
        return f"{service}: unable to read supervise/status: bad format"
    return format_line(service, data, normally_up, now)


def format_line(service: str, data: bytes, normally_up: bool, now: float) -> str:
    """Words for the first 18 bytes of a status file, as daemontools' svstat."""
    stamp, _, pid, paused, want = status.head(data)
    seconds = max(0, int(now) - stamp)
    words = [f"{service}: "]
    words.append(f"up (pid {pid}) " if pid else "down ")
    words.append(f"{seconds} seconds")
    if pid and not normally_up:
        words.append(", normally down")
    if not pid and normally_up:
        words.append(", normally up")
    if pid and paused:
        words.append(", paused")
    if not pid and want == b"u":
        words.append(", want up")
    if pid and want == b"d":
        words.append(", want down")
    return "".join(words)


@program("svstat", HELP)
def main(argv) -> int:
    if not argv:
        sys.stderr.write("svstat: warning: no service directory given: nothing to show "
                         "(usage: svstat dir...)\n")
    if argv and argv[0] == "--":
        argv = argv[1:]
    now = time.time()
    out = [line(service, now) + "\n" for service in argv]
    sys.stdout.write("".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
