"""The supervise state machine, played through histories of events (no processes).

Each history is a list of (event, argument, time, expected effects); after it,
the named fields of the Supervisor must hold the given values. A Hypothesis
property then plays any control bytes between any exits, check results and
timeouts: no exception, only known effects, and a state supervise can write
down.
"""

import signal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from svtree import machine as m, policy, status

RUN = ("spawn", "run", ["./run"])
TERM, CONT, KILL, STOP = (("kill", s) for s in (signal.SIGTERM, signal.SIGCONT,
                                                signal.SIGKILL, signal.SIGSTOP))


def finish(code, sig):
    return ("spawn", "finish", ["./finish", str(code), str(sig)])


def exited(code):
    return code << 8


def killed(sig):
    return sig


def actions(effects):
    """Effects without the announcements (tested on their own below)."""
    return [e for e in effects if e[0] != "announce"]


HISTORIES = {
    "starts at once, restarts after exit, runs finish with runit's arguments": (
        m.WANT_UP,
        [(m.TIMEOUT, None, 0.0, [RUN]),
         (m.STARTED, 100, 0.0, []),
         (m.EXITED, exited(3), 5.0, [finish(3, 0)]),
         (m.STARTED, 101, 5.0, []),
         (m.EXITED, exited(0), 5.1, [RUN]),
         (m.STARTED, 102, 5.1, [])],
        {"state": m.RUN, "pid": 102, "next_start": 6.1}),
    "a quick death waits for the throttle deadline, then TIMEOUT starts it": (
        m.WANT_UP,
        [(m.TIMEOUT, None, 0.0, [RUN]),
         (m.STARTED, 100, 0.0, []),
         (m.EXITED, killed(9), 0.2, [finish(-1, 9)]),
         (m.START_FAILED, None, 0.2, []),
         (m.TIMEOUT, None, 0.5, []),
         (m.TIMEOUT, None, 1.0, [RUN])],
        {"state": m.DOWN, "pid": 0}),
    "svc -d sends TERM then CONT and does not restart": (
        m.WANT_UP,
        [(m.TIMEOUT, None, 0.0, [RUN]),
         (m.STARTED, 100, 0.0, []),
         (m.DOWN_CMD, None, 2.0, [TERM, CONT]),
         (m.EXITED, killed(15), 2.1, [finish(-1, 15)]),
         (m.START_FAILED, None, 2.1, []),
         (m.TIMEOUT, None, 9.0, [])],
        {"state": m.DOWN, "want": m.WANT_DOWN, "term": False}),
    "a down file starts nothing until svc -u": (
        m.WANT_DOWN,
        [(m.TIMEOUT, None, 0.0, []),
         (m.UP, None, 3.0, [RUN]),
         (m.STARTED, 7, 3.0, [])],
        {"state": m.RUN, "want": m.WANT_UP}),
    "once runs a single time": (
        m.WANT_DOWN,
        [(m.ONCE, None, 0.0, [RUN]),
         (m.STARTED, 7, 0.0, []),
         (m.EXITED, exited(0), 4.0, [finish(0, 0)]),
         (m.START_FAILED, None, 4.0, []),
         (m.TIMEOUT, None, 9.0, [])],
        {"state": m.DOWN, "want": m.WANT_ONCE}),
    "svc -x while up waits for the service to go down": (
        m.WANT_UP,
        [(m.TIMEOUT, None, 0.0, [RUN]),
         (m.STARTED, 5, 0.0, []),
         (m.EXIT, None, 1.0, []),
         (m.DOWN_CMD, None, 1.0, [TERM, CONT]),
         (m.EXITED, killed(15), 1.1, [finish(-1, 15)]),
         (m.START_FAILED, None, 1.1, [("exit", 0)])],
        {"state": m.DOWN}),
    "svc -x while down exits at once": (
        m.WANT_DOWN,
        [(m.EXIT, None, 0.0, [("exit", 0)])],
        {"exit_when_down": True}),
    "pause and continue, and signals only while running": (
        m.WANT_DOWN,
        [(m.PAUSE, None, 0.0, []),
         (m.SIGNAL, signal.SIGHUP, 0.0, []),
         (m.UP, None, 0.0, [RUN]),
         (m.STARTED, 9, 0.0, []),
         (m.PAUSE, None, 1.0, [STOP]),
         (m.SIGNAL, signal.SIGHUP, 1.0, [("kill", signal.SIGHUP)]),
         (m.CONT, None, 1.0, [CONT])],
        {"paused": False, "state": m.RUN}),
    "finish that outlives its timeout is killed": (
        m.WANT_UP,
        [(m.TIMEOUT, None, 0.0, [RUN]),
         (m.STARTED, 5, 0.0, []),
         (m.EXITED, exited(1), 2.0, [finish(1, 0)]),
         (m.STARTED, 6, 2.0, []),
         (m.TIMEOUT, None, 4.0, []),
         (m.TIMEOUT, None, 7.0, [KILL]),
         (m.EXITED, killed(9), 7.0, [RUN])],
        {"state": m.DOWN}),
    "a run that cannot start is retried every second": (
        m.WANT_UP,
        [(m.TIMEOUT, None, 0.0, [RUN]),
         (m.START_FAILED, None, 0.0, []),
         (m.TIMEOUT, None, 0.9, []),
         (m.TIMEOUT, None, 1.0, [RUN])],
        {"state": m.DOWN}),
    "HUP lets a logger end by itself, then exits": (
        m.WANT_UP,
        [(m.TIMEOUT, None, 0.0, [RUN]),
         (m.STARTED, 5, 0.0, []),
         (m.HANGUP, None, 1.0, []),
         (m.EXITED, exited(0), 3.0, [finish(0, 0)]),
         (m.START_FAILED, None, 3.0, [("exit", 0)])],
        {"want": m.WANT_DOWN}),
    "commands during finish change want only": (
        m.WANT_UP,
        [(m.TIMEOUT, None, 0.0, [RUN]),
         (m.STARTED, 5, 0.0, []),
         (m.EXITED, exited(0), 3.0, [finish(0, 0)]),
         (m.STARTED, 6, 3.0, []),
         (m.DOWN_CMD, None, 3.0, []),
         (m.SIGNAL, signal.SIGTERM, 3.0, []),
         (m.EXITED, exited(0), 3.5, [])],
        {"want": m.WANT_DOWN, "state": m.DOWN}),
}


@pytest.mark.parametrize("name", HISTORIES)
def test_history(name):
    want, events, expected = HISTORIES[name]
    sv = m.Supervisor(want, now=0.0)
    for event, arg, now, effects in events:
        assert actions(m.step(sv, event, now, (int(now), 0), arg)) == effects, (event, arg, now)
    for field, value in expected.items():
        assert getattr(sv, field) == value, field


def test_control_bytes_map_to_events():
    """Every daemontools and runit letter is known; other bytes are ignored."""
    sv = m.Supervisor(m.WANT_DOWN)
    assert m.command(sv, ord("z"), 0.0) == []
    assert m.command(sv, 0, 0.0) == []
    assert set(chr(b) for b in m.COMMANDS) == set("udopchaitkqx12rPCK")


def test_deadline():
    sv = m.Supervisor(m.WANT_UP, now=3.0)
    assert m.deadline(sv) == 3.0
    m.step(sv, m.DOWN_CMD, 3.0)
    assert m.deadline(sv) is None


def play(sv, events):
    out = []
    for event, arg, now in events:
        out.append(actions(m.step(sv, event, now, (int(now), 0), arg)))
    return out


def test_critical_service_fails_after_n_quick_failures():
    sv = m.Supervisor(m.WANT_UP, now=0.0, critical=2)
    effects = play(sv, [(m.TIMEOUT, None, 0.0), (m.STARTED, 1, 0.0),
                        (m.EXITED, exited(4), 1.0), (m.START_FAILED, None, 1.0),
                        (m.TIMEOUT, None, 1.0), (m.STARTED, 2, 1.0),
                        (m.EXITED, exited(4), 2.0), (m.START_FAILED, None, 2.0)])
    assert effects[-1] == [("exit", 4)] and sv.failed


def test_a_long_run_or_a_clean_exit_resets_the_count():
    sv = m.Supervisor(m.WANT_UP, now=0.0, critical=2)
    play(sv, [(m.TIMEOUT, None, 0.0), (m.STARTED, 1, 0.0),
              (m.EXITED, exited(4), 1.0), (m.START_FAILED, None, 1.0),
              (m.TIMEOUT, None, 1.0), (m.STARTED, 2, 1.0),
              (m.EXITED, exited(4), 100.0), (m.START_FAILED, None, 100.0)])
    assert sv.failures == 1 and not sv.failed
    play(sv, [(m.TIMEOUT, None, 100.0), (m.STARTED, 3, 100.0),
              (m.EXITED, exited(0), 101.0), (m.START_FAILED, None, 101.0)])
    assert sv.failures == 0


def test_signals_we_sent_are_not_failures():
    """svc -k, -t, -d on a critical service do not count against it."""
    sv = m.Supervisor(m.WANT_UP, now=0.0, critical=1)
    play(sv, [(m.TIMEOUT, None, 0.0), (m.STARTED, 1, 0.0),
              (m.SIGNAL, signal.SIGKILL, 0.5), (m.EXITED, killed(9), 0.5),
              (m.START_FAILED, None, 0.5)])
    assert sv.failures == 0 and not sv.failed
    effects = play(sv, [(m.TIMEOUT, None, 1.0), (m.STARTED, 2, 1.0),
                        (m.EXITED, killed(11), 1.5), (m.START_FAILED, None, 1.5)])
    assert sv.failed and effects[-1] == [("exit", 128 + 11)]


def test_finish_125_is_a_permanent_failure():
    sv = m.Supervisor(m.WANT_UP, now=0.0, critical=3)
    effects = play(sv, [(m.TIMEOUT, None, 0.0), (m.STARTED, 1, 0.0),
                        (m.EXITED, exited(0), 5.0), (m.STARTED, 2, 5.0),
                        (m.EXITED, exited(125), 5.1)])
    assert effects[-1] == [("exit", 1)]


def test_backoff_never_overflows():
    sv = m.Supervisor(m.WANT_UP, now=0.0, backoff_max=60.0)
    now = 0.0
    for _ in range(2000):
        play(sv, [(m.TIMEOUT, None, max(now, sv.next_start)), (m.STARTED, 1, max(now, sv.next_start))])
        now = sv.next_start + 0.5
        play(sv, [(m.EXITED, exited(1), now), (m.START_FAILED, None, now)])
    assert sv.delay == 60.0 and sv.quick_deaths == 2000


def test_a_reload_signal_does_not_excuse_a_later_crash():
    sv = m.Supervisor(m.WANT_UP, now=0.0, critical=1)
    play(sv, [(m.TIMEOUT, None, 0.0), (m.STARTED, 1, 0.0),
              (m.SIGNAL, signal.SIGHUP, 0.5), (m.EXITED, exited(2), 1.0),
              (m.START_FAILED, None, 1.0)])
    assert sv.failed and sv.quick_deaths == 1


def test_svc_u_on_a_failed_service_starts_it_without_the_old_delay():
    sv = m.Supervisor(m.WANT_UP, now=0.0, max_deaths=1, backoff_max=60.0)
    play(sv, [(m.TIMEOUT, None, 0.0), (m.STARTED, 1, 0.0), (m.EXITED, exited(1), 0.1),
              (m.START_FAILED, None, 0.1)])
    assert sv.failed
    assert play(sv, [(m.UP, None, 5.0)]) == [[RUN]]


EVENTS = (m.UP, m.ONCE, m.DOWN_CMD, m.RESTART, m.PAUSE, m.CONT, m.SIGNAL, m.GROUP, m.EXIT,
          m.HANGUP, m.SHUTDOWN, m.TIMEOUT, m.STARTED, m.START_FAILED, m.ADOPTED, m.EXITED,
          m.READY, m.CHECK_STARTED, m.CHECK_START_FAILED, m.CHECK_EXITED, m.DEPS)


def test_the_table_names_every_cell():
    """A row per event, a cell per state (DOWN, RUN, FINISH), each a named
    function: no hidden default."""
    assert set(m.TABLE) == set(EVENTS)
    for event, row in m.TABLE.items():
        assert len(row) == 3, event
        assert all(callable(cell) for cell in row), event
    assert {event for event, _ in m.COMMANDS.values()} <= set(EVENTS)


def test_an_unknown_event_is_an_error_an_unknown_byte_is_not():
    sv = m.Supervisor(m.WANT_DOWN, now=0.0)
    with pytest.raises(KeyError):
        m.step(sv, "bogus", 0.0)
    assert m.command(sv, ord("z"), 0.0) == []


def running(now=0.0, **policy):
    sv = m.Supervisor(m.WANT_UP, now=now, **policy)
    play(sv, [(m.TIMEOUT, None, now), (m.STARTED, 100, now)])
    return sv


def fields(sv):
    return {name: getattr(sv, name) for name in m.Supervisor.__slots__
            if name not in ("policy", "hold_until")}


@pytest.mark.parametrize("state", ["down", "run", "finish"])
def test_shutdown_is_down_then_exit(state):
    """supervise's TERM is one event with the effects and the outcome of the
    two it was fed before: svc -d, then svc -x."""
    def make():
        if state == "down":
            return m.Supervisor(m.WANT_UP, now=0.0)
        sv = running(finish=True)
        if state == "finish":
            m.step(sv, m.EXITED, 1.0, (1, 0), exited(0))
        return sv
    one, two = make(), make()
    got = m.step(one, m.SHUTDOWN, 2.0, (2, 0))
    assert got == m.step(two, m.DOWN_CMD, 2.0, (2, 0)) + m.step(two, m.EXIT, 2.0, (2, 0))
    assert fields(one) == fields(two)


def test_shutdown_holds_status_writes_while_run_lives():
    """At a shutdown ./run's exit comes in a moment: the status waits HOLD
    for it (one write then says both), and the hold is a deadline."""
    sv = running()
    assert m.may_write(sv, 1.0)
    assert m.step(sv, m.SHUTDOWN, 1.0, (1, 0)) == [TERM, CONT]
    assert not m.may_write(sv, 1.0) and not m.may_write(sv, 1.0 + m.HOLD / 2)
    assert m.deadline(sv) == 1.0 + m.HOLD
    assert m.step(sv, m.TIMEOUT, 1.0 + m.HOLD) == []
    assert m.may_write(sv, 1.0 + m.HOLD) and m.deadline(sv) is None


def test_the_run_exit_ends_the_hold():
    sv = running()
    m.step(sv, m.SHUTDOWN, 1.0, (1, 0))
    m.step(sv, m.EXITED, 1.01, (1, 0), killed(signal.SIGTERM))
    assert sv.state == m.FINISH and m.may_write(sv, 1.01)
    assert m.step(sv, m.START_FAILED, 1.01) == [("announce", "down"), ("exit", 0)]


@pytest.mark.parametrize("state", ["down", "finish"])
def test_no_hold_when_run_is_not_running(state):
    sv = m.Supervisor(m.WANT_DOWN, now=0.0) if state == "down" else running(finish=True)
    if state == "finish":
        m.step(sv, m.EXITED, 1.0, (1, 0), exited(0))
    m.step(sv, m.SHUTDOWN, 1.0, (1, 0))
    assert m.may_write(sv, 1.0) and sv.hold_until is None


def test_a_second_term_holds_again():
    sv = running()
    m.step(sv, m.SHUTDOWN, 1.0)
    m.step(sv, m.SHUTDOWN, 1.03)
    assert not m.may_write(sv, 1.0 + m.HOLD) and m.deadline(sv) == 1.03 + m.HOLD


# --- Hypothesis: the state machine under any control bytes ---------------------------

EFFECTS = {"spawn", "kill", "killgroup", "killcheck", "announce", "exit"}


class Driver:
    """Plays the supervise loop's part for the pure machine: spawns succeed
    (with made-up pids) or fail as the test says, and effects are checked."""

    def __init__(self, sv):
        self.sv = sv
        self.now = 0.0
        self.pid = 100
        self.fail_next = False

    def wall(self):
        return (int(self.now), int(self.now % 1 * 1e9))

    def feed(self, event, arg=None):
        self.carry_out(m.step(self.sv, event, self.now, self.wall(), arg))

    def byte(self, b):
        self.carry_out(m.command(self.sv, b, self.now, self.wall()))

    def carry_out(self, effects):
        for effect in effects:
            assert effect[0] in EFFECTS, effect
            if effect[0] != "spawn":
                continue
            check = effect[1] == "check"
            if self.fail_next:
                self.fail_next = False
                self.feed(m.CHECK_START_FAILED if check else m.START_FAILED)
            else:
                self.pid += 1
                self.feed(m.CHECK_STARTED if check else m.STARTED, self.pid)

    def do(self, op, arg):
        if op == "bytes":
            for b in arg:
                self.byte(b)
        elif op == "tick":
            self.now += arg
            self.feed(m.TIMEOUT)
        elif op == "exit":
            if self.sv.pid and self.sv.state != m.DOWN:
                self.feed(m.EXITED, arg)
        elif op == "check_exit":
            if self.sv.check_pid:
                self.feed(m.CHECK_EXITED, arg)
        elif op == "fail_next":
            self.fail_next = True
        else:
            self.feed(op)                # READY, HANGUP


def invariants(sv):
    assert sv.state in (m.DOWN, m.RUN, m.FINISH)
    assert sv.want in (m.WANT_UP, m.WANT_DOWN, m.WANT_ONCE)
    if sv.state == m.DOWN:
        assert sv.pid == 0
    else:
        assert sv.pid > 0
    if sv.paused:
        assert sv.state == m.RUN
    due = m.deadline(sv)
    assert due is None or isinstance(due, float)
    want = status.WANT_DOWN if sv.want == m.WANT_ONCE else sv.want
    packed = status.pack(status.Status(sv.stamp[0], sv.stamp[1], sv.pid, sv.paused, want,
                                       sv.term, sv.state))
    assert status.unpack(packed).pid == sv.pid        # what supervise writes is readable


policies = st.builds(
    policy.Policy,
    notify_fd=st.sampled_from([None, 3]), check=st.booleans(),
    check_interval=st.sampled_from([None, 0.5]),
    restart=st.sampled_from(["always", "on-failure", "never"]),
    max_deaths=st.sampled_from([0, 2]), critical=st.sampled_from([0, 2]),
    timeout_kill=st.sampled_from([None, 0.3]), down_signal=st.sampled_from([15, 1]),
    backoff_max=st.sampled_from([60.0, 2.0]))


ops = st.one_of(
    st.tuples(st.just("bytes"), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("bytes"), st.lists(st.sampled_from(sorted(m.COMMANDS)), min_size=1,
                                         max_size=4).map(bytes)),
    st.tuples(st.just("tick"), st.sampled_from([0.0, 0.05, 0.3, 1.0, 11.0, 61.0])),
    st.tuples(st.just("exit"), st.sampled_from([0, 1 << 8, 125 << 8, 9, 15])),
    st.tuples(st.just("check_exit"), st.sampled_from([0, 1 << 8])),
    st.tuples(st.sampled_from(["fail_next", m.READY, m.HANGUP]), st.none()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([m.WANT_UP, m.WANT_DOWN]), policies, st.lists(ops, max_size=60))
def test_machine_survives_any_control_bytes(want, policy, history):
    """Whatever bytes arrive, between whatever exits and timeouts: no
    exception, only known effects, and a state supervise can write down."""
    sv = m.Supervisor(want, 0.0, policy)
    driver = Driver(sv)
    driver.feed(m.TIMEOUT)
    invariants(sv)
    for op, arg in history:
        driver.do(op, arg)
        invariants(sv)
