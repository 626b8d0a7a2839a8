"""Chain loading: the shared last step of setuidgid, envdir, softlimit & co.

Each of those programs changes one thing about its own process (user,
environment, limits, a lock, the session) and then replaces itself with
CHILD... through execve(2), keeping its pid, so a supervisor that started
it now watches the child. The child should not be able to tell that a
Python program ran in between, so run() undoes the two things CPython
changes at start-up and a C program would not: ignored SIGPIPE and
SIGXFSZ, and an LC_CTYPE variable invented by locale coercion (PEP 538).
"""

import errno
import os
import sys

import _signal    # the C module: `signal` would import enum at every start

from ..errors import TEMPORARY, USAGE, tell

# CPython ignores these so that writes fail with EPIPE and EFBIG instead
# of killing it; an ignored signal survives exec, and a child such as
# `yes | head` would print errors instead of dying quietly.
_PYTHON_IGNORES = (_signal.SIGPIPE, _signal.SIGXFSZ)
# What CPython sets LC_CTYPE to when it finds the C locale (PEP 538).
_COERCED = (b"C.UTF-8", b"C.utf8", b"UTF-8")


def usage(prog: str, synopsis: str) -> int:
    """Print `prog: usage: synopsis` and return 100."""
    sys.stderr.write(f"{prog}: usage: {synopsis}\n")
    return USAGE


def fatal(prog: str, what: str, e: BaseException | None = None) -> int:
    """Print `prog: fatal: what[: reason]` and return 111."""
    tell(prog, "fatal", what, e)
    return TEMPORARY


def account_and_child(prog: str, argv: list[str]):
    """For `prog account child...`: (the account's passwd entry, child), or
    the exit code of a usage error (100) or an unknown account (111)."""
    import pwd
    if len(argv) < 2:
        return usage(prog, f"{prog} account child")
    try:
        return pwd.getpwnam(argv[0]), argv[1:]
    except KeyError:
        return fatal(prog, f"unknown account {argv[0]}")


def with_account(prog: str):
    """Make main(pw, child) the main(argv) of `prog account child...`: a
    usage error or an unknown account is told and exits as
    account_and_child says."""
    def wrap(main):
        def run_with(argv):
            found = account_and_child(prog, argv)
            return found if isinstance(found, int) else main(*found)
        return run_with
    return wrap


def run(prog: str, child: list[str], changes: dict[bytes, bytes | None] | None = None) -> int:
    """Become child, with our environment plus changes (None: remove); 111 if we cannot.

    child[0] is searched for in our own PATH, even if changes set another
    one, as daemontools' pathexec does.
    """
    env = given_environment()
    for name, value in (changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    for signum in _PYTHON_IGNORES:
        _signal.signal(signum, _signal.SIG_DFL)
    try:
        execvp(child[0], child, env)
    except (OSError, ValueError) as e:
        return fatal(prog, f"unable to run {child[0]}", e)
    return TEMPORARY   # not reached: exec returns only by raising


def given_environment() -> dict[bytes, bytes]:
    """The environment this process was started with."""
    env = dict(os.environb)
    if env.get(b"LC_CTYPE") in _COERCED and not env.get(b"LC_ALL"):
        # Perhaps coerced: the kernel's copy of our initial environment
        # tells (setenv never writes to it).
        try:
            with open("/proc/self/environ", "rb") as f:
                initial = f.read().split(b"\0")
        except OSError:
            return env
        for entry in initial:
            if entry.startswith(b"LC_CTYPE="):
                env[b"LC_CTYPE"] = entry[len(b"LC_CTYPE="):]
                break
        else:
            del env[b"LC_CTYPE"]
    return env


def execvp(file: str, args: list[str], env: dict[bytes, bytes]) -> None:
    """execvp(3) with an explicit environment, searching our own PATH.

    Written out rather than os.execvpe: that searches env's PATH, and it
    imports a module on the way, which fails after setuidgid has dropped
    the rights to read the Python installation. Like execvp(3): try each
    directory; report the first error other than "not here", else the last.
    """
    if "/" in file:
        os.execve(file, args, env)
    first = last = None
    for directory in os.environ.get("PATH", os.defpath).split(":"):
        try:
            os.execve(os.path.join(directory, file), args, env)
        except (FileNotFoundError, NotADirectoryError) as e:
            last = e
        except OSError as e:
            first = first or e
    raise first or last or FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), file)
