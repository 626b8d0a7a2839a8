"""What supervise knows about its service: the Supervisor record, the
timings it runs by, and what the loop asks of it (deadline, may_write).
The transitions are machine.py's. Pure: no os calls.

runit's orthogonal variables, plus what svtree adds:

    state    DOWN, RUN (./run alive) or FINISH (./finish alive)
    want     UP, DOWN or ONCE (run now, never restart)
    flags    paused, term (TERM sent, not yet exited), signalled (we sent a
             signal: its death is not a failure), exit_when_down (svc -x)
    ready    up and ready: a notification-fd newline, a passing ./check, or,
             for a service with neither, READY_AFTER seconds up (so a
             crash-looping service is never ready; supervisord's startsecs)
    failure  quick_deaths in a row (backoff and max-deaths), failures in a row
             (critical services), failed for good (stays down until svc -u),
             and the words for each: reason (why it failed), error (why the
             last start of ./run failed: the loop's words, given with
             START_FAILED)
    held     the dependencies (a depends file) svscan says are not ready
             yet (waiting_for: names) or cannot be (blocked_by: (name,
             why) pairs: failed for good, missing); ./run is not started
             while either lasts
"""

# the C module's plain ints: cheaper for a forked supervise than signal's enums
from _signal import SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM

from .policy import Policy

DOWN, RUN, FINISH = 0, 1, 2                   # the status file's byte 19
WANT_UP, WANT_DOWN, WANT_ONCE = b"u", b"d", b"\0"   # want (written as b"d" for once)

THROTTLE = 1.0          # seconds between two starts of ./run, at least
QUICK = 10.0            # a run shorter than this is a quick death
RESET_AFTER = 60.0      # a run this long clears a critical service's failure count
READY_AFTER = 1.0       # seconds up that make a service with no readiness mechanism ready
READY_POLL = 0.1        # seconds between two readiness checks until one passes
PERMANENT = 125         # finish's exit code for "do not restart" (s6)
HOLD = 0.05             # seconds status writes wait, at a shutdown, for ./run's exit

# signals that end a process by default: a death after one of these is ours
ENDING = frozenset((SIGTERM, SIGKILL, SIGINT, SIGQUIT))
# signals no program sends itself by mistake: a death by one we did not send
# came from outside (kill, the OOM killer), no crash loop of the service's own
OUTSIDE = ENDING | {SIGHUP}
OUTSIDE_GRACE = 3       # outside deaths in a row restarted after THROTTLE, not the backoff


class Supervisor:
    """Everything supervise knows about its service."""

    __slots__ = ("policy", "state", "want", "pid", "paused", "term", "signalled", "exit_when_down",
                 "sent", "once_pending", "stamp", "started_at", "next_start", "delay", "starts",
                 "quick_deaths", "failures", "outside_deaths", "failed", "error", "reason",
                 "last_wstatus", "last_duration", "ready", "ready_since", "ready_at",
                 "check_pid", "check_fails", "finish_deadline", "kill_deadline",
                 "check_deadline", "next_check", "hold_until", "waiting_for", "blocked_by", "last_run")

    def __init__(self, want=WANT_UP, now=0.0, policy=None, **policy_fields):
        self.policy = policy or Policy(**policy_fields)
        self.state, self.want, self.pid = DOWN, want, 0
        self.paused = self.term = self.signalled = self.exit_when_down = False
        self.sent = ()               # signals sent by command to this run
        self.once_pending = False    # svc -o while down: start it once
        self.stamp = (0, 0)          # wall time of the last pid change
        self.started_at = now        # monotonic start of the current or last run
        self.next_start = now        # earliest start of ./run
        self.delay = THROTTLE
        self.starts = self.quick_deaths = self.failures = 0
        self.outside_deaths = 0      # quick deaths in a row by a signal from outside
        self.failed = False
        self.error = None            # why the last start of ./run failed
        self.reason = None           # why the service failed for good
        self.last_wstatus = self.last_duration = None
        self.ready = False
        self.ready_since = None      # wall time
        self.ready_at = None         # no readiness mechanism: ready at this time
        self.check_pid = self.check_fails = 0
        self.finish_deadline = self.kill_deadline = self.check_deadline = self.next_check = None
        self.hold_until = None       # status writes wait until then for ./run's exit
        self.waiting_for = ()        # dependencies not ready yet (names)
        self.blocked_by = ()         # dependencies that cannot be: (name, why) pairs
        self.last_run = None         # the last run that ended: (pid, start, end), wall times


def readiness(policy) -> str:
    """How a service says it is ready: notify, check, or none (time up)."""
    if policy.notify_fd is not None:
        return "notify"
    return "check" if policy.check else "none"


def start_wanted(sv) -> bool:
    if sv.failed or sv.exit_when_down or sv.waiting_for or sv.blocked_by:
        return False
    return sv.want == WANT_UP or (sv.want == WANT_ONCE and sv.once_pending)


def may_write(sv, now) -> bool:
    """Whether the loop writes the status now: not while a shutdown waits
    for ./run's exit (shut_down), which comes in a moment."""
    return sv.hold_until is None or now >= sv.hold_until


def deadline(sv):
    """When the loop must deliver TIMEOUT (monotonic seconds), or None."""
    if sv.state == DOWN:
        return sv.next_start if start_wanted(sv) else None
    if sv.state == FINISH:
        return sv.finish_deadline
    dues = [t for t in (sv.kill_deadline, sv.check_deadline if sv.check_pid else sv.next_check,
                        None if sv.paused else sv.ready_at, sv.hold_until) if t is not None]
    return min(dues) if dues else None


class Past:
    """What a previous supervise's state.json said of the run it left: the
    history an adoption carries on."""

    __slots__ = ("starts", "last_wstatus", "last_duration", "quick_deaths", "backoff",
                 "since", "ready_since")

    def __init__(self, starts=0, last_wstatus=None, last_duration=None, quick_deaths=0,
                 backoff=THROTTLE, since=None, ready_since=None):
        self.starts, self.last_wstatus, self.last_duration = starts, last_wstatus, last_duration
        self.quick_deaths, self.backoff = quick_deaths, backoff
        self.since, self.ready_since = since, ready_since      # wall (seconds, ns)
