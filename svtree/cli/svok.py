"""svok SERVICE: exit 0 if supervise is running for SERVICE, 100 if not.

111 and a message when SERVICE cannot be reached at all. Like daemontools,
a SERVICE without supervise/ok is simply not supervised: 100, no message.
"""

import os
import sys

from ..control import is_up
from ..errors import TEMPORARY, USAGE, describe
from ..unix import open_dir
from .options import program

NO = USAGE          # 100, daemontools' "permanent" code, is svok's plain "no"
HELP = """usage: svok dir
Exits 0 if a supervise is running for dir, 100 if not, 111 if dir cannot
be reached. Prints nothing unless it fails. To wait for a service to be up
or ready, see svtree wait. See svok(8).
"""


def usage() -> int:
    sys.stderr.write("svok: usage: svok dir\n")
    return USAGE


@program("svok", HELP)
def main(argv) -> int:
    if not argv or argv[0].startswith("-") and argv[0] not in ("-", "--"):
        return usage()
    if argv[0] == "--":
        argv = argv[1:]
        if not argv:
            return usage()
    service = argv[0]
    try:
        fd = open_dir(service)
    except OSError as e:
        sys.stderr.write(f"svok: fatal: unable to chdir to {service}: {describe(e)}\n")
        return TEMPORARY
    try:
        return 0 if is_up(fd) else NO
    except OSError as e:
        sys.stderr.write(f"svok: fatal: unable to open {service}/supervise/ok: {describe(e)}\n")
        return TEMPORARY
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
