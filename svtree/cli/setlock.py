"""setlock [-nNxX] FILE CHILD...: run CHILD holding an exclusive lock on FILE.

FILE is opened for appending (created, mode 0600, if missing) and locked
with flock(2). The descriptor stays open across exec, so the lock lasts
until CHILD, and every process it handed the descriptor to, has closed it.
Options (of each pair, the last one given wins):
  -N  wait for the lock (default)       -n  give up if FILE is locked
  -X  complain if FILE cannot be        -x  exit 0 quietly instead
      opened or locked (default)
Exit 111 if FILE cannot be opened or locked (unless -x) or CHILD cannot
run, 100 on a usage error. A first argument --help or --version answers
on stdout and exits 0.
"""

import fcntl
import os
import sys

from ..errors import USAGE
from .chain import fatal, run
from .options import UsageError, asked, letters

PROG = "setlock"
SYNOPSIS = "setlock [ -nNxX ] file program [ arg ... ]"
HELP = """usage: setlock [-nNxX] file child...
Runs child holding an exclusive lock on file (created if missing).
  -N wait for the lock (default); -n give up at once if file is locked
  -X complain if file cannot be opened or locked (default); -x exit 0 instead
See setlock(8).
"""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if asked(PROG, argv, HELP):
        return 0
    try:
        found, rest = letters(argv, "nNxX")
    except UsageError as e:
        sys.stderr.write(f"{PROG}: {e}\n{PROG}: usage: {SYNOPSIS}\n")
        return USAGE
    if len(rest) < 2:
        sys.stderr.write(f"{PROG}: usage: {SYNOPSIS}\n")
        return USAGE
    wait, quiet = True, False
    for letter in found:
        if letter in "nN":
            wait = letter == "N"
        else:
            quiet = letter == "x"
    path, child = rest[0], rest[1:]
    # O_NONBLOCK as in daemontools: a fifo with no reader fails (ENXIO)
    # instead of hanging setlock before it even tries to lock.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
    except OSError as e:
        return 0 if quiet else fatal(PROG, f"unable to open {path}", e)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        return 0 if quiet else fatal(PROG, f"unable to lock {path}", e)
    os.set_inheritable(fd, True)   # Python opens with O_CLOEXEC; CHILD must keep it
    return run(PROG, child)


if __name__ == "__main__":
    sys.exit(main())
