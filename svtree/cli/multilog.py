"""multilog SCRIPT...: file standard input into automatically rotated logs.

Exit 0 at end of input or after TERM, 111 if a log directory cannot be set up
(its lock is held by another logger, say), 100 with no script.
"""

import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.stderr.write("multilog: usage: multilog script\n")
        return 100
    from .. import logger, logscript
    from ..errors import describe
    from ..logdir import LogDir, Locked
    script = logscript.parse(argv)
    dirs = {}
    for d in script.dirs:
        try:
            dirs[id(d)] = LogDir(d.path, d.size, d.num, d.processor)
        except Locked:
            sys.stderr.write(f"multilog: fatal: unable to lock directory {d.path}: "
                             "temporary failure\n")
            return 111
        except OSError as e:
            sys.stderr.write(f"multilog: fatal: unable to set up {d.path}: {describe(e)}\n")
            return 111
    try:
        return logger.run(logger.Logger(script, dirs))
    except OSError as e:
        sys.stderr.write(f"multilog: fatal: unable to read input: {describe(e)}\n")
        return 111


if __name__ == "__main__":
    sys.exit(main())
