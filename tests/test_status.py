"""The supervise/status codec: golden bytes from daemontools and runit, round trips."""

import pytest
from hypothesis import given, strategies as st

from svtree import status

RUNIT_RUN = bytes.fromhex("400000006b022f0a0b1bd19476170000007500" "01")
DAEMONTOOLS_UP = bytes.fromhex("400000006b022ed702e762a44e1200000075")


def test_runit_golden_vector():
    """runsv's record of a running service: pid 0x1776, want up, state run."""
    s = status.unpack(RUNIT_RUN)
    assert (s.pid, s.want, s.state, s.paused, s.term) == (0x1776, b"u", status.RUN, False, False)
    assert s.seconds == 0x6B022F0A - 10 and s.nanoseconds == 0x0B1BD194
    assert status.pack(s) == RUNIT_RUN


def test_daemontools_golden_vector():
    """daemontools' 18 bytes: pid 4686 up, want up; state inferred from the pid."""
    s = status.unpack(DAEMONTOOLS_UP)
    assert (s.pid, s.want, s.state) == (4686, b"u", status.RUN)
    assert status.pack(s)[:18] == DAEMONTOOLS_UP


def test_daemontools_once_is_a_zero_byte():
    """The codec keeps daemontools' 0 for once (svtree's supervise writes b"d")."""
    assert status.pack(status.Status(want=status.WANT_ONCE))[17] == 0


statuses = st.builds(
    status.Status,
    seconds=st.integers(0, 2**40), nanoseconds=st.integers(0, 999_999_999),
    pid=st.integers(0, 2**32 - 1), paused=st.booleans(),
    want=st.sampled_from([status.WANT_UP, status.WANT_DOWN, status.WANT_ONCE]),
    term=st.booleans(), state=st.sampled_from([status.DOWN, status.RUN, status.FINISH]))


@given(statuses)
def test_round_trip(s):
    """unpack() undoes pack() for every representable status."""
    data = status.pack(s)
    assert len(data) == status.SIZE
    assert status.unpack(data) == s


# 18 or 20 bytes laid out as a status file, each field in range or just out of
# it: any bytes (above) hardly ever decode
shaped = st.builds(
    lambda stamp, nano, pid, paused, want, term, state, size: (
        stamp + nano.to_bytes(4, "big") + pid + bytes([paused]) + want + bytes([term, state])
    )[:size],
    st.binary(min_size=8, max_size=8), st.integers(0, 1_000_000_001),
    st.binary(min_size=4, max_size=4), st.integers(0, 255),
    st.sampled_from([status.WANT_UP, status.WANT_DOWN, status.WANT_ONCE, b"x"]),
    st.integers(0, 255), st.integers(0, 3),
    st.sampled_from([status.DAEMONTOOLS_SIZE, status.SIZE]))


@given(st.binary(max_size=40) | shaped)
def test_unpack_never_crashes(data):
    """Any bytes decode or raise BadStatus; nothing else escapes. What decodes
    is what the bytes say: packed again, the same bytes (the paused and term
    flags as 0 or 1; for 18 bytes, daemontools' own, the first 18)."""
    try:
        s = status.unpack(data)
    except status.BadStatus:
        return
    said = bytearray(data)
    said[16] = data[16] != 0
    if len(data) == status.SIZE:
        said[18] = data[18] != 0
    assert status.pack(s)[:len(data)] == said


@pytest.mark.parametrize("data", [b"", b"\0" * 17, b"\0" * 19, b"\0" * 21])
def test_wrong_sizes(data):
    with pytest.raises(status.BadStatus):
        status.unpack(data)
