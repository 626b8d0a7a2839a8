"""svc -udopchaitkqx12rPCK SERVICE...: control supervised services.

Writes the option letters, in the order given, to each SERVICE's control
fifo. Exit 0 if every service was controlled, 111 if any could not be
(daemontools always exits 0), 100 on a usage error: an unknown option, or
no argument at all. What daemontools does and scripts may count on stays:
letters with no SERVICE, or SERVICEs with no letter (`svc $flags $dirs`
with one of the two empty), do nothing and exit 0; here they also say so
on stderr, for the person who forgot half the command.
"""

import os
import sys

from ..control import LETTERS, send, words
from ..errors import TEMPORARY, USAGE, NotRunning, describe
from ..unix import NotFifo, open_dir
from .options import UsageError, letters, program

OPTIONS = "".join(LETTERS)
SYNOPSIS = f"svc [-{OPTIONS}] dir..."
WORDS = f"svc options: {words()}"
HELP = f"""usage: {SYNOPSIS}
Writes the letters, in the order given, to the supervise/control of each dir:
  u up, d down, o once, r restart, x exit (supervise exits once down),
  {words("pchaitk")},
  {words("q12PCK")}
svc does not wait; svtree wait up|ready|down|finished dir... does. See svc(8).
"""


def control(service: str, commands: str) -> str | None:
    """Send commands to one service; the warning to print, or None if sent."""
    try:
        fd = open_dir(service)
    except OSError as e:
        return f"unable to chdir to {service}: {describe(e)}"
    try:
        send(fd, commands)
    except (FileNotFoundError, NotFifo) as e:
        # daemontools says only "file does not exist": name the file, so
        # that "not a service, or supervise never ran" is plain.
        return f"unable to control {service}: supervise/control: {describe(e)}"
    except (NotRunning, OSError) as e:
        return f"unable to control {service}: {describe(e)}"
    finally:
        os.close(fd)
    return None


@program("svc", HELP)
def main(argv) -> int:
    if not argv:
        sys.stderr.write(f"svc: usage: {SYNOPSIS}\n{WORDS}\n")
        return USAGE
    try:
        found, services = letters(argv, OPTIONS)
    except UsageError as e:
        sys.stderr.write(f"svc: {e}\n{WORDS}\n")
        return USAGE
    commands = "".join(found)
    if not services:
        sys.stderr.write("svc: warning: no service directory given: nothing to control\n")
    elif not commands:
        sys.stderr.write("svc: warning: no command letter given: nothing to send "
                         "(svc -u dir starts a service, svc -d dir stops it)\n")
    code = 0
    for service in services:
        problem = control(service, commands)
        if problem:
            sys.stderr.write(f"svc: warning: {problem}\n")
            code = TEMPORARY
    return code


if __name__ == "__main__":
    sys.exit(main())
