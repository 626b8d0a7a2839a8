"""envuidgid ACCOUNT CHILD...: run CHILD with $UID and $GID set to ACCOUNT's.

Nothing about the process itself changes: the variables tell a program
that drops privileges itself (multilog, a daemon's own -u) whom to become.
Exit 111 for an unknown account or a CHILD that cannot run; 100 on a usage
error. A first argument --help or --version answers on stdout and exits 0
(no account has either name).
"""

import sys

from .chain import with_account, run
from .options import program

HELP = """usage: envuidgid account child...
Runs child with $UID and $GID set to account's user and group ids; nothing
else changes. See envuidgid(8).
"""


@program("envuidgid", HELP)
@with_account("envuidgid")
def main(pw, child) -> int:
    return run("envuidgid", child, {b"UID": b"%d" % pw.pw_uid, b"GID": b"%d" % pw.pw_gid})


if __name__ == "__main__":
    sys.exit(main())
