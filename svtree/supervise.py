"""The supervise process: one service, its status file and control fifos.

Setup (fatal errors exit 111): chdir into the service, create supervise/
(0700; a symlink to a missing directory gets that directory made, as runit
allows for read-only service trees), take supervise/lock, make the control
and ok fifos (0600) and write the first status.

The loop is short: poll() on the signal wakeup pipe, the control fifo, the
notification-fd pipe while ./run may still say it is ready, and the pidfd of
a ./run adopted from a supervise that died; its timeout is the machine's
deadline (servicestate.deadline). A SIGCHLD byte means reap; a control byte
is a command; a timeout is TIMEOUT; each becomes an event for the machine
(machine.py), whose effects (start, signal, announce, exit) the loop carries
out. After each round status and state.json are rewritten if anything in
them changed (at a shutdown, once ./run has exited or 50 ms have passed:
one write then says both, see may_write), and then event readers are told.
Nothing here sleeps.

Signals to supervise itself: TERM means `svc -dx` (runsv does the same); HUP
means "stop restarting and exit once the service is down, without signalling
it", which svscan uses to let a logger drain its pipe before it goes.
"""

import _signal      # the C module: signal's enum wrappers cost a forked child memory
import errno
import json         # loaded by statejson's encoder already
import os
import select
import signal
import time

from . import (builtinlog, diagnose, fifodir, machine, policy, procfs, servicedir, spawn,
               statejson, status, supervisedir, unix)
from .errors import TEMPORARY, describe, tell
from .proctitle import name_process

PROG = "supervise"

# Plain ints, computed once in the parent: a supervise forked by svscan should
# touch as few shared objects as it can (every page it writes is its own copy).
SIGCHLD, SIGTERM, SIGHUP, SIGINT, SIGKILL = (int(s) for s in (
    signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL))
MAX_POLL = 2**31 - 1   # milliseconds
BOOT_ID = supervisedir.BOOT_ID


def warn(what, e=None):
    tell(PROG, "warning", what, e)


class StartFailed(Exception):
    """./run, ./check or ./finish could not be started: the error, and
    the step that failed when it was not the exec itself."""

    def __init__(self, error, cause=None):
        super().__init__(error, cause)
        self.error, self.cause = error, cause


class Loop:
    """One supervise: the machine, its fds and what it last wrote."""

    def __init__(self, path, sdir, ctl_r, clock=time.monotonic, deps_r=-1, sockets=()):
        self.path = path
        self.sdir = sdir
        self.ctl_r = ctl_r
        self.clock = clock
        self.normally_up = not os.access("down", os.F_OK)
        want = machine.WANT_UP if self.normally_up else machine.WANT_DOWN
        self.warned = set()          # policy complaints already made
        self.sv = machine.Supervisor(want, clock(), policy.read(path, self.warn_once))
        self.policy_fresh = True     # just read: the first start need not read it again
        self.sv.stamp = unix_now()           # "down 0 seconds" at start, as daemontools
        self.written = None
        self.written_state = None
        self.exit_code = None
        self.poller = select.poll()
        self.notify_r = -1           # read end of the notification-fd pipe
        self.pidfd = -1              # an adopted ./run's exit, seen through a pidfd
        self.events = []             # event lines to tell after the next write
        self.wakeup_r = -1           # the signal wakeup pipe, once run() has it
        self.reaped = ()             # pids reaped but not yet fed: never signal them
        self.run_start = None        # (boot id, start ticks) of the running ./run
        self.write_error = None      # the last warning about writing status, said once
        self.deps_r = deps_r         # svscan's word on the dependencies (DEPS_FD), if any
        self.deps_partial = b""
        self.sockets = sockets       # the names of the listening sockets (spawn.SOCKETS_FD..)

    def warn_once(self, message):
        """A bad policy file is said once, not at every restart."""
        if message not in self.warned:
            self.warned.add(message)
            warn(message)

    # --- what supervise writes -------------------------------------------------

    def status(self):
        """The 20 bytes for the status file. "Once" is written as b"d", as
        runsv writes it: runit's `sv -v once` waits for that byte, while
        daemontools' svstat merely adds ", want down" (see status.py)."""
        sv = self.sv
        want = status.WANT_DOWN if sv.want == machine.WANT_ONCE else sv.want
        return status.pack(status.Status(
            sv.stamp[0], sv.stamp[1], sv.pid, sv.paused, want, sv.term, sv.state))

    def write_status(self):
        if not machine.may_write(self.sv, self.clock()):
            return                           # a shutdown waits for ./run's exit: one write
        data = self.status()
        if data != self.written:
            try:
                unix.replace_file("status", data, dir_fd=self.sdir)
                self.written = data
            except OSError as e:
                self.warn_write("status", e)
        fields = statejson.record(self.sv, self.path, self.normally_up, self.run_start,
                                self.next_start())
        if fields != self.written_state:
            try:
                unix.replace_file("state.json", statejson.pack(fields), dir_fd=self.sdir)
                self.written_state = fields
                self.write_error = None
            except OSError as e:
                self.warn_write("state.json", e)
        self.tell_events()

    def next_start(self):
        """When ./run is due to start again (Unix time, to 0.1 s), if it
        waits for a delay: the backoff an operator wants to see."""
        sv = self.sv
        if sv.state != machine.DOWN or not machine.start_wanted(sv):
            return None
        wait = sv.next_start - self.clock()
        return round(time.time() + wait, 1) if wait > 0 else None

    def warn_write(self, name, e):
        """A file that cannot be written (out of descriptors, a full disk) is
        said once until it can be again, not at every change."""
        message = f"unable to write {self.path}/supervise/{name}: {describe(e)}"
        if message != self.write_error:
            warn(message)
            self.write_error = message

    def tell_events(self):
        """Event readers are told after the status files are written: one who
        reads them on hearing of a change finds the change there."""
        if self.events:
            fifodir.announce(self.sdir, (statejson.pack(f) for f in self.events))
            self.events = []

    # --- the machine and its effects ---------------------------------------------

    def feed(self, event, arg=None):
        """Step the machine and carry out its effects (which may feed it again)."""
        for effect in machine.step(self.sv, event, self.clock(), unix_now(), arg):
            self.carry_out(effect)

    def carry_out(self, effect):
        """Do one effect: a small method per kind (SPAWN..LEAVE, see machine)."""
        self.EFFECTS[effect[0]](self, *effect[1:])

    def spawn_effect(self, what, argv):
        self.start(what, argv)

    def kill(self, signum):
        if self.sv.pid not in self.reaped:          # reaped: its pid may be another's
            signal_pid(self.sv.pid, signum)

    def kill_group(self, signum):
        if self.sv.pid not in self.reaped:
            signal_pid(-self.sv.pid if self.sv.pid else 0, signum)

    def kill_check(self, signum):
        signal_pid(self.sv.check_pid, signum)

    def announce(self, name):
        """Told once the files say it too (tell_events)."""
        self.events.append(statejson.event_fields(self.sv, self.path, name, unix_now()))

    def leave(self, code):
        self.exit_code = code
        if code:
            tell(PROG, "fatal", f"critical service {self.path} failed (exit code {code})")

    EFFECTS = {machine.SPAWN: spawn_effect, machine.KILL: kill, machine.KILLGROUP: kill_group,
               machine.KILLCHECK: kill_check, machine.ANNOUNCE: announce, machine.LEAVE: leave}

    def start(self, what, argv):
        """Start ./run, ./check or ./finish (whether ./finish is there was
        decided when ./run ended: run_ended) and feed the machine the
        outcome."""
        if what == "run" and not self.policy_fresh:
            self.sv.policy = policy.read(self.path, self.warn_once)   # edits count from now on
        try:
            logger = self.builtin_logger() if what == "run" else None
            pid = self.start_logger(logger) if logger else self.spawn(what, argv)
        except StartFailed as e:
            self.start_failed(what, e.error, e.cause)
            return
        if what == "run":
            self.run_start = (BOOT_ID, procfs.start_ticks(pid))
        self.feed(machine.CHECK_STARTED if what == "check" else machine.STARTED, pid)

    def builtin_logger(self):
        """(words, account, stderr_to_stdout) if ./run is svtree's
        multilog, run by the built-in logger: a log directory with a
        multilog script and no run, or one whose run only execs svtree's
        own multilog (builtinlog.exec_script); None to start ./run as it
        is. Raises StartFailed."""
        if builtinlog.is_builtin():
            try:
                return (*builtinlog.script(), False)
            except builtinlog.BadScript as e:
                raise StartFailed(e, f"its script {builtinlog.SCRIPT} cannot be used") from None
        if os.path.basename(os.path.normpath(self.path)) != "log":
            return None
        try:
            return builtinlog.exec_script()
        except Exception as e:           # never a supervise's end: ./run is exec'd instead
            warn(f"{self.path}: unable to read ./run as a logger's script", e)
            return None

    def start_logger(self, logger):
        """The built-in logger's pid (builtinlog.fork). Raises StartFailed."""
        try:
            words, account, stderr_to_stdout = logger
            return builtinlog.fork(words, account, self.path, stderr_to_stdout)
        except OSError as e:
            raise StartFailed(e, "unable to fork the logger") from None

    def spawn(self, what, argv):
        """The pid of ./what, spawned (./run with its notification-fd
        pipe, ./check with its stderr on its stdout). Raises StartFailed."""
        try:
            notify = self.notify_pipe() if what == "run" else None
        except OSError as e:                 # out of descriptors, say
            raise StartFailed(e, "unable to make the notification-fd pipe") from None
        try:
            if what == "run" and self.sockets:
                return spawn.listening(argv, notify, self.sockets)
            return spawn.spawn(argv, notify, stderr_to_stdout=what == "check")
        except OSError as e:
            raise StartFailed(e) from None
        finally:
            if notify:
                os.close(notify[0])

    def start_failed(self, what, e, cause=None):
        """Say why ./run (./check, ./finish) did not start: on stderr once,
        and for ./run in state.json's error field (svtree status, wait),
        which is also what tells "said already" (the machine clears it at
        the next start). A ./finish that is not there says nothing."""
        error = None
        if what == "finish" and e.errno in (errno.ENOENT, errno.EACCES):
            pass                               # gone since ./run ended: nothing to say
        else:
            why = f"{cause}: {describe(e)}" if cause else diagnose.why_not_started(what, e)
            if what == "run":
                self.close_notify()
                error = f"unable to start ./run: {why}"
                if error != self.sv.error:
                    warn(f"unable to start {self.path}/run: {why}")
            else:
                warn(f"unable to start {self.path}/{what}: {why}")
        self.feed(machine.CHECK_START_FAILED if what == "check" else machine.START_FAILED,
                  error)

    # --- notification-fd -----------------------------------------------------------

    def notify_pipe(self):
        """A fresh pipe whose write end ./run gets as its notification-fd."""
        self.close_notify()
        if self.sv.policy.notify_fd is None:
            return None
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(r, False)
        self.notify_r = r
        self.poller.register(r, select.POLLIN)
        return (w, self.sv.policy.notify_fd)

    def close_notify(self):
        if self.notify_r >= 0:
            self.poller.unregister(self.notify_r)
            os.close(self.notify_r)
            self.notify_r = -1

    def on_notify(self):
        try:
            data = os.read(self.notify_r, 4096)
        except BlockingIOError:               # a stale readiness: nothing yet
            return
        if b"\n" in data:
            self.feed(machine.READY)
        if not data or b"\n" in data:       # told, or the writer is gone
            self.close_notify()

    # --- a ./run left running by a supervise that died -------------------------------

    def adopt_leftover(self):
        """Adopt the process the status file names, if it is the ./run that
        the previous supervise of this directory started (then killed with
        SIGKILL, say): one instance, never two."""
        pid, ticks, past = supervisedir.leftover(self.sdir)
        if not pid:
            return
        pidfd = procfs.leader_pidfd(pid, ticks=ticks)    # the kernel's word
        if pidfd is None:
            return
        self.pidfd = pidfd
        self.poller.register(self.pidfd, select.POLLIN)
        self.run_start = (BOOT_ID, ticks)
        stamp = supervisedir.started_at(ticks)
        recorded = past.since
        if recorded and abs(recorded[0] - stamp[0] + (recorded[1] - stamp[1]) / 1e9) < 1:
            stamp = recorded     # ours, and the kernel agrees: to the nanosecond svstat saw
        self.feed(machine.ADOPTED, (pid, stamp, past))

    def abandon(self):
        """Setup failed after the first start: KILL the ./run (or ./check)
        we started rather than leave it running with nobody to supervise it.
        An adopted ./run was unsupervised already, and stays as it was."""
        for pid in (self.sv.pid, self.sv.check_pid):
            if pid and self.pidfd < 0:
                signal_pid(-pid, SIGKILL)
                signal_pid(pid, SIGKILL)
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass

    def run_ended(self, wstatus):
        """./run is gone: whether ./finish runs is decided now, by what is
        there now (one made executable while ./run ran counts)."""
        self.sv.policy.finish = os.access("finish", os.X_OK)
        self.feed(machine.EXITED, wstatus)

    def on_pidfd(self):
        self.poller.unregister(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = -1
        self.reaped = {self.sv.pid}                   # gone (reaped by its parent)
        self.on_signals(unix.drain(self.wakeup_r))   # a TERM sent before it died first
        self.reaped = ()
        self.run_ended(None)

    # --- the loop --------------------------------------------------------------------

    def on_signals(self, data):
        """Act on the signals in data (bytes from the wakeup pipe).

        A TERM always comes first, whatever order the bytes arrived in: at a
        shutdown svscan sends TERM to us and then the down signal to ./run,
        and the kernel may run our CHLD handler before our TERM handler (both
        pending on the same return to user mode: the second one set up runs
        first). Once a child has been reaped, any TERM sent before it died
        has been delivered, so the pipe is read again before the exit is fed.
        """
        reaped, later = [], b""
        if SIGCHLD in data:
            reaped = list(unix.reap())
            if reaped:
                later = unix.drain(self.wakeup_r)
                data += later
        self.reaped = {*self.reaped, *(pid for pid, _ in reaped)}   # gone: not signalled
        if SIGTERM in data or SIGINT in data:
            self.feed(machine.SHUTDOWN)      # down, then exit (see machine.shut_down)
        if SIGHUP in data:
            self.feed(machine.HANGUP)
        for pid, wstatus in reaped:
            if pid == self.sv.pid:
                self.run_ended(wstatus)
            elif pid == self.sv.check_pid:
                self.feed(machine.CHECK_EXITED, wstatus)
        self.reaped = ()
        if SIGCHLD in later:
            self.on_signals(bytes([SIGCHLD]))           # more children ended meanwhile

    def on_control(self):
        want = self.sv.want
        for byte in unix.drain(self.ctl_r):
            for effect in machine.command(self.sv, byte, self.clock(), unix_now()):
                self.carry_out(effect)
        sv = self.sv
        if sv.want != want and not self.events and sv.state == machine.DOWN:
            # what it wants changed and nothing else did (svc -d of a service
            # already down, svc -u of one held): a reader waiting for that
            # (svtree stop, start) hears of it too
            name = ("down" if sv.want == machine.WANT_DOWN else "blocked" if sv.blocked_by
                    else "waiting" if sv.waiting_for else None)
            if name:
                self.events.append(statejson.event_fields(sv, self.path, name, unix_now()))
        self.written = self.written_state = None   # rewrite: mends a damaged status file

    def on_deps(self):
        """svscan's word on the dependencies: one JSON line per change,
        {"waiting_for": [NAME...], "blocked_by": {NAME: WHY}}, the last
        whole one counting. At end of file (svscan is gone) nothing holds
        ./run any more: no one is left to say when it could start."""
        try:
            data = os.read(self.deps_r, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.poller.unregister(self.deps_r)
            os.close(self.deps_r)
            self.deps_r = -1
            self.feed(machine.DEPS, ((), ()))
            return
        *lines, self.deps_partial = (self.deps_partial + data).split(b"\n")
        if len(self.deps_partial) > 65536:
            self.deps_partial = b""          # no line of svscan's is that long
        if lines:
            try:
                word = json.loads(lines[-1])
                held = (tuple(word.get("waiting_for") or ()),
                        tuple((word.get("blocked_by") or {}).items()))
            except (ValueError, AttributeError, TypeError):
                warn(f"{self.path}: a line from svscan that is no word on dependencies: ignored")
                return
            self.feed(machine.DEPS, held)

    def run(self, wakeup_r, gid=None):
        self.wakeup_r = wakeup_r
        poller = self.poller
        poller.register(wakeup_r, select.POLLIN)
        poller.register(self.ctl_r, select.POLLIN)
        if self.deps_r >= 0:                 # svscan wrote its first word before forking us
            os.set_blocking(self.deps_r, False)
            poller.register(self.deps_r, select.POLLIN)
            self.on_deps()
        supervisedir.open_up(self.sdir, gid, self.path)
        supervisedir.make_ok(self.sdir, self.path, gid)       # before any start (Fatal: none made)
        self.adopt_leftover()
        self.feed(machine.TIMEOUT)           # the first start, unless down or adopted
        self.policy_fresh = False            # later starts read the files again
        events, self.events = self.events, []
        self.write_status()                  # the first record, then ok is opened
        try:
            ok = supervisedir.open_ok(self.sdir)
        except OSError as e:
            self.abandon()
            raise supervisedir.Fatal(
                f"unable to open {self.path}/supervise/ok: {describe(e)}") from None
        self.events = events                 # told once ok is open: supervise is up
        self.tell_events()
        while self.exit_code is None:
            due = machine.deadline(self.sv)
            # poll() takes at most 2**31-1 ms (24.8 days): a longer deadline
            # (a huge timeout-kill or check-interval) just wakes us early
            timeout = None if due is None else min(max(0, (due - self.clock()) * 1000),
                                                   MAX_POLL)
            ready = poller.poll(timeout)
            for fd, _ in ready:
                if fd == wakeup_r:
                    self.on_signals(unix.drain(wakeup_r))
                elif fd == self.ctl_r:
                    self.on_control()
                elif fd == self.notify_r:
                    self.on_notify()
                elif fd == self.pidfd:
                    self.on_pidfd()
                elif fd == self.deps_r:
                    self.on_deps()
            if not ready:
                self.feed(machine.TIMEOUT)
            self.write_status()
        os.close(ok)
        return self.exit_code


def signal_pid(pid, signum):
    if pid:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        except OSError as e:        # EPERM: it became someone else's (exec sudo ...)
            warn(f"unable to signal {pid}", e)


def unix_now():
    return divmod(time.time_ns(), 1_000_000_000)


def install_signals(ignore_int=False):
    """Route CHLD, TERM, HUP (and INT) through the wakeup pipe, and unblock
    them (svscan forks us with every signal blocked)."""
    r = unix.wakeup_pipe((SIGCHLD, SIGTERM, SIGHUP, SIGINT), (SIGINT,) if ignore_int else ())
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
    return r


def run(path, *, under_svscan=False, deps_r=-1, sockets=(), instance=None):
    """Supervise the service at path until told to exit; returns the exit code.

    Under svscan, SIGINT is ignored: svscan sees the terminal's Ctrl-C and
    brings the tree down in order, loggers last; deps_r is the pipe on
    which svscan says which dependencies hold ./run (depends.py); sockets,
    the names of the listening sockets svscan holds for the service, on
    SOCKETS_FD and after (sockets.py); instance: its number, for one of
    the N copies an instances file asks for (INSTANCE in ./run's
    environment, supervise/ in instance/N/).
    """
    wakeup_r = install_signals(ignore_int=under_svscan)
    shown = path if instance is None else servicedir.instance_path(path, instance)
    name_process(f"supervise {shown}", "supervise")
    if instance is not None:
        os.environ["INSTANCE"] = str(instance)       # ./run's, ./finish's, ./check's
    try:
        sdir, _lock, ctl_r, _ctl_w, gid = supervisedir.setup(path, instance)
        loop = Loop(shown, sdir, ctl_r, deps_r=deps_r, sockets=sockets)
        return loop.run(wakeup_r, gid)
    except supervisedir.Fatal as e:
        tell(PROG, "fatal", str(e))
        return TEMPORARY
