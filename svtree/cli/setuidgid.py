"""setuidgid ACCOUNT CHILD...: run CHILD as ACCOUNT's user and group.

The supplementary groups shrink to ACCOUNT's primary group alone (root's
groups must not leak into a service), then the gid and the uid change, in
that order: after setuid we could no longer change groups. Exit 111 for an
unknown account, a refused change or a CHILD that cannot run; 100 on a
usage error.
"""

import os
import sys

from .chain import account_and_child, fatal, run


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    found = account_and_child("setuidgid", argv)
    if isinstance(found, int):
        return found
    pw, child = found
    try:
        os.setgroups([pw.pw_gid])
        os.setgid(pw.pw_gid)
    except OSError as e:
        return fatal("setuidgid", "unable to setgid", e)
    try:
        os.setuid(pw.pw_uid)
    except OSError as e:
        return fatal("setuidgid", "unable to setuid", e)
    return run("setuidgid", child)


if __name__ == "__main__":
    sys.exit(main())
