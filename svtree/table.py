"""The status table: tree.Records as aligned lines of text.

    SERVICE            STATE         PID  TIME   STARTS  LAST    WANT  NOTE
    /service/cron      down            0  1h02m       0  -       down  normally down
    /service/db        ready        4242  3m05s       1  -       up
      /service/db/log  up           4243  3m05s       1  -       up
    /service/web       backing off     0  2s          7  exit 1  up    next start in 6s

A logger is indented under its service. Colour is the caller's choice: pass
a `paint(text, state)` (the CLI passes click.style, which click.echo strips
again when the output is not a terminal).

Every cell goes through printable(): a service's owner chooses its name, and
its supervise/ may hold anything, so no byte of theirs may reach a terminal
as a control. C0 controls, DEL and C1 controls are shown as \\xNN (ESC as
\\x1b), and so is each byte of a name that is not UTF-8 (the 0xff Python
holds as U+DCFF shows as \\xff); a backslash stays as it is. It is for eyes,
not for round trips: `svtree status --json` has the exact names.

The NOTE says what an operator must know beside the state, most pressing
first (why()): why the state is unknown, why ./run could not be started,
why the service failed, when a backing-off service starts next, what a
service that is up is still waiting for. On a terminal it is cut to the
width left (lines(width=...)); JSON has the whole text.

Two more views of the same record: sv_line(), runit's `sv status` line
(`run: /service/db: (pid 4242) 185s, ready`) for the control verbs, and
report(), the block of `svtree status -v` that answers "why is it failing".
"""

import math
import re
import signal
import time

HEADER = ("SERVICE", "STATE", "PID", "TIME", "STARTS", "LAST", "WANT", "NOTE")
RIGHT = {2, 4}        # numbers are right-aligned
COLOURS = {
    "ready": {"fg": "green"}, "up": {"fg": "green"}, "paused": {"fg": "yellow"},
    "finish": {"fg": "yellow"}, "backing off": {"fg": "yellow", "bold": True},
    "down": {}, "failed": {"fg": "red", "bold": True}, "unknown": {"fg": "magenta"},
    "skipped": {"dim": True}, "waiting": {"fg": "yellow"},
    "blocked": {"fg": "red", "bold": True},
    # not a state of its own, but the one an operator must see: down, wanted up
    "down, want up": {"fg": "red", "bold": True},
}
NOTE_MIN = 24         # a note is never cut shorter than this to fit a terminal
NOTE_MAX = 200        # nor shown longer than this in the table


# C0, DEL, C1, and surrogates (undecodable bytes, or a lone \ud800 from JSON)
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def escape_one(char: str, backslash: str = "\\") -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        code -= 0xDC00                   # surrogateescape: the byte it stands for
    elif code > 0xFF:
        return f"{backslash}u{code:04x}"
    return f"{backslash}x{code:02x}"


def printable(text: str, backslash: str = "\\", keep: str = "") -> str:
    """text with every control character and undecodable byte as \\xNN
    (backslash: what to write for the backslash; keep: controls to leave)."""
    def sub(match):
        char = match.group()
        return char if char in keep else escape_one(char, backslash)
    return UNPRINTABLE.sub(sub, text)


def duration(seconds) -> str:
    """42s, 3m05s, 4h07m, 2d03h: two units at most, as people read them."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def last_exit(value) -> str:
    if not value:
        return "-"
    if "signal" in value:
        try:
            return signal.Signals(value["signal"]).name
        except ValueError:
            return f"signal {value['signal']}"
    return f"exit {value.get('code')}"


def style(rec) -> str:
    """The key of COLOURS for a record: its state, or "down, want up"."""
    if rec["state"] == "down" and rec["want"] == "up" and rec["process"] == "down":
        return "down, want up"
    return rec["state"]


def why(rec, now=None) -> str | None:
    """What keeps a service from being well, in a few words, most pressing
    first; None when nothing does (or nothing is known)."""
    now = time.time() if now is None else now
    if rec["error"]:
        return rec["error"]                      # why the state is unknown
    if rec["start_error"]:
        return rec["start_error"]
    if rec["failed"]:
        return f"failed: {rec['reason']}" if rec["reason"] else "failed"
    if rec["process"] == "down" and rec["want"] in ("up", "once"):
        if rec["blocked_by"]:
            return "blocked by " + ", ".join(f"{n} ({w})" for n, w in rec["blocked_by"].items())
        if rec["waiting_for"]:
            return "waiting for " + ", ".join(rec["waiting_for"])
    if rec["process"] == "down" and rec["want"] == "up":
        if rec["next_start"] is not None and rec["next_start"] > now:
            wait = f"next start in {duration(math.ceil(rec['next_start'] - now))}"
            # no quick deaths: the second between two starts, no backoff
            return f"backing off, {wait}" if rec["quick_deaths"] else wait
        if rec["quick_deaths"]:
            return "backing off"
    if rec["process"] == "run" and rec["ready"] is False and not rec["paused"]:
        if rec["readiness"] == "check":
            return "waiting for ./check"
        if rec["readiness"] == "notify":
            return "waiting for its notification-fd"
    return None


def note(rec, now=None) -> str:
    words = []
    if rec["normally_up"] is False:
        words.append("normally down")
    trouble = why(rec, now)
    if trouble:
        # "backing off, next start in 3s" beside STATE "backing off": the rest says it
        for prefix in (f"{rec['state']}, ", f"{rec['state']}: "):
            trouble = trouble.removeprefix(prefix)
        if trouble != rec["state"]:
            words.append(trouble)
    elif rec.get("depends"):
        words.append("depends on " + ", ".join(rec["depends"]))
    return ", ".join(words)


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width, 4) - 3] + "..."


def row(rec, now=None) -> tuple[str, ...]:
    name = rec["service"]
    if rec["logger_of"] is not None or rec.get("instance_of") is not None:
        name = "  " + name
    known = rec["process"] is not None
    cells = (name, rec["state"],
             str(rec["pid"]) if known else "-",
             duration(rec["seconds"]),
             "-" if rec["starts"] is None else str(rec["starts"]),
             last_exit(rec["last_exit"]),
             rec["want"] or "-",
             shorten(note(rec, now), NOTE_MAX))
    return tuple(printable(c) for c in cells)


def lines(records, paint=None, now=None, width=None) -> list[str]:
    """The table, header first; paint(text, key) colours the state column
    (key: style(record)); width: a terminal's, to which notes are cut."""
    now = time.time() if now is None else now
    rows = [HEADER] + [row(r, now) for r in records]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    room = None if width is None else max(NOTE_MIN, width - sum(widths) - 2 * len(widths))
    out = []
    for n, cells in enumerate(rows):
        padded = [c.rjust(w) if i in RIGHT else c.ljust(w)
                  for i, (c, w) in enumerate(zip(cells, widths))]
        padded.append(cells[-1] if room is None else shorten(cells[-1], room))
        if paint and n:
            padded[1] = paint(padded[1], style(records[n - 1]))
        out.append("  ".join(padded).rstrip())
    return out


# --- runit's line, for the control verbs ---------------------------------------------

def sv_line(rec, now=None) -> str:
    """runit's `sv status` words for a record, then svtree's own:

        run: /service/db: (pid 4242) 185s, ready
        down: /service/web: 3s, normally up, want up, backing off, next start in 2s
        finish: /service/web: (pid 4250) 0s, want down

    An unknown state is the reason alone (`supervise not running`)."""
    name = rec["service"]
    if rec["process"] is None:
        return printable(f"{name}: {rec['error'] or 'state unknown'}")
    words = [f"{rec['process']}: {name}: "]
    if rec["pid"]:
        words.append(f"(pid {rec['pid']}) ")
    words.append(f"{int(rec['seconds'] or 0)}s")
    running = rec["process"] != "down"
    if running and rec["normally_up"] is False:
        words.append(", normally down")
    if not running and rec["normally_up"]:
        words.append(", normally up")
    if rec["paused"]:
        words.append(", paused")
    if not running and rec["want"] == "up":
        words.append(", want up")
    if running and rec["want"] in ("down", "once"):
        words.append(f", want {rec['want']}")
    if rec["state"] == "ready":
        words.append(", ready")
    trouble = why(rec, now)
    if trouble:
        words.append(f", {shorten(trouble, NOTE_MAX)}")
    return printable("".join(words))


# --- the block of `svtree status -v` ---------------------------------------------------

READINESS = {
    "notify": "notify (a newline on its notification-fd)",
    "check": "check (./check exits 0)",
    "none": "none (no notification-fd, no ./check): ready once up for a second",
}


def report(rec, now=None, paint=None) -> list[str]:
    """What svtree knows of one service, a line an aspect:

        /service/web: down 3s, want up
          start error  unable to start ./run: ./run is not executable (chmod +x ./run)
          last exit    exit 1, after 0.2s (12 starts)
          backoff      next start in 3s, 4 quick deaths in a row, delay 8s
          failed       no
          readiness    notify (a newline on its notification-fd), not ready

    (the CLI adds the log). paint(text, key) colours the state."""
    now = time.time() if now is None else now
    state = rec["state"] if paint is None else paint(rec["state"], style(rec))
    head = [f"{duration(rec['seconds'])}"] if rec["seconds"] is not None else []
    if rec["pid"]:
        head.append(f"pid {rec['pid']}")
    if rec["want"]:
        head.append(f"want {rec['want']}")
    if rec["normally_up"] is False:
        head.append("normally down")
    out = [f"{printable(rec['service'])}: {state} {printable(', '.join(head))}".rstrip()]
    for label, value in aspects(rec, now):
        out.append(f"  {label:<12} {shorten(printable(value), NOTE_MAX)}")
    return out


def aspects(rec, now) -> list[tuple[str, str]]:
    if rec["error"]:
        return [(rec["state"], rec["error"])]      # unknown (or skipped): why
    if rec["source"] != "state.json":
        return [("more", "not known: only svtree's supervise writes supervise/state.json")]
    exited = "none yet"
    if rec["last_exit"]:
        exited = last_exit(rec["last_exit"])
        if rec["last_duration"] is not None:
            exited += f", after {seconds_text(rec['last_duration'])}"
    exited += f" ({rec['starts']} start{'' if rec['starts'] == 1 else 's'})"
    return [
        *([("depends", depends(rec))] if rec.get("depends") is not None else []),
        ("start error", rec["start_error"] or "none"),
        ("last exit", exited),
        ("backoff", backoff(rec, now)),
        ("failed", f"yes: {rec['reason'] or 'no reason given'}" if rec["failed"] else "no"),
        ("readiness", readiness(rec)),
    ]


def depends(rec) -> str:
    """Each dependency with what holds the service on it, if anything."""
    blocked, waiting = rec["blocked_by"] or {}, rec["waiting_for"] or ()
    words = [f"{name} (blocked: {blocked[name]})" if name in blocked
             else f"{name} (not ready)" if name in waiting else name
             for name in rec["depends"]]
    return ", ".join(words) or "none (an empty depends file)"


def seconds_text(seconds: float) -> str:
    """0.2s, 12.5s, 3m05s: tenths below a minute (a quick death is quick)."""
    return f"{seconds:.1f}s" if seconds < 60 else duration(seconds)


def backoff(rec, now) -> str:
    words = []
    if rec["process"] == "down" and rec["want"] == "up" and rec["next_start"] is not None:
        left = rec["next_start"] - now
        words.append(f"next start in {duration(math.ceil(left))}" if left > 0
                     else "next start due")
    deaths = rec["quick_deaths"] or 0
    if deaths:
        words.append(f"{deaths} quick death{'' if deaths == 1 else 's'} in a row")
    if rec["backoff"] is not None and deaths:
        words.append(f"delay {seconds_text(rec['backoff'])}")
    return ", ".join(words) or "none"


def readiness(rec) -> str:
    how = READINESS.get(rec["readiness"], "not told (an older supervise)")
    if rec["process"] != "run":
        return how
    if rec["readiness"] == "none":
        return how + (", up a second or more" if rec["ready"] else ", up less than a second")
    return how + (", ready" if rec["ready"] else ", not ready")
