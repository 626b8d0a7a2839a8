"""The exceptions the library raises, and the words the programs print.

    Exception
     ├── NotRunning          no supervise reads SERVICE/supervise/control (ENXIO)
     ├── status.BadStatus    a status file of the wrong size or content
     └── OSError             everything else the OS says; describe() words it

Entry points turn them into one line, `PROG: warning|fatal: unable to VERB
OBJECT: REASON`, and an exit code: 100 usage or permanent, 111 temporary.
"""

import errno
import os

USAGE, TEMPORARY = 100, 111


class NotRunning(Exception):
    """No supervise process holds the service's control or ok fifo open."""

    def __str__(self):
        return "supervise not running"


# daemontools' wording of the common errno values (its error_str()), so that
# scripts grepping for "file does not exist" keep working.
_WORDS = {
    errno.ENOENT: "file does not exist",
    errno.EACCES: "access denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "not a directory",
    errno.EISDIR: "is a directory",
    errno.EAGAIN: "temporary failure",
    errno.ENXIO: "device not configured",
    errno.ENOSPC: "out of disk space",
    errno.EROFS: "read-only file system",
    errno.EEXIST: "file already exists",
    errno.ELOOP: "symbolic link loop",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error",
    errno.ENOMEM: "out of memory",
    errno.ESRCH: "no such process",
    errno.EBUSY: "device busy",
    errno.EMFILE: "out of file descriptors",
    errno.ENOEXEC: "exec format error",
}


def describe(e: BaseException) -> str:
    """The daemontools words for an error."""
    if isinstance(e, OSError) and e.errno is not None:
        return _WORDS.get(e.errno) or os.strerror(e.errno).lower()
    return str(e)


def tell(prog: str, kind: str, what: str, e: BaseException | None = None) -> None:
    """A daemon's `prog: kind: what[: reason]` line on fd 2. Never raises: a
    daemon whose stderr reader has gone must carry on, not die of EPIPE."""
    reason = f": {describe(e)}" if e is not None else ""
    try:
        os.write(2, f"{prog}: {kind}: {what}{reason}\n".encode(errors="replace"))
    except OSError:
        pass

