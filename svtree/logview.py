"""Reading multilog directories back: the last lines, and following them.

A service's log directory is found where its logger usually writes it:
SERVICE itself if it holds `current`, else SERVICE/log if it does, else the
directories under SERVICE/log that hold `current` (`multilog t ./main`).
Lines are shown with their TAI64N labels as local time, as tai64nlocal does.
"""

import os
from pathlib import Path

from . import tai64n


def logdirs(service: Path) -> list[Path]:
    """The log directories of a service (possibly several), or []."""
    service = Path(service)
    for d in (service, service / "log"):
        if (d / "current").is_file():
            return [d]
    log = service / "log"
    if not log.is_dir():
        return []
    return sorted(d for d in log.iterdir() if d.is_dir() and (d / "current").is_file())


def files(logdir: Path) -> list[Path]:
    """Rotated files, oldest first, then current."""
    old = sorted(p for p in logdir.iterdir()
                 if p.name.startswith("@") and p.name[-2:] in (".s", ".u"))
    return old + [logdir / "current"]


def humanize(line: bytes) -> bytes:
    """Replace a leading @TAI64N label by local time (tai64nlocal)."""
    if len(line) >= 25 and line[:1] == b"@":
        try:
            label = tai64n.parse(line[:25].decode("ascii"))
            return tai64n.local_text(label).encode() + line[25:]
        except (ValueError, OverflowError, OSError):
            pass
    return line


def tail(logdir: Path, count: int) -> tuple[list[bytes], int]:
    """The last count lines of a log directory, newest last, and how many
    bytes of current they reach to (where follow() should go on)."""
    lines: list[bytes] = []
    seen = 0
    for path in reversed(files(logdir)):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue            # rotated away while we looked
        if path.name == "current":
            seen = len(data)
        lines = data.splitlines(keepends=True) + lines
        if len(lines) >= count:
            break
    return (lines[-count:] if count else []), seen


def follow(logdir: Path, offset=None, timeout=None):
    """Yield lines appended to current after offset (default: its end), across rotations.

    Woken by inotify on the directory; yields None when timeout seconds pass
    with nothing new (so callers can stop), forever otherwise.
    """
    from inotify_simple import INotify, flags
    inotify = INotify()
    inotify.add_watch(str(logdir), flags.MODIFY | flags.CREATE | flags.MOVED_TO
                      | flags.MOVED_FROM | flags.CLOSE_WRITE)
    current = logdir / "current"
    fd = os.open(current, os.O_RDONLY)
    if offset is None:
        os.lseek(fd, 0, os.SEEK_END)
    else:
        os.lseek(fd, offset, os.SEEK_SET)
    partial = b""
    try:
        while True:
            data = read_all(fd)
            if not data:
                try:
                    replaced = os.stat(current).st_ino != os.fstat(fd).st_ino
                except FileNotFoundError:
                    replaced = False
                if replaced:                 # rotated: the old file is complete
                    os.close(fd)
                    fd = os.open(current, os.O_RDONLY)
                    continue
                events = inotify.read(timeout=None if timeout is None else int(timeout * 1000))
                if not events and timeout is not None:
                    yield None
                continue
            partial += data
            *complete, partial = partial.split(b"\n")
            for line in complete:
                yield line + b"\n"
    finally:
        os.close(fd)
        inotify.close()


def read_all(fd):
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
