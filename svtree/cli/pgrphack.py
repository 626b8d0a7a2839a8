"""pgrphack CHILD...: run CHILD as the leader of a new session and process group.

A signal sent to our old process group (a terminal's ^C, svc's group
kill) then no longer reaches CHILD or its descendants. If we already lead
a process group, setsid(2) refuses, and CHILD goes on leading that group. Exit 111 if CHILD cannot run, 100 on a usage error.
"""

import os
import sys

from .chain import run, usage


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        return usage("pgrphack", "pgrphack child")
    try:
        os.setsid()
    except PermissionError:
        pass
    return run("pgrphack", argv)


if __name__ == "__main__":
    sys.exit(main())
