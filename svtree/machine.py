"""The supervise state machine: pure, no os calls, fake time welcome.

runit's orthogonal variables:

    state   DOWN, RUN (./run alive) or FINISH (./finish alive)
    want    UP, DOWN or ONCE (run now, never restart)
    flags   paused, term (TERM sent, not yet exited), exit_when_down (svc -x)
    failure failures (quick failed exits in a row), failed (for good)

A critical service (critical > 0) has failed for good after `critical`
failed exits in a row, none of them after a run of RESET_AFTER seconds or
more, or when finish exits 125 (s6's "permanent failure"); supervise then
exits with the service's exit code (128 + signal if killed, never 0), which
svscan turns into the whole tree's shutdown.

s6's shape: a table indexed by (state, event) whose cells are small functions
that change the Supervisor and return effects for the loop to carry out:

    ("spawn", "run", argv)   start ./run; the loop answers STARTED or START_FAILED
    ("spawn", "finish", argv)
    ("kill", signum)         signal the current process (run, or finish)
    ("exit", code)           supervise exits

Timers are events too: deadline() says when the loop must send TIMEOUT,
either for the restart throttle (at least THROTTLE seconds between two starts
of ./run) or for the finish timeout. Nothing here sleeps, so commands are
served at once while a deadline runs.
"""

import signal

# plain ints rather than signal.Signals members: cheaper for a forked supervise
SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGSTOP = (
    int(s) for s in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGKILL,
                     signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGTERM,
                     signal.SIGCONT, signal.SIGSTOP))

DOWN, RUN, FINISH = 0, 1, 2                   # the status file's byte 19
WANT_UP, WANT_DOWN, WANT_ONCE = b"u", b"d", b"\0"   # the status file's byte 17

THROTTLE = 1.0          # seconds between two starts of ./run
FINISH_TIMEOUT = 5.0    # seconds finish may run before it is killed
RESET_AFTER = 60.0      # a run this long clears the failure count
CRITICAL_DEFAULT = 3    # failed exits in a row, for an empty `critical` file
PERMANENT = 125         # finish's exit code for "do not restart" (s6)

# events
UP, DOWN_CMD, ONCE, PAUSE, CONT, SIGNAL, EXIT = (
    "up", "down", "once", "pause", "cont", "signal", "exit")
HANGUP = "hangup"            # stop restarting, exit once down, send nothing
EXITED, TIMEOUT, STARTED, START_FAILED = "exited", "timeout", "started", "start_failed"

# control byte -> (event, argument)
COMMANDS = {
    ord("u"): (UP, None), ord("d"): (DOWN_CMD, None), ord("o"): (ONCE, None),
    ord("p"): (PAUSE, None), ord("c"): (CONT, None), ord("x"): (EXIT, None),
    ord("h"): (SIGNAL, SIGHUP), ord("a"): (SIGNAL, SIGALRM),
    ord("i"): (SIGNAL, SIGINT), ord("t"): (SIGNAL, SIGTERM),
    ord("k"): (SIGNAL, SIGKILL), ord("q"): (SIGNAL, SIGQUIT),
    ord("1"): (SIGNAL, SIGUSR1), ord("2"): (SIGNAL, SIGUSR2),
}


class Supervisor:
    """Everything supervise knows about its service."""

    __slots__ = ("state", "want", "paused", "term", "exit_when_down", "pid",
                 "stamp", "next_start", "finish_deadline", "once_pending",
                 "finish_timeout", "last_wstatus", "critical", "failures",
                 "failed", "started_at", "signalled")

    def __init__(self, want=WANT_UP, now=0.0, finish_timeout=FINISH_TIMEOUT, critical=0):
        self.state = DOWN
        self.want = want
        self.paused = False
        self.term = False
        self.exit_when_down = False
        self.pid = 0
        self.stamp = (0, 0)          # wall time of the last pid change
        self.next_start = now        # earliest start of ./run (throttle)
        self.finish_deadline = None
        self.once_pending = False    # svc -o while down: start it once
        self.finish_timeout = finish_timeout
        self.last_wstatus = None
        self.critical = critical     # failed exits in a row that fail the service
        self.failures = 0
        self.failed = False
        self.started_at = now
        self.signalled = False       # we sent the running process a signal


def start_wanted(sv) -> bool:
    return sv.want == WANT_UP or (sv.want == WANT_ONCE and sv.once_pending)


def deadline(sv):
    """When the loop must deliver TIMEOUT (monotonic seconds), or None."""
    if sv.state == DOWN and start_wanted(sv) and not sv.exit_when_down:
        return sv.next_start
    if sv.state == FINISH and sv.pid:
        return sv.finish_deadline
    return None


def exit_code(wstatus: int) -> int:
    """The shell's number for a wait status: the exit code, or 128 + signal."""
    return wstatus >> 8 & 0xFF if wstatus & 0x7F == 0 else 128 + (wstatus & 0x7F)


def finish_args(wstatus: int) -> list[str]:
    """runit's finish arguments: exit code or -1, then the signal number or 0."""
    if wstatus & 0x7F == 0:
        return [str(wstatus >> 8 & 0xFF), "0"]
    return ["-1", str(wstatus & 0x7F)]


# --- cells -----------------------------------------------------------------

def ignore(sv, now, wall, arg):
    return []


def start_if_due(sv, now, wall, arg):
    if start_wanted(sv) and not sv.exit_when_down and now >= sv.next_start:
        return [("spawn", "run", ["./run"])]
    return []


def want_up(sv, now, wall, arg):
    sv.want = WANT_UP
    return start_if_due(sv, now, wall, arg) if sv.state == DOWN else []


def want_once(sv, now, wall, arg):
    sv.want = WANT_ONCE
    if sv.state == DOWN:
        sv.once_pending = True
        return start_if_due(sv, now, wall, arg)
    return []


def want_down(sv, now, wall, arg):
    sv.want = WANT_DOWN
    sv.once_pending = False
    return []


def take_down(sv, now, wall, arg):
    """svc -d while running: TERM, then CONT so a stopped process sees it."""
    want_down(sv, now, wall, arg)
    sv.paused = False
    sv.term = sv.signalled = True
    return [("kill", SIGTERM), ("kill", SIGCONT)]


def pause(sv, now, wall, arg):
    sv.paused = True
    return [("kill", SIGSTOP)]


def cont(sv, now, wall, arg):
    sv.paused = False
    return [("kill", SIGCONT)]


def send_signal(sv, now, wall, arg):
    sv.signalled = True
    if arg == SIGTERM:
        sv.term = True
    return [("kill", arg)]


def exit_now(sv, now, wall, arg):
    sv.exit_when_down = True
    return [("exit", 0)]


def exit_later(sv, now, wall, arg):
    sv.exit_when_down = True
    return []


def hang_up_down(sv, now, wall, arg):
    want_down(sv, now, wall, arg)
    return exit_now(sv, now, wall, arg)


def hang_up(sv, now, wall, arg):
    want_down(sv, now, wall, arg)
    return exit_later(sv, now, wall, arg)


def run_started(sv, now, wall, arg):
    sv.state = RUN
    sv.pid = arg
    sv.stamp = wall
    sv.paused = sv.term = sv.signalled = False
    sv.once_pending = False
    sv.next_start = now + THROTTLE
    sv.started_at = now
    return []


def run_start_failed(sv, now, wall, arg):
    sv.next_start = now + THROTTLE       # retry in a second, if still wanted
    return []


def count_failure(sv, now, wstatus):
    """Keep the count of failed exits that the service did not ask for."""
    failure = wstatus != 0 and not sv.signalled and sv.want != WANT_DOWN
    if not failure:
        sv.failures = 0
    elif now - sv.started_at >= RESET_AFTER:
        sv.failures = 1
    else:
        sv.failures += 1
    if sv.critical and sv.failures >= sv.critical:
        sv.failed = True


def run_exited(sv, now, wall, arg):
    sv.last_wstatus = arg
    count_failure(sv, now, arg)
    sv.state = FINISH
    sv.pid = 0
    sv.stamp = wall
    sv.paused = sv.term = False
    return [("spawn", "finish", ["./finish", *finish_args(arg)])]


def finish_started(sv, now, wall, arg):
    sv.pid = arg
    sv.stamp = wall
    sv.finish_deadline = now + sv.finish_timeout
    return []


def finish_done(sv, now, wall, arg):
    if sv.critical and arg is not None and exit_code(arg) == PERMANENT:
        sv.failed = True
    sv.state = DOWN
    if sv.pid:
        sv.stamp = wall
    sv.pid = 0
    sv.finish_deadline = None
    if sv.exit_when_down:
        return [("exit", 0)]
    if sv.failed:
        return [("exit", max(1, exit_code(sv.last_wstatus or 0)))]
    return start_if_due(sv, now, wall, arg)


def finish_overdue(sv, now, wall, arg):
    if sv.finish_deadline is not None and now >= sv.finish_deadline:
        sv.finish_deadline = None
        return [("kill", SIGKILL)]
    return []


TABLE = {
    (DOWN, UP): want_up,            (RUN, UP): want_up,        (FINISH, UP): want_up,
    (DOWN, ONCE): want_once,        (RUN, ONCE): want_once,    (FINISH, ONCE): want_once,
    (DOWN, DOWN_CMD): want_down,    (RUN, DOWN_CMD): take_down, (FINISH, DOWN_CMD): want_down,
    (RUN, PAUSE): pause,
    (RUN, CONT): cont,
    (RUN, SIGNAL): send_signal,
    (DOWN, EXIT): exit_now,         (RUN, EXIT): exit_later,   (FINISH, EXIT): exit_later,
    (DOWN, HANGUP): hang_up_down,   (RUN, HANGUP): hang_up,    (FINISH, HANGUP): hang_up,
    (DOWN, TIMEOUT): start_if_due,                             (FINISH, TIMEOUT): finish_overdue,
    (DOWN, STARTED): run_started,                              (FINISH, STARTED): finish_started,
    (DOWN, START_FAILED): run_start_failed,                    (FINISH, START_FAILED): finish_done,
    (RUN, EXITED): run_exited,                                 (FINISH, EXITED): finish_done,
}


def step(sv: Supervisor, event: str, now: float, wall=(0, 0), arg=None) -> list:
    """Apply one event; return the effects the loop must carry out, in order."""
    return TABLE.get((sv.state, event), ignore)(sv, now, wall, arg)


def command(sv: Supervisor, byte: int, now: float, wall=(0, 0)) -> list:
    """Apply one control byte; unknown bytes are ignored, as in daemontools."""
    event, arg = COMMANDS.get(byte, (None, None))
    return step(sv, event, now, wall, arg) if event else []
