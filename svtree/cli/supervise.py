"""supervise SERVICE: start and watch SERVICE/run (daemontools' supervise)."""

import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-") and argv[0] != "-":
        sys.stderr.write("supervise: usage: supervise dir\n")
        return 100
    from .. import supervise, unix
    unix.leave(supervise.run(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
