"""A tiny getopt for the daemontools-style programs, and their --help and --version.

The standard getopt module pulls in gettext at import time; these programs
run in loops and health checks, so they parse argv themselves.
"""

import sys


class UsageError(Exception):
    """A word of argv that is not a valid option; str() is the complaint:
    getopt's for a letter ("illegal option -- z", "option requires an
    argument -- o"), or one naming the whole word for a long option
    ("illegal option --up: options are single letters")."""


def options(argv, flags, valued=""):
    """Split argv into ([(letter, value or None), ...] in order, operands).

    Letters in flags take no value and may be bundled (-dx, -d -x); a letter
    in valued takes the rest of its word or the next word (-o5, -o 5).
    "--" or the first word not starting with "-" ends the options; a lone
    "-" is an operand. A word starting with "--" is refused whole: getopt
    would complain of an illegal option "-", which names nothing the user
    typed (daemontools' svc even took "--up" for "--" and sent nothing).
    """
    found = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-":
            break
        if word.startswith("--"):
            raise UsageError(f"illegal option {word}: options are single letters")
        for j, ch in enumerate(word[1:], 2):
            if ch in valued:
                value = word[j:]
                if not value:
                    i += 1
                    if i == len(argv):
                        raise UsageError(f"option requires an argument -- {ch}")
                    value = argv[i]
                found.append((ch, value))
                break
            if ch not in flags:
                raise UsageError(f"illegal option -- {ch}")
            found.append((ch, None))
        i += 1
    return found, argv[i:]


def letters(argv, allowed):
    """Split argv into (option letters in order, operands); see options()."""
    found, operands = options(argv, allowed)
    return [ch for ch, _ in found], operands


def asked(prog, argv, text, help_words=("--help",), sole=False) -> bool:
    """Whether argv asks for help or the version; if so, the answer is on stdout.

    The first word of argv (with sole: its only word) "--help", or another
    of help_words, prints text; "--version" prints "PROG (svtree) VERSION".
    daemontools' programs know neither word (its svstat takes --help for a
    directory, its multilog for a pattern); no script gives them one
    meaning those, so here they mean what a person expects.
    """
    if not argv or sole and len(argv) > 1:
        return False
    if argv[0] in help_words:
        sys.stdout.write(text)
    elif argv[0] == "--version":
        sys.stdout.write(f"{prog} (svtree) {version()}\n")
    else:
        return False
    return True


def program(prog, text):
    """Make main(argv) -> int a program: main() without argv reads
    sys.argv and then exits at once when done (unix.leave: no interpreter
    teardown, a third of a short run), and a first --help or --version is
    answered (asked) before main sees argv."""
    def wrap(main):
        def run(argv=None) -> int:
            if argv is None:
                from ..unix import leave
                leave(run(sys.argv[1:]))
            if asked(prog, argv, text):
                return 0
            return main(argv)
        run.__doc__ = main.__doc__
        return run
    return wrap


def version() -> str:
    """svtree's version: importlib.metadata costs milliseconds, so it is
    imported only here, when --version is asked."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed
    try:
        return installed("svtree")
    except PackageNotFoundError:       # run from a source tree
        from .. import __version__
        return __version__
