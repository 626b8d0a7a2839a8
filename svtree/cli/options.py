"""A tiny getopt for the daemontools-style programs.

The standard getopt module pulls in gettext at import time; these programs
run in loops and health checks, so they parse argv themselves.
"""


class UsageError(Exception):
    """A word of argv that is not a valid option; str() is getopt's complaint
    ("illegal option -- z", "option requires an argument -- o")."""


def options(argv, flags, valued=""):
    """Split argv into ([(letter, value or None), ...] in order, operands).

    Letters in flags take no value and may be bundled (-dx, -d -x); a letter
    in valued takes the rest of its word or the next word (-o5, -o 5).
    "--" or the first word not starting with "-" ends the options; a lone
    "-" is an operand.
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
