"""multilog SCRIPT...: file standard input into automatically rotated logs.

Exit 0 at end of input or after TERM, 111 if a log directory cannot be set up
(its lock is held by another logger, say). A word of the script that does
nothing (`main` for `./main`) is ignored, as daemontools ignores it, with a
warning; so is a script that sends lines nowhere, which then reads its input
to the end and drops it, as daemontools' does. --help or --version as the
whole script answers and exits 0 without reading stdin; anywhere else in a
script they are patterns, as in daemontools.
"""

import os
import sys

from ..errors import TEMPORARY
from .options import asked

SYNOPSIS = "multilog script"
HELP = f"""usage: {SYNOPSIS}
Reads lines on stdin and acts on them in the order of the script's actions:
  t  stamp each line (TAI64N)    T  stamp it in local ISO 8601
  +pattern / -pattern  select / deselect    e  copy to stderr
  sSIZE  nNUM  !processor  settings for the next log directories
  ./dir or /dir  append to that automatically rotated log directory
  =file  keep the last selected line in file
Example, in a log/run: exec multilog t s1000000 n20 ./main. See multilog(8).
"""


def main(argv=None) -> int:
    if argv is None:
        lean(sys.argv[1:])
    argv = sys.argv[1:] if argv is None else argv
    if asked("multilog", argv, HELP, sole=True):
        return 0
    from .. import logger, logscript
    from ..errors import describe
    from ..logdir import Locked, LogDir
    script = logscript.parse(argv)
    notes = script.notes
    if script.discards and not notes:
        notes = ["no log directory, e or =file: input is read and discarded"]
    for note in notes:
        warn(note)
    dirs = {}
    for d in script.dirs:
        try:
            dirs[id(d)] = LogDir(d.path, d.size, d.num, d.processor)
        except Locked:
            sys.stderr.write(f"multilog: fatal: unable to lock directory {d.path}: "
                             "temporary failure\n")
            return TEMPORARY
        except OSError as e:
            sys.stderr.write(f"multilog: fatal: unable to set up {d.path}: {describe(e)}\n")
            return TEMPORARY
    try:
        return logger.run(logger.Logger(script, dirs))
    except OSError as e:
        sys.stderr.write(f"multilog: fatal: unable to read input: {describe(e)}\n")
        return TEMPORARY


def lean(argv):
    """Started as a console script (log/run: exec multilog t ./main), run
    again as `python -I -S`: the script's `import re` and site cost each
    logger over 1 MiB. Returns in that run, or if it cannot be made; its
    comm stays multilog, as the script's was."""
    if sys.flags.no_site:
        try:
            fd = os.open("/proc/self/comm", os.O_WRONLY)
            try:
                os.write(fd, b"multilog")
            finally:
                os.close(fd)
        except OSError:
            pass
        return
    if not sys.executable:
        return
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (f"import sys; sys.path.insert(0, {top!r}); "
            "from svtree.cli.multilog import main; sys.exit(main())")
    try:
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", code, *argv])
    except OSError:
        pass


def warn(text):
    """A warning naming words of argv as they were typed (not UTF-8, maybe)."""
    try:
        os.write(2, b"multilog: warning: " + os.fsencode(text) + b"\n")
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
