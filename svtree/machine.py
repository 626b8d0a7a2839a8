"""The supervise state machine: the transitions. Pure, no os calls, fake
time welcome.

The state is servicestate.py's: runit's orthogonal variables, plus what
svtree adds.

An operator's up (svc -u, -r, -o while down) starts ./run now: it forgets
the backoff, the quick deaths and a failure (revive); only the THROTTLE
second since the last start remains.

s6's shape: TABLE has a row per event and a column per state, and names
every cell: nop where the event means nothing in that state, bail for svc
-x while nothing runs. A cell is a small function of one state (it never
asks for the state again) that changes the Supervisor and returns effects,
(kind, ...) tuples for the loop to carry out: SPAWN, KILL, KILLGROUP,
KILLCHECK, ANNOUNCE, LEAVE. step() applies an event, command() a control
byte.

Timers are events too: deadline() says when the loop must send TIMEOUT:
the restart delay (at least THROTTLE seconds between two starts, doubling
after each quick death up to backoff-max), the finish timeout, timeout-kill,
the next check, and the end of a shutdown's hold on status writes
(may_write). Nothing here sleeps, so commands are served at once while a
deadline runs.

Quick death: ./run ended less than QUICK seconds after it started, without
a signal from us. A critical service fails for good after `critical` failed
exits in a row (none after a run of RESET_AFTER seconds or more); any
service fails for good after max-deaths quick deaths in a row, or when
./finish exits 125 (s6's "permanent failure").
"""

from _signal import (SIGALRM, SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGSTOP, SIGTERM,
                     SIGUSR1, SIGUSR2)

from .servicestate import (  # noqa: F401  (the loop and the tests read them here too)
    DOWN, ENDING, FINISH, HOLD, OUTSIDE, OUTSIDE_GRACE, PERMANENT, QUICK, READY_AFTER, READY_POLL,
    RESET_AFTER, RUN, THROTTLE, WANT_DOWN, WANT_ONCE, WANT_UP, Past, Supervisor, deadline,
    may_write, readiness, start_wanted)
from .wstatus import exit_code, finish_args, signal_of

# events
UP, DOWN_CMD, ONCE, PAUSE, CONT, SIGNAL, GROUP, RESTART, EXIT = (
    "up", "down", "once", "pause", "cont", "signal", "group", "restart", "exit")
HANGUP = "hangup"            # stop restarting, exit once down, send nothing
SHUTDOWN = "shutdown"        # supervise's own TERM or INT: down, then exit
EXITED, TIMEOUT, STARTED, START_FAILED = "exited", "timeout", "started", "start_failed"
READY = "ready"
ADOPTED = "adopted"          # a ./run left running by a supervise that died
CHECK_STARTED, CHECK_START_FAILED, CHECK_EXITED = "check_started", "check_start_failed", "check_exited"
DEPS = "deps"                # svscan's word on the dependencies: (waiting_for, blocked_by)

# effects: what a cell asks the loop to do, as (kind, ...) tuples
SPAWN = "spawn"          # (SPAWN, what, argv): start ./run, ./finish or ./check; the loop
                         # answers STARTED/START_FAILED or CHECK_STARTED/CHECK_START_FAILED
KILL = "kill"            # (KILL, signum): signal the current process (run, or finish)
KILLGROUP = "killgroup"  # (KILLGROUP, signum): signal its whole process group
KILLCHECK = "killcheck"  # (KILLCHECK, signum): signal the running ./check
ANNOUNCE = "announce"    # (ANNOUNCE, name): a state change worth telling event readers
LEAVE = "exit"           # (LEAVE, code): supervise exits (EXIT is the svc -x event)

# control byte -> (event, argument): daemontools, runit's q 1 2, s6's r P C K
COMMANDS = {
    ord("u"): (UP, None), ord("d"): (DOWN_CMD, None), ord("o"): (ONCE, None),
    ord("p"): (PAUSE, None), ord("c"): (CONT, None), ord("x"): (EXIT, None),
    ord("h"): (SIGNAL, SIGHUP), ord("a"): (SIGNAL, SIGALRM),
    ord("i"): (SIGNAL, SIGINT), ord("t"): (SIGNAL, SIGTERM),
    ord("k"): (SIGNAL, SIGKILL), ord("q"): (SIGNAL, SIGQUIT),
    ord("1"): (SIGNAL, SIGUSR1), ord("2"): (SIGNAL, SIGUSR2),
    ord("r"): (RESTART, None),
    ord("P"): (GROUP, SIGSTOP), ord("C"): (GROUP, SIGCONT), ord("K"): (GROUP, SIGKILL),
}


# --- cells: commands ------------------------------------------------------------

def nop(sv, now, wall, arg):
    """The event means nothing in this state."""
    return []


def start_if_due(sv, now, wall, arg):
    if start_wanted(sv) and now >= sv.next_start:
        return [(SPAWN, "run", ["./run"])]
    return []


def down_up(sv, now, wall, arg):
    """svc -u (or -r) while down: start now, failed or backing off."""
    revive(sv, now, WANT_UP)
    return start_if_due(sv, now, wall, arg)


def finish_up(sv, now, wall, arg):
    """svc -u while ./finish runs: ./run starts when it is done, no backoff."""
    revive(sv, now, WANT_UP)
    return []


def down_once(sv, now, wall, arg):
    """svc -o while down: start it now, once."""
    revive(sv, now, WANT_ONCE)
    sv.once_pending = True
    return start_if_due(sv, now, wall, arg)


def revive(sv, now, want):
    """An operator asked for the service (want): forget a failure, the quick
    deaths and the backoff delay already running (not the THROTTLE second)."""
    sv.want = want
    sv.failed = False
    sv.reason = None
    sv.quick_deaths = sv.failures = sv.outside_deaths = 0
    sv.delay = THROTTLE
    sv.next_start = min(sv.next_start, max(now, sv.started_at + THROTTLE))


def want_up(sv, now, wall, arg):
    sv.want = WANT_UP
    return []


def want_once(sv, now, wall, arg):
    sv.want = WANT_ONCE
    return []


def want_down(sv, now, wall, arg):
    sv.want = WANT_DOWN
    sv.once_pending = False
    return []


def stop(sv, now):
    """The down signal, then CONT so a stopped process sees it; KILL later."""
    signum = sv.policy.down_signal
    sv.paused = False
    sv.signalled = True
    sv.ready_at = None                  # going down: not ready after all
    sv.term = sv.term or signum == SIGTERM
    if sv.policy.timeout_kill is not None and sv.kill_deadline is None:
        sv.kill_deadline = now + sv.policy.timeout_kill
    return [(KILL, signum), (KILL, SIGCONT)]


def take_down(sv, now, wall, arg):
    want_down(sv, now, wall, arg)
    return stop(sv, now)


def restart(sv, now, wall, arg):
    """svc -r while running: the down signal, and up again once it is gone."""
    sv.want = WANT_UP
    return stop(sv, now)


def pause(sv, now, wall, arg):
    sv.paused = True
    return [(KILL, SIGSTOP)]


def cont(sv, now, wall, arg):
    sv.paused = False
    return [(KILL, SIGCONT)]


def send_signal(sv, now, wall, arg):
    sv.sent += (arg,)               # a death by it is ours, whatever the signal
    if arg in ENDING:
        sv.signalled = True         # its death is our doing; a reload (HUP) is not
    if arg == SIGTERM:
        sv.term = True
    return [(KILL, arg)]


def signal_group(sv, now, wall, arg):
    sv.sent += (arg,)
    if arg == SIGSTOP:
        sv.paused = True
    elif arg == SIGCONT:
        sv.paused = False
    elif arg in ENDING:
        sv.signalled = True
    return [(KILLGROUP, arg)]


def bail(sv, now, wall, arg):
    """Exit now: nothing runs (s6's bail)."""
    sv.exit_when_down = True
    return [(LEAVE, 0)]


def exit_later(sv, now, wall, arg):
    sv.exit_when_down = True
    return []


def leave_now(sv, now, wall, arg):
    """Want down and exit now (svscan's HUP or TERM while nothing runs)."""
    want_down(sv, now, wall, arg)
    return bail(sv, now, wall, arg)


def leave_later(sv, now, wall, arg):
    """Want down and exit once down, sending nothing: svscan's HUP (./run
    and ./finish end on their own), or its TERM while ./finish runs."""
    want_down(sv, now, wall, arg)
    return exit_later(sv, now, wall, arg)


def shut_down(sv, now, wall, arg):
    """svscan's TERM while ./run runs: down, then exit. The tree is going
    down and svscan signals ./run too: its exit comes in a moment, so the
    status waits HOLD for it and one write says both (not "want down" first,
    then "down")."""
    sv.hold_until = now + HOLD
    return take_down(sv, now, wall, arg) + exit_later(sv, now, wall, arg)


# --- cells: the run ---------------------------------------------------------------

def run_started(sv, now, wall, arg):
    sv.state = RUN
    sv.pid = arg
    sv.stamp = wall
    sv.paused = sv.term = sv.signalled = False
    sv.sent = ()
    sv.once_pending = False
    sv.started_at = now
    sv.next_start = now + THROTTLE
    sv.starts += 1
    sv.kill_deadline = None
    sv.check_fails = 0
    sv.error = None
    how = readiness(sv.policy)
    if how == "none":
        sv.ready_at = now + READY_AFTER
    elif how == "check":
        sv.next_check = now + READY_POLL      # poll ./check until it passes
    return [(ANNOUNCE, "up")]


def adopt(sv, now, wall, arg):
    """Take over a ./run that the previous supervise left running.

    arg: (pid, its start time, what the previous supervise recorded: a
    Past). The run counts as ready (the previous supervise knew; we cannot
    ask again), since when it was, and the history goes on where it was.
    """
    pid, stamp, past = arg
    sv.state = RUN
    sv.pid = pid
    sv.stamp = stamp
    sv.started_at = now - max(0.0, (wall[0] - stamp[0]) + (wall[1] - stamp[1]) / 1e9)
    sv.next_start = now + THROTTLE
    sv.paused = sv.term = sv.signalled = False
    sv.sent = ()
    sv.starts, sv.last_wstatus, sv.last_duration, sv.quick_deaths = (
        past.starts, past.last_wstatus, past.last_duration, past.quick_deaths)
    sv.delay = max(THROTTLE, past.backoff)
    return [(ANNOUNCE, "up")] + become_ready(sv, now, past.ready_since or wall)


def run_start_failed(sv, now, wall, arg):
    sv.error = arg                       # the loop's words for it, if any
    sv.next_start = now + THROTTLE       # retry in a second, if still wanted
    return []


def become_ready(sv, now, wall, arg=None):
    sv.ready_at = None
    if sv.ready:
        return []
    sv.ready = True
    sv.ready_since = wall
    if sv.policy.check and sv.policy.check_interval:
        sv.next_check = now + sv.policy.check_interval
    else:
        sv.next_check = None
    return [(ANNOUNCE, "ready")]


def count_deaths(sv, now, wstatus):
    """Quick deaths (backoff, max-deaths) and failed exits (critical)."""
    ran = now - sv.started_at
    sv.last_duration = ran
    # A death by a signal sent by command (svc -a, -1, -h... whoever may
    # control it) is no failure of the service's own: it neither backs off
    # nor counts towards critical, which would let them stop the tree.
    sig = signal_of(wstatus) if wstatus else 0       # None: adopted, its end unknown
    ours = sv.signalled or sv.want == WANT_DOWN or bool(sig and sig in sv.sent)
    outside = sig in OUTSIDE and not ours
    if ran < QUICK and not ours:
        sv.quick_deaths += 1
        doubled = THROTTLE * 2 ** min(sv.quick_deaths - 1, 32)     # no overflow, ever
        sv.delay = min(doubled, max(sv.policy.backoff_max, THROTTLE))
        sv.outside_deaths = sv.outside_deaths + 1 if outside else 0
    else:
        sv.quick_deaths = sv.outside_deaths = 0
        sv.delay = THROTTLE
    # Killed from outside (a logger SIGKILLed, say): back after the THROTTLE
    # second, as with daemontools, runit and s6, for OUTSIDE_GRACE deaths in
    # a row; they count all the same (max-deaths), and a service that keeps
    # being killed (an OOM loop) backs off after that.
    grace = 0 < sv.outside_deaths <= OUTSIDE_GRACE
    sv.next_start = sv.started_at + (THROTTLE if grace else sv.delay)
    if sv.policy.max_deaths and sv.quick_deaths >= sv.policy.max_deaths:
        fail(sv, f"max-deaths {sv.policy.max_deaths} reached")
    failure = wstatus not in (0, None) and not ours
    if not failure:
        sv.failures = 0
    elif ran >= RESET_AFTER:
        sv.failures = 1
    else:
        sv.failures += 1
    if sv.policy.critical and sv.failures >= sv.policy.critical:
        n = sv.failures
        fail(sv, f"critical: {n} failed exit{'s' if n > 1 else ''} in a row")


def fail(sv, reason):
    """Failed for good: down until an operator's up (revive)."""
    if not sv.failed:
        sv.failed = True
        sv.reason = reason


def run_exited(sv, now, wall, arg):
    sv.last_wstatus = arg
    sv.last_run = (sv.pid, sv.stamp, wall)        # its pid, start and end (wall)
    count_deaths(sv, now, arg)
    if sv.want == WANT_UP and not sv.signalled:
        if sv.policy.restart == "never" or (sv.policy.restart == "on-failure" and arg == 0):
            sv.want = WANT_DOWN
    sv.state = FINISH
    sv.pid = 0
    sv.stamp = wall
    sv.paused = sv.term = False
    sv.ready = False
    sv.ready_since = None
    sv.kill_deadline = sv.next_check = sv.ready_at = sv.hold_until = None
    effects = [(ANNOUNCE, "exited")]
    if sv.check_pid:
        effects.append((KILLCHECK, SIGKILL))
    if not sv.policy.finish:            # straight down: no "finish" state to tell of
        return effects + finish_done(sv, now, wall, None)
    return effects + [(SPAWN, "finish", ["./finish", *finish_args(arg)])]


def finish_started(sv, now, wall, arg):
    sv.pid = arg
    sv.stamp = wall
    limit = sv.policy.finish_timeout
    sv.finish_deadline = None if limit is None else now + limit
    return []


def finish_exited(sv, now, wall, arg):
    if exit_code(arg) == PERMANENT:
        fail(sv, f"finish exited {PERMANENT}")
    sv.stamp = wall
    return finish_done(sv, now, wall, arg)


def finish_done(sv, now, wall, arg):
    """Down: ./finish exited, could not start, or there is none."""
    sv.state = DOWN
    sv.pid = 0
    sv.finish_deadline = None
    effects = [(ANNOUNCE, "down")]
    if sv.failed:
        sv.want = WANT_DOWN
        effects.append((ANNOUNCE, "failed"))
    if sv.exit_when_down:
        return effects + [(LEAVE, 0)]
    if sv.failed and sv.policy.critical:
        return effects + [(LEAVE, max(1, exit_code(sv.last_wstatus or 0)))]
    return effects + start_if_due(sv, now, wall, arg)


def finish_overdue(sv, now, wall, arg):
    if sv.finish_deadline is not None and now >= sv.finish_deadline:
        sv.finish_deadline = None
        return [(KILL, SIGKILL)]
    return []


# --- cells: dependencies ------------------------------------------------------------

def held(sv, now, wall, arg):
    """svscan says which dependencies are not ready (or cannot be): told
    when it changes. A running ./run is left alone (a dependency's restart
    restarts nothing); its next start waits."""
    waiting, blocked = arg
    effects = []
    if blocked and tuple(blocked) != sv.blocked_by:
        effects.append((ANNOUNCE, "blocked"))
    elif waiting and not blocked and tuple(waiting) != sv.waiting_for:
        effects.append((ANNOUNCE, "waiting"))
    sv.waiting_for, sv.blocked_by = tuple(waiting), tuple(blocked)
    return effects


def held_down(sv, now, wall, arg):
    """The same while down: once nothing holds it, ./run starts if due."""
    return held(sv, now, wall, arg) + start_if_due(sv, now, wall, None)


# --- cells: timers and checks while running ----------------------------------------

def run_timers(sv, now, wall, arg):
    if sv.hold_until is not None and now >= sv.hold_until:
        sv.hold_until = None            # ./run outlived the hold: write what there is
    effects = []
    if sv.ready_at is not None and now >= sv.ready_at and not sv.paused:
        effects += become_ready(sv, now, wall)
    if sv.kill_deadline is not None and now >= sv.kill_deadline:
        sv.kill_deadline = None
        effects.append((KILLGROUP, SIGKILL))
    if sv.check_pid:
        if sv.check_deadline is not None and now >= sv.check_deadline:
            sv.check_deadline = None
            effects.append((KILLCHECK, SIGKILL))
    elif sv.next_check is not None and now >= sv.next_check:
        sv.next_check = None
        effects.append((SPAWN, "check", ["./check"]))
    return effects


def check_started(sv, now, wall, arg):
    sv.check_pid = arg
    sv.check_deadline = now + sv.policy.check_timeout
    return []


def check_start_failed(sv, now, wall, arg):
    return check_exited(sv, now, wall, 127 << 8)


def check_exited(sv, now, wall, arg):
    check_gone(sv, now, wall, arg)
    if not sv.ready:
        if arg == 0:
            return become_ready(sv, now, wall)
        sv.next_check = now + READY_POLL
        return []
    interval = sv.policy.check_interval
    if arg == 0:
        sv.check_fails = 0
    else:
        sv.check_fails += 1
        if sv.check_fails >= sv.policy.check_failures:
            sv.check_fails = 0
            sv.next_check = None
            return [(ANNOUNCE, "unhealthy")] + stop(sv, now)
    sv.next_check = now + interval if interval else None
    return []


def check_gone(sv, now, wall, arg):
    """Forget a ./check that ended: all there is to do once its run is gone
    (run_exited killed it)."""
    sv.check_pid = 0
    sv.check_deadline = None
    return []


# One row per event, one cell per state; every cell is named. An event that
# means nothing in a state is a nop there: a signal with nothing to receive
# it, news of a process that is gone, an answer that cannot come.
TABLE = {
    #                    DOWN               RUN                 FINISH
    UP:                 (down_up,           want_up,            finish_up),
    ONCE:               (down_once,         want_once,          want_once),
    DOWN_CMD:           (want_down,         take_down,          want_down),
    RESTART:            (down_up,           restart,            finish_up),
    PAUSE:              (nop,               pause,              nop),
    CONT:               (nop,               cont,               nop),
    SIGNAL:             (nop,               send_signal,        nop),
    GROUP:              (nop,               signal_group,       nop),
    EXIT:               (bail,              exit_later,         exit_later),
    HANGUP:             (leave_now,         leave_later,        leave_later),
    SHUTDOWN:           (leave_now,         shut_down,          leave_later),
    TIMEOUT:            (start_if_due,      run_timers,         finish_overdue),
    STARTED:            (run_started,       nop,                finish_started),
    START_FAILED:       (run_start_failed,  nop,                finish_done),
    ADOPTED:            (adopt,             nop,                nop),
    EXITED:             (nop,               run_exited,         finish_exited),
    READY:              (nop,               become_ready,       nop),
    CHECK_STARTED:      (nop,               check_started,      nop),
    CHECK_START_FAILED: (nop,               check_start_failed, nop),
    CHECK_EXITED:       (check_gone,        check_exited,       check_gone),
    DEPS:               (held_down,         held,               held),
}


def step(sv: Supervisor, event: str, now: float, wall=(0, 0), arg=None) -> list:
    """Apply one event; return the effects the loop must carry out, in order.
    An event not in the table is a bug of the caller's: KeyError."""
    return TABLE[event][sv.state](sv, now, wall, arg)


def command(sv: Supervisor, byte: int, now: float, wall=(0, 0)) -> list:
    """Apply one control byte; unknown bytes are ignored, as in daemontools."""
    event, arg = COMMANDS.get(byte, (None, None))
    return step(sv, event, now, wall, arg) if event else []
