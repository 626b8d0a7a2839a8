"""The status table: tree.Records as aligned lines of text.

    SERVICE            STATE         PID  TIME   STARTS  LAST    WANT  NOTE
    /service/cron      down            0  1h02m       0  -       down  normally down
    /service/db        ready        4242  3m05s       1  -       up
      /service/db/log  ready        4243  3m05s       1  -       up
    /service/web       backing off     0  2s          7  exit 1  up

A logger is indented under its service. Colour is the caller's choice: pass
a `paint(text, state)` (the CLI passes click.style, which click.echo strips
again when the output is not a terminal).

Every cell goes through printable(): a service's owner chooses its name, and
its supervise/ may hold anything, so no byte of theirs may reach a terminal
as a control. C0 controls, DEL and C1 controls are shown as \\xNN (ESC as
\\x1b), and so is each byte of a name that is not UTF-8 (the 0xff Python
holds as U+DCFF shows as \\xff); a backslash stays as it is. It is for eyes,
not for round trips: `svtree status --json` has the exact names.
"""

import re
import signal

HEADER = ("SERVICE", "STATE", "PID", "TIME", "STARTS", "LAST", "WANT", "NOTE")
RIGHT = {2, 4}        # numbers are right-aligned
COLOURS = {
    "ready": {"fg": "green"}, "up": {"fg": "green"}, "paused": {"fg": "yellow"},
    "finish": {"fg": "yellow"}, "backing off": {"fg": "yellow", "bold": True},
    "down": {}, "failed": {"fg": "red", "bold": True}, "unknown": {"fg": "magenta"},
    "skipped": {"dim": True},
}


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
    cells = (name, rec["state"],
             str(rec["pid"]) if known else "-",
             duration(rec["seconds"]),
             "-" if rec["starts"] is None else str(rec["starts"]),
             last_exit(rec["last_exit"]),
             rec["want"] or "-",
             note(rec))
    return tuple(printable(c) for c in cells)


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
