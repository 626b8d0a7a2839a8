"""envdir DIR CHILD...: run CHILD with environment variables read from DIR.

Each file in DIR names a variable; names starting with "." are skipped.
  - an empty file (0 bytes) removes the variable;
  - otherwise the value is the file's first line, without its newline and
    without trailing spaces and tabs, with each NUL turned into a newline
    (so a file can carry a multi-line value).
A name containing "=" cannot name a variable and is an error, as is an
entry that cannot be read (a subdirectory, say). CHILD is searched for in
our own PATH, not one DIR sets. Exit 111 on any of these errors or if
CHILD cannot run, 100 on a usage error. A first argument --help or
--version answers on stdout and exits 0 (daemontools takes it for DIR).
"""

import os
import sys

from ..unix import open_dir
from .chain import fatal, run, usage
from .options import asked

PROG = "envdir"
HELP = """usage: envdir dir child...
Runs child with the environment changed by the files in dir: each file
names a variable and holds its value on its first line; an empty file
removes the variable. See envdir(8).
"""


def first_line(fd: int) -> bytes | None:
    """The value a file gives: None if it is empty, else its trimmed first line."""
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
        if b"\n" in chunk:
            break
    if not chunks:
        return None
    line = b"".join(chunks).split(b"\n", 1)[0]
    return line.rstrip(b" \t").replace(b"\0", b"\n")


def names(dir_fd: int) -> list[str]:
    """The variable files in a directory, in a fixed (sorted) order."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)
    try:
        return sorted(n for n in os.listdir(fd) if not n.startswith("."))
    finally:
        os.close(fd)


def value(name: str, dir_fd: int) -> bytes | None:
    fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    try:
        return first_line(fd)
    finally:
        os.close(fd)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if asked(PROG, argv, HELP):
        return 0
    if len(argv) < 2:
        return usage(PROG, "envdir dir child")
    where, child = argv[0], argv[1:]
    try:
        dir_fd = open_dir(where)
    except OSError as e:
        return fatal(PROG, f"unable to switch to directory {where}", e)
    try:
        found = names(dir_fd)
    except OSError as e:
        return fatal(PROG, f"unable to read directory {where}", e)
    changes = {}
    for name in found:
        if "=" in name:
            return fatal(PROG, f"unable to use {where}/{name}: a name cannot contain =")
        try:
            text = value(name, dir_fd)
        except OSError as e:
            return fatal(PROG, f"unable to read {where}/{name}", e)
        changes[os.fsencode(name)] = text
    os.close(dir_fd)
    return run(PROG, child, changes)


if __name__ == "__main__":
    sys.exit(main())
