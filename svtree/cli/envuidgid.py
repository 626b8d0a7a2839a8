"""envuidgid ACCOUNT CHILD...: run CHILD with $UID and $GID set to ACCOUNT's.

Nothing about the process itself changes: the variables tell a program
that drops privileges itself (multilog, a daemon's own -u) whom to become.
Exit 111 for an unknown account or a CHILD that cannot run; 100 on a usage
error.
"""

import pwd
import sys

from .chain import fatal, run, usage


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        return usage("envuidgid", "envuidgid account child")
    account, child = argv[0], argv[1:]
    try:
        pw = pwd.getpwnam(account)
    except KeyError:
        return fatal("envuidgid", f"unknown account {account}")
    return run("envuidgid", child, {b"UID": b"%d" % pw.pw_uid, b"GID": b"%d" % pw.pw_gid})


if __name__ == "__main__":
    sys.exit(main())
