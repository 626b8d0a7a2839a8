"""A tiny getopt for the daemontools-style programs.

The standard getopt module pulls in gettext at import time; these programs
run in loops and health checks, so they parse argv themselves.
"""


class UsageError(Exception):
    """An option that is not in the program's list."""


def letters(argv, allowed):
    """Split argv into (option letters in order, operands).

    Options are single letters, bundled or not (-dx, -d -x); "--" or the
    first word not starting with "-" ends them. A lone "-" is an operand.
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
        for ch in word[1:]:
            if ch not in allowed:
                raise UsageError(ch)
            found.append(ch)
        i += 1
    return found, argv[i:]
