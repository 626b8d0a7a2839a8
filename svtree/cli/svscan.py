"""svscan [-g SECONDS] [DIR] [-- CMD ARGS...]: supervise every service in DIR.

DIR defaults to the current directory. With CMD, svscan also runs CMD in
the foreground and exits with its code once the tree is down (a container's
entry point). The grace period before SIGKILL at shutdown is -g SECONDS, or
$SVSCAN_GRACE, or 7 seconds. A first argument --help or --version prints
the usage or the version and exits 0 (daemontools' svscan took either for
a directory to scan).
"""

import os
import sys

from ..errors import USAGE
from .options import program

SYNOPSIS = "svscan [-g seconds] [dir] [-- command [args...]]"
HELP = f"""usage: {SYNOPSIS}
Starts a supervise for every service directory in dir (default: the current
directory) and keeps them running. TERM brings the tree down within -g
seconds (default $SVSCAN_GRACE, or 7). With a command, runs it too and exits
with its code once the tree is down. See svscan(8).
"""


def usage():
    sys.stderr.write(f"svscan: usage: {SYNOPSIS}\n")
    return USAGE


def grace_seconds(text, source):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 86400:
        sys.stderr.write(f"svscan: fatal: {source} must be a number of seconds, not {text!r}\n")
        return None
    return value


@program("svscan", HELP)
def main(argv) -> int:
    command = None
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1:]
        if not command:
            return usage()
    grace = None
    if argv[:1] == ["-g"] and len(argv) >= 2:
        grace = grace_seconds(argv[1], "-g")
        if grace is None:
            return USAGE
        argv = argv[2:]
    elif argv[:1] and argv[0].startswith("-g") and len(argv[0]) > 2:
        grace = grace_seconds(argv[0][2:], "-g")
        if grace is None:
            return USAGE
        argv = argv[1:]
    if len(argv) > 1 or argv and argv[0].startswith("-"):
        return usage()
    if grace is None and os.environ.get("SVSCAN_GRACE"):
        grace = grace_seconds(os.environ["SVSCAN_GRACE"], "SVSCAN_GRACE")
        if grace is None:
            return USAGE
    from .. import init
    return init.run(argv[0] if argv else ".", command=command,
                    grace=init.GRACE if grace is None else grace)


if __name__ == "__main__":
    sys.exit(main())
