"""TAI64N labels: golden vectors from daemontools' docs and round trips."""

import pytest
from hypothesis import given, strategies as st

from svtree import tai64n


def test_golden_label_from_tai64n_man_page():
    """@4000000037c219bf2ef02e94 is 935467455.787492500 s after 1970 TAI."""
    seconds, nano = tai64n.unpack(tai64n.parse("@4000000037c219bf2ef02e94"))
    assert seconds + 10 == 935467455 and nano == 787492500


def test_golden_status_stamp():
    """daemontools wrote 0x6b022ed7 for Unix time 1795305165 (+10 s offset)."""
    assert tai64n.pack(1795305165)[:8].hex() == "400000006b022ed7"


@given(st.integers(0, 2**40), st.integers(0, 999_999_999))
def test_round_trip(seconds, nano):
    """unpack() undoes pack(), and parse() undoes format()."""
    label = tai64n.pack(seconds, nano)
    assert len(label) == 12
    assert tai64n.unpack(label) == (seconds, nano)
    assert tai64n.parse(tai64n.format(label)) == label


@pytest.mark.parametrize("text", ["", "@", "4000000037c219bf2ef02e94", "@4000000037c219bf2ef02e9",
                                  "@4000000037c219bf3b9aca00x", "@4000000037c219bfffffffff"])
def test_bad_labels(text):
    with pytest.raises(tai64n.BadLabel):
        tai64n.parse(text)
