"""svc -udopchaitkqx12rPCK SERVICE...: control supervised services.

Writes the option letters, in the order given, to each SERVICE's control
fifo. Exit 0 if every service was controlled, 111 if any could not be
(daemontools always exits 0), 100 on a usage error.
"""

import os
import sys

from ..control import send
from ..errors import NotRunning, describe
from ..unix import leave, open_dir
from .options import UsageError, letters

OPTIONS = "udopchaitkqx12rPCK"
USAGE = ("svc options: u up, d down, o once, x exit, p pause, c continue, h hup, "
         "a alarm, i interrupt, t term, k kill, q quit, 1 usr1, 2 usr2, "
         "r restart, P pause group, C continue group, K kill group")


def control(service: str, commands: str) -> str | None:
    """Send commands to one service; the warning to print, or None if sent."""
    try:
        fd = open_dir(service)
    except OSError as e:
        return f"unable to chdir to {service}: {describe(e)}"
    try:
        send(fd, commands)
    except (NotRunning, OSError) as e:
        return f"unable to control {service}: {describe(e)}"
    finally:
        os.close(fd)
    return None


def main(argv=None) -> int:
    """Run with argv; without it, as the program itself, which then exits
    at once when done (no interpreter teardown: it is a third of the run)."""
    if argv is None:
        leave(main(sys.argv[1:]))
    try:
        found, services = letters(argv, OPTIONS)
    except UsageError as e:
        sys.stderr.write(f"svc: {e}\n{USAGE}\n")
        return 100
    commands = "".join(found)
    code = 0
    for service in services:
        problem = control(service, commands)
        if problem:
            sys.stderr.write(f"svc: warning: {problem}\n")
            code = 111
    return code


if __name__ == "__main__":
    sys.exit(main())
