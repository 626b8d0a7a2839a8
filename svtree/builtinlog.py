"""The built-in logger: a log/ directory with no `run` and a `multilog`
file holding multilog's script as data (`t s1000000 n20 ./main`), and
optionally a `user` file naming the account it runs as. Its supervise runs
svtree's multilog in a child forked from itself, not in a new interpreter:
the same code, rotation, !processor, ALRM and TERM as `exec multilog ...`,
at a fraction of the memory. svtree-service(5) says who may write what.
"""

import _signal
import os
import pwd
import shlex
import sys

from . import policy, spawn, unix
# the logger's code, imported here so that svscan's children share it
from . import logdir, logger, logscript  # noqa: F401  (cli.multilog imports them when run)
from .cli import multilog
from .errors import TEMPORARY, describe, tell
from .proctitle import name_process

SCRIPT = "multilog"    # log/multilog: multilog's script, as data
USER = "user"          # log/user: the account it runs as, in a file of ours
SCRIPT_MAX = 4096


class BadScript(Exception):
    """log/multilog cannot be used: the words say why."""


def is_builtin():
    """A directory with no ./run and a multilog file: its ./run is svtree's
    multilog, run in a child forked from here rather than a new interpreter."""
    return not os.path.lexists("run") and os.path.lexists(SCRIPT)


def script():
    """(the script's words, (uid, gid) to run as or None).

    The file is its owner's, and root reads it: a regular file only, not
    followed if a symlink, opened without blocking, at most SCRIPT_MAX
    bytes, split as sh splits words (quotes, # comments). Raises BadScript.
    """
    try:
        fd = unix.open_regular(SCRIPT)
    except (OSError, unix.NotRegular) as e:
        raise BadScript(describe(e)) from None
    try:
        st = os.fstat(fd)
        data = os.read(fd, SCRIPT_MAX + 1)
    except OSError as e:
        raise BadScript(describe(e)) from None
    finally:
        os.close(fd)
    if len(data) > SCRIPT_MAX:
        raise BadScript(f"longer than {SCRIPT_MAX} bytes")
    try:
        words = shlex.split(data.decode("utf-8", "surrogateescape"), comments=True)
    except ValueError as e:
        raise BadScript(f"not a script: {e}") from None
    if not words:
        raise BadScript("no script in it")
    return words, account(st)


def account(st):
    """Whom the built-in logger runs as, (uid, gid, groups) or None for as
    we are: the account a `user` file names, if that file is one only we
    can have made (policy.is_ours, as for `critical`); else, when we are
    root and someone else owns the script, that owner: the script then
    writes (and its !processor runs) where its author may, not where root
    may. Groups come from the account database (its primary group and its
    memberships), never from the file, whose group may be root's.

    Raises BadScript when a `user` file is there but cannot be used, or the
    owner has no account: the logger does not start rather than run with
    more privileges than asked for."""
    name = None
    if os.access(USER, os.F_OK, follow_symlinks=False):
        if not policy.is_ours(USER):
            raise BadScript(f"{USER} is not a file of uid {os.geteuid()} in a directory"
                            " only it can write")
        try:
            name = policy.read_text(USER).strip()
        except OSError as e:
            raise BadScript(f"{USER}: {describe(e)}") from None
    elif os.geteuid() == 0 and st.st_uid != 0:
        name = str(st.st_uid)
    if name is None:
        return None
    try:
        pw = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError, OverflowError):
        raise BadScript(f"no account {name!r} to run the logger as") from None
    try:
        groups = os.getgrouplist(pw.pw_name, pw.pw_gid)
    except OSError:
        groups = [pw.pw_gid]
    return pw.pw_uid, pw.pw_gid, groups


# --- a log/run that only execs svtree's own multilog ---------------------------------

SHELL = b"#!/bin/sh"
STDERR_TO_STDOUT = b"exec 2>&1"
BLANKS = b" \t"            # what sh splits words on (IFS does not apply to a script's text)
# bytes a script may hold at all: printable ASCII, tab and newline (no CR, no
# NUL, nothing sh or the kernel would read otherwise than split() does)
TEXT = frozenset(range(0x20, 0x7f)) | {0x09, 0x0a}
# what a word may hold unquoted for sh to take it as it is: no expansion, no
# quoting, no operator, no comment, no tilde
PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:,+=@%!-")


def sh_words(line):
    """The words sh makes of line (printable ASCII bytes), if each is plain
    or wholly in single quotes; None if sh could read any of them otherwise."""
    words = []
    for token in line.replace(b"\t", b" ").split(b" "):
        if not token:
            continue
        if len(token) >= 2 and token[0] == token[-1] == 0x27 and b"'" not in token[1:-1]:
            words.append(token[1:-1].decode("ascii"))
        elif PLAIN.issuperset(token):
            words.append(token.decode("ascii"))
        else:
            return None
    return words


def exec_words(data):
    """(the words after `exec`, whether stderr goes to stdout) of a script
    (bytes) that is `#!/bin/sh`, then at most comments, blank lines and
    `exec 2>&1`, then one `exec WORD...` and nothing after it; None for
    any other script, or one holding any byte but printable ASCII, tab and
    newline."""
    if not TEXT.issuperset(data):
        return None
    lines = data.split(b"\n")
    if lines[0].rstrip(BLANKS) != SHELL:
        return None
    command = None
    merged = False
    for line in lines[1:]:
        line = line.strip(BLANKS)
        if not line or line.startswith(b"#"):
            continue
        if command is not None:
            return None                 # something after the exec: sh would not get there,
        if line == STDERR_TO_STDOUT:   # but a reader would expect it to count
            merged = True
            continue
        words = sh_words(line)
        if not words or words[0] != "exec" or len(words) < 2:
            return None
        command = words[1:]
    return None if command is None else (command, merged)


def found_in_path(name):
    """Where sh would find the program name in our PATH, or None (and None
    without a PATH: dash's default is not Python's)."""
    if "/" in name:
        return name
    path = os.environ.get("PATH")
    if path is None:
        return None
    for d in path.split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def is_our_program(path, name):
    """Whether path is, as a file, svtree's program name next to the Python
    we run on (a virtual environment's bin/), and that file svtree's console
    script: with a system Python, the file next to it may be daemontools'."""
    exe = sys.executable
    if path is None or not exe or not os.path.isabs(exe):
        return False
    ours = os.path.join(os.path.dirname(exe), name)
    try:
        theirs = os.stat(path)
        fd = unix.open_regular(ours)
    except (OSError, ValueError):
        return False
    try:
        st = os.fstat(fd)
        head = os.read(fd, 1024)
    except OSError:
        return False
    finally:
        os.close(fd)
    return ((st.st_dev, st.st_ino) == (theirs.st_dev, theirs.st_ino)
            and head.startswith(b"#!")
            and f"\nfrom svtree.cli.{name} import main\n".encode() in head)


def exec_script(run="run"):
    """(words, account name or None, stderr_to_stdout) to run as the
    built-in logger when ./run is nothing but `exec [setuidgid ACCOUNT]
    multilog SCRIPT...` (as exec_words reads it), both programs svtree's
    own: what the shell and a new interpreter would do, without them. None
    for anything else, which is exec'd as ever: a symlink (root reads no
    file a service's owner points at), a file nobody may execute, more than
    SCRIPT_MAX bytes. Never raises."""
    try:
        fd = unix.open_regular(run)
    except (OSError, unix.NotRegular, ValueError):
        return None
    try:
        if not os.fstat(fd).st_mode & 0o111:
            return None                       # exec would fail: let it say so
        data = os.read(fd, SCRIPT_MAX + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    found = exec_words(data) if len(data) <= SCRIPT_MAX else None
    if not found:
        return None
    command, merged = found
    account = None
    if command[0] == "setuidgid":
        if (len(command) < 3 or command[1].startswith("-")       # --help, --version
                or not is_our_program(found_in_path("setuidgid"), "setuidgid")):
            return None
        account, command = command[1], command[2:]
    if len(command) < 2 or not is_our_program(found_in_path(command[0]), "multilog"):
        return None
    if "PYTHONPATH" in os.environ or "PYTHONHOME" in os.environ:
        return None                   # the console script could import another svtree
    return command[1:], account, merged


def as_setuidgid(name):
    """(uid, gid, groups) as setuidgid leaves them for the account name:
    its primary group as its only group. Raises KeyError."""
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid, [pw.pw_gid]


def fork(words, account, path, stderr_to_stdout=False):
    """Start the built-in logger: a child of ours in a session of its own,
    its signals as an exec'd multilog finds them (at their defaults, PIPE
    and XFSZ ignored as Python ignores them), as account ((uid, gid,
    groups), or the name setuidgid would look up), running multilog's code
    on our stdin (svscan's pipe, which outlives it), its stderr ours or, as
    `exec 2>&1` leaves it, our stdout. Raises OSError."""
    pid = os.fork()
    if pid:
        return pid
    code = TEMPORARY
    try:
        os.setsid()
        _signal.set_wakeup_fd(-1)
        for signum in spawn.CATCHABLE:        # every signal at its default, as ./run gets them
            try:
                _signal.signal(signum, _signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        # as in any Python program (exec'd multilog included): a reader of
        # the alerts that went away is EPIPE, a file too large EFBIG
        _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        if stderr_to_stdout:
            os.dup2(1, 2)
        if isinstance(account, str):          # setuidgid's, looked up here as it would
            try:
                account = as_setuidgid(account)
            except (KeyError, ValueError):
                tell("setuidgid", "fatal", f"unknown account {account}")
                return
        if account:
            uid, gid, groups = account
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
        name_process(shlex.join(["multilog", *words]), "multilog")
        code = multilog.main(words)
    except BaseException as e:        # never return into supervise's loop
        try:
            tell("multilog", "fatal", f"unable to run the logger of {path}", e)
        except BaseException:
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)
