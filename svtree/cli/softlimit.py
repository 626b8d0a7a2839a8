"""softlimit [-acdflmoprst N] CHILD...: run CHILD with lower soft resource limits.

Each option sets one soft limit (-m four of them) to N, a decimal number,
or to the hard limit if N is "=". N above the hard limit is clamped to it,
so softlimit never fails for asking too much. Options apply in the order
given; a later one overrides an earlier one on the same limit. Exit 111 if
a limit cannot be read or set or CHILD cannot run, 100 on a usage error.
A first argument --help or --version answers on stdout and exits 0.
"""

import resource
import sys

from ..errors import USAGE
from .chain import fatal, run
from .options import UsageError, asked, options

PROG = "softlimit"
SYNOPSIS = ("softlimit [-a allbytes] [-c corebytes] [-d databytes]"
            " [-f filebytes] [-l lockbytes] [-m membytes] [-o openfiles] [-p processes]"
            " [-r residentbytes] [-s stackbytes] [-t cpusecs] child")
HELP = """usage: softlimit [-acdflmoprst n] child...
Runs child with soft resource limits lowered to n (or raised to the hard
limit if n is =): -a address space, -c core file, -d data segment, -f file
size, -l locked memory, -m all of -a -d -l -s, -o open files,
-p processes, -r resident set, -s stack, -t CPU seconds. See softlimit(8).
"""

R = resource
LIMITS = {
    "a": (R.RLIMIT_AS,),
    "c": (R.RLIMIT_CORE,),
    "d": (R.RLIMIT_DATA,),
    "f": (R.RLIMIT_FSIZE,),
    "l": (R.RLIMIT_MEMLOCK,),
    "m": (R.RLIMIT_DATA, R.RLIMIT_STACK, R.RLIMIT_MEMLOCK, R.RLIMIT_AS),
    "o": (R.RLIMIT_NOFILE,),
    "p": (R.RLIMIT_NPROC,),
    "r": (R.RLIMIT_RSS,),
    "s": (R.RLIMIT_STACK,),
    "t": (R.RLIMIT_CPU,),
}
HARD = None                     # the "=" of the command line
LARGEST = 2**63 - 1             # Python passes rlim_t as a signed long long


def parse(argv: list[str]) -> tuple[list[tuple[str, int | None]], list[str]]:
    """([(letter, N or HARD), ...], CHILD) from argv; getopt's -o5 and -o 5.

    Raises UsageError: its text goes before the usage line ('' for nothing).
    """
    try:
        found, child = options(argv, "", "".join(LIMITS))
    except UsageError as e:
        raise UsageError(f"{PROG}: {e}\n") from None
    settings = []
    for letter, value in found:
        if value == "=":
            settings.append((letter, HARD))
        elif value.isascii() and value.isdigit():
            settings.append((letter, int(value)))
        else:
            raise UsageError("")
    return settings, child


def soften(which: int, n: int | None) -> None:
    """Set one soft limit to n (HARD: to the hard limit), never above the hard."""
    _, hard = resource.getrlimit(which)
    if n is HARD or hard != resource.RLIM_INFINITY and n > hard:
        n = hard
    elif n > LARGEST:
        n = resource.RLIM_INFINITY
    resource.setrlimit(which, (n, hard))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if asked(PROG, argv, HELP):
        return 0
    try:
        settings, child = parse(argv)
        if not child:
            raise UsageError("")
    except UsageError as e:
        sys.stderr.write(f"{e}{PROG}: usage: {SYNOPSIS}\n")
        return USAGE
    for letter, n in settings:
        for which in LIMITS[letter]:
            try:
                soften(which, n)
            except (OSError, ValueError) as e:
                return fatal(PROG, f"unable to set the soft limit of -{letter}", e)
    return run(PROG, child)


if __name__ == "__main__":
    sys.exit(main())
