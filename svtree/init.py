"""svscan the process: its loop and signals, and its part as a container's
init (PID 1, or a subreaper): the main command, adopted orphans, and the
stages of a shutdown.

SIGTERM and SIGINT (and SIGPWR as PID 1) shut the tree down: each service's
supervise gets TERM and, at once after it, the service its down signal
(svscan sends it through a pidfd of the child that supervise leads, so
every service ends at the same moment, instead of each waiting for its
supervise to get the CPU); loggers go when their pipe runs dry. The main
command (svscan DIR -- CMD) gets TERM to its process group. What is still
alive GRACE seconds later is KILLed by process group, and said by name; at
LAST_CALL seconds after that, everything left (loggers, finish scripts,
supervise processes, orphans) is KILLed. Orphans reparented to svscan get
TERM once the tree's own processes are gone. svscan exits with the main
command's code, a failed critical service's, 111 if it had to KILL, or 0.

SIGHUP and SIGALRM rescan (SIGHUP goes to the main command when there is
one); SIGUSR1, SIGUSR2, SIGWINCH and SIGQUIT go to the main command.
"""

import _signal
import os
import resource
import select
import signal

from . import forking, proctitle, procfs, scan, status, unix, wstatus
from .unix import kill
from .errors import TEMPORARY, tell
from .policy import read_text, signal_number

PROG = "svscan"
GRACE = 7.0            # seconds from TERM to KILL at shutdown
LAST_CALL = 0.5        # seconds after that for loggers to drain before KILL
MAX_POLL = 2**31 - 1   # milliseconds: poll()'s longest timeout
PR_SET_CHILD_SUBREAPER = 36

# plain ints: signals svscan acts on itself, and those it passes to the main command
SIGCHLD, SIGHUP, SIGALRM, SIGTERM, SIGCONT, SIGKILL = (
    _signal.SIGCHLD, _signal.SIGHUP, _signal.SIGALRM, _signal.SIGTERM, _signal.SIGCONT,
    _signal.SIGKILL)
STOP_SIGNALS = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGPWR)
FORWARDED = (_signal.SIGUSR1, _signal.SIGUSR2, _signal.SIGWINCH, _signal.SIGQUIT)


def warn(what, e=None):
    tell(PROG, "warning", what, e)


class Init:
    """The end of the tree: the main command, orphans, the shutdown stages."""

    def __init__(self, scanner, grace=GRACE):
        self.scanner = scanner
        self.clock = scanner.clock
        self.grace = grace
        self.command_pid = 0       # svscan DIR -- CMD: the main command
        self.exit_code = None      # set by the main command or a critical service
        self.kill_at = None        # the next KILL stage of the shutdown
        self.killed = False        # the grace period ran out
        self.orphans_told = False  # adopted orphans were sent TERM
        self.pending = []          # at a shutdown: services not yet told, dependencies last

    def reap(self):
        sc = self.scanner
        for pid, status_ in sc.reap():       # what is not a supervise of ours
            if pid == self.command_pid:
                self.command_ended(status_)
        if not sc.stopping:
            sc.deps.update()                 # a dependency's supervise may be gone
        else:
            self.advance()                   # its dependents gone, a service may go
        if sc.critical is not None and not sc.stopping:
            name, code = sc.critical
            warn(f"critical service {name} failed (exit code {code}): shutting down")
            if self.exit_code is None:
                self.exit_code = code
            self.shut_down()

    def command_ended(self, status_):
        """The main command is gone: its code becomes ours, the tree goes down."""
        self.command_pid = 0
        if self.exit_code is None:           # a critical service that failed first wins
            self.exit_code = wstatus.exit_code(status_)
        self.shut_down()

    def deadline(self):
        dues = [d for d in (self.scanner.deadline(), self.kill_at) if d is not None]
        return min(dues) if dues else None

    def on_timeout(self):
        self.scanner.on_timeout()
        if self.kill_at is not None and self.clock() >= self.kill_at:
            self.kill_all()

    def shut_down(self):
        """Bring every service down, dependents first (advance); loggers go
        when their pipe runs dry."""
        sc = self.scanner
        if sc.stopping:
            return
        self.kill_at = self.clock() + self.grace
        self.pending = list(sc.services.values())
        sc.stop()
        if self.command_pid:
            kill(-self.command_pid, SIGTERM)
            kill(-self.command_pid, SIGCONT)
        self.advance()

    def advance(self):
        """Bring down each service still pending that no service of the tree
        still running depends on (depends.py): all of them at once in a tree
        without depends files, level by level in one with them."""
        if not self.pending:
            return
        sc = self.scanner
        alive = {s.name for s in sc.services.values() if scan.running(s, inherited=True)}
        going = [s for s in self.pending
                 if not any(d in alive for d in sc.deps.dependents(s.name))]
        if not going:
            return
        self.pending = [s for s in self.pending if s not in going]
        # read first, while the supervise processes still sleep
        hurry = [{proc: running_service(proc, service.name) for proc in service.runs()}
                 for service in going]
        for service, pid_signal in zip(going, hurry):
            sc.retire(service, pid_signal)

    def kill_all(self):
        """The grace period is over: KILL each service's process group.

        Their supervise processes then see them die and exit; loggers read
        to the end of their pipe. Whatever is still alive LAST_CALL seconds
        later (loggers, finish scripts, supervise, adopted orphans) gets KILL.
        """
        if self.killed:
            self.last_call()
            return
        self.killed = True
        self.kill_at = self.clock() + LAST_CALL
        for service in self.pending:   # still waiting for a dependent: no more waiting
            self.scanner.retire(service)
        self.pending = []
        killed = []                    # what ignored TERM: said, not just done
        if self.command_pid:
            kill(-self.command_pid, SIGKILL)
            killed.append(f"the main command (pid {self.command_pid})")
        for service in list(self.scanner.services.values()):
            for proc in (*service.runs(), *service.leaving):
                pid = status_pid(proc)
                if pid and kill_child(proc.pid, pid):
                    killed.append(f"{proc.path} (pid {pid})")
        killed += [f"{path} (through its supervise)" for path in self.scanner.inherited.kill()]
        if killed:
            warn(f"still running {self.grace:g}s after TERM, killed: {', '.join(killed)}")

    def last_call(self):
        sc = self.scanner
        for service in list(sc.services.values()):
            for proc in service.procs():
                for pid in procfs.children(proc.pid) or ():
                    kill_child(proc.pid, pid)       # its ./run, ./finish, ./check
        sc.inherited.kill_all()
        for pid in [*sc.by_pid, self.command_pid, *procfs.adopted_children()]:
            if pid:
                kill(pid, SIGKILL)
        if os.getpid() == 1:
            kill(-1, SIGKILL)      # as init: everything but ourselves
        self.kill_at = None

    def running(self):
        """Is anything of the tree left? Once the supervise processes and the
        main command are gone, orphans we adopted get TERM, then KILL."""
        sc = self.scanner
        if sc.by_pid or self.command_pid or (sc.stopping and sc.inherited.told):
            return True
        if not sc.stopping:
            return False
        orphans = procfs.adopted_children()
        if orphans and self.killed and self.kill_at is None:
            self.kill_at = self.clock() + LAST_CALL   # reparented since: KILL them too
        if orphans and not self.orphans_told:
            self.orphans_told = True
            for pid in orphans:
                kill(pid, SIGTERM)
                kill(pid, SIGCONT)
            if self.kill_at is None:
                self.kill_at = self.clock() + LAST_CALL
        return bool(orphans)

    def on_signals(self, data):
        for signum in data:
            if signum == SIGCHLD:
                self.reap()
            elif signum == SIGHUP and self.command_pid:
                kill(self.command_pid, signum)
            elif signum in (SIGHUP, SIGALRM):
                if not self.scanner.stopping:
                    self.scanner.scan()
            elif signum in STOP_SIGNALS:
                self.shut_down()
            elif signum in FORWARDED and self.command_pid:
                kill(self.command_pid, signum)


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
        return TEMPORARY
    wakeup_r = unix.wakeup_pipe((SIGCHLD, SIGHUP, SIGALRM, *STOP_SIGNALS, *FORWARDED))
    proctitle.name_process(f"svscan {directory}", "svscan")
    adopts = become_subreaper()
    roomy_fd_limit()
    forking.warm_up()
    scanner = scan.Scanner(directory)
    if adopts:     # a supervise the zygote forks must become our child
        scanner.zygote = forking.start_zygote()
    scanner.watch()
    init = Init(scanner, grace)
    poller = scanner.inherited.poller = select.poll()
    poller.register(wakeup_r, select.POLLIN)
    if scanner.inotify is not None:
        poller.register(scanner.inotify.fileno(), select.POLLIN)
    scanner.scan()
    deps_fd = scanner.deps.fileno()
    if deps_fd >= 0:
        poller.register(deps_fd, select.POLLIN)
    if command:
        init.command_pid = start_command(command, origin)
    while not (scanner.stopping and not init.running()):
        due = init.deadline()
        timeout = None if due is None else min(max(0, (due - scanner.clock()) * 1000), MAX_POLL)
        ready = poller.poll(timeout)
        for fd, _ in ready:
            if fd == wakeup_r:
                init.on_signals(unix.drain(wakeup_r))
            elif scanner.inotify is not None and fd == scanner.inotify.fileno():
                scanner.on_inotify()
            elif fd == deps_fd:
                scanner.deps.on_inotify()
            else:                  # an inherited supervise's ok fifo (or one just closed)
                scanner.inherited_gone(fd)
        if not ready:
            init.on_timeout()
        if init.pending:
            init.advance()             # an inherited supervise's exit is seen here too
    scanner.deps.close()
    if init.exit_code is not None:
        return init.exit_code
    return TEMPORARY if init.killed else 0


def roomy_fd_limit():
    """Two pipe ends per logged service: 1000 of them need more than the
    usual 1024 descriptors. svscan raises its own soft limit; every supervise
    it forks puts the original back, so services see what they always saw."""
    soft, hard = forking.NOFILE
    want = 4 * scan.MAX_SERVICES + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
        except (ValueError, OSError):
            pass


def become_subreaper():
    """Adopt orphaned descendants (PR_SET_CHILD_SUBREAPER) so they are
    reaped. True if they come to us (as PID 1, they always do)."""
    if os.getpid() == 1:
        return True
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError) as e:
        warn("unable to become a child subreaper; orphans will not be reaped", e)
        return False
    return True


def start_command(argv, directory):
    """Fork and exec the main command in its own process group, in the
    directory svscan was started from, with the terminal (if any) handed to it.
    Exit 127 if it cannot be found, 126 if it cannot be run (tini's codes)."""
    pid = forking.fork_quietly()
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


def kill_child(ppid, pid):
    """KILL the process group of pid, a session-leading child of our
    supervise ppid, and pid itself; nothing if the kernel says it is not.
    True if it was signalled."""
    pidfd = procfs.leader_pidfd(pid, parent=ppid) if ppid else None
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


def status_pid(proc):
    """The pid proc's status file says ./run has (0: none, or not running).
    The file may be anyone's: the pid only picks among the children of that
    supervise, which procfs.leader_pidfd checks with the kernel before any signal."""
    if not proc.pid:
        return 0
    try:
        s = status.read(proc.path)
    except (OSError, status.BadStatus):
        return 0
    return s.pid if s.state == status.RUN else 0


def running_service(proc, service_dir=None):
    """(pidfd, down signal) of the ./run that proc, a supervise we started,
    runs: the child of that supervise leading its own session whose pid the
    status file names (a pidfd, so that no other process can be signalled in
    its place later). None if there is none, or if its down signal is unclear.
    service_dir: where its down-signal file is (an instance's is its service's).
    """
    pid = status_pid(proc)
    signum = down_signal(service_dir or proc.path) if pid else None
    if not signum:
        return None
    pidfd = procfs.leader_pidfd(pid, parent=proc.pid)
    return None if pidfd is None else (pidfd, signum)


def down_signal(path):
    """The signal path's supervise sends to bring it down: the one its
    down-signal file names, TERM without one; None if that file cannot be
    read (its supervise will say why and use TERM)."""
    name = os.path.join(path, "down-signal")
    if not os.access(name, os.F_OK):
        return signal.SIGTERM
    try:
        return signal_number(read_text(name))
    except (OSError, ValueError, AttributeError):
        return None
