"""pgrphack CHILD...: run CHILD as the leader of a new session and process group.

A signal sent to our old process group (a terminal's ^C, svc's group
kill) then no longer reaches CHILD or its descendants. If we already lead
a process group, setsid(2) refuses, and CHILD goes on leading that group.
Exit 111 if CHILD cannot run, 100 on a usage error. A first argument
--help or --version answers on stdout and exits 0 (daemontools tries to
run a program of that name).
"""

import os
import sys

from .chain import run, usage
from .options import asked

HELP = """usage: pgrphack child...
Runs child as the leader of a new session and process group, out of reach
of signals sent to ours. See pgrphack(8).
"""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if asked("pgrphack", argv, HELP):
        return 0
    if not argv:
        return usage("pgrphack", "pgrphack child")
    try:
        os.setsid()
    except PermissionError:
        pass
    return run("pgrphack", argv)


if __name__ == "__main__":
    sys.exit(main())
