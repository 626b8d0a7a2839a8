"""svscan [DIR]: supervise every service in DIR (default: the current directory)."""

import sys

USAGE = "svscan: usage: svscan [dir]\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--":
        argv = argv[1:]
    if len(argv) > 1 or argv and argv[0].startswith("-"):
        sys.stderr.write(USAGE)
        return 100
    from .. import scan
    return scan.run(argv[0] if argv else ".")


if __name__ == "__main__":
    sys.exit(main())
