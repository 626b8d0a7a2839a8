"""svscan's scanner: one supervise per service directory, and the log pipes
between.

A service is an entry of the scan directory that servicedir.py says is one;
it is known by (st_dev, st_ino), so renaming it keeps its supervise. A
service with a `log` subdirectory gets a second supervise for `log`, joined
to the first by a pipe that svscan holds open for as long as the service
exists, so neither side's restart loses a line.

svscan notices changes through inotify on the scan directory (and on new
service directories that have no `run` yet) and rescans in full every 60 s,
on SIGHUP and on SIGALRM, for what inotify cannot see (a symlink whose target
appears later). Each supervise is forked without exec (forking.py); one
that dies is started again after RESTART seconds, doubling to RESTART_MAX
while it keeps dying fast. Supervise processes an earlier svscan left are
reached through their fifos (inherited.py).

A removed service is brought down (runit's choice, not daemontools'): its
supervise gets TERM (svc -dx), then the logger's supervise gets HUP, so the
logger drains the pipe to its end before it goes. The whole tree's end,
and svscan's loop, are init.py's.
"""

import os
import signal
import stat
import time

from . import depends, forking, inherited, inotify, policy, servicedir, unix, wstatus, zygote
from .errors import tell
from .spawn import SOCKETS_FD

PROG = "svscan"
RESCAN = 60.0          # seconds between two fallback scans
RESTART = 1.0          # first delay before a dead supervise is restarted
RESTART_MAX = 60.0
MAX_SERVICES = 1000
WATCH = inotify.CREATE | inotify.MOVED_TO | inotify.DELETE | inotify.MOVED_FROM | inotify.ATTRIB
AWAIT_RUN = inotify.CREATE | inotify.MOVED_TO | inotify.ATTRIB | inotify.ONESHOT


def warn(what, e=None):
    tell(PROG, "warning", what, e)


class Proc:
    """One supervise process svscan started: the service's (or one of its
    instances'), or the logger's."""

    __slots__ = ("path", "instance", "pid", "started", "forked_ns", "old_status", "restart_at",
                 "delay", "control", "ok", "deps_w")

    def __init__(self, path, instance=None):
        self.path = path          # the directory its supervise/ is in
        self.instance = instance  # its number, for an instance (SERVICE/instance/K)
        self.deps_w = -1          # svscan's end of the pipe telling it what holds it
        self.pid = 0
        self.started = 0.0
        self.forked_ns = 0    # wall clock at the fork: its status is news only after
        self.old_status = None    # the inode of the status file its predecessor left
        self.restart_at = None
        self.delay = RESTART
        self.control = -1     # the control fifo of a supervise we found running
        self.ok = -1          # and its ok fifo: EPIPE there means it is gone


class Service:
    """A service directory and what svscan holds for it."""

    __slots__ = ("name", "main", "extra", "leaving", "log", "pipe", "active", "joined",
                 "sockets")

    def __init__(self, name, has_log, instances=None):
        self.name = name
        self.main = Proc(name) if instances is None else instance(name, 1)
        self.extra = [instance(name, k) for k in range(2, (instances or 1) + 1)]
        self.leaving = []     # instances scaled away, until their supervise exits
        self.log = Proc(os.path.join(name, "log")) if has_log else None
        self.pipe = os.pipe() if has_log else None
        self.active = True
        self.joined = False   # looked for the pipe of an earlier svscan's supervise
        self.sockets = None   # [(listening socket, name)] of its socket file, once opened

    def runs(self):
        """The supervise processes of the service itself (of each instance)."""
        return (self.main, *self.extra)

    def procs(self):
        return (*self.runs(), *self.leaving, *((self.log,) if self.log else ()))

    def instances(self):
        return None if self.main.instance is None else len(self.extra) + 1

    def rename(self, name):
        """The directory was renamed: its supervise processes keep running."""
        self.name = name
        for proc in self.runs():
            proc.path = (name if proc.instance is None
                         else servicedir.instance_path(name, proc.instance))
        if self.log:
            self.log.path = os.path.join(name, "log")


def status_inode(path):
    """The inode of path's supervise/status (a supervise replaces it by
    rename: a new one is a new inode), or None."""
    try:
        return os.stat(os.path.join(path, "supervise", "status")).st_ino
    except OSError:
        return None


def open_sockets(name):
    """The listening sockets of name's socket file (sockets.py, imported
    only then: the socket module is no small thing to carry in svscan and
    every supervise)."""
    if not os.path.lexists(os.path.join(name, "socket")):
        return []
    from . import sockets
    return sockets.open_for(name, policy.is_ours, warn)


def running(service, inherited=False) -> bool:
    """Has the service (not its logger) a supervise of ours still running
    (of any instance, those scaled away included)? With inherited, one an
    earlier svscan left counts too."""
    return any(p.pid or inherited and p.control >= 0 for p in (*service.runs(), *service.leaving))


def instance(name, number):
    return Proc(servicedir.instance_path(name, number), number)



class Scanner:
    """The scan directory, its services and their supervise processes."""

    def __init__(self, directory, *, clock=time.monotonic):
        self.directory = directory
        self.clock = clock
        self.services = {}         # (dev, ino) -> Service
        self.by_pid = {}           # supervise pid -> (Service, Proc)
        self.stopping = False      # the tree is going down (init.py)
        self.critical = None       # (name, exit code) of a critical service that failed
        self.inotify = None
        self.scan_wd = None        # the inotify watch on the scan directory
        self.watches = {}          # watch descriptor -> name of a dir awaiting run
        self.next_scan = 0.0
        self.inherited = inherited.Inherited()
        self.zygote = None         # what forks each supervise (zygote.py), if any
        self.deps = depends.Dependencies(self)
        self.told = set()          # warnings about files read at each scan, said once
    # --- scanning -----------------------------------------------------------

    def scan(self):
        """Start what is new, restart what died, stop what is gone; each
        started knowing what its dependencies hold it on."""
        self.next_scan = self.clock() + RESCAN
        seen, found = set(), []
        try:
            names = sorted(os.listdir("."))
        except OSError as e:
            warn(f"unable to read {self.directory}", e)
            return
        for name in names:
            if not servicedir.candidate(name):
                continue
            try:
                st = os.stat(name)
            except OSError:
                continue          # a dangling symlink: the fallback scan tries again
            if not stat.S_ISDIR(st.st_mode):
                continue
            key = (st.st_dev, st.st_ino)
            service = self.services.get(key)
            if service is None:
                if not os.path.lexists(os.path.join(name, "run")):
                    self.await_run(name)
                    continue
                if len(self.services) >= MAX_SERVICES:
                    warn(f"unable to start {name}: running too many services")
                    continue
                try:
                    service = Service(name, self.has_log(name), self.instances(name))
                except OSError as e:           # out of fds: the next scan tries again
                    warn(f"unable to create pipe for {name}", e)
                    continue
                self.services[key] = service
            if not service.active:
                continue          # still draining its logger; a fresh one comes next scan
            if service.name != name:
                service.rename(name)
            count = self.instances(name)
            if count is None and service.instances() is not None and os.path.lexists(
                    os.path.join(name, servicedir.INSTANCES)):
                count = service.instances()     # being written, or a typo: left as it is
            if (count is None) != (service.instances() is None):
                self.retire(service)   # one copy to N, or N to one: started afresh once down
                continue
            if count is not None and count != service.instances():
                self.scale(service, count)
            seen.add(key)
            found.append(service)
        for key, service in list(self.services.items()):
            if key not in seen and service.active:
                self.retire(service)
        self.deps.reload()
        for service in found:
            self.start_dead(service)
        self.deps.update()

    def instances(self, name):
        return servicedir.instances(name, self.warn_once)

    def warn_once(self, message):
        """A mistake in a file read at every scan is said once for as long
        as svscan runs, not a minute apart."""
        if message not in self.told:
            self.told.add(message)
            warn(message)

    def scale(self, service, count):
        """An instances file changed: start the instances it adds, bring
        the highest ones down cleanly (as svc -dx) if it asks for fewer.
        The others are left alone."""
        runs = service.runs()
        for number in range(len(runs) + 1, count + 1):
            service.extra.append(instance(service.name, number))
        for proc in runs[count:]:
            service.extra.remove(proc)
            self.close_deps(proc)
            if proc.pid:
                unix.kill(proc.pid, signal.SIGTERM)
                service.leaving.append(proc)
            elif proc.control >= 0:
                self.inherited.tell_one(proc, b"dx")

    def by_name(self):
        """The services of the tree (not those going away), by name."""
        return {s.name: s for s in self.services.values() if s.active}

    def start_dead(self, service):
        if service.pipe and not service.joined:
            service.joined = True
            # only a supervise of an earlier svscan has a pipe to give (and
            # only then is /proc/locks worth reading, twice per service)
            if any(inherited.is_supervised(proc.path) for proc in service.procs()):
                inherited.join_pipe(service)
        now = self.clock()
        for proc in service.procs():
            if proc.pid or (proc.restart_at is not None and now < proc.restart_at):
                continue
            proc.restart_at = None
            self.fork_supervise(service, proc)

    def await_run(self, name):
        """Watch a new directory until its run file appears."""
        if self.inotify is None or name in self.watches.values():
            return
        try:
            wd = self.inotify.add_watch(name, AWAIT_RUN)
        except OSError:
            return
        self.watches[wd] = name

    def retire(self, service, hurry=None):
        """Bring the service down (each of its instances), then its logger
        (its directory is gone, or the tree is shutting down).

        hurry: {Proc: (pidfd, signal)} of the running ./run of each of its
        supervise processes, which then gets its down
        signal (and CONT) from us right after its supervise got TERM. The
        supervise has its TERM pending before the service can die, so it
        still sees "down, then exited", as if it had sent the signal itself;
        meanwhile every service of the tree ends at once, instead of each
        waiting for its supervise to get the CPU.
        """
        service.active = False
        self.inherited.tell(service)
        hurry = hurry or {}
        for proc in service.runs():
            if proc.pid:
                unix.kill(proc.pid, signal.SIGTERM)
            pidfd, signum = hurry.get(proc) or (-1, 0)
            if pidfd >= 0:
                for sig in (signum, signal.SIGCONT):
                    try:
                        signal.pidfd_send_signal(pidfd, sig)
                    except OSError:
                        break         # it has ended already
                os.close(pidfd)
        if not running(service):
            self.main_gone(service)

    def main_gone(self, service):
        """The service's supervise (each instance's) is down for good: let
        the logger drain and go."""
        if service.pipe and service.pipe[1] >= 0:
            os.close(service.pipe[1])
            service.pipe = (service.pipe[0], -1)
        if service.log and service.log.pid:
            os.kill(service.log.pid, signal.SIGHUP)
        self.forget_if_done(service)

    def forget_if_done(self, service):
        if any(p.pid for p in service.procs()):
            return
        if service.pipe:
            for fd in service.pipe:
                if fd >= 0:
                    os.close(fd)
            service.pipe = None
        for proc in service.runs():
            self.close_deps(proc)
        for sock, _ in service.sockets or ():
            sock.close()
        service.sockets = None
        for key, known in list(self.services.items()):
            if known is service:
                del self.services[key]
                # A directory made meanwhile may have been given the same inode
                # number (rm -rf, then mkdir): the scan that saw it skipped it as
                # the one still draining. Look again now, not in a minute.
                self.next_scan = min(self.next_scan, self.clock())

    def close_deps(self, proc):
        if proc.deps_w >= 0:
            os.close(proc.deps_w)
            proc.deps_w = -1
        self.deps.said.pop(proc.path, None)
        self.deps.holding.discard(proc.path)

    # --- processes ----------------------------------------------------------

    def fork_supervise(self, service, proc):
        if proc is service.log and not self.has_log(service.name):
            proc.restart_at = self.clock() + RESCAN   # log/ became a link of someone else's
            return
        if inherited.is_supervised(proc.path):
            self.inherited.reach(service, proc)     # another supervise holds it: leave it be
            return
        if proc.control >= 0:      # the inherited one is gone; ours takes over
            self.inherited.forget(proc)
        fds, ours = [], proc is not service.log
        if service.pipe:           # the service (each instance) writes the pipe, its logger reads
            fds.append((service.pipe[1], 1) if ours else (service.pipe[0], 0))
        deps_r = self.deps_pipe(service, proc) if ours else -1
        if deps_r >= 0:
            fds.append((deps_r, forking.DEPS_FD))
        names = ()
        if ours:
            if not service.sockets:        # none yet: a socket file made since counts
                service.sockets = open_sockets(service.name)
            fds += [(s.fileno(), SOCKETS_FD + i) for i, (s, _) in enumerate(service.sockets)]
            names = tuple(name for _, name in service.sockets)
        forked_ns = time.time_ns()
        old_status = status_inode(proc.path)
        try:
            pid = self.fork_child(proc.path if proc.instance is None else service.name, fds,
                                  names, proc.instance)
        except OSError as e:
            warn(f"unable to start supervise {proc.path}", e)
            proc.restart_at = self.clock() + proc.delay
            return
        finally:
            if deps_r >= 0:
                os.close(deps_r)
        proc.forked_ns, proc.old_status = forked_ns, old_status
        proc.pid = pid
        proc.started = self.clock()
        self.by_pid[pid] = (service, proc)

    def deps_pipe(self, service, proc):
        """The read end of a new pipe for proc, a supervise of service,
        holding what its dependencies hold it on (depends.py); svscan keeps
        the write end. -1 if none can be made: it then starts unheld."""
        self.close_deps(proc)
        try:
            r, w = os.pipe2(os.O_CLOEXEC)
        except OSError as e:
            warn(f"unable to create pipe for {service.name}", e)
            return -1
        os.set_blocking(w, False)       # svscan never waits on it
        first = self.deps.first_word(service, proc)
        if first:
            os.write(w, first)          # read by supervise before its first start
        proc.deps_w = w
        return r

    def fork_child(self, path, fds, names=(), number=None):
        """The pid of a new supervise of path (of its instance number, if
        given), with each fd of fds, (fd, target) pairs, on its descriptor
        target, and names, its sockets': forked by the zygote (see
        zygote.py), or by svscan itself if there is none. Raises OSError."""
        if self.zygote is not None:
            try:
                return self.zygote.fork(path, fds, names, number)
            except zygote.Gone as e:
                warn(f"unable to use the zygote: {e}; svscan forks each supervise itself")
                self.drop_zygote()
        return forking.fork_supervise(path, fds, names, number)

    def drop_zygote(self):
        if self.zygote is not None:
            unix.kill(self.zygote.pid, signal.SIGKILL)     # reaped as any child is
            self.zygote.close()
            self.zygote = None

    def reap(self):
        """Collect every child that ended; the (pid, wait status) of those
        that were no supervise of ours (the main command, orphans)."""
        others = []
        for pid, status_ in unix.reap():
            entry = self.by_pid.pop(pid, None)
            if entry is not None:
                service, proc = entry
                proc.pid = 0
                self.supervise_ended(service, proc, status_)
            elif self.zygote is not None and pid == self.zygote.pid:
                warn("the zygote exited; svscan forks each supervise itself")
                self.drop_zygote()
            else:
                others.append((pid, status_))
        return others

    def supervise_ended(self, service, proc, status_=0):
        now = self.clock()
        code = wstatus.code_of(status_)
        ours = proc is not service.log
        if proc in service.leaving:                  # scaled away: gone for good
            service.leaving.remove(proc)
            if service.active and not self.stopping:
                return
        if (ours and code and not self.stopping and service.active
                and policy.is_ours(os.path.join(service.name, "critical"))):
            self.critical = (service.name, code)     # init.py takes the tree down
        if not service.active or self.stopping:
            if ours and not running(service):
                self.main_gone(service)
            else:
                self.forget_if_done(service)
            return
        lived = now - proc.started
        proc.delay = RESTART if lived >= RESTART else min(proc.delay * 2, RESTART_MAX)
        proc.restart_at = now + (RESTART if lived >= RESTART else proc.delay)

    def deadline(self):
        dues = []
        if self.inherited.told:    # their exit cannot be waited for: look 10 times a second
            dues.append(self.clock() + 0.1)
        if not self.stopping:
            dues.append(self.next_scan)
            for service in self.services.values():
                if service.active:
                    dues.extend(p.restart_at for p in service.procs()
                                if p.restart_at is not None and not p.pid)
        return min(dues) if dues else None

    def on_timeout(self):
        now = self.clock()
        if self.inherited.told:
            self.inherited.probe()
        if self.stopping:
            return
        if now >= self.next_scan:
            self.scan()
            return
        for service in list(self.services.values()):
            if service.active:
                self.start_dead(service)

    def unwatch(self):
        """Drop the inotify watches (nothing is scanned any more). The kernel
        frees them in the background now; closing the descriptor with them in
        place, at exit, would wait for that instead (an RCU grace period, up
        to 15 ms seen here, after the last service is down)."""
        if self.inotify is None:
            return
        for wd in (self.scan_wd, *self.watches):
            if wd is not None:
                try:
                    self.inotify.rm_watch(wd)
                except OSError:
                    pass                # a one-shot watch that has fired
        self.watches.clear()

    # --- the scan directory --------------------------------------------------

    def has_log(self, name):
        found, why_not = servicedir.has_log(name)
        if why_not:
            warn(why_not)
        return found

    def watch(self):
        """inotify on the scan directory; without it (with a warning), the
        fallback scan alone."""
        try:
            self.inotify = inotify.make()
            self.scan_wd = self.inotify.add_watch(".", WATCH)
        except (OSError, ImportError) as e:
            warn(f"unable to watch {self.directory}, scanning every {RESCAN:.0f} seconds", e)
            if self.inotify is not None:
                self.inotify.close()
            self.inotify = None

    def on_inotify(self):
        for event in self.inotify.read(timeout=0):
            if event.mask & inotify.IGNORED:        # a one-shot watch is gone
                self.watches.pop(event.wd, None)
        if not self.stopping:
            self.scan()

    def inherited_gone(self, fd):
        """An inherited supervise has exited: one of ours takes its place."""
        service = self.inherited.gone(fd)
        if service is not None and not self.stopping and service.active:
            self.start_dead(service)

    def stop(self):
        """The tree is going down: no more scans, watches or forks."""
        self.stopping = True
        self.unwatch()
        if self.zygote is not None:       # nothing more to fork: it exits at end of file
            self.zygote.close()
            self.zygote = None
