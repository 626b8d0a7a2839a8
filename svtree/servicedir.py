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
    multilog script and no run, which its supervise runs itself)."""
    return any(os.access(os.path.join(path, name), os.F_OK, dir_fd=dir_fd,
                         follow_symlinks=False) for name in SERVICE_FILES)


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
