"""What a service directory is: the rules svscan starts services by, and
readers (svtree's commands, `svtree events`) find them by.

A scan directory's entry is a service if its name does not start with a
dot, it is meant for this host (a name ending in `@HOST` counts only on the
host called HOST), it is a directory (or a symlink to one) and it holds a
`run`. A service's `log` subdirectory is its logger: a service directory
too, with a `run`, or with a `multilog` script and no `run` (the built-in
logger). Every file's meaning is in svtree-service(5).

This module reads; it imports nothing of the daemons.
"""

import os
import stat

from . import trust
from .unix import NotRegular, read_regular

SERVICE_FILES = ("run", "multilog")   # multilog: a built-in logger's script


def meant_for_this_host(name: str, host: str | None = None) -> bool:
    """False for a service `NAME@HOST` when this host is not HOST.

    HOST is compared with the node name (what gethostname() returns) and
    with its first label, so `web@db1` also runs on db1.example.org. Such a
    service is skipped: one tree can be deployed to every host.
    """
    base, at, wanted = name.rpartition("@")
    if not at or not base or not wanted:
        return True
    host = os.uname().nodename if host is None else host
    return wanted in (host, host.split(".", 1)[0])


def candidate(name: str) -> bool:
    """Is this scan directory entry's name one svscan would start (here)?"""
    return not name.startswith(".") and meant_for_this_host(name)


def is_service(path=".", dir_fd: int | None = None) -> bool:
    """A service directory named as such (the directory open as dir_fd, if
    given): it has a run, or it is a built-in logger (a log/ with a
    multilog script and no run, which its supervise runs itself), or it is
    one instance of a service (SERVICE/instance/K, see instances())."""
    return any(os.access(os.path.join(path, name), os.F_OK, dir_fd=dir_fd,
                         follow_symlinks=False) for name in SERVICE_FILES) \
        or is_instance(path, dir_fd)


def is_instance(path=".", dir_fd: int | None = None) -> bool:
    """Is this SERVICE/instance/K, with a supervise/ and K a number?"""
    where = os.readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else path
    where = os.path.abspath(os.path.join(where, path)) if dir_fd is not None else \
        os.path.abspath(where)
    parent, number = os.path.split(where)
    return (number.isdigit() and os.path.basename(parent) == trust.INSTANCE_DIR
            and os.path.isdir(os.path.join(where, "supervise"))
            and os.path.lexists(os.path.join(os.path.dirname(parent), "run")))


def names(scandir, listing: list[str] | None = None) -> list[str]:
    """Names of the services in a scan directory, sorted, skipped ones (for
    another host) included; listing: its os.listdir(), if already read."""
    if listing is None:
        try:
            listing = os.listdir(scandir)
        except OSError:
            return []
    return [n for n in sorted(listing) if not n.startswith(".")
            and os.path.isdir(os.path.join(scandir, n))
            and os.path.lexists(os.path.join(scandir, n, "run"))]


def has_log(name: str) -> tuple[bool, str | None]:
    """(does the service have a logger, why not where it seems to). A `log`
    symlink counts only if nobody else can write the service directory:
    root must not be sent to run whatever directory another user points at."""
    log = os.path.join(name, "log")
    try:
        st = os.stat(log, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode) and not trust.safe_dir(os.stat(name)):
            return False, f"unable to use {log}: a symlink in a directory others can write; no logger"
    except OSError:
        return False, None
    return os.path.isdir(log), None


DEPENDS = "depends"
DEPENDS_MAX = 4096         # bytes of a depends file read; more is an error


class BadDepends(ValueError):
    """A depends file that cannot be used: the words say why."""


def parse_depends(data: bytes) -> list[str]:
    """The dependencies a depends file lists, in order, each once: one per
    line, a service name in the same scan directory or a path to a service
    directory (anything with a slash), blank lines and `#` comments
    skipped, surrounding blanks stripped. Raises BadDepends for a line
    that names nothing usable (`.`, `..`, a NUL byte)."""
    found = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.split(b"#", 1)[0].strip()
        if not line:
            continue
        word = os.fsdecode(line)
        if word in (".", "..") or "\0" in word:
            raise BadDepends(f"line {number}: not a service: {word!r}")
        if word not in found:
            found.append(word)
    return found


def read_depends(service, dir_fd: int | None = None) -> list[str]:
    """The dependencies of the service directory service (relative to
    dir_fd if given); [] without a depends file. Its owner's file: read as
    a regular file only, without blocking. Raises BadDepends, OSError."""
    name = os.path.join(service, DEPENDS)
    if not os.access(name, os.F_OK, dir_fd=dir_fd, follow_symlinks=False):
        return []
    try:
        data = read_regular(name, dir_fd, DEPENDS_MAX + 1)
    except NotRegular as e:
        raise BadDepends(str(e)) from None
    if len(data) > DEPENDS_MAX:
        raise BadDepends(f"longer than {DEPENDS_MAX} bytes")
    return parse_depends(data)


def dependency_path(scandir, word: str) -> str:
    """Where a dependency of a service in scandir is: a name is in scandir,
    a path is taken as it is (relative to scandir if relative)."""
    return os.path.join(scandir, word)


INSTANCES = "instances"
INSTANCES_MAX = 64


def instances(service, warn=None) -> int | None:
    """How many copies an instances file asks for (1 to INSTANCES_MAX);
    None without one, or if it cannot be used (said with warn)."""
    name = os.path.join(service, INSTANCES)
    if not os.access(name, os.F_OK, follow_symlinks=False):
        return None
    try:
        text = read_regular(name, None, 64).decode("ascii", "replace").strip()
    except (OSError, NotRegular) as e:
        text = f"<{e}>"
    if text.isdigit() and 1 <= int(text) <= INSTANCES_MAX:
        return int(text)
    if warn:
        warn(f"unable to use {name}: not a number from 1 to {INSTANCES_MAX}; "
             "one copy, as without the file")
    return None


def instance_path(service, number: int) -> str:
    """Where instance NUMBER of service keeps its supervise/."""
    return os.path.join(service, trust.INSTANCE_DIR, str(number))


def instance_paths(service) -> list[str] | None:
    """The directories of the copies an instances file asks for, or None."""
    count = instances(service)
    return None if count is None else [instance_path(service, k) for k in range(1, count + 1)]
