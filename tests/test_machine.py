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

from svtree import config, machine as m, status

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
    config.Policy,
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
