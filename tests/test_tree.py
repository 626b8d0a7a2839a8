"""tree.read: one service's record, from a status file and a state.json written
by hand (conftest's Fake): the record of an older supervise, the newer fields
when bad (that service unknown, with the reason), when anything at all
(Hypothesis: every view of it printable), and their texts cut and escaped.

Covered elsewhere: every other file svtree reads back, as hostile
(test_hostile).
"""

import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from conftest import Fake, record, run, state_json, status_record
from svtree import table, tree


def test_a_record_without_readiness_is_shown_as_before(fakes):
    """state.json of an older supervise (no readiness field): ready means ready."""
    sv = fakes()
    sv.write()
    assert record(sv.path)["state"] == "ready" and record(sv.path)["readiness"] is None
    status, stamp = status_record()
    sv.write(status=status, record=state_json(stamp, readiness="none"))
    assert record(sv.path)["state"] == "up" and record(sv.path)["ready"] is True


BAD_FIELDS = {
    "readiness": ("maybe", "readiness is not notify, check or none"),
    "error": (5, "error is not a string"),
    "reason": (["x"], "reason is not a string"),
    "next_start": ("soon", "next_start is not a time"),
    "last_duration": (-1, "last_duration is not a duration"),
    "backoff": (float("inf"), "backoff is not a duration"),     # written as Infinity
}


@pytest.mark.parametrize("name", list(BAD_FIELDS))
def test_a_bad_new_field_costs_its_service_alone(fakes, name):
    value, why = BAD_FIELDS[name]
    sv = fakes()
    status, stamp = status_record()
    sv.write(status=status, record=state_json(stamp, **{name: value}))
    rec = record(sv.path)
    assert rec["state"] == "unknown"
    assert why in rec["error"]


NEW_FIELDS = st.fixed_dictionaries({}, optional={
    "readiness": st.sampled_from(["notify", "check", "none"]) | st.text(max_size=8),
    "error": st.text(max_size=600) | st.integers(), "reason": st.text(max_size=600),
    "next_start": st.floats(allow_nan=False) | st.integers(), "last_duration": st.floats(),
    "backoff": st.floats(min_value=-1, max_value=1e9) | st.none(),
    "ready": st.booleans(), "failed": st.booleans(), "quick_deaths": st.integers(-1, 40)})


@settings(max_examples=100, deadline=None)
@given(fields=NEW_FIELDS, process=st.sampled_from([0, 1, 2]))
def test_fuzz_the_new_fields(fields, process):
    """Any values of the new fields: a record or a one-line reason, and every
    view of it (table, sv_line, report) printable, one line a row, never an
    exception."""
    with tempfile.TemporaryDirectory() as d:
        sv = Fake(Path(d))
        try:
            pid = 4321 if process else 0
            status, stamp = status_record(pid=pid, state=process)
            sv.write(status=status, record=json.dumps(
                {**json.loads(state_json(stamp, pid=pid)), **fields}).encode())
            rec = record(sv.path)
        finally:
            sv.close()
    assert rec["state"] in tree.STATES
    texts = table.lines([rec]) + [table.sv_line(rec)] + table.report(rec)
    for text in texts:
        assert "\n" not in text and not re.search("[\x00-\x1f\x7f-\x9f\ud800-\udfff]", text)
    for key in ("start_error", "reason"):
        assert rec[key] is None or len(rec[key]) <= tree.TEXT_MAX


def test_texts_of_the_record_are_cut_and_escaped(fakes):
    sv = fakes()
    status, stamp = status_record(pid=0, state=0)
    evil = "unable to start ./run: \x1b]0;owned\x07\x9b2J " + "é" * 2000
    sv.write(status=status, record=state_json(
        stamp, state="down", pid=0, ready=False, error=evil, reason="\x1b[31mred",
        failed=True))
    rec = record(sv.path)
    assert len(rec["start_error"]) == tree.TEXT_MAX and rec["start_error"].endswith("...")
    assert rec["reason"] == "\x1b[31mred"                # exact in JSON (escaped there)
    for args in (["status"], ["status", "-v"], ["why"], ["wait", "up", "--timeout", "0"]):
        r = run("svtree", *args, sv.path)
        for text in (r.stdout, r.stderr):
            assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text
    r = run("svtree", "status", "--json", sv.path)
    assert "\\u001b]0;owned" in r.stdout
    assert "\\x1b]0;owned" in run("svtree", "status", sv.path).stdout
