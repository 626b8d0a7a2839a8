"""The status table: tree.Records as aligned lines of text.

    SERVICE            STATE         PID  TIME   STARTS  LAST    WANT  NOTE
    /service/cron      down            0  1h02m       0  -       down  normally down
    /service/db        ready        4242  3m05s       1  -       up
      /service/db/log  ready        4243  3m05s       1  -       up
    /service/web       backing off     0  2s          7  exit 1  up

A logger is indented under its service. Colour is the caller's choice: pass
a `paint(text, state)` (the CLI passes click.style, which click.echo strips
again when the output is not a terminal).
"""

import signal

HEADER = ("SERVICE", "STATE", "PID", "TIME", "STARTS", "LAST", "WANT", "NOTE")
RIGHT = {2, 4}        # numbers are right-aligned
COLOURS = {
    "ready": {"fg": "green"}, "up": {"fg": "green"}, "paused": {"fg": "yellow"},
    "finish": {"fg": "yellow"}, "backing off": {"fg": "yellow", "bold": True},
    "down": {}, "failed": {"fg": "red", "bold": True}, "unknown": {"fg": "magenta"},
    "skipped": {"dim": True},
}


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


def note(rec) -> str:
    words = []
    if rec["normally_up"] is False:
        words.append("normally down")
    if rec["error"]:
        words.append(rec["error"])
    return ", ".join(words)


def row(rec) -> tuple[str, ...]:
    name = rec["service"]
    if rec["logger_of"] is not None:
        name = "  " + name
    known = rec["process"] is not None
    return (name, rec["state"],
            str(rec["pid"]) if known else "-",
            duration(rec["seconds"]),
            "-" if rec["starts"] is None else str(rec["starts"]),
            last_exit(rec["last_exit"]),
            rec["want"] or "-",
            note(rec))


def lines(records, paint=None) -> list[str]:
    """The table, header first; paint(text, state) colours the state column."""
    rows = [HEADER] + [row(r) for r in records]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    out = []
    for n, cells in enumerate(rows):
        padded = [c.rjust(w) if i in RIGHT else c.ljust(w)
                  for i, (c, w) in enumerate(zip(cells, widths))]
        if paint and n:
            padded[1] = paint(padded[1], records[n - 1]["state"])
        out.append("  ".join(padded).rstrip())
    return out
