"""What root may believe in a service directory that someone else owns.

svscan and supervise usually run as root over service directories that
belong to other users. The rule: root takes no privileged action (a signal,
a kill, a chown, an adoption, a tree shutdown) on evidence that another user
could have written. Evidence comes from files only we (the effective user,
root in the usual case) can have written, or from the kernel (pidfds, a
process's parent and start time). The checks here say which files those are:

- `supervise/` is ours: owned by us and writable by nobody else. supervise
  makes it so (taking a directory someone else made back, after removing
  every entry in it that is not ours); svscan only looks at one that is.
  A `supervise` symlink (runit's read-only service trees) is followed only
  in a service directory nobody else can write (else the link could be
  swapped between two looks at it), and only if every directory on the way
  to its target is ours or root's and safe from renames by others.
- A file root believes (status and state.json for an adoption, the `access`
  and `critical` opt-ins) is a regular file of ours with one link, in a
  directory nobody else can write (else a file of ours could be renamed
  into its name), found without following a symlink and opened without
  blocking.

What this cannot protect: a user who can write a service directory chooses
what its ./run is, and root runs it. It protects everything outside.

Who may control a service (the fifos in supervise/) is root alone unless the
service's `access` file, itself ours, says `group NAME`: members of NAME may
write the fifos (0620) but not read them, so they can neither steal
commands nor pose as a running supervise. The spirit of s6-svperms, with
the decision stored where only root can write it. One user is given control
through a group of their own.
"""

import os
import stat

from . import unix

SUPERVISE = "supervise"
# the entries supervise keeps in supervise/: anything else of these names
# that is not ours is removed before supervise uses the directory
ENTRIES = ("lock", "control", "ok", "status", "status.new", "state.json",
           "state.json.new")
EVENT_DIR = "event"
INSTANCE_DIR = "instance"       # SERVICE/instance/K/supervise/: an instance's (scan.py)


class Untrusted(Exception):
    """A path root must not use: str() says why, in a few words."""


def ours(st) -> bool:
    return st.st_uid == os.geteuid()


def safe_dir(st) -> bool:
    """A directory of ours that nobody else can add to or rename in."""
    return ours(st) and not st.st_mode & 0o022


def safe_file(st) -> bool:
    """A file we wrote and nobody else can have swapped or linked in."""
    return stat.S_ISREG(st.st_mode) and ours(st) and st.st_nlink == 1 \
        and not st.st_mode & 0o022


def whose(st) -> str:
    return f"owned by uid {st.st_uid}, not {os.geteuid()}"


def read_ours(name: str, dir_fd: int, size: int) -> bytes:
    """The bytes of NAME if it is a file root may believe (see safe_file);
    Untrusted if it is something else, OSError if it cannot be read."""
    try:
        fd = unix.open_regular(name, dir_fd)
    except unix.NotRegular:
        raise Untrusted(f"{name} is not a regular file") from None
    try:
        st = os.fstat(fd)
        if not safe_file(st):
            raise Untrusted(f"{name} is not a regular file of ours: "
                            f"{whose(st) if not ours(st) else 'mode or links'}")
        return os.read(fd, size)
    finally:
        os.close(fd)


def open_supervise(dir_fd: int, *, create: bool = False) -> int:
    """An fd of the service's supervise/ directory (the service open as
    dir_fd), reached only through links we may follow.

    create: make it (0700) if missing, or make a trusted dangling symlink's
    target. The caller then checks (claim() or check()) what it got.
    Raises Untrusted or OSError.
    """
    # access() first, not FileNotFoundError: a forked supervise that raises
    # no exception touches fewer of the pages it shares with svscan
    if create and not os.access(SUPERVISE, os.F_OK, dir_fd=dir_fd, follow_symlinks=False):
        os.mkdir(SUPERVISE, 0o700, dir_fd=dir_fd)
    st = os.stat(SUPERVISE, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        return os.open(SUPERVISE, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                       dir_fd=dir_fd)
    if not safe_dir(os.fstat(dir_fd)):
        # someone else could swap the link between our looks at it
        raise Untrusted("a symlink in a directory others can write")
    if create and not os.path.exists(f"/proc/self/fd/{dir_fd}/{SUPERVISE}"):
        # runit's read-only trees: supervise -> /run/sv.NAME, made at boot
        os.mkdir(os.path.join(f"/proc/self/fd/{dir_fd}", os.readlink(SUPERVISE, dir_fd=dir_fd)),
                 0o700)
    fd = os.open(SUPERVISE, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        check_ancestors(os.readlink(f"/proc/self/fd/{fd}"))
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_instance(dir_fd: int, number: int) -> int:
    """An fd of instance/NUMBER of the service open as dir_fd, made if
    missing: directories of ours (0755: svc and svstat of other users
    reach their supervise/ below), never a symlink or one someone else made.
    Raises Untrusted or OSError."""
    fd = dir_fd
    for name in (INSTANCE_DIR, str(number)):
        if not os.access(name, os.F_OK, dir_fd=fd, follow_symlinks=False):
            os.mkdir(name, 0o755, dir_fd=fd)
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode) or not safe_dir(st):
            if fd != dir_fd:
                os.close(fd)
            raise Untrusted(f"{name}: not a directory only uid {os.geteuid()} can write"
                            if stat.S_ISDIR(st.st_mode) else f"{name}: not a directory")
        inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=fd)
        if fd != dir_fd:
            os.close(fd)
        fd = inner
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):     # swapped since the stat
            os.close(fd)
            raise Untrusted(f"{name}: replaced while it was opened")
    return fd


def check_ancestors(path: str) -> None:
    """Every directory above path is root's or ours, and nobody else can
    rename what is in it (not writable by others, or sticky): a link we
    followed cannot be made to lead elsewhere later."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        above = "/".join(parts[:depth]) or "/"
        st = os.stat(above, follow_symlinks=False)
        if st.st_uid not in (0, os.geteuid()):
            raise Untrusted(f"{above} is owned by uid {st.st_uid}")
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            raise Untrusted(f"{above} is writable by others")


def check(fd: int) -> None:
    """Untrusted unless the supervise/ open as fd is ours and safe."""
    st = os.fstat(fd)
    if not safe_dir(st):
        raise Untrusted(whose(st) if not ours(st) else "writable by others")


def claim(fd: int) -> bool:
    """Make the supervise/ open as fd ours and safe: as root, take back a
    directory someone else made (its entries of our names that are not ours
    go first, so nothing planted there is believed). True if it had to.
    Raises Untrusted if it cannot be claimed (not root, someone else's).
    """
    st = os.fstat(fd)
    if safe_dir(st):
        return False
    if not ours(st):
        if os.geteuid() != 0:
            raise Untrusted(whose(st))
        os.fchown(fd, 0, os.getegid())
    os.fchmod(fd, 0o700)      # nobody else may add an entry from now on
    purge(fd)
    return True


def purge(fd: int) -> None:
    """Remove entries of supervise/ (fd) that another user may have made."""
    for name in ENTRIES:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            raise Untrusted(f"{name} is a directory")
        if not ours(st) or st.st_nlink != 1:
            os.unlink(name, dir_fd=fd)
    try:
        st = os.stat(EVENT_DIR, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(EVENT_DIR, dir_fd=fd)


# --- who may control the service ---------------------------------------------------

ACCESS = "access"


def read_access(dir_fd: int, warn) -> int | None:
    """The group the service's `access` file (`group NAME`, a name or a
    number) lets control it, or None. The file counts only if it is ours
    (see safe_file) in a service directory nobody else can write; else, or
    if it says something else, warn(message) and None.
    """
    if not os.access(ACCESS, os.F_OK, dir_fd=dir_fd, follow_symlinks=False):
        return None                # the usual case: no exception raised (see above)
    try:
        if not safe_dir(os.fstat(dir_fd)):
            raise Untrusted("the service directory is writable by others")
        text = read_ours(ACCESS, dir_fd, 1024).decode("ascii")
    except (OSError, Untrusted, UnicodeDecodeError) as e:
        warn(f"{ACCESS}: {e if isinstance(e, Untrusted) else 'unreadable'}; root alone controls it")
        return None
    gid = None
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 2 and words[0] == "group":
            gid = group_id(words[1])
            if gid is None:
                warn(f"{ACCESS}: no group {words[1]}")
        elif words:
            warn(f"{ACCESS}: not understood: {' '.join(words)}")
    return gid


def group_id(name: str) -> int | None:
    if name.isdigit():
        return int(name)
    import grp            # here: only services with an access file pay for it
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None
