"""Reading multilog directories back: the last lines, and following them.

A service's log directory is found where its logger usually writes it:
SERVICE itself if it holds `current` (a log directory named directly), else
SERVICE/log if it does, else the directories under SERVICE/log that hold
`current` (`multilog t ./main`), and those its logger's script names
elsewhere (`multilog t /var/log/web` in log/run, or a built-in logger's
log/multilog; see script_dirs); for a logger named itself (SERVICE/log),
the same below it.
Lines are shown with their TAI64N labels as local time, as tai64nlocal does.

A log directory belongs to whoever runs the logger, and root may be the one
reading it: `current` and the rotated files (@TAI64N.s, @TAI64N.u) count
only as regular files, opened without blocking and without following a
symlink. A fifo of such a name (it would hang the reader) or a symlink (to
a file root may read and the owner may not) is skipped. Only the end of a
big file is read: about what is shown, at most LINE_MAX bytes a line.
"""

import os
import shlex
import stat
from pathlib import Path

from . import inotify, tai64n, unix

BLOCK = 65536
LINE_MAX = 65536      # a longer line is shown cut (tail) or in pieces (follow)


def is_log_file(path: Path) -> bool:
    """A regular file, not a symlink to one (lstat: nothing is opened)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):         # ValueError: a NUL in a name someone wrote
        return False


def logdirs(service: Path) -> list[Path]:
    """The log directories of a service (possibly several), or []. Raises
    OSError if its log/ cannot be listed."""
    service = Path(service)
    for d in (service, service / "log"):
        if is_log_file(d / "current"):
            return [d]
    log = service / "log"
    if not log.is_dir():
        log = service                # a logger itself: ./main below it
        if service.name != "log":
            return []
    owner = os.stat(log).st_uid
    found = sorted(d for d in log.iterdir()
                   if ours_to_show(d, owner, link_only=True) and d.is_dir()
                   and is_log_file(d / "current"))
    named = [d for d in script_dirs(log) if d not in found and is_log_file(d / "current")]
    return found + named


def ours_to_show(path: Path, owner: int, link_only: bool = False) -> bool:
    """May path, named by someone of uid owner (a script, a symlink in
    log/), be shown as that service's log? From root, anything; from
    anyone else, only a directory of theirs: another service's log they
    could merely name (or link to) is not shown as this one's. link_only:
    a directory that is really in log/ (not a symlink) is theirs to fill
    anyway."""
    if owner == 0:
        return True
    if link_only and not os.path.islink(path):
        return True
    return owned_by(path, owner)


LOGGERS = {"multilog": "dot", "s6-log": "dot", "svlogd": "any"}
SHELL_WORDS = {";", "&&", "||", "|", "&"}
SCRIPT_MAX = 65536


def script_dirs(log: Path) -> list[Path]:
    """The directories the logger's script names, relative to log/ (its
    working directory): the words after multilog or s6-log that start with
    . or /, and svlogd's arguments, in log/run (a shell script: its words
    as sh would split them, up to a shell operator or a redirection), or in
    log/multilog, a built-in logger's script. A word with a $ cannot be
    known here and is left out. log/ is its owner's to write: the files
    are read as regular files only, and only what a script fits in."""
    words = None
    for name, whole in (("multilog", True), ("run", False)):
        try:
            fd = unix.open_regular(str(log / name))
        except (OSError, unix.NotRegular):
            continue
        try:
            owner = os.fstat(fd).st_uid
            text = os.read(fd, SCRIPT_MAX).decode(errors="replace")
        except OSError:
            return []
        finally:
            os.close(fd)
        words = logger_words(text, whole)
        break
    if not words:
        return []
    kind, args = words
    named = [log / w for w in args if "$" not in w and "\0" not in w
             and (w.startswith((".", "/")) if kind == "dot" else not w.startswith("-"))]
    # from a script of root's, any (a logger run as `log` writes in a
    # directory of log's); from anyone else's, only theirs (ours_to_show)
    return [d for d in named if ours_to_show(d, owner)]


def owned_by(path: Path, uid: int) -> bool:
    try:
        return os.stat(path).st_uid == uid
    except (OSError, ValueError):
        return False


def redirection(word: str) -> bool:
    """>file, 2>&1, <in, 10>log: where a command's words end."""
    rest = word.lstrip("0123456789")
    return rest[:1] in ("<", ">")


def logger_words(text: str, whole: bool):
    """(kind, words after the logger) from a run script, or the words of a
    built-in logger's script (whole): None if no logger is found."""
    if whole:                   # read as supervise reads it: sh's words, # comments
        try:
            return "dot", shlex.split(text, comments=True)
        except ValueError:
            return None
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for i, word in enumerate(words):
            kind = LOGGERS.get(os.path.basename(word))
            if kind:
                args = []
                for w in words[i + 1:]:
                    if w in SHELL_WORDS or redirection(w):
                        break
                    args.append(w)
                return kind, args
    return None


def files(logdir: Path) -> list[Path]:
    """Rotated files, oldest first, then current."""
    old = sorted(p for p in logdir.iterdir()
                 if p.name.startswith("@") and p.name[-2:] in (".s", ".u") and is_log_file(p))
    return old + [logdir / "current"]


def humanize(line: bytes) -> bytes:
    """Replace a leading @TAI64N label by local time (tai64nlocal)."""
    return LOCAL.convert(line)


LOCAL = tai64n.Converter()


def tail(logdir: Path, count: int) -> tuple[list[bytes], int]:
    """The last count lines of a log directory, newest last, and how many
    bytes of current they reach to (where follow() should go on)."""
    lines: list[bytes] = []
    seen = 0
    for path in reversed(files(logdir)):
        try:
            fd = unix.open_regular(str(path))
        except (OSError, unix.NotRegular):
            continue            # rotated away while we looked, or swapped for a fifo
        try:
            size = os.fstat(fd).st_size
            if path.name == "current":
                seen = size
            lines = last_lines(fd, count - len(lines), size) + lines
        finally:
            os.close(fd)
        if len(lines) >= count:
            break
    return (lines[-count:] if count else []), seen


def last_lines(fd: int, count: int, end: int) -> list[bytes]:
    """The last count lines of the first end bytes of fd, read backwards a
    block at a time until count whole lines are in (or the start)."""
    if count <= 0:
        return []
    blocks, newlines, start = [], 0, end
    while start > 0 and newlines <= count and end - start < (count + 1) * LINE_MAX:
        size = min(BLOCK, start)
        block = os.pread(fd, size, start - size)
        if len(block) != size:
            break               # truncated under us: what we have is what there is
        start -= size
        blocks.append(block)
        newlines += block.count(b"\n")
    return b"".join(reversed(blocks)).splitlines(keepends=True)[-count:]


def follow(logdir: Path, offset=None, timeout=None):
    """Yield lines appended to current after offset (default: its end), across rotations.

    Woken by inotify on the directory; yields None when timeout seconds pass
    with nothing new (so callers can stop), forever otherwise. Raises
    unix.NotRegular or OSError if current cannot be opened at the start; a
    later current that is no regular file is waited past.
    """
    watcher = inotify.make()
    watcher.add_watch(str(logdir), inotify.MODIFY | inotify.CREATE | inotify.MOVED_TO
                      | inotify.MOVED_FROM | inotify.CLOSE_WRITE)
    current = logdir / "current"
    try:
        fd = unix.open_regular(str(current))
    except BaseException:
        watcher.close()
        raise
    if offset is None:
        os.lseek(fd, 0, os.SEEK_END)
    else:
        os.lseek(fd, offset, os.SEEK_SET)
    partial = b""
    try:
        while True:
            data = os.read(fd, BLOCK)      # one block at a time: a writer that
            if not data:                   # never stops cannot keep us here
                fresh = reopened(current, fd)
                if fresh is not None:       # rotated: the old file is complete
                    os.close(fd)
                    fd = fresh
                    continue
                events = watcher.read(timeout=None if timeout is None else int(timeout * 1000))
                if not events and timeout is not None:
                    yield None
                continue
            partial += data
            *complete, partial = partial.split(b"\n")
            for line in complete:
                yield line + b"\n"
            while len(partial) > LINE_MAX:          # no newline in sight: in pieces
                yield partial[:LINE_MAX] + b"\n"
                partial = partial[LINE_MAX:]
    finally:
        os.close(fd)
        watcher.close()


def reopened(current: Path, fd: int) -> int | None:
    """A new fd of current if it is another file than fd's, and a regular one."""
    try:
        if os.lstat(current).st_ino == os.fstat(fd).st_ino:
            return None
        return unix.open_regular(str(current))
    except (OSError, unix.NotRegular):
        return None             # gone for a moment, or not a file: wait for the next
