"""The kernel's word on processes: readers of /proc, and pidfds checked
against it.

Root must never signal, adopt or trust a process on evidence another user
could forge (a pid in a status file, say). What it believes comes from
here: /proc/PID/stat (state, parent, session, start tick), the uids in
/proc/PID/status, the children the kernel lists, /proc/locks, and the
process a pidfd holds, checked after the pidfd was opened, so that the
process checked is the one signalled whatever happens to its number later.

Reads use os.open and os.read (no io objects, which a forked supervise
would pay for).
"""

import os

def lock_holders(ino: int) -> list[int]:
    """The pids /proc/locks names as holding a flock on inode number ino
    (the kernel's word; the device is left out, as overlay file systems
    show another one there: the caller checks each pid further)."""
    try:
        fd = os.open("/proc/locks", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
    except OSError:
        return []
    finally:
        os.close(fd)
    suffix = b":%d" % ino
    pids = []
    for line in data.splitlines():
        f = line.split()      # 1: FLOCK ADVISORY WRITE PID MAJ:MIN:INO 0 EOF ("->": a waiter)
        if len(f) >= 6 and f[1] == b"FLOCK" and f[5].endswith(suffix) and f[4].isdigit():
            pids.append(int(f[4]))
    return pids


def proc_file(pid: int, name: str, size: int = 1024) -> bytes | None:
    """The first size bytes of /proc/PID/NAME; None if pid is gone. (os.open:
    no io objects, which a forked supervise would pay for.)"""
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def proc_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name: [0] state,
    [1] ppid, [2] pgrp, [3] session, ... [19] start time in clock ticks
    since boot. None if pid is gone."""
    data = proc_file(pid, "stat")
    try:
        return None if data is None else data.rsplit(b")", 1)[1].split()
    except IndexError:
        return None


def proc_uids(pid: int) -> list[int] | None:
    """The real, effective, saved and file-system uids of pid (the Uid line
    of /proc/PID/status); None if pid is gone."""
    data = proc_file(pid, "status", 4096)
    for line in (data or b"").splitlines():
        if line.startswith(b"Uid:"):
            try:
                return [int(u) for u in line.split()[1:]]
            except ValueError:
                return None
    return None


def children(pid: int) -> list[int] | None:
    """The children of pid, a process with one thread (svscan, supervise),
    as the kernel lists them; None without CONFIG_PROC_CHILDREN."""
    data = proc_file(pid, f"task/{pid}/children", 65536)
    try:
        return None if data is None else [int(p) for p in data.split()]
    except ValueError:
        return []


def start_ticks(pid: int) -> int | None:
    """When pid started, in clock ticks since boot (field 22 of
    /proc/PID/stat); None if it is gone. Read by every supervise at every
    start: found by index, without splitting the line into 50 objects
    (a forked supervise pays for each page its allocations touch)."""
    data = proc_file(pid, "stat")
    try:
        at = data.rindex(b")") + 2          # the command name may hold anything
        for _ in range(19):
            at = data.index(b" ", at) + 1
        return int(data[at:data.index(b" ", at)])
    except (AttributeError, ValueError):     # AttributeError: None, pid gone
        return None


def boot_id() -> str:
    """This boot's random id: a clock tick count means nothing in another."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return f.read().strip().decode("ascii", "replace")
    except OSError:
        return ""


def parent_if_alive(pid: int) -> int:
    """pid's parent, or 0 if pid is gone or a zombie."""
    fields = proc_stat(pid)
    return 0 if not fields or fields[0] == b"Z" else int(fields[1])


def adopted_children() -> list[int]:
    """Our children that we did not start: orphans adopted as init or subreaper."""
    me = os.getpid()
    try:
        if os.readlink("/proc/self") != str(me):
            return []       # a /proc of another pid namespace: its numbers are not ours
    except OSError:
        return []
    pids = children(me)
    if pids is None:        # a kernel without CONFIG_PROC_CHILDREN: look at everyone
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return [pid for pid in pids if parent_if_alive(pid) == me]


def leader_pidfd(pid: int, parent: int = 0, ticks: int | None = None) -> int | None:
    """A pidfd of pid if it is alive, leads its own session, and (when
    given) is a child of parent and started at clock tick ticks; None
    otherwise. Checked after the pidfd was opened: the process checked is
    the one the pidfd holds."""
    if pid <= 1:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    f = proc_stat(pid)
    if not (f and f[0] != b"Z" and int(f[3]) == pid and (not parent or int(f[1]) == parent)
            and (ticks is None or int(f[19]) == ticks)):
        os.close(pidfd)
        return None
    return pidfd


def same_file(path: str, other: tuple[int, int]) -> bool:
    """Is path (followed) the file other, a (device, inode), names?"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == other


def holds(pid: int, file: tuple[int, int]) -> bool:
    """Has pid the file (device, inode) open?"""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    return any(same_file(f"/proc/{pid}/fd/{fd}", file) for fd in fds)
