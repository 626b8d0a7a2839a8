"""svscan: one supervise per service directory, and the log pipes between.

A service is a subdirectory of the scan directory (or a symlink to one) whose
name does not start with a dot and which holds a `run` file (a name ending
in `@HOST` counts only on the host called HOST); it is known by
(st_dev, st_ino), so renaming it keeps its supervise. A service with a `log`
subdirectory gets a second supervise for `log`, joined to the first by a pipe
that svscan holds open for as long as the service exists, so neither side's
restart loses a line.

svscan notices changes through inotify on the scan directory (and on new
service directories that have no `run` yet) and rescans in full every 60 s,
on SIGHUP and on SIGALRM, for what inotify cannot see (a symlink whose target
appears later). A supervise is forked from svscan without exec: the child
reuses the interpreter already in memory, which is what keeps a service cheap.

A removed service is brought down (runit's choice, not daemontools'): its
supervise gets TERM (svc -dx), then the logger's supervise gets HUP, so the
logger drains the pipe to its end before it goes.

SIGTERM and SIGINT (and SIGPWR as PID 1) shut the whole tree down the same
way; what is still alive after the grace period gets SIGKILL.
"""

import _signal
import gc
import os
import resource
import select
import signal
import stat
import sys
import time

from . import config, logdir, logger, logscript, machine, status, supervise, trust, unix, zygote
from .errors import NotRunning, tell

PROG = "svscan"
# what svscan catches that a forked supervise must not (plain ints: see supervise.py)
CHILD_DEFAULTS = tuple(int(s) for s in (
    signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGCHLD, signal.SIGPWR,
    signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT, signal.SIGWINCH))
RESCAN = 60.0          # seconds between two fallback scans
RESTART = 1.0          # first delay before a dead supervise is restarted
RESTART_MAX = 60.0
GRACE = 7.0            # seconds from TERM to KILL at shutdown
LAST_CALL = 0.5        # seconds after that for loggers to drain before KILL
MAX_SERVICES = 1000


def warn(what, e=None):
    tell(PROG, "warning", what, e)


class Proc:
    """One supervise process svscan started: the main one or the logger's."""

    __slots__ = ("path", "pid", "started", "restart_at", "delay", "control", "ok")

    def __init__(self, path):
        self.path = path
        self.pid = 0
        self.started = 0.0
        self.restart_at = None
        self.delay = RESTART
        self.control = -1     # the control fifo of a supervise we found running
        self.ok = -1          # and its ok fifo: EPIPE there means it is gone


class Service:
    """A service directory and what svscan holds for it."""

    __slots__ = ("name", "main", "log", "pipe", "active", "joined")

    def __init__(self, name, has_log):
        self.name = name
        self.main = Proc(name)
        self.log = Proc(os.path.join(name, "log")) if has_log else None
        self.pipe = os.pipe() if has_log else None
        self.active = True
        self.joined = False   # looked for the pipe of an earlier svscan's supervise

    def procs(self):
        return (self.main, self.log) if self.log else (self.main,)

    def rename(self, name):
        """The directory was renamed: its supervise processes keep running."""
        self.name = self.main.path = name
        if self.log:
            self.log.path = os.path.join(name, "log")


class Scanner:
    """The scan directory, its services and their supervise processes."""

    def __init__(self, directory, *, clock=time.monotonic, grace=GRACE):
        self.directory = directory
        self.clock = clock
        self.grace = grace
        self.services = {}         # (dev, ino) -> Service
        self.by_pid = {}           # supervise pid -> (Service, Proc)
        self.stopping = False      # shutting the tree down
        self.kill_at = None        # the next KILL stage of the shutdown
        self.killed = False        # the grace period ran out
        self.inotify = None
        self.scan_wd = None        # the inotify watch on the scan directory
        self.watches = {}          # watch descriptor -> name of a dir awaiting run
        self.next_scan = 0.0
        self.command_pid = 0       # svscan DIR -- CMD: the main command
        self.exit_code = None      # set by the main command or a critical service
        self.orphans_told = False  # adopted orphans were sent TERM at shutdown
        self.inherited = []        # supervise processes of an earlier svscan, told to go
        self.poller = None         # the main loop's: an inherited supervise's exit wakes it
        self.by_ok = {}            # ok fd of an inherited supervise -> (Service, Proc)
        self.zygote = None         # what forks each supervise (zygote.py), if any

    # --- scanning -----------------------------------------------------------

    def scan(self):
        """Start what is new, restart what died, stop what is gone."""
        self.next_scan = self.clock() + RESCAN
        seen = set()
        try:
            names = sorted(os.listdir("."))
        except OSError as e:
            warn(f"unable to read {self.directory}", e)
            return
        for name in names:
            if name.startswith(".") or not meant_for_this_host(name):
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
                    service = Service(name, has_log(name))
                except OSError as e:           # out of fds: the next scan tries again
                    warn(f"unable to create pipe for {name}", e)
                    continue
                self.services[key] = service
            if not service.active:
                continue          # still draining its logger; a fresh one comes next scan
            if service.name != name:
                service.rename(name)
            seen.add(key)
            self.start_dead(service)
        for key, service in list(self.services.items()):
            if key not in seen and service.active:
                self.retire(service)

    def start_dead(self, service):
        if service.pipe and not service.joined:
            service.joined = True
            # only a supervise of an earlier svscan has a pipe to give (and
            # only then is /proc/locks worth reading, twice per service)
            if any(is_supervised(proc.path) for proc in service.procs()):
                self.join_pipe(service)
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
        from inotify_simple import flags      # already imported by watch()
        try:
            wd = self.inotify.add_watch(name, flags.CREATE | flags.MOVED_TO | flags.ATTRIB
                                        | flags.ONESHOT)
        except OSError:
            return
        self.watches[wd] = name

    def join_pipe(self, service):
        """A service whose supervise (or its logger's) an earlier svscan
        started, and which still runs: take the pipe between the two from
        it, so that the supervise we start in place of either (when the
        other exits later) is joined to the same pipe, with what the kernel
        holds in it, rather than to a new one nobody else writes or reads."""
        found = [p for p in (inherited_pipe(service.main.path, 1),
                             inherited_pipe(service.log.path, 0)) if p]
        own = {identity(fd) for fd in (1, 2)}      # ours: no service's log pipe
        good = [p for p in found if p[2] not in own]
        if len(good) == 2 and good[0][2] != good[1][2]:
            good = []               # both alive, not joined to each other: leave them be
        for r, w, _ in found:
            if not good or (r, w) != good[0][:2]:
                os.close(r)
                os.close(w)
        if good:
            for end in service.pipe:
                os.close(end)
            service.pipe = good[0][:2]

    def inherit(self, service, proc):
        """Keep a way to reach a supervise started by an earlier svscan (one
        that was killed, say): its control and ok fifos, held open, work even
        after the directory is removed. Only in a supervise/ that is ours
        (trust.py): a fifo someone else planted is nobody's supervise."""
        if proc.control < 0:
            sdir = open_supervise(proc.path)
            if sdir is None:
                return
            try:
                proc.control = unix.open_fifo_writer("control", sdir)
                proc.ok = unix.open_fifo_writer("ok", sdir)
            except (OSError, NotRunning):
                self.forget_inherited(proc)
                return
            finally:
                os.close(sdir)
            # POLLERR on our end of its ok fifo: its last reader, that supervise, is gone
            self.by_ok[proc.ok] = (service, proc)
            if self.poller is not None:
                self.poller.register(proc.ok, 0)

    def inherited_gone(self, fd):
        """An inherited supervise has exited: one of ours takes its place."""
        service, proc = self.by_ok.get(fd, (None, None))
        if proc is None:
            return
        self.forget_inherited(proc)
        if not self.stopping and service.active:
            self.start_dead(service)

    def forget_inherited(self, proc):
        if proc.ok in self.by_ok:
            del self.by_ok[proc.ok]
            if self.poller is not None:
                self.poller.unregister(proc.ok)
        for fd in (proc.control, proc.ok):
            if fd >= 0:
                os.close(fd)
        proc.control = proc.ok = -1
        if proc in self.inherited:
            self.inherited.remove(proc)

    def tell_inherited(self, service):
        """Inherited supervise processes: the main one gets d and x, the
        logger's x, so it exits once its logger has drained the pipe."""
        for proc, letters in ((service.main, b"dx"), (service.log, b"x")):
            if proc is not None and proc.control >= 0:
                try:
                    os.write(proc.control, letters)
                    self.inherited.append(proc)
                except OSError:
                    self.forget_inherited(proc)

    def probe_inherited(self):
        """Forget inherited supervise processes that are gone: a byte written
        to their ok fifo (which supervise never reads) meets EPIPE."""
        for proc in list(self.inherited):
            try:
                os.write(proc.ok, b"\0")
            except BlockingIOError:
                pass               # full after hours of probing: still there
            except OSError:
                self.forget_inherited(proc)

    def retire(self, service, hurry=None):
        """Bring the service down, then its logger (its directory is gone, or
        the tree is shutting down).

        hurry: (pidfd, signal) of the running ./run, which then gets its down
        signal (and CONT) from us right after its supervise got TERM. The
        supervise has its TERM pending before the service can die, so it
        still sees "down, then exited", as if it had sent the signal itself;
        meanwhile every service of the tree ends at once, instead of each
        waiting for its supervise to get the CPU.
        """
        service.active = False
        self.tell_inherited(service)
        if service.main.pid:
            kill(service.main.pid, signal.SIGTERM)
            if hurry:
                pidfd, signum = hurry
                for sig in (signum, signal.SIGCONT):
                    try:
                        signal.pidfd_send_signal(pidfd, sig)
                    except OSError:
                        break         # it has ended already
                os.close(pidfd)
        else:
            self.main_gone(service)

    def main_gone(self, service):
        """The main supervise is down for good: let the logger drain and go."""
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
        for key, known in list(self.services.items()):
            if known is service:
                del self.services[key]
                # A directory made meanwhile may have been given the same inode
                # number (rm -rf, then mkdir): the scan that saw it skipped it as
                # the one still draining. Look again now, not in a minute.
                self.next_scan = min(self.next_scan, self.clock())

    # --- processes ----------------------------------------------------------

    def fork_supervise(self, service, proc):
        if proc is service.log and not has_log(service.name):
            proc.restart_at = self.clock() + RESCAN   # log/ became a link of someone else's
            return
        if is_supervised(proc.path):
            self.inherit(service, proc)     # another supervise holds it: leave it be
            return
        if proc.control >= 0:      # the inherited one is gone; ours takes over
            self.forget_inherited(proc)
        fd, target = -1, -1
        if service.pipe:           # the service writes the pipe, its logger reads it
            fd, target = (service.pipe[1], 1) if proc is service.main else (service.pipe[0], 0)
        try:
            pid = self.fork_child(proc.path, fd, target)
        except OSError as e:
            warn(f"unable to start supervise {proc.path}", e)
            proc.restart_at = self.clock() + proc.delay
            return
        proc.pid = pid
        proc.started = self.clock()
        self.by_pid[pid] = (service, proc)

    def fork_child(self, path, fd, target):
        """The pid of a new supervise of path, with fd on its descriptor
        target: forked by the zygote (see zygote.py), or by svscan itself
        if there is none. Raises OSError."""
        if self.zygote is not None:
            try:
                return self.zygote.fork(path, fd, target)
            except zygote.Gone as e:
                warn(f"unable to use the zygote: {e}; svscan forks each supervise itself")
                self.drop_zygote()
        # Frozen objects are skipped by the collector: the child's collections
        # then leave the pages it shares with svscan untouched.
        gc.freeze()
        try:
            pid = fork_quietly()
        except OSError:
            gc.unfreeze()
            raise
        if pid == 0:
            become_supervise(path, fd, target)
        gc.unfreeze()              # svscan's own garbage stays collectable
        return pid

    def drop_zygote(self):
        if self.zygote is not None:
            kill(self.zygote.pid, signal.SIGKILL)     # reaped as any child is
            self.zygote.close()
            self.zygote = None

    def reap(self):
        for pid, wstatus in unix.reap():
            if pid == self.command_pid:
                self.command_ended(wstatus)
                continue
            entry = self.by_pid.pop(pid, None)
            if entry is None:
                if self.zygote is not None and pid == self.zygote.pid:
                    warn("the zygote exited; svscan forks each supervise itself")
                    self.drop_zygote()
                continue           # an orphan we inherited: reaping was the point
            service, proc = entry
            proc.pid = 0
            self.supervise_ended(service, proc, wstatus)

    def command_ended(self, wstatus):
        """The main command is gone: its code becomes ours, the tree goes down."""
        self.command_pid = 0
        if self.exit_code is None:           # a critical service that failed first wins
            self.exit_code = machine.exit_code(wstatus)
        self.shut_down()

    def supervise_ended(self, service, proc, wstatus=0):
        now = self.clock()
        if (proc is service.main and wstatus and wstatus & 0x7F == 0 and not self.stopping
                and service.active and config.is_ours(os.path.join(service.name, "critical"))):
            code = wstatus >> 8
            warn(f"critical service {service.name} failed (exit code {code}): "
                 "shutting down")
            if self.exit_code is None:
                self.exit_code = code
            self.shut_down()
        if not service.active or self.stopping:
            if proc is service.main:
                self.main_gone(service)
            else:
                self.forget_if_done(service)
            return
        lived = now - proc.started
        proc.delay = RESTART if lived >= RESTART else min(proc.delay * 2, RESTART_MAX)
        proc.restart_at = now + (RESTART if lived >= RESTART else proc.delay)

    def deadline(self):
        dues = [self.next_scan]
        if self.inherited:         # their exit cannot be waited for: look 10 times a second
            dues.append(self.clock() + 0.1)
        if self.stopping:
            dues = [d for d in (self.kill_at, dues[-1] if self.inherited else None)
                    if d is not None]
        else:
            for service in self.services.values():
                if service.active:
                    dues.extend(p.restart_at for p in service.procs()
                                if p.restart_at is not None and not p.pid)
        return min(dues) if dues else None

    def on_timeout(self):
        now = self.clock()
        if self.inherited:
            self.probe_inherited()
        if self.stopping:
            if self.kill_at is not None and now >= self.kill_at:
                self.kill_all()
            return
        if now >= self.next_scan:
            self.scan()
            return
        for service in list(self.services.values()):
            if service.active:
                self.start_dead(service)

    # --- shutdown -----------------------------------------------------------

    def shut_down(self):
        """Bring every service down; loggers go when their pipe runs dry."""
        if self.stopping:
            return
        self.stopping = True
        self.kill_at = self.clock() + self.grace
        self.unwatch()
        if self.zygote is not None:       # nothing more to fork: it exits at end of file
            self.zygote.close()
            self.zygote = None
        if self.command_pid:
            kill(-self.command_pid, signal.SIGTERM)
            kill(-self.command_pid, signal.SIGCONT)
        services = list(self.services.values())
        # read first, while the supervise processes still sleep
        hurry = [running_service(service.main) for service in services]
        for service, pid_signal in zip(services, hurry):
            self.retire(service, pid_signal)

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

    def kill_all(self):
        """The grace period is over: KILL each service's process group.

        Their supervise processes then see them die and exit; loggers read
        to the end of their pipe. Whatever is still alive LAST_CALL seconds
        later (loggers, finish scripts, supervise, adopted orphans) gets KILL.
        """
        now = self.clock()
        if self.killed:
            for service in list(self.services.values()):
                for proc in service.procs():
                    for pid in unix.children(proc.pid) or ():
                        kill_child(proc.pid, pid)       # its ./run, ./finish, ./check
            for proc in self.inherited:
                tell_kill(proc)
            self.inherited = []        # their supervise exits when its service has gone
            for pid in [*self.by_pid, self.command_pid, *adopted_children()]:
                if pid:
                    kill(pid, signal.SIGKILL)
            if os.getpid() == 1:
                kill(-1, signal.SIGKILL)      # as init: everything but ourselves
            self.kill_at = None
            return
        self.killed = True
        self.kill_at = now + LAST_CALL
        killed = []                    # what ignored TERM: said, not just done
        if self.command_pid:
            kill(-self.command_pid, signal.SIGKILL)
            killed.append(f"the main command (pid {self.command_pid})")
        for service in list(self.services.values()):
            pid = status_pid(service.main)
            if pid and kill_child(service.main.pid, pid):
                killed.append(f"{service.name} (pid {pid})")
        for proc in self.inherited:
            if not proc.path.endswith("/log"):
                tell_kill(proc)
                killed.append(f"{proc.path} (through its supervise)")
        if killed:
            warn(f"still running {self.grace:g}s after TERM, killed: {', '.join(killed)}")

    def running(self):
        """Is anything of the tree left? Once the supervise processes and the
        main command are gone, orphans we adopted get TERM, then KILL."""
        if self.by_pid or self.command_pid or (self.stopping and self.inherited):
            return True
        if not self.stopping:
            return False
        orphans = adopted_children()
        if orphans and self.killed and self.kill_at is None:
            self.kill_at = self.clock() + LAST_CALL   # reparented since: KILL them too
        if orphans and not self.orphans_told:
            self.orphans_told = True
            for pid in orphans:
                kill(pid, signal.SIGTERM)
                kill(pid, signal.SIGCONT)
            if self.kill_at is None:
                self.kill_at = self.clock() + LAST_CALL
        return bool(orphans)

    def forward(self, signum):
        """Pass a signal svscan does not use on to the main command."""
        if self.command_pid:
            kill(self.command_pid, signum)


def become_supervise(path, fd=-1, target=-1):
    """In a forked child (of svscan, or of the zygote's middle process):
    drop svscan's fds and signals, then supervise path. Never returns."""
    code = 111
    try:
        _signal.set_wakeup_fd(-1)
        for signum in CHILD_DEFAULTS:
            _signal.signal(signum, _signal.SIG_DFL)
        if fd >= 0:
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        resource.setrlimit(resource.RLIMIT_NOFILE, NOFILE)
        code = supervise.run(path, under_svscan=True)
    except BaseException as e:     # never return into svscan's loop
        try:
            warn(f"supervise {path} failed", e)
        except BaseException:
            pass
    finally:
        os._exit(code)


def start_zygote():
    """Fork the zygote (zygote.py); None if it cannot be made: svscan then
    forks each supervise itself."""
    try:
        ours, theirs = zygote.pair()
    except OSError:
        return None
    gc.freeze()                   # as for a supervise: its collections skip all of ours
    try:
        pid = fork_quietly()
    except OSError:
        gc.unfreeze()
        ours.close()
        theirs.close()
        return None
    if pid == 0:
        ours.close()
        supervise.name_process(f"svscan zygote {os.getcwd()}", "svscan-zygote")
        zygote.serve(theirs, become_supervise)
    gc.unfreeze()
    theirs.close()
    return zygote.Zygote(pid, ours)


def adopted_children():
    """Our children that we did not start: orphans adopted as init or subreaper."""
    me = os.getpid()
    try:
        if os.readlink("/proc/self") != str(me):
            return []       # a /proc of another pid namespace: its numbers are not ours
    except OSError:
        return []
    pids = unix.children(me)
    if pids is None:        # a kernel without CONFIG_PROC_CHILDREN: look at everyone
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return [pid for pid in pids if parent_if_alive(pid) == me]


def parent_if_alive(pid):
    """pid's parent, or 0 if pid is gone or a zombie."""
    fields = unix.proc_stat(pid)
    return 0 if not fields or fields[0] == b"Z" else int(fields[1])


def kill(pid, signum):
    try:
        os.kill(pid, signum)
    except OSError:       # gone, or someone else's now (a ./run that ran sudo): not ours
        pass


def child_pidfd(ppid, pid):
    """A pidfd of pid if it is a live child of ppid leading its own session
    (checked after the pidfd was opened: the process checked is the one it
    holds, whatever happens to the number later); None otherwise."""
    if not (ppid and pid > 1):
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    fields = unix.proc_stat(pid)
    if not (fields and fields[0] != b"Z" and int(fields[1]) == ppid and int(fields[3]) == pid):
        os.close(pidfd)
        return None
    return pidfd


def kill_child(ppid, pid):
    """KILL the process group of pid, a session-leading child of our
    supervise ppid, and pid itself; nothing if the kernel says it is not.
    True if it was signalled."""
    pidfd = child_pidfd(ppid, pid)
    if pidfd is None:
        return False
    try:
        try:
            os.kill(-pid, signal.SIGKILL)    # its group: the leader holds the number
            killed = True
        except OSError:
            killed = False
        # and the leader itself, if it left its group; ESRCH here may just
        # mean its supervise reaped it already, killed by the line above
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return True
    except OSError:
        return killed
    finally:
        os.close(pidfd)


def tell_kill(proc):
    """A supervise of an earlier svscan is not our child: we cannot check
    what it runs, so it is asked (k on its control fifo) to KILL its own."""
    try:
        os.write(proc.control, b"k")
    except OSError:
        pass


def status_pid(proc):
    """The pid proc's status file says ./run has (0: none, or not running).
    The file may be anyone's: the pid only picks among the children of that
    supervise, which child_pidfd checks with the kernel before any signal."""
    if not proc.pid:
        return 0
    try:
        s = status.read(proc.path)
    except (OSError, status.BadStatus):
        return 0
    return s.pid if s.state == status.RUN else 0


def running_service(proc):
    """(pidfd, down signal) of the ./run that proc, a supervise we started,
    runs: the child of that supervise leading its own session whose pid the
    status file names (a pidfd, so that no other process can be signalled in
    its place later). None if there is none, or if its down signal is unclear.
    """
    pid = status_pid(proc)
    signum = down_signal(proc.path) if pid else None
    if not signum:
        return None
    pidfd = child_pidfd(proc.pid, pid)
    return None if pidfd is None else (pidfd, signum)


def down_signal(path):
    """The signal path's supervise sends to bring it down: the one its
    down-signal file names, TERM without one; None if that file cannot be
    read (its supervise will say why and use TERM)."""
    name = os.path.join(path, "down-signal")
    if not os.access(name, os.F_OK):
        return signal.SIGTERM
    try:
        return config.signal_number(config.read_text(name))
    except (OSError, ValueError, AttributeError):
        return None


def meant_for_this_host(name, host=None):
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


def has_log(name):
    """Does the service have a logger? A `log` symlink counts only if
    nobody else can write the service directory: root must not be sent to
    run whatever directory another user points at."""
    log = os.path.join(name, "log")
    try:
        st = os.stat(log, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode) and not trust.safe_dir(os.stat(name)):
            warn(f"unable to use {log}: a symlink in a directory others can write; no logger")
            return False
    except OSError:
        return False
    return os.path.isdir(log)


def open_supervise(path):
    """An fd of path/supervise/ if it is one we may believe (trust.py), or None."""
    # access() first: a new service (the usual case here, just before its
    # supervise is forked) raises no exception. What svscan allocates
    # between two forks dirties pages the children it forked still share.
    if not os.access(os.path.join(path, trust.SUPERVISE), os.F_OK, follow_symlinks=False):
        return None
    try:
        here = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        sdir = trust.open_supervise(here)
    except (OSError, trust.Untrusted):
        return None
    finally:
        os.close(here)
    try:
        trust.check(sdir)
    except (OSError, trust.Untrusted):
        os.close(sdir)
        return None
    return sdir


def identity(fd):
    """(device, inode) of what fd is, or None."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def inherited_pipe(path, fd):
    """(read end, write end, (device, inode)) of the pipe on descriptor fd
    of the supervise that holds path/supervise/lock, if that is a process
    of ours, working in path, with that very lock open (the kernel's word
    on each: /proc/locks, its uid, its cwd, its fds); None otherwise."""
    sdir = open_supervise(path)
    if sdir is None:
        return None
    try:
        lock = os.stat("lock", dir_fd=sdir, follow_symlinks=False)
        here = os.stat(path)
    except OSError:
        return None
    finally:
        os.close(sdir)
    for pid in unix.lock_holders(lock.st_ino):
        pipe = pipe_of(pid, fd, (here.st_dev, here.st_ino), (lock.st_dev, lock.st_ino))
        if pipe:
            return pipe
    return None


def pipe_of(pid, fd, here, lock):
    """(read end, write end, (device, inode)) of the pipe on descriptor fd
    of process pid, if pid is ours in every uid, works in directory here,
    holds the file lock open (both (device, inode)), and has not that pipe
    as its stderr too (a supervise started in someone's pipeline, or whose
    stdout is a terminal or svscan's own output, has no log pipe to give);
    None otherwise.

    Its uids are checked first (nothing of another user's is looked at:
    a cwd on a hung file system must not hang us). All checks come after a
    pidfd is open, and the process must still be alive after the pipe was
    opened: the ends are of the process the pidfd holds."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    ends = []
    try:
        proc = f"/proc/{pid}"
        if unix.proc_uids(pid) != [os.geteuid()] * 4:
            return None
        end = f"{proc}/fd/{fd}"
        st = os.stat(end)
        pipe = st.st_dev, st.st_ino
        if (not stat.S_ISFIFO(st.st_mode) or not same_file(f"{proc}/cwd", here)
                or not holds(pid, lock) or same_file(f"{proc}/fd/2", pipe)):
            return None
        for flags in (os.O_RDONLY, os.O_WRONLY):     # reader first: no ENXIO
            ends.append(os.open(end, flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC))
        if any(identity(e) != pipe for e in ends):
            return None
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        if p.poll(0):                 # it exited meanwhile: the number may be another's
            return None
        for e in ends:
            os.set_blocking(e, True)
        r, w = ends
        ends = []
        return r, w, pipe
    except OSError:
        return None
    finally:
        for e in ends:
            os.close(e)
        os.close(pidfd)


def holds(pid, lock):
    """Has pid the file (device, inode) lock open?"""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    return any(same_file(f"/proc/{pid}/fd/{fd}", lock) for fd in fds)


def same_file(path, other):
    """Is path (followed) the file other, a (device, inode), names?"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == other


def is_supervised(path):
    """True if some supervise already reads path/supervise/ok, in a
    supervise/ that is ours."""
    sdir = open_supervise(path)
    if sdir is None:
        return False
    try:
        os.close(unix.open_fifo_writer("ok", sdir))
        return True
    except (OSError, NotRunning):
        return False
    finally:
        os.close(sdir)


# --- the process --------------------------------------------------------------

# signals svscan acts on itself; the rest of FORWARDED goes to the main command
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGPWR)
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGQUIT)


def _note(signum, frame):
    """Handlers do nothing: the wakeup pipe carries the signal to the loop."""


def install_signals():
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    for signum in (signal.SIGCHLD, signal.SIGHUP, signal.SIGALRM, *STOP_SIGNALS, *FORWARDED):
        signal.signal(signum, _note)
    return r


def import_inotify():
    """inotify_simple, imported without ctypes.util.

    ctypes.util imports subprocess and with it threading, whose at-fork hook
    then runs in every forked supervise and costs each about 250 KiB of
    private memory. inotify_simple only needs find_library("c") from it.
    """
    if "inotify_simple" in sys.modules or "ctypes.util" in sys.modules:
        import inotify_simple
        return inotify_simple
    import types
    stub = types.ModuleType("ctypes.util")
    stub.find_library = lambda name: "libc.so.6" if name == "c" else None
    sys.modules["ctypes.util"] = stub
    try:
        import inotify_simple
    finally:
        del sys.modules["ctypes.util"]
    return inotify_simple


def watch(directory):
    """(inotify, its watch on the scan directory); (None, None), with a
    warning, if unavailable."""
    try:
        inotify_simple = import_inotify()
        INotify, flags = inotify_simple.INotify, inotify_simple.flags
        inotify = INotify()
        wd = inotify.add_watch(".", flags.CREATE | flags.MOVED_TO | flags.DELETE
                               | flags.MOVED_FROM | flags.ATTRIB)
        return inotify, wd
    except (OSError, ImportError) as e:
        warn(f"unable to watch {directory}, scanning every {RESCAN:.0f} seconds", e)
        return None, None


NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)   # as svscan was started


def roomy_fd_limit():
    """Two pipe ends per logged service: 1000 of them need more than the
    usual 1024 descriptors. svscan raises its own soft limit; every supervise
    it forks puts the original back, so services see what they always saw."""
    soft, hard = NOFILE
    want = 4 * MAX_SERVICES + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
        except (ValueError, OSError):
            pass


WARM_UP_ROUNDS = 8


def warm_up(rounds=WARM_UP_ROUNDS):
    """Rehearse a supervise's work here, on a scratch service, before the
    first fork.

    CPython 3.11 writes into a code object as it runs it (warm-up counters,
    then the specialised instructions and their caches), and fills the type
    method cache in libpython's data as methods are looked up. Done once
    here, in pages every forked supervise shares, those writes are not made
    again in each child: bench/run.py --only memory, 1587 -> 1355 KiB mean
    PSS per supervise (8 rounds; 1 round: 1437). The first round starts
    ./run (a shell that exits) at once, the others only at their `u`.
    Nothing is said, whatever happens (no writable TMPDIR, a noexec /tmp:
    stderr points at /dev/null meanwhile, and any error ends the rehearsal):
    the tree runs the same, at a little more memory.
    """
    base = os.environ.get("TMPDIR") or "/tmp"
    scratch = os.path.join(base, f".svscan-warm-up.{os.getpid()}.{os.urandom(4).hex()}")
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.mkdir(scratch, 0o700)       # ours alone: nobody else can put anything there
    except OSError:
        os.close(here)
        return
    stderr = quiet()
    try:
        fd = os.open(os.path.join(scratch, "run"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        os.write(fd, b"#!/bin/sh\nexit 0\n")
        os.close(fd)
        for i in range(rounds):
            if i == 1:
                os.close(os.open(os.path.join(scratch, "down"), os.O_WRONLY | os.O_CREAT, 0o600))
            rehearse(scratch)
            os.fchdir(here)
        rehearse_logger(scratch)
    except Exception:                  # a rehearsal: whatever went wrong costs memory only
        pass
    finally:
        try:
            os.fchdir(here)
            remove_tree(scratch)
        except OSError:
            pass
        os.close(here)
        if stderr >= 0:
            os.dup2(stderr, 2)
            os.close(stderr)


def quiet():
    """Point fd 2 at /dev/null; the saved fd 2 (-1 if it could not be)."""
    try:
        saved = os.dup(2)
    except OSError:
        return -1
    try:
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        os.close(saved)
        return -1
    os.dup2(null, 2)
    os.close(null)
    return saved


def rehearse(path):
    """One supervise's life on path, without its signals or its poll:
    setup, the first start and status write, ./run's exit, then the control
    letters d u d x, each followed by what supervise does after it."""
    sdir, lock, ctl_r, ctl_w, gid = supervise.setup(path)
    loop = supervise.Loop(path, sdir, ctl_r)
    ok = -1
    try:
        loop.poller.register(ctl_r, select.POLLIN)
        supervise.open_up(sdir, gid, path)
        supervise.make_ok(sdir, path, gid)
        loop.adopt_leftover()
        loop.feed(machine.TIMEOUT)
        loop.write_status()
        ok = supervise.open_ok(sdir)
        for letter in b" dudx":
            if letter != 32:
                os.write(ctl_w, bytes([letter]))
                loop.on_control()
            loop.write_status()
            if loop.sv.pid:
                _, wstatus = os.waitpid(loop.sv.pid, 0)
                loop.run_ended(wstatus)
                loop.write_status()
        loop.poller.poll(0)
    finally:
        for fd in (ok, sdir, lock, ctl_r, ctl_w):
            if fd >= 0:
                os.close(fd)


def rehearse_logger(path):
    """The built-in logger's work, for the same reason: `multilog t s4096
    n2 ./main` on a few hundred lines, rotating on size and on ALRM."""
    os.chdir(path)
    script = logscript.parse(["t", "s4096", "n2", "./main"])
    dirs = {id(d): logdir.LogDir(d.path, d.size, d.num, d.processor) for d in script.dirs}
    log = logger.Logger(script, dirs)
    try:
        for _ in range(40):
            log.feed(b"a line of a service's output\n" * 8)
            log.budget()
        log.rotate()
        log.flush()
    finally:
        log.close()


def remove_tree(path):
    for top, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(top, name))
        for name in dirs:
            os.rmdir(os.path.join(top, name))
    os.rmdir(path)


def become_subreaper():
    """Adopt orphaned descendants (PR_SET_CHILD_SUBREAPER) so they are
    reaped. True if they come to us (as PID 1, they always do)."""
    if os.getpid() == 1:
        return True
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(36, 1, 0, 0, 0) != 0:      # PR_SET_CHILD_SUBREAPER
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError) as e:
        warn("unable to become a child subreaper; orphans will not be reaped", e)
        return False
    return True


ALL_SIGNALS = tuple(int(s) for s in signal.valid_signals())
MASK = tuple(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, ()))  # as svscan started


def fork_quietly():
    """fork(), with every signal blocked in the child until it has put
    svscan's handlers and wakeup fd aside (supervise.install_signals, or the
    main command's reset, unblocks them). Otherwise a signal that reaches
    the child first (the TERM of a service removed as soon as it was made)
    runs svscan's handler there, which writes its number into svscan's own
    wakeup pipe: svscan would take a child's TERM for its own and shut the
    tree down."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, ALL_SIGNALS)   # the C function: no enums
    try:
        pid = os.fork()
    except OSError:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, MASK)
        raise
    if pid:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, MASK)
    return pid


def start_command(argv, directory):
    """Fork and exec the main command in its own process group, in the
    directory svscan was started from, with the terminal (if any) handed to it.
    Exit 127 if it cannot be found, 126 if it cannot be run (tini's codes)."""
    pid = fork_quietly()
    if pid:
        return pid
    code = 126
    try:
        signal.set_wakeup_fd(-1)
        os.setpgid(0, 0)
        if os.isatty(0):
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(0, os.getpgrp())
            except OSError:
                pass
        for signum in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
            try:
                signal.signal(signum, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.chdir(directory)
        try:
            os.execvp(argv[0], argv)
        except FileNotFoundError as e:
            code = 127
            warn(f"unable to run {argv[0]}", e)
        except OSError as e:
            warn(f"unable to run {argv[0]}", e)
    finally:
        os._exit(code)


def run(directory, *, grace=GRACE, command=None):
    """Supervise every service in directory until told to stop; the exit code.

    With a main command, svscan runs it next to the services and exits with
    its code (128 + signal if it was killed) once the tree is down.
    """
    origin = os.getcwd()
    try:
        os.chdir(directory)
    except OSError as e:
        tell(PROG, "fatal", f"unable to chdir to {directory}", e)
        return 111
    wakeup_r = install_signals()
    supervise.name_process(f"svscan {directory}", "svscan")
    adopts = become_subreaper()
    roomy_fd_limit()
    warm_up()
    scanner = Scanner(directory, grace=grace)
    if adopts:     # a supervise the zygote forks must become our child
        scanner.zygote = start_zygote()
    scanner.inotify, scanner.scan_wd = watch(directory)
    poller = scanner.poller = select.poll()
    poller.register(wakeup_r, select.POLLIN)
    if scanner.inotify is not None:
        poller.register(scanner.inotify.fileno(), select.POLLIN)
    scanner.scan()
    if command:
        scanner.command_pid = start_command(command, origin)
    while not (scanner.stopping and not scanner.running()):
        due = scanner.deadline()
        timeout = None if due is None else min(max(0, (due - scanner.clock()) * 1000),
                                               supervise.MAX_POLL)
        ready = poller.poll(timeout)
        for fd, _ in ready:
            if fd == wakeup_r:
                on_signals(scanner, unix.drain(wakeup_r))
            elif scanner.inotify is not None and fd == scanner.inotify.fileno():
                on_inotify(scanner)
            else:                  # an inherited supervise's ok fifo (or one just closed)
                scanner.inherited_gone(fd)
        if not ready:
            scanner.on_timeout()
    if scanner.exit_code is not None:
        return scanner.exit_code
    return 111 if scanner.killed else 0


def on_signals(scanner, data):
    for signum in data:
        if signum == signal.SIGCHLD:
            scanner.reap()
        elif signum == signal.SIGHUP and scanner.command_pid:
            scanner.forward(signum)
        elif signum in (signal.SIGHUP, signal.SIGALRM):
            if not scanner.stopping:
                scanner.scan()
        elif signum in STOP_SIGNALS:
            scanner.shut_down()
        elif signum in FORWARDED:
            scanner.forward(signum)


def on_inotify(scanner):
    for event in scanner.inotify.read(timeout=0):
        if event.mask & 0x8000:              # IN_IGNORED: a one-shot watch is gone
            scanner.watches.pop(event.wd, None)
    if not scanner.stopping:
        scanner.scan()
