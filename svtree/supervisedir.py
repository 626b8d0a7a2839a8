"""SERVICE/supervise/, claimed by a supervise: the directory made ours
and safe (trust.py), its lock, the control and ok fifos, the event
fifodir, and what the previous supervise of the directory left there (a
./run still running, to adopt if the kernel agrees).

Setup's failures are Fatal: supervise exits 111 with the message.
"""

import json
import os
import time

from . import fifodir, procfs, servicedir, statejson, status, trust, unix
from .errors import describe, tell

BOOT_ID = procfs.boot_id()
CLK_TCK = os.sysconf("SC_CLK_TCK")


def warn(what, e=None):
    tell("supervise", "warning", what, e)


class Fatal(Exception):
    """A setup failure: supervise exits 111 with this message."""


def setup(path, instance=None):
    """Enter the service directory and claim its supervise/ files (those of
    instance/INSTANCE/ for an instance: the service's files are shared,
    its supervise/ is its own).

    Returns (supervise dir fd, lock fd, control read fd, control write fd,
    the group that may control the service too, from trust.read_access).
    """
    try:
        os.chdir(path)
    except OSError as e:
        raise Fatal(f"unable to chdir to {path}: {describe(e)}") from None
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        gid = trust.read_access(here, lambda m: warn(f"unable to use {path}/{m}"))
        if instance is not None:
            at = servicedir.instance_path(path, instance)
            try:
                above = trust.open_instance(here, instance)
            except (OSError, trust.Untrusted) as e:
                raise Fatal(f"unable to use {at}: "
                            f"{e if isinstance(e, trust.Untrusted) else describe(e)}") from None
            os.close(here)
            here, path = above, at
        sdir = claim_supervise_dir(path, here)
    finally:
        os.close(here)
    try:
        lock = unix.lock_nb("lock", sdir)
    except OSError as e:
        raise Fatal(f"unable to acquire {path}/supervise/lock: {describe(e)}") from None
    try:
        unix.make_fifo("control", sdir, *fifo_mode(gid), fresh=True)
        ctl_r, ctl_w = unix.open_fifo_reader("control", sdir)
    except OSError as e:
        raise Fatal(f"unable to open {path}/supervise/control: {describe(e)}") from None
    return sdir, lock, ctl_r, ctl_w, gid


def claim_supervise_dir(path, here):
    """supervise/, made ours and safe (see trust.py): a directory someone
    else made is taken back, a symlink someone else made is refused."""
    try:
        sdir = trust.open_supervise(here, create=True)
    except trust.Untrusted as e:
        raise Fatal(f"unable to use {path}/supervise: {e}") from None
    except OSError as e:
        raise Fatal(f"unable to mkdir {path}/supervise: {describe(e)}") from None
    try:
        if trust.claim(sdir):
            warn(f"{path}/supervise was not ours: taken back, and what others made there removed")
    except (trust.Untrusted, OSError) as e:
        os.close(sdir)
        raise Fatal(f"unable to use {path}/supervise: "
                    f"{e if isinstance(e, trust.Untrusted) else describe(e)}") from None
    return sdir


def fifo_mode(gid):
    """(mode, group) of the control and ok fifos: ours alone (0600), or
    writable by the group the service's access file names (0620): never
    readable by them, so nobody else can take a command or pose as us."""
    return (0o600, os.getegid()) if gid is None else (0o620, gid)


def open_up(sdir, gid, path):
    """Let the group the access file names (root alone by default) reach
    supervise/ (0750) and listen in supervise/event."""
    try:
        os.fchown(sdir, -1, os.getegid() if gid is None else gid)
        os.fchmod(sdir, 0o700 if gid is None else 0o750)
        fifodir.make_event_dir(sdir, os.getegid() if gid is None else gid)
    except OSError as e:
        warn(f"unable to set the permissions of {path}/supervise", e)


def make_ok(sdir, path, gid):
    """The ok fifo, made before anything is started: the step that can fail."""
    try:
        unix.make_fifo("ok", sdir, *fifo_mode(gid), fresh=True)
    except OSError as e:
        raise Fatal(f"unable to open {path}/supervise/ok: {describe(e)}") from None


def open_ok(sdir):
    """The ok fifo, opened for reading and never read: the liveness probe.
    Raises OSError."""
    return os.open("ok", os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                   dir_fd=sdir)


def leftover(sdir):
    """(pid, start ticks, machine.Past) of the ./run the previous supervise
    of this directory recorded as running in this boot; (0, None, None) if
    none.

    Believed only from files of ours (trust.read_ours; supervise/ is ours by
    now); the caller then asks the kernel (adopt_leftover): a live session
    leader that started at that very clock tick. The tick count is
    boot-relative, so a step of the wall clock changes nothing.
    """
    none = 0, None, None
    if not os.access("status", os.F_OK, dir_fd=sdir):
        return none                  # a new service: no exception raised (trust.py)
    try:
        s = status.unpack(trust.read_ours("status", sdir, status.SIZE + 1))
        fields = json.loads(trust.read_ours("state.json", sdir, 65536))
    except (OSError, trust.Untrusted, status.BadStatus, ValueError, RecursionError):
        return none
    if not s.pid or s.state != status.RUN or not isinstance(fields, dict):
        return none
    ticks = fields.get("pid_start")
    if fields.get("pid") != s.pid or fields.get("boot") != BOOT_ID or type(ticks) is not int:
        return none
    return s.pid, ticks, statejson.past(fields)


def started_at(ticks):
    """The wall time (seconds, nanoseconds) of a start ticks after boot,
    worked out from how long ago that was: right after a clock step too."""
    lived = max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / CLK_TCK)
    return divmod(time.time_ns() - int(lived * 1e9), 1_000_000_000)
