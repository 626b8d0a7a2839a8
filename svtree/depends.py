"""svscan's part in dependencies: the depends files of its services as one
graph, what holds each service's start, and the order of a shutdown.

A service's depends file lists what it needs (servicedir.parse_depends): a
service of the same scan directory by name, or a service directory by
path. svscan reads every depends file at each scan and when one changes,
and tells each service's supervise, on a pipe of its own (DEPS_FD, see
forking.py), what holds its ./run: the dependencies not ready yet
(waiting_for) and those that cannot be (blocked_by: failed for good,
themselves blocked, or no service at all). supervise starts ./run only
when nothing holds it; a ./run already running is left alone, so a
dependency's restart restarts nothing (see svtree-service(5) for why).

Ready is `svtree wait ready`'s word (wait.py): up, with a live supervise,
and ready if the service can say so (notification-fd, ./check; otherwise
up for a second). A dependency of the tree counts as supervised only if
svscan has its supervise and that supervise has written its status since it
started (a status left by a dead one says nothing). svscan is woken by
inotify on each dependency's supervise/ (status and state.json are
replaced by rename at every change) and on each service directory (its
depends file, its supervise/ appearing): nothing polls.

What a service's owner writes is believed only for that service's order:
status and state.json are read as tree.py reads them (regular files, no
blocking), and a forged "ready" lets its dependents start early, nothing
more. svscan never signals or starts anything on their word.

Mistakes never hang the tree: the members of a dependency cycle start as if
they had no depends file, an unreadable depends file counts as none, and
each is said once on stderr, in one line. A dependency that is no service
(a typo, a service removed) blocks its dependents until it is one.

At a shutdown (init.py), a service is brought down only once every service
of the tree that depends on it is down: dependents first, level by level,
all within the one grace period; services with no dependency between them
go down at the same moment, as they do without depends files.
"""

import json
import os

from . import inotify, servicedir, status, unix
from .errors import describe, tell
from .trust import INSTANCE_DIR

SERVICE_MASK = (inotify.CREATE | inotify.MOVED_TO | inotify.CLOSE_WRITE | inotify.DELETE
                | inotify.MOVED_FROM)
SUPERVISE_MASK = inotify.MOVED_TO | inotify.CLOSE_WRITE | inotify.DELETE_SELF
WORTH_A_LOOK = {None: ("depends", "supervise", "run"), "supervise": ("status", "state.json")}
READY = ((), ())          # nothing holds the service
NO_SERVICE = "no such service"
LINE_MAX = 4000           # under PIPE_BUF: a line on the pipe is written whole or not at all
NAMES_MAX = 16
WORD_MAX = 100
TICK_NS = 10_000_000      # a file's time may lag the clock by a tick of the kernel's


def warn(what):
    tell("svscan", "warning", what)


class Dependencies:
    """The scanner's services' dependencies: read, watched, told."""

    def __init__(self, scanner):
        self.scanner = scanner
        self.inotify = None
        self.edges = {}           # name -> [(word, target)]: a name of the tree, or a path
        self.owners = {}          # name -> uid of its directory's owner
        self.cyclic = set()       # names in a cycle: they start as if they had no depends
        self.said = {}            # name -> the line last written on its pipe
        self.told = set()         # warnings said, not said again while they hold
        self.watched = {}         # path -> watch descriptor
        self.wanted = {}          # path -> what: everything watch_all() wants watched
        self.holding = set()      # supervise dirs told something holds them
        self.by_wd = {}           # watch descriptor -> (path, what: None or "supervise")

    # --- the graph ------------------------------------------------------------------

    def reload(self):
        """Read every depends file again, find cycles and dependencies that
        are no service (each said once, in one line), watch what is needed."""
        services = self.scanner.by_name()
        by_key = {key: s.name for key, s in self.scanner.services.items() if s.active}
        edges, told, owners = {}, set(), {}
        for name in services:
            try:
                owners[name] = os.stat(name).st_uid
            except OSError:
                continue
            try:
                words = servicedir.read_depends(name)
            except (OSError, servicedir.BadDepends) as e:
                told.add(f"unable to use {name}/depends: {describe(e)}; "
                         f"{name} starts as if it had none")
                continue
            if words:
                edges[name] = [(word, self.target(word, by_key)) for word in words]
        self.edges, self.owners = edges, owners
        self.cyclic = set()
        for cycle in cycles({n: [t for _, t in e if t in services] for n, e in edges.items()}):
            self.cyclic.update(cycle)
            told.add(f"dependency cycle: {' -> '.join(cycle + cycle[:1])}: "
                     "each starts as if it had no depends file")
        for name, e in edges.items():
            for word, target in e:
                if name not in self.cyclic and not exists(target, services):
                    told.add(f"{name} depends on {word}, which is no service: "
                             f"{name} waits until it is one")
        for message in sorted(told - self.told):
            warn(message)
        self.told = told              # a mistake mended and made again is said again
        self.watch_all(services)

    def target(self, word, by_key):
        """A dependency's name in the tree, if it is one of ours (a path to
        one counts too); else its path."""
        if "/" not in word:
            return word
        try:
            st = os.stat(word)
        except OSError:
            return word
        return by_key.get((st.st_dev, st.st_ino), word)

    def dependents(self, name) -> list[str]:
        """The services of the tree that name's shutdown waits for: those
        whose start waits for it, if their owner may hold it back (root,
        or name's own owner: another user's depends file must not keep
        root's database up until the grace period ends)."""
        owner = self.owners.get(name)
        return [n for n, e in self.edges.items()
                if n not in self.cyclic and any(t == name for _, t in e)
                and self.owners.get(n) in (0, owner)]

    # --- what holds each service --------------------------------------------------

    def verdict(self, name, services, looks=None):
        """(waiting_for, blocked_by) of service name, as svscan tells it;
        services: the tree's, by name; looks: what was found of each
        dependency already, shared between calls."""
        if name in self.cyclic or name not in self.edges:
            return READY
        looks = {} if looks is None else looks
        waiting, blocked = [], []
        for word, target in self.edges[name]:
            if target not in looks:
                looks[target] = self.look(target, services)
            why = looks[target]
            if why is None:
                waiting.append(word)
            elif why is not True:
                blocked.append((word, why))
        return tuple(waiting), tuple(blocked)

    def look(self, target, services):
        """True if target is ready, None if not yet, or why it cannot be."""
        service = services.get(target)
        if service is None and "/" not in target:
            return NO_SERVICE
        try:
            fd = unix.open_dir(target)
        except OSError:
            return NO_SERVICE
        try:
            if service is None and not servicedir.is_service(dir_fd=fd):
                return NO_SERVICE
            if service is None or service.instances() is None:
                return readiness(fd, service and service.main)
            return any_ready([instance_readiness(fd, proc) for proc in service.runs()])
        finally:
            os.close(fd)

    def update(self):
        """Tell each service whose verdict changed (or whose pipe is new).
        In a tree without depends files nothing is held: nothing to do."""
        if not self.edges and not self.holding:
            return
        looks, services = {}, self.scanner.by_name()
        for service in services.values():
            verdict = None
            for proc in service.runs():          # each instance is held alike
                if proc.deps_w >= 0:
                    verdict = verdict or self.verdict(service.name, services, looks)
                    self.tell(proc, verdict)

    def tell(self, proc, verdict):
        line = encode(verdict)
        if self.said.get(proc.path) == line:
            return
        try:
            os.write(proc.deps_w, line)            # <= PIPE_BUF: whole or not at all
            self.said[proc.path] = line
            if verdict == READY:
                self.holding.discard(proc.path)
            else:
                self.holding.add(proc.path)
        except BlockingIOError:
            self.said.pop(proc.path, None)         # full: said again at the next change
        except OSError:
            pass                                   # its supervise is gone

    def first_word(self, service, proc):
        """The line proc, a new supervise of service, finds on its pipe:
        what holds it right now (nothing is written when nothing does)."""
        verdict = self.verdict(service.name, self.scanner.by_name())
        line = encode(verdict)
        self.said[proc.path] = line
        if verdict != READY:
            self.holding.add(proc.path)
        return line if line != encode(READY) else b""

    # --- watching -----------------------------------------------------------------------

    def watch_all(self, services):
        """Every service directory (its depends file, its supervise/ made),
        and the supervise/ of every dependency."""
        if self.inotify is None:
            try:
                self.inotify = inotify.make()
            except (OSError, ImportError) as e:
                warn(f"unable to watch dependencies ({describe(e)}): "
                     "they are looked at only at each scan")
                self.inotify = False
        if not self.inotify:
            return
        wanted = {name: None for name in services}
        for e in self.edges.values():
            for _, target in e:
                service = services.get(target)
                if service is not None and service.instances() is not None:
                    wanted[os.path.join(target, INSTANCE_DIR)] = None   # K/ made: watched then
                for where in instance_dirs(target, service):
                    wanted[where] = None
                    wanted[os.path.join(where, "supervise")] = "supervise"
        self.wanted = wanted
        for path in set(self.watched) - set(wanted):
            self.unwatch(path)
        for path, what in wanted.items():
            if path not in self.watched:
                self.watch(path, what)

    def watch(self, path, what):
        mask = SUPERVISE_MASK if what else SERVICE_MASK
        try:
            wd = self.inotify.add_watch(path, mask | inotify.ONLYDIR)
        except OSError:
            return                  # not there (yet): its parent's watch sees it made
        self.watched[path] = wd
        self.by_wd[wd] = (path, what)

    def unwatch(self, path):
        wd = self.watched.pop(path)
        self.by_wd.pop(wd, None)
        try:
            self.inotify.rm_watch(wd)
        except OSError:
            pass

    def fileno(self):
        return self.inotify.fileno() if self.inotify else -1

    def on_inotify(self):
        """Act on what changed: depends files read again, new supervise/
        directories watched, and every verdict looked at once."""
        reload = rewatch = changed = False
        events = self.inotify.read(timeout=0)
        if self.scanner.stopping:
            return                  # nothing starts any more
        for event in events:
            if event.mask & inotify.Q_OVERFLOW:
                reload = True
                continue
            path, what = self.by_wd.get(event.wd, (None, None))
            if path is None:
                continue
            if event.mask & inotify.IGNORED:
                del self.by_wd[event.wd]
                if self.watched.get(path) == event.wd:
                    del self.watched[path]
                continue
            if what == "supervise":
                changed = changed or event.name in WORTH_A_LOOK["supervise"] \
                    or event.mask & inotify.DELETE_SELF
                continue
            if what is None and event.name == servicedir.INSTANCES:
                self.scanner.scan()         # scaled: new instances, fewer; reloads too
                return
            if what is None and event.name in ("depends", "run"):
                reload = True
            elif what is None and event.name == "supervise":
                inner = os.path.join(path, "supervise")
                if inner in self.wanted:    # a dependency's: its changes are news
                    self.watch(inner, "supervise")
                    changed = True
            elif what is None and (event.name == INSTANCE_DIR or event.name.isdigit()):
                rewatch = True              # an instance's directory made: watch in it
        if reload:
            self.reload()
        elif rewatch:
            self.watch_all(self.scanner.by_name())
        if reload or rewatch or changed:
            self.update()

    def close(self):
        if self.inotify:
            self.inotify.close()
        self.inotify = None


def exists(target, services) -> bool:
    """Is the dependency a service at all (of the tree, or a directory
    elsewhere that is one)? Its readiness is look()'s, at each update."""
    return target in services or ("/" in target and servicedir.is_service(target))


def instance_dirs(target, service):
    """Where a dependency's supervise/ directories are: its own, or its
    instances' (instance/K/)."""
    if service is None or service.instances() is None:
        return [target]
    return [servicedir.instance_path(target, proc.instance) for proc in service.runs()]


def instance_readiness(fd, proc):
    """readiness() of one instance of the service open as fd."""
    try:
        inner = os.open(servicedir.instance_path(".", proc.instance), os.O_RDONLY
                        | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return None                 # not made yet: its supervise is starting
    try:
        return readiness(inner, proc)
    finally:
        os.close(inner)


def any_ready(answers):
    """A service of N instances is ready when one is (it can serve); it
    cannot be when none can; otherwise not yet."""
    if True in answers:
        return True
    blocked = [a for a in answers if a is not None]
    return blocked[0] if blocked and len(blocked) == len(answers) else None


def readiness(fd, proc):
    """True if the service open as fd is ready, None if not yet, or why it
    cannot be. proc: the scanner's Proc of its supervise when it is one of
    the tree (None for a service elsewhere)."""
    # imported here: only a tree with depends files needs svtree's reader
    # (and dataclasses, pathlib...), which svscan and every supervise would
    # otherwise carry
    from . import tree
    if proc is not None and not supervised(proc):
        return None
    try:
        snap = tree.snapshot(fd)
        live = tree.is_supervised(fd) if proc is None else True
        if proc is not None and proc.pid and not fresh(fd, proc):
            return None             # a status of the supervise before it: no word yet
    except FileNotFoundError:
        return None
    except (OSError, status.BadStatus, ValueError, ArithmeticError, RecursionError):
        return None                 # their files: never more than "not ready"
    if snap.failed:
        return f"failed: {snap.reason}" if snap.reason else "failed"
    if snap.blocked_by:
        return "blocked by " + ", ".join(snap.blocked_by)
    ready = (snap.process == "run" and snap.ready is not False and not snap.record_error
             and not snap.stale_record)
    # one of ours writes state.json right after status: until then it has said nothing
    told = proc is None or snap.source == "state.json"
    return True if ready and live and told else None


def supervised(proc) -> bool:
    """Has svscan this supervise (its own, or one it inherited) running?"""
    return bool(proc.pid or proc.control >= 0)


def fresh(fd, proc) -> bool:
    """Has proc's supervise written supervise/status since it was forked?
    A status file it replaced is another inode (which a file system with
    whole-second times needs); else one written since the fork, by the clock."""
    try:
        st = os.stat("supervise/status", dir_fd=fd)
    except OSError:
        return False
    return st.st_ino != proc.old_status or st.st_mtime_ns >= proc.forked_ns - TICK_NS


def encode(verdict) -> bytes:
    """The line for supervise: {"waiting_for": [...], "blocked_by": {...}},
    at most LINE_MAX bytes, so that each is one atomic write: names and
    reasons (a reason may come from another user's state.json) cut short,
    and no more than NAMES_MAX of each."""
    waiting, blocked = verdict
    line = json.dumps({"waiting_for": [short(n) for n in waiting[:NAMES_MAX]],
                       "blocked_by": {short(n): short(w) for n, w in blocked[:NAMES_MAX]}},
                      separators=(",", ":"))
    if len(line) >= LINE_MAX:       # still too long: say only that something holds it
        line = json.dumps({"waiting_for": [short(n) for n in waiting[:1]],
                           "blocked_by": {short(n): "" for n, _ in blocked[:1]}})
    return (line + "\n").encode()


def short(text):
    return text if len(text) <= WORD_MAX else text[:WORD_MAX - 3] + "..."


def cycles(graph) -> list[list[str]]:
    """The cycles of graph (name -> names it depends on), each as a list of
    its members in order, one per strongly connected component with more
    than one member (or a member that depends on itself). Iterative Tarjan."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    members = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        members.append(member)
                        if member == node:
                            break
                    if len(members) > 1 or node in graph.get(node, ()):
                        found.append(list(reversed(members)))
    return found
