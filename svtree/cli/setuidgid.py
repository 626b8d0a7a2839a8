"""setuidgid ACCOUNT CHILD...: run CHILD as ACCOUNT's user and group.

The supplementary groups shrink to ACCOUNT's primary group alone (root's
groups must not leak into a service), then the gid and the uid change, in
that order: after setuid we could no longer change groups. Exit 111 for an
unknown account, a refused change or a CHILD that cannot run; 100 on a
usage error. A first argument --help or --version answers on stdout and
exits 0 (no account has either name).
"""

import os
import sys

from .chain import with_account, fatal, run
from .options import program

HELP = """usage: setuidgid account child...
Runs child as account's user, with account's primary group as its only
group. See setuidgid(8).
"""


@program("setuidgid", HELP)
@with_account("setuidgid")
def main(pw, child) -> int:
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
