"""multilog's script language, parsed; and its line patterns, matched. Pure.

Each argument of `multilog SCRIPT...` is one action, applied to every line
in order (daemontools' multilog(8)):

    t / T       (first only) prefix lines with @TAI64N, or with an ISO 8601
                local time (s6-log's T); patterns then see the prefix
    -PATTERN    deselect the line if it matches (all lines start selected)
    +PATTERN    select the line if it matches
    e           copy the first 200 bytes of a selected line to stderr
    =FILE       replace FILE with the first 1000 bytes of a selected line,
                padded with newlines to 1001 bytes
    sSIZE       current files of later log directories rotate near SIZE
                bytes (4096..16777215, default 99999)
    nNUM        later log directories keep NUM-1 old files (>= 2, default 10)
    !PROCESSOR  later log directories run `sh -c PROCESSOR` on each rotated file
    ./DIR, /DIR a log directory that selected lines are appended to

Anything else is ignored, as multilog ignores it.

A pattern is matched against the first 1000 bytes of the line: `*` before a
character c skips up to the first c, a final `*` matches anything, every other
character matches itself. That is exactly the regular expression built by
compile_pattern(), which is how it is matched quickly.
"""

import re

DEFAULT_SIZE = 99999
MIN_SIZE, MAX_SIZE = 4096, 16777215
DEFAULT_NUM = 10
PATTERN_SPAN = 1000       # bytes of each line patterns look at
ALERT_SPAN = 200          # bytes of each line `e` prints
STATUS_SIZE = 1001        # bytes of an =file


class Dir:
    """A log directory action and the settings in force where it appears."""

    __slots__ = ("path", "size", "num", "processor")

    def __init__(self, path, size=DEFAULT_SIZE, num=DEFAULT_NUM, processor=None):
        self.path, self.size, self.num, self.processor = path, size, num, processor

    def __eq__(self, other):
        return isinstance(other, Dir) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        return f"Dir({self.path!r}, size={self.size}, num={self.num}, processor={self.processor!r})"


class Script:
    """A parsed script: the timestamp kind and the actions in order.

    actions holds ("select", bool, compiled pattern), ("alert",),
    ("status", filename) and ("dir", Dir) tuples.
    """

    __slots__ = ("stamp", "actions")

    def __init__(self, stamp, actions):
        self.stamp = stamp        # None, "t" or "T"
        self.actions = actions

    @property
    def dirs(self):
        return [a[1] for a in self.actions if a[0] == "dir"]

    @property
    def plain(self):
        """True if every line goes to every directory: no patterns, e or =."""
        return all(a[0] == "dir" for a in self.actions)


def compile_pattern(pattern: bytes):
    """The regular expression that matches what multilog's pattern matches."""
    out = []
    for i, ch in enumerate(pattern):
        c = bytes((ch,))
        if c == b"*":
            if i == len(pattern) - 1:
                out.append(b".*")
            else:
                # skip to the next character without consuming it: a following
                # `*` is then a wildcard again, starting at that character
                nxt = re.escape(pattern[i + 1:i + 2])
                out.append(b"[^" + nxt + b"]*(?=" + nxt + b")")
        else:
            out.append(re.escape(c))
    return re.compile(b"".join(out), re.DOTALL)


def matches(compiled, line: bytes) -> bool:
    """Does the line (without its newline) match the compiled pattern?"""
    return compiled.fullmatch(line[:PATTERN_SPAN]) is not None


def parse(args: list[str]) -> Script:
    """Turn multilog's arguments into a Script."""
    stamp = None
    if args and args[0] in ("t", "T"):
        stamp, args = args[0], args[1:]
    size, num, processor = DEFAULT_SIZE, DEFAULT_NUM, None
    actions = []
    for arg in args:
        head, rest = arg[:1], arg[1:]
        if head in ("-", "+"):
            actions.append(("select", head == "+", compile_pattern(rest.encode("utf-8", "surrogateescape"))))
        elif arg == "e":
            actions.append(("alert",))
        elif head == "=":
            actions.append(("status", rest))
        elif head == "s":
            size = min(max(number(rest, DEFAULT_SIZE), MIN_SIZE), MAX_SIZE)
        elif head == "n":
            num = max(number(rest, DEFAULT_NUM), 2)
        elif head == "!":
            processor = rest or None
        elif head in (".", "/"):
            actions.append(("dir", Dir(arg, size, num, processor)))
    return Script(stamp, actions)


def number(text, default):
    digits = ""
    for ch in text:
        if ch not in "0123456789":     # not str.isdigit(): "²" is a digit to it
            break
        digits += ch
    return int(digits) if digits else default
