"""supervise SERVICE: start and watch SERVICE/run (daemontools' supervise)."""

import sys

from ..errors import USAGE


def main(argv=None) -> int:
    """Run with argv; without it, as the program itself, which then exits at
    once when done (see unix.leave)."""
    if argv is None:
        from ..unix import leave
        leave(main(sys.argv[1:]))
    if len(argv) != 1 or argv[0].startswith("-") and argv[0] != "-":
        sys.stderr.write("supervise: usage: supervise dir\n")
        return USAGE
    from .. import supervise
    return supervise.run(argv[0])


if __name__ == "__main__":
    sys.exit(main())
