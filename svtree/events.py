"""Following the state changes of services, one dict per change.

svtree's supervise tells its changes through supervise/event/, a fifodir
(see fifodir.py): we make a fifo there, `svtree-events-PID-N` (supervise
skips names starting with a dot), and read one JSON line per change:

    {"service": PATH, "event": "up"|"ready"|"exited"|"down"|"failed"|"unhealthy",
     "time": UNIX, "pid": N, "state": "down"|"run"|"finish", "want": W, "ready": B}

We keep a write end of each fifo open ourselves, so a reader never sees
end-of-file between two writers (and supervise always finds a reader while
we live); the fifos are removed when the generator is closed. "service" is
rewritten to the path we know the service by (supervise says whatever path
it was started with).

Anyone in the group of supervise/event/ may write to our fifo too, so a
line is believed only if it is a JSON object with each of the keys above of
the right type (EVENT_FIELDS; "event" any lowercase word, "ready" possibly
null), and is no longer than LINE_MAX bytes; other keys are left out. A
line that is not is dropped, and the first one of each service is told to
warn(). A fifo is read a block at a time, so a writer who never stops
cannot keep us from the others.

Services without supervise/event/ (daemontools, runit) are followed through
inotify on supervise/: each new status yields an "up", "exited" or "down"
of our own making, with "ready": null.

Scan directories are watched too. A service that appears in one after we
started is followed from then on; the "up" of its first start may come
before we can make our fifo, so once its supervise has written a status we
add one line {"event": "new", ...} with the state it is in. A service
removed from the scan directory is dropped.
"""

import errno
import itertools
import os
import re
import select
import time
from pathlib import Path

from . import fifodir, inotify, servicedir, status, tree, unix
from .errors import describe

FIFO_PREFIX = "svtree-events-"
SCAN_MASK = inotify.CREATE | inotify.MOVED_TO | inotify.DELETE | inotify.MOVED_FROM
SERVICE_MASK = inotify.CREATE | inotify.MOVED_TO
SUPERVISE_MASK = inotify.CREATE | inotify.MOVED_TO | inotify.CLOSE_WRITE
BLOCK = 65536
LINE_MAX = 65536      # supervise's lines are a few hundred bytes, a long path's a few K
WORD = re.compile("[a-z][a-z-]{0,31}")
EVENT_FIELDS = {      # what a line must hold (tree.check_fields, required)
    "event": (lambda v: type(v) is str and WORD.fullmatch(v) is not None, "not a word"),
    "time": (tree.is_time, "not a time"),
    "pid": (tree.is_pid, "not a pid"),
    "state": (lambda v: type(v) is str and v in tree.PROCESS.values(),
              "not down, run or finish"),
    "want": (tree.is_want, "not up, down or once"),
    "ready": (lambda v: v is None or tree.is_bool(v), "not true, false or null"),
}
OPTIONAL_FIELDS = {   # a waiting or blocked line names the dependencies
    "waiting_for": tree.RECORD_FIELDS["waiting_for"],
    "blocked_by": tree.RECORD_FIELDS["blocked_by"],
}


class Followed:
    """One service we follow: its watches, its fifo and what we last saw."""

    def __init__(self, path: Path, logger_of=None, new=False):
        self.path = path
        self.logger_of = logger_of
        self.new = new                 # owes a "new" line once it has a status
        self.service_wd = None
        self.supervise_wd = None
        self.sub = None                # our fifodir.Subscription once attached
        self.partial = b""             # None: in a line too long, skipped to its end
        self.warned = False            # about a bad line in the fifo
        self.last = None               # (process, pid) for services without event/


def split_lines(partial, data):
    """(complete lines, what is left) once data follows partial (pure). A
    line longer than LINE_MAX comes out as None, once, as soon as it is that
    long; the rest of it is skipped (what is left is None until its end)."""
    if partial is None:
        end = data.find(b"\n")
        if end < 0:
            return [], None
        partial, data = b"", data[end + 1:]
    *complete, rest = (partial + data).split(b"\n")
    lines = [None if len(line) > LINE_MAX else line for line in complete]
    if len(rest) > LINE_MAX:
        lines.append(None)
        rest = None
    return lines, rest


def parse_event(line) -> dict:
    """The fields of one line of an event fifo (pure): EVENT_FIELDS, in
    that order, then those of OPTIONAL_FIELDS it has. Raises tree.BadRecord."""
    if line is None:
        raise tree.BadRecord(f"longer than {LINE_MAX} bytes")
    fields = tree.load_object(line)
    tree.check_fields(fields, EVENT_FIELDS, required=True)
    tree.check_fields(fields, OPTIONAL_FIELDS)
    return {name: fields[name] for name in (*EVENT_FIELDS, *OPTIONAL_FIELDS)
            if name in EVENT_FIELDS or fields.get(name) is not None}


def synthetic(before, snap):
    """The event a status change means, for services without event/ (pure)."""
    now = (snap.process, snap.pid)
    if before == now:
        return None
    if snap.process == "run":
        return "up"
    if snap.process == "finish":
        return "exited"
    return "down"


class Follower:
    """Services and scan directories, their watches and fifos."""

    def __init__(self, inotify, *, clock=time.time, warn=lambda message: None):
        self.inotify = inotify
        self.clock = clock
        self.warn = warn
        self.scandirs = {}             # wd -> scan directory
        self.followed = {}             # path -> Followed
        self.by_wd = {}                # wd -> Followed
        self.by_fd = {}                # fifo read fd -> Followed
        self.names = (f"{FIFO_PREFIX}{os.getpid()}-{n}" for n in itertools.count(1))

    # --- what to follow ---------------------------------------------------------

    def start(self, args):
        """Follow the services the arguments name (tree.find()'s rules); lines
        already due (none at start) are not returned."""
        for arg in args or ["."]:
            path = Path(arg)
            if not path.is_dir():
                os.stat(path)                  # FileNotFoundError, or:
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
            if not servicedir.is_service(path):
                wd = self.inotify.add_watch(str(path), SCAN_MASK)
                self.scandirs[wd] = path
                for name in servicedir.names(path):
                    if servicedir.meant_for_this_host(name):
                        self.add(path / name)
            else:
                self.add(path)

    def add(self, path, logger_of=None, new=False):
        copies = servicedir.instance_paths(path) if logger_of is None else None
        if copies is not None:                 # a service with instances: each of them
            lines = []
            for copy in copies:
                lines += self.add_one(Path(copy), None, new)
            log = path / "log"
            return lines + (self.add_one(log, path, new) if log.is_dir() else [])
        return self.add_one(path, logger_of, new)

    def add_one(self, path, logger_of=None, new=False):
        if path in self.followed:
            return []
        f = self.followed[path] = Followed(path, logger_of, new)
        try:
            f.service_wd = self.inotify.add_watch(str(path), SERVICE_MASK)
        except OSError as e:
            self.warn(f"unable to watch {path}: {describe(e)}")
            del self.followed[path]
            return []
        self.by_wd[f.service_wd] = f
        lines = self.watch_supervise(f)
        if logger_of is None and (path / "log").is_dir() and not servicedir.is_instance(path):
            lines += self.add_one(path / "log", path, new)
        return lines

    def drop(self, f):
        self.followed.pop(f.path, None)
        for wd in (f.service_wd, f.supervise_wd):
            if wd is not None and self.by_wd.pop(wd, None) is not None:
                try:
                    self.inotify.rm_watch(wd)
                except OSError:
                    pass                       # already gone with its directory
        self.detach(f)

    def detach(self, f):
        if f.sub is not None:
            self.by_fd.pop(f.sub.r, None)
            f.sub.close()
            f.sub = None

    def close(self):
        """Remove our fifos and close everything."""
        for f in list(self.followed.values()):
            self.detach(f)
        self.followed.clear()

    # --- a service's supervise/ -------------------------------------------------------

    def watch_supervise(self, f):
        """Watch supervise/ once it exists, attach to event/, note the status."""
        if f.supervise_wd is None:
            try:
                f.supervise_wd = self.inotify.add_watch(str(f.path / "supervise"), SUPERVISE_MASK)
            except OSError:
                return []                      # not yet: the service watch sees it come
            self.by_wd[f.supervise_wd] = f
        if f.sub is None:
            self.attach(f)
        return self.look(f)

    def attach(self, f):
        """Make our fifo in supervise/event/ and open both ends."""
        if not os.path.isdir(f.path / "supervise" / fifodir.EVENT_DIR):
            return                             # not svtree's supervise (or not yet)
        try:
            f.sub = fifodir.Subscription(str(f.path), next(self.names))
        except OSError as e:
            self.warn(f"unable to make a fifo in {f.path}/supervise/event: {describe(e)}")
            return
        self.by_fd[f.sub.r] = f

    def look(self, f):
        """Read the status: the "new" line owed, or a change to report when
        there is no fifo to tell us."""
        if not f.new and f.sub is not None:
            return []
        try:
            fd = unix.open_dir(str(f.path))
        except OSError:
            return []
        try:
            snap = tree.snapshot(fd)
        except (OSError, status.BadStatus):
            return []                          # no status (yet), or a bad one: no line
        finally:
            os.close(fd)
        lines = []
        if f.new:
            f.new = False
            lines.append(self.line(f, "new", snap))
        elif f.sub is None:
            name = synthetic(f.last, snap) if f.last is not None else None
            if name:
                lines.append(self.line(f, name, snap))
        f.last = (snap.process, snap.pid)
        return lines

    def line(self, f, event, snap):
        return {"service": str(f.path), "event": event, "time": round(self.clock(), 6),
                "pid": snap.pid, "state": snap.process, "want": snap.want, "ready": snap.ready}

    # --- input ------------------------------------------------------------------------

    def on_inotify(self, events):
        lines = []
        for event in events:
            if event.mask & inotify.Q_OVERFLOW:
                lines += self.recover()
                continue
            if event.wd in self.scandirs:
                lines += self.on_scandir(self.scandirs[event.wd], event)
                continue
            f = self.by_wd.get(event.wd)
            if f is None:
                continue
            if event.mask & inotify.IGNORED:
                self.by_wd.pop(event.wd, None)
                if event.wd == f.service_wd:   # the directory is gone
                    f.service_wd = None
                    self.drop(f)
                elif event.wd == f.supervise_wd:
                    f.supervise_wd = None
                    self.detach(f)
            elif event.wd == f.service_wd:
                if event.name == "supervise":
                    lines += self.watch_supervise(f)
                elif (event.name == "log" and f.logger_of is None
                      and (f.path / "log").is_dir()):
                    lines += self.add(f.path / "log", f.path, True)
            elif event.name == "event" and f.sub is None:
                self.attach(f)
            elif event.name in ("status", "state.json"):
                lines += self.look(f)
        return lines

    def recover(self):
        """inotify lost events: look at every scan directory and status again."""
        lines = []
        for scandir in list(self.scandirs.values()):
            for name in servicedir.names(scandir):
                if servicedir.meant_for_this_host(name):
                    lines += self.add(scandir / name, new=True)
        for f in list(self.followed.values()):
            if f.supervise_wd is None or f.sub is None:
                lines += self.watch_supervise(f)
        return lines

    def on_scandir(self, scandir, event):
        if event.mask & inotify.IGNORED:
            del self.scandirs[event.wd]
            return []
        name = event.name
        if not name or not servicedir.candidate(name):
            return []
        path = scandir / name
        if event.mask & (inotify.DELETE | inotify.MOVED_FROM):
            for f in [f for f in self.followed.values()
                      if f.path == path or f.logger_of == path]:
                self.drop(f)
            return []
        if path.is_dir():
            return self.add(path, new=True)
        return []

    def on_fifo(self, fd):
        """The events in what a fifo has (one block), with our name for the
        service; bad lines dropped (see the module docstring)."""
        f = self.by_fd[fd]
        try:
            data = os.read(fd, BLOCK)
        except BlockingIOError:
            return []
        complete, f.partial = split_lines(f.partial, data)
        lines = []
        for raw in complete:
            try:
                lines.append({"service": str(f.path), **parse_event(raw)})
            except tree.BadRecord as e:
                if not f.warned:
                    f.warned = True
                    self.warn(f"dropped a line in {f.path}/supervise/event: {e} "
                              "(later bad lines there are dropped silently)")
        return lines


def follow(args, *, hangup_fd=None, clock=time.time, warn=lambda message: None):
    """Yield one dict per state change of the services args name, forever.

    hangup_fd: the fd the lines go to; when its reader goes away (a pipe
    whose reader exited), BrokenPipeError is raised at once rather than at
    the next write. Closing the generator removes our fifos. Raises OSError
    for an argument that is not a directory.
    """
    watcher = inotify.make()
    follower = Follower(watcher, clock=clock, warn=warn)
    poller = select.poll()
    poller.register(watcher.fileno(), select.POLLIN)
    if hangup_fd is not None:
        poller.register(hangup_fd, 0)        # POLLERR and POLLHUP come anyway
    registered = set()
    try:
        follower.start(args)
        while True:
            for fd in set(follower.by_fd) - registered:
                poller.register(fd, select.POLLIN)
            for fd in registered - set(follower.by_fd):
                poller.unregister(fd)
            registered = set(follower.by_fd)
            for fd, mask in poller.poll():
                if fd == hangup_fd:
                    raise BrokenPipeError(errno.EPIPE, "the reader of our output is gone")
                if fd == watcher.fileno():
                    yield from follower.on_inotify(watcher.read(timeout=0))
                elif fd in follower.by_fd:
                    yield from follower.on_fifo(fd)
    finally:
        follower.close()
        watcher.close()
