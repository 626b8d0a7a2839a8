"""svok SERVICE: exit 0 if supervise is running for SERVICE, 100 if not.

111 and a message when SERVICE cannot be reached at all.
"""

import os
import sys

from ..control import is_up
from ..errors import describe
from ..unix import leave, open_dir


def main(argv=None) -> int:
    """Run with argv; without it, as the program itself, which then exits
    at once when done (no interpreter teardown: it is a third of the run)."""
    if argv is None:
        leave(main(sys.argv[1:]))
    if not argv or argv[0].startswith("-") and argv[0] not in ("-", "--"):
        sys.stderr.write("svok: usage: svok dir\n")
        return 100
    if argv[0] == "--":
        argv = argv[1:]
        if not argv:
            sys.stderr.write("svok: usage: svok dir\n")
            return 100
    service = argv[0]
    try:
        fd = open_dir(service)
    except OSError as e:
        sys.stderr.write(f"svok: fatal: unable to chdir to {service}: {describe(e)}\n")
        return 111
    try:
        return 0 if is_up(fd) else 100
    except OSError as e:
        sys.stderr.write(f"svok: fatal: unable to open {service}/supervise/ok: {describe(e)}\n")
        return 111
    finally:
        os.close(fd)

if __name__ == "__main__":
    sys.exit(main())
