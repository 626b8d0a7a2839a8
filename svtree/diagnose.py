"""Why ./run (or ./check, ./finish) did not start: the real cause, looked
for, since the kernel's errno alone misleads (ENOENT for a missing #!
interpreter, EACCES for a missing exec bit)."""

import errno
import os

from . import unix
from .errors import describe


def why_not_started(name, e):
    """The real cause of a failed exec of ./name, looked for: the kernel
    says ENOENT for a missing #! interpreter too (`/bin/sh\r` when the
    script has CRLF line endings), EACCES for a missing exec bit.

    ./name is its owner's: its first line is read as a regular file only
    (a fifo named run must not hang us, a symlink is not followed), and
    what it names is shown escaped (a control byte reaches no log)."""
    if e.errno == errno.ENOENT and os.path.lexists(name):
        interpreter = shebang(name)
        if interpreter is None:
            return f"{name} exists, but the loader it names does not ({describe(e)})"
        if interpreter.endswith(b"\r"):
            return (f"its interpreter {shown(interpreter)} does not exist: {name} has CRLF"
                    " line endings (dos2unix)")
        return f"its interpreter {shown(interpreter)} (the #! line of {name}) does not exist"
    if e.errno == errno.EACCES and os.path.exists(name):
        if not os.access(name, os.X_OK):
            return f"{name} is not executable (chmod +x {name})"
        interpreter = shebang(name)
        if interpreter and not executable(interpreter):
            return f"its interpreter {shown(interpreter)} is not executable"
    if e.errno == errno.ENOEXEC:
        return f"{name} is neither a program nor a script starting with #!"
    return describe(e)


def shebang(name):
    """The interpreter a #! line names (bytes), or None."""
    try:
        line = unix.read_regular(name, None, 256).split(b"\n", 1)[0]
    except (OSError, unix.NotRegular):
        return None
    if not line.startswith(b"#!"):
        return None
    word = line[2:].lstrip(b" \t")
    for sep in (b" ", b"\t"):
        word = word.split(sep, 1)[0]
    return word or None


def executable(path):
    try:
        return os.access(path, os.X_OK)
    except ValueError:                   # a NUL in the #! line
        return False


def shown(name):
    """A name from a #! line for a message: \\r as \\r, other controls and
    bytes that are not UTF-8 as \\xNN."""
    text = name.decode(errors="backslashreplace")
    return "".join(c if c.isprintable() else "\\r" if c == "\r" else f"\\x{ord(c):02x}"
                   for c in text)
