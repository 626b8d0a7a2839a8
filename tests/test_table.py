"""The status table, pure (table.py): the NOTE each state gets, why's words, a
note cut to the terminal, runit's `sv status` line, and the colour of a
service down but wanted up.
"""

from pathlib import Path

import pytest

from svtree import table, tree


def fake_record(**fields):
    rec = {**tree.blank(tree.Entry(Path("/s/web"))), "process": "down", "pid": 0,
           "want": "up", "normally_up": True, "seconds": 3.0, "supervised": True,
           "source": "state.json", "starts": 4, "ready": False, "failed": False,
           "readiness": "none", "quick_deaths": 0, "backoff": 1.0}
    rec.update(fields)
    rec["state"] = fields.get("state", "down")
    return rec


NOW = 1_800_000_000.0
NOTES = [
    ({"error": "supervise not running", "state": "unknown"}, "supervise not running"),
    ({"start_error": "unable to start ./run: run is not executable (chmod +x run)"},
     "unable to start ./run: run is not executable (chmod +x run)"),
    ({"failed": True, "reason": "max-deaths 4 reached", "state": "failed", "want": "down"},
     "max-deaths 4 reached"),
    ({"failed": True, "state": "failed", "want": "down"}, ""),
    ({"quick_deaths": 3, "next_start": NOW + 2.5, "state": "backing off"}, "next start in 3s"),
    ({"quick_deaths": 0, "next_start": NOW + 0.4}, "next start in 1s"),
    ({"quick_deaths": 2, "state": "backing off"}, ""),
    ({"process": "run", "pid": 7, "readiness": "check", "state": "up"}, "waiting for ./check"),
    ({"process": "run", "pid": 7, "readiness": "notify", "state": "up"},
     "waiting for its notification-fd"),
    ({"process": "run", "pid": 7, "readiness": "none", "state": "up"}, ""),
    ({"process": "run", "pid": 7, "readiness": "notify", "ready": True, "state": "ready"}, ""),
    ({"normally_up": False, "want": "down"}, "normally down"),
]


@pytest.mark.parametrize(("fields", "note"), NOTES)
def test_the_note(fields, note):
    assert table.note(fake_record(**fields), NOW) == note


def test_why_words_a_failure_and_a_backoff_in_full():
    assert table.why(fake_record(failed=True, reason="finish exited 125"), NOW) == \
        "failed: finish exited 125"
    assert table.why(fake_record(quick_deaths=3, next_start=NOW + 59.5), NOW) == \
        "backing off, next start in 1m00s"


def test_a_long_note_is_cut_to_the_terminal():
    rec = fake_record(start_error="unable to start ./run: " + "x" * 300)
    full = table.lines([rec], now=NOW)[1]
    assert full.endswith("...") and len(full) < 300          # NOTE_MAX, in a pipe too
    cut = table.lines([rec], now=NOW, width=80)[1]
    assert len(cut) == 80 and cut.endswith("...")
    narrow = table.lines([rec], now=NOW, width=20)[1]         # never shorter than NOTE_MIN
    assert narrow.split("  ")[-1].startswith("unable to start ./run")


def test_sv_line_is_runits():
    """runit's `sv status` words, then svtree's."""
    up = fake_record(process="run", pid=4242, seconds=185.7, state="ready", ready=True,
                     readiness="notify")
    assert table.sv_line(up, NOW) == "run: /s/web: (pid 4242) 185s, ready"
    assert table.sv_line({**up, "normally_up": False, "paused": True, "want": "down",
                          "state": "paused"}, NOW) == \
        "run: /s/web: (pid 4242) 185s, normally down, paused, want down"
    down = fake_record(quick_deaths=2, next_start=NOW + 2, state="backing off")
    assert table.sv_line(down, NOW) == \
        "down: /s/web: 3s, normally up, want up, backing off, next start in 2s"
    assert table.sv_line(fake_record(want="down"), NOW) == "down: /s/web: 3s, normally up"
    unknown = {**tree.blank(tree.Entry(Path("/s/\x1b[31m"))), "error": "supervise not running"}
    assert table.sv_line(unknown, NOW) == "/s/\\x1b[31m: supervise not running"


def test_down_but_wanted_up_is_red():
    """The state an operator must see, coloured as failed is."""
    rec = {**tree.blank(tree.Entry(Path("/s/web"))), "state": "down", "process": "down",
           "want": "up", "pid": 0, "seconds": 3.0, "normally_up": True}
    assert table.style(rec) == "down, want up"
    assert table.COLOURS["down, want up"] == {"fg": "red", "bold": True}
    assert table.style({**rec, "want": "down"}) == "down"
    painted = table.lines([rec], paint=lambda text, key: f"<{key}>{text.strip()}</>")
    assert "<down, want up>down</>" in painted[1]
