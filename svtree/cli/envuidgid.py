"""envuidgid ACCOUNT CHILD...: run CHILD with $UID and $GID set to ACCOUNT's.

Nothing about the process itself changes: the variables tell a program
that drops privileges itself (multilog, a daemon's own -u) whom to become.
Exit 111 for an unknown account or a CHILD that cannot run; 100 on a usage
error. A first argument --help or --version answers on stdout and exits 0
(no account has either name).
"""

import sys

from .chain import account_and_child, run
from .options import asked

HELP = """usage: envuidgid account child...
Runs child with $UID and $GID set to account's user and group ids; nothing
else changes. See envuidgid(8).
"""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if asked("envuidgid", argv, HELP):
        return 0
    found = account_and_child("envuidgid", argv)
    if isinstance(found, int):
        return found
    pw, child = found
    return run("envuidgid", child, {b"UID": b"%d" % pw.pw_uid, b"GID": b"%d" % pw.pw_gid})


if __name__ == "__main__":
    sys.exit(main())
