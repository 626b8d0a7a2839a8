"""Waiting until services are up, ready, down or finished, woken by
supervise's events or inotify: wait(), and settle() for the control verbs
(verbs.py).

supervise replaces supervise/status and supervise/state.json by rename on
every change, so a watch on each service's supervise/ directory (IN_MOVED_TO,
IN_CLOSE_WRITE, IN_CREATE) wakes us exactly when there is something new to
read; nothing polls. A watch on the service directory itself sees supervise/
appear, so a service can be waited for before its supervise has started (a
run script waiting for ../db may well start first).

The goals, read from tree.snapshot():

    up        ./run is running (paused counts)
    ready     ./run is running and ready: state.json's `ready` (for a service
              with readiness "none", a second up); without state.json, up
              is ready; with one that cannot be read, not ready: see below
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

The control verbs (svtree start, stop, restart, once, kill) are verbs.py's;
they wait with settle().

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

from . import fifodir, inotify, status, tree, unix
from .errors import describe

GOALS = ("up", "ready", "down", "finished")

SUPERVISE_MASK = inotify.MOVED_TO | inotify.CLOSE_WRITE | inotify.CREATE | inotify.DELETE_SELF
SERVICE_MASK = inotify.CREATE | inotify.MOVED_TO
# names in supervise/ whose change may change the answer ("": the directory itself)
WORTH_A_LOOK = ("", "status", "state.json", "ok")
FIFO_PREFIX = "svtree-wait-"
# A state.json that is not about the run status names is being replaced (the
# next rename comes within milliseconds) or was left by another supervisor:
# "ready" is not believed from status alone before it has stayed so this long.
STALE_GRACE = 0.2


class WaitError(Exception):
    """A service cannot be waited for."""


class Goal:
    """What one service is waited for.

    reached(snap): is it there, by its files alone (pure); supervised: a
    live supervise is needed too (a dead one's status may say up); ready:
    it reads readiness, so a state.json about another run is not believed
    at once (STALE_GRACE); hopeless(snap): why it never will be, or None.
    """

    def __init__(self, name, reached, *, supervised=False, ready=False, hopeless=None):
        self.name = name
        self.reached = reached
        self.supervised = supervised
        self.ready = ready
        self.hopeless = hopeless or (lambda snap: None)


def failed_for_good(snap):
    if snap.failed:
        return "failed for good (svc -u revives it)"
    return held_for_good(snap)


def held_for_good(snap):
    """A service down and held by a dependency that cannot be ready (it
    failed for good, or is no service) will not come up by waiting."""
    if snap.process == "down" and snap.blocked_by:
        return "blocked by " + ", ".join(f"{n} ({w})" for n, w in snap.blocked_by.items())
    return None


BY_NAME = {
    "up": Goal("up", lambda s: s.process == "run", supervised=True, hopeless=failed_for_good),
    "ready": Goal("ready", lambda s: (s.process == "run" and s.ready is not False
                                      and not s.record_error),
                  supervised=True, ready=True, hopeless=failed_for_good),
    "down": Goal("down", lambda s: s.process != "run"),
    "finished": Goal("finished", lambda s: s.process == "down"),
}


class Waited:
    """One service: its goal, its watches and the last answer."""

    def __init__(self, path: Path, goal: Goal):
        self.path = path
        self.goal = goal
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
        self.snap = None              # what the last look found (None: no status)
        self.supervised = False
        self.error = None             # why it cannot be waited for (I/O)
        self.lost = None              # why it will never reach its goal
        self.settled = False          # done, lost or in error for good (settle())


def record(w: Waited, now: float | None = None) -> tree.Record:
    """What the last look at w found, as a tree.Record (for words: a timeout
    message says why a service is not there yet)."""
    now = time.time() if now is None else now
    rec = tree.blank(tree.Entry(w.path))
    rec["supervised"] = w.supervised
    if w.snap is None or (w.goal.supervised and not w.supervised):
        rec["error"] = "supervise not running"
        if w.snap is None:
            return rec
    error = rec["error"]
    tree.fill(rec, w.snap, now)
    rec["error"] = rec["error"] or error
    return rec


class Waiter:
    """Wait for goals on several services; see wait() and settle().

    targets: (path, Goal) pairs. sticky: a service done (or lost) stays so
    (settle()); otherwise every service must be done at the same moment.
    """

    def __init__(self, targets, make_inotify, clock=time.monotonic, sticky=False):
        self.clock = clock
        self.sticky = sticky
        self.make_inotify = make_inotify
        self.inotify = None           # made when a service first needs it
        self.poller = select.poll()
        self.services = [Waited(Path(p), goal) for p, goal in targets]
        self.by_wd = {}
        self.by_fd = {}               # our fifos' read ends
        self.names = (f"{FIFO_PREFIX}{os.getpid()}-{n}" for n in itertools.count(1))

    def start(self):
        for w in self.services:
            if self.listen(w):
                self.check(w)         # which also says whether the fifo hears all
                if w.done or w.announced or w.settled:
                    continue
            self.watch(w)
            self.check(w)             # again: what changed before the watches took

    def listen(self, w):
        """Hear of w's changes through a fifo in its supervise/event/."""
        if not os.path.isdir(w.path / "supervise" / fifodir.EVENT_DIR):
            return False
        try:
            w.sub = fifodir.Subscription(str(w.path), next(self.names))
        except OSError:
            return False              # not ours to write in: inotify will do
        self.by_fd[w.sub.r] = w
        self.poller.register(w.sub.r, select.POLLIN)
        return True

    def watch(self, w):
        """Watch w through inotify instead (or as well)."""
        if w.service_wd is not None or w.settled:
            return
        if self.inotify is None:
            self.inotify = self.make_inotify()
            self.poller.register(self.inotify.fileno(), select.POLLIN)
        try:
            w.service_wd = self.inotify.add_watch(str(w.path), SERVICE_MASK)
        except OSError as e:
            self.give_up(w, f"unable to watch {w.path}: {describe(e)}")
            return
        self.by_wd[w.service_wd] = w
        self.watch_supervise(w)

    def give_up(self, w, error):
        w.error = error
        w.done = False
        w.settled = True

    def close(self):
        """Remove our fifos and close the inotify descriptor."""
        for w in self.services:
            if w.sub is not None:
                w.sub.close()
                w.sub = None
        if self.inotify is not None:
            self.inotify.close()

    def watch_supervise(self, w):
        mask = SUPERVISE_MASK | (inotify.OPEN if w.want_open else 0)
        try:
            wd = self.inotify.add_watch(str(w.path / "supervise"), mask)
        except FileNotFoundError:
            return                    # not yet: the service watch will see it made
        except OSError as e:
            if e.errno == errno.ENOTDIR:
                return
            self.give_up(w, f"unable to watch {w.path}/supervise: {describe(e)}")
            return
        w.supervise_wd = wd
        self.by_wd[wd] = w

    def check(self, w):
        """Read one service again and decide whether it is done."""
        if w.settled:
            return
        goal = w.goal
        try:
            fd = unix.open_dir(str(w.path))
        except OSError as e:
            self.give_up(w, f"unable to chdir to {w.path}: {describe(e)}")
            return
        try:
            snap = tree.snapshot(fd)
            supervised = tree.is_supervised(fd)
            live = goal.reached(snap) and (not goal.supervised or supervised)
            w.announced = supervised and snap.source == "state.json"
        except FileNotFoundError:
            snap, supervised, live = None, False, False
            w.announced = False
        except (OSError, status.BadStatus) as e:
            self.give_up(w, f"unable to read {w.path}/supervise/status: {describe(e)}")
            return
        finally:
            os.close(fd)
        w.snap, w.supervised = snap, supervised
        w.lost = None if snap is None else goal.hopeless(snap)
        if w.lost:
            w.done = False
            w.settled = True
            return
        if live and goal.ready and snap.stale_record:
            now = self.clock()
            w.stale_since = now if w.stale_since is None else w.stale_since
            if now - w.stale_since < STALE_GRACE:
                w.done = False        # look again then (recheck_due), or at the next change
                return
        else:
            w.stale_since = None
        w.done = live
        w.settled = self.sticky and live
        if w.settled:
            return
        # status says yes but supervise/ok is not open yet: listen for its open
        want_open = bool(snap and not live and goal.reached(snap))
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
            if event.mask & inotify.Q_OVERFLOW:           # events were lost: read everything
                touched = list(self.services)
                break
            w = self.by_wd.get(event.wd)
            if w is None:
                continue
            if event.mask & inotify.IGNORED:              # supervise/ went away
                del self.by_wd[event.wd]
                if event.wd == w.supervise_wd:
                    w.supervise_wd = None
                elif event.wd == w.service_wd:
                    w.service_wd = None
            elif event.mask & inotify.OPEN and event.name != "ok":
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
        return [w for w in self.services if not w.done and not w.settled]

    def errors(self):
        """Raise WaitError for the first service that cannot be waited for."""
        for w in self.services:
            if w.error:
                raise WaitError(w.error)
            if w.lost:
                raise WaitError(f"unable to wait for {w.path}: {w.lost}")

    def recheck_due(self):
        """When a service with a stale state.json must be looked at again."""
        dues = [w.stale_since + STALE_GRACE for w in self.pending()
                if w.stale_since is not None]
        return min(dues) if dues else None

    def recheck(self):
        now = self.clock()
        for w in self.pending():
            if w.stale_since is not None and now >= w.stale_since + STALE_GRACE:
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


def wait(paths, goal, timeout=None, *, clock=time.monotonic, make_inotify=inotify.make):
    """Return [] once every service in paths is in goal (a name of GOALS)
    at the same moment, or, after timeout seconds, the Waited entries that
    were not (record() says what they were).

    Raises WaitError.
    """
    if goal not in GOALS:
        raise ValueError(goal)
    waiter = Waiter([(p, BY_NAME[goal]) for p in paths], make_inotify, clock)
    try:
        waiter.start()
        waiter.errors()
        deadline = None if timeout is None else clock() + timeout
        while waiter.pending():
            if deadline is None:
                waiter.step(None)
            else:
                left = deadline - clock()
                if left <= 0:
                    return waiter.pending()
                waiter.step(left)
            waiter.errors()
        return []
    finally:
        waiter.close()


def settle(targets, timeout, *, clock=time.monotonic, make_inotify=inotify.make):
    """Yield each Waited of targets ((path, Goal) pairs) as soon as it is
    done (w.done), hopeless (w.lost) or cannot be waited for (w.error);
    after timeout seconds, the rest (none of the three). Raises nothing of
    its own: errors are the service's."""
    waiter = Waiter(targets, make_inotify, clock, sticky=True)
    told = set()

    def news():
        for w in waiter.services:
            if w.settled and id(w) not in told:
                told.add(id(w))
                yield w
    try:
        waiter.start()
        yield from news()
        deadline = clock() + timeout
        while waiter.pending():
            left = deadline - clock()
            if left <= 0:
                break
            waiter.step(left)
            yield from news()
        yield from (w for w in waiter.services if id(w) not in told)
    finally:
        waiter.close()
