"""Waiting until services are up, ready, down or finished, woken by inotify.

supervise replaces supervise/status and supervise/state.json by rename on
every change, so a watch on each service's supervise/ directory (IN_MOVED_TO,
IN_CLOSE_WRITE, IN_CREATE) wakes us exactly when there is something new to
read; nothing polls. A watch on the service directory itself sees supervise/
appear, so a service can be waited for before its supervise has started (a
run script waiting for ../db may well start first).

The goals, read from tree.snapshot():

    up        ./run is running (paused counts)
    ready     ./run is running and ready (without state.json, up is ready;
              with one that cannot be read, not ready: see below)
    down      ./run is not running (./finish may be)
    finished  ./run is not running and neither is ./finish

up and ready also need a live supervise (one holds supervise/ok open): a
status file left by a dead supervise may say "up" for a process long gone.
supervise writes its first status *before* it opens supervise/ok, so when
the status already says yes and only the liveness is missing, the watch
takes IN_OPEN too, for the open of ok; it is dropped again at once, as our
own probe of ok would otherwise wake us. down and finished are believed from
the status file alone: after `svc -dx` supervise is gone, and the service
is down.

A service whose supervise is svtree's is waited for without inotify when
it can be: a fifo of ours in supervise/event/ hears of every change, and
svtree's supervise tells a change only once status and state.json say it.
Closing an inotify descriptor that holds watches waits for the kernel to
free them (an RCU grace period: up to 15 ms seen here), which a waiter
would otherwise add to every wait. A service without event/ (daemontools,
runit, no supervise yet), or whose fifo cannot be made, is watched through
inotify as above; so is one whose status says yes before its supervise has
opened ok.

Errors (raised as WaitError): a service directory that cannot be entered,
a supervise/ that cannot be read, and, waiting for up or ready, a service
that has failed for good (it comes back only with svc -u).

What a service's owner may write is not believed blindly: status and
state.json are read through tree.snapshot() (regular files only, without
blocking, state.json checked field by field). A state.json that cannot be
read is no error: the service is simply not ready while it lasts (the
timeout message says why), since supervise rewrites it at its next change.
Our fifo is read a block at a time and its content ignored (a change is
read from the files), so a line someone else writes there only wakes us.
"""

import errno
import itertools
import os
import select
import time
from pathlib import Path

from . import history, status, tree, unix
from .errors import describe

GOALS = ("up", "ready", "down", "finished")
NEEDS_SUPERVISE = {"up", "ready"}

IN_CLOSE_WRITE, IN_OPEN = 0x8, 0x20
IN_MOVED_TO, IN_CREATE, IN_DELETE_SELF = 0x80, 0x100, 0x400
IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
SUPERVISE_MASK = IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE_SELF
SERVICE_MASK = IN_CREATE | IN_MOVED_TO
# names in supervise/ whose change may change the answer ("": the directory itself)
WORTH_A_LOOK = ("", "status", "state.json", "ok")
FIFO_PREFIX = "svtree-wait-"
# A state.json that is not about the run status names is being replaced (the
# next rename comes within milliseconds) or was left by another supervisor:
# "ready" is not believed from status alone before it has stayed so this long.
STALE_GRACE = 0.2


class WaitError(Exception):
    """A service cannot be waited for."""


def reached(goal: str, snap: tree.Snapshot) -> bool:
    """Is a service in the goal state, by its status alone? (pure)"""
    if goal == "up":
        return snap.process == "run"
    if goal == "ready":
        return snap.process == "run" and snap.ready is not False and not snap.record_error
    if goal == "down":
        return snap.process != "run"
    return snap.process == "down"


class Waited:
    """One service: its watches and the last answer."""

    def __init__(self, path: Path):
        self.path = path
        self.service_wd = None
        self.supervise_wd = None
        self.want_open = False        # the supervise/ watch also takes IN_OPEN
        self.sub = None               # our fifo in supervise/event/, if we have one
        # Does a live svtree supervise (ok open, a state.json about the run that
        # status names) announce every change? A dead supervise's successor, or
        # a daemontools or runit supervise where svtree once ran, does not.
        self.announced = False
        self.stale_since = None       # when a stale state.json was first seen
        self.done = False
        self.why = "not supervised"   # why not done, for the timeout message


class Waiter:
    """Wait for a goal on several services; see wait()."""

    def __init__(self, paths, goal, make_inotify, clock=time.monotonic):
        if goal not in GOALS:
            raise ValueError(goal)
        self.goal = goal
        self.clock = clock
        self.make_inotify = make_inotify
        self.inotify = None           # made when a service first needs it
        self.poller = select.poll()
        self.services = [Waited(Path(p)) for p in paths]
        self.by_wd = {}
        self.by_fd = {}               # our fifos' read ends
        self.names = (f"{FIFO_PREFIX}{os.getpid()}-{n}" for n in itertools.count(1))

    def start(self):
        for w in self.services:
            if self.listen(w):
                self.check(w)         # which also says whether the fifo hears all
                if w.done or w.announced:
                    continue
            self.watch(w)
            self.check(w)             # again: what changed before the watches took

    def listen(self, w):
        """Hear of w's changes through a fifo in its supervise/event/."""
        if not os.path.isdir(w.path / "supervise" / history.EVENT_DIR):
            return False
        try:
            w.sub = history.Subscription(str(w.path), next(self.names))
        except OSError:
            return False              # not ours to write in: inotify will do
        self.by_fd[w.sub.r] = w
        self.poller.register(w.sub.r, select.POLLIN)
        return True

    def watch(self, w):
        """Watch w through inotify instead (or as well)."""
        if w.service_wd is not None:
            return
        if self.inotify is None:
            self.inotify = self.make_inotify()
            self.poller.register(self.inotify.fileno(), select.POLLIN)
        try:
            w.service_wd = self.inotify.add_watch(str(w.path), SERVICE_MASK)
        except OSError as e:
            raise WaitError(f"unable to watch {w.path}: {describe(e)}") from None
        self.by_wd[w.service_wd] = w
        self.watch_supervise(w)

    def close(self):
        """Remove our fifos and close the inotify descriptor."""
        for w in self.services:
            if w.sub is not None:
                w.sub.close()
                w.sub = None
        if self.inotify is not None:
            self.inotify.close()

    def watch_supervise(self, w):
        mask = SUPERVISE_MASK | (IN_OPEN if w.want_open else 0)
        try:
            wd = self.inotify.add_watch(str(w.path / "supervise"), mask)
        except FileNotFoundError:
            return                    # not yet: the service watch will see it made
        except OSError as e:
            if e.errno == errno.ENOTDIR:
                return
            raise WaitError(f"unable to watch {w.path}/supervise: {describe(e)}") from None
        w.supervise_wd = wd
        self.by_wd[wd] = w

    def check(self, w):
        """Read one service again and decide whether it is done."""
        try:
            fd = unix.open_dir(str(w.path))
        except OSError as e:
            raise WaitError(f"unable to chdir to {w.path}: {describe(e)}") from None
        try:
            snap = tree.snapshot(fd)
            supervised = tree.is_supervised(fd)
            live = reached(self.goal, snap) and (
                self.goal not in NEEDS_SUPERVISE or supervised)
            w.announced = supervised and snap.source == "state.json"
        except FileNotFoundError:
            snap, live = None, False
            w.announced = False
        except (OSError, status.BadStatus) as e:
            raise WaitError(f"unable to read {w.path}/supervise/status: {describe(e)}") from None
        finally:
            os.close(fd)
        if snap is not None and snap.failed and self.goal in NEEDS_SUPERVISE:
            raise WaitError(f"unable to wait for {w.path}: failed for good (svc -u revives it)")
        if live and self.goal == "ready" and snap.stale_record:
            now = self.clock()
            w.stale_since = now if w.stale_since is None else w.stale_since
            if now - w.stale_since < STALE_GRACE:
                w.done = False        # look again then (recheck_due), or at the next change
                w.why = "not ready"
                return
        else:
            w.stale_since = None
        w.done = live
        w.why = "not supervised" if snap is None else f"not {self.goal}"
        if snap is not None and snap.record_error and self.goal == "ready":
            w.why = f"not ready: {snap.record_error}"
        # status says yes but supervise/ok is not open yet: listen for its open
        want_open = bool(snap and not live and reached(self.goal, snap))
        if want_open and w.service_wd is None:
            self.watch(w)             # no event tells of ok's open
        if want_open != w.want_open and w.supervise_wd is not None:
            w.want_open = want_open
            self.watch_supervise(w)
            if want_open:
                self.check(w)         # ok may have opened before the watch took IN_OPEN

    def on_events(self, events):
        touched = []
        for event in events:
            if event.mask & IN_Q_OVERFLOW:           # events were lost: read everything
                touched = list(self.services)
                break
            w = self.by_wd.get(event.wd)
            if w is None:
                continue
            if event.mask & IN_IGNORED:              # supervise/ went away
                del self.by_wd[event.wd]
                if event.wd == w.supervise_wd:
                    w.supervise_wd = None
                elif event.wd == w.service_wd:
                    w.service_wd = None
            elif event.mask & IN_OPEN and event.name != "ok":
                continue                             # our own reads of status
            elif event.wd == w.service_wd and event.name != "supervise":
                continue
            elif event.wd == w.supervise_wd and event.name not in WORTH_A_LOOK:
                continue                             # status.new, state.json.new, lock...
            if w not in touched:
                touched.append(w)
        for w in touched:
            if w.supervise_wd is None:
                self.watch_supervise(w)
            self.check(w)

    def on_fifo(self, fd):
        w = self.by_fd[fd]
        try:                          # what changed is in the files by now; one
            os.read(fd, 65536)        # block: a writer who never stops (anyone in
        except BlockingIOError:       # event/'s group) cannot keep us here
            return
        self.check(w)

    def pending(self):
        return [w for w in self.services if not w.done]

    def recheck_due(self):
        """When a service with a stale state.json must be looked at again."""
        dues = [w.stale_since + STALE_GRACE for w in self.services
                if w.stale_since is not None and not w.done]
        return min(dues) if dues else None

    def recheck(self):
        now = self.clock()
        for w in self.services:
            if w.stale_since is not None and not w.done and now >= w.stale_since + STALE_GRACE:
                self.check(w)

    def step(self, timeout):
        """Wait for news, up to timeout seconds (None: for ever), and act on it."""
        due = self.recheck_due()
        if due is not None:
            left = max(0.0, due - self.clock())
            timeout = left if timeout is None else min(timeout, left)
        ready = self.poller.poll(None if timeout is None else max(1, int(timeout * 1000 + 0.999)))
        for fd, _ in ready:
            if self.inotify is not None and fd == self.inotify.fileno():
                self.on_events(self.inotify.read(timeout=0))
            elif fd in self.by_fd:
                self.on_fifo(fd)
        self.recheck()


def wait(paths, goal, timeout=None, *, clock=time.monotonic, make_inotify=None):
    """Return [] once every service in paths is in goal at the same moment,
    or, after timeout seconds, the Waited entries that were not.

    Raises WaitError.
    """
    if make_inotify is None:
        def make_inotify():
            from inotify_simple import INotify
            return INotify()
    waiter = Waiter(paths, goal, make_inotify, clock)
    try:
        waiter.start()
        deadline = None if timeout is None else clock() + timeout
        while waiter.pending():
            if deadline is None:
                waiter.step(None)
                continue
            left = deadline - clock()
            if left <= 0:
                return waiter.pending()
            waiter.step(left)
        return []
    finally:
        waiter.close()
