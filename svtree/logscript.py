"""multilog's script language, parsed; and its line patterns, matched. Pure.

Each argument of `multilog SCRIPT...` is one action, applied to every line
in order (daemontools' multilog(8)):

    t / T       (first only) prefix lines with @TAI64N, or with an ISO 8601
                local time (s6-log's T); patterns then see the prefix.
                As in daemontools, a first word starting with t is t.
    -PATTERN    deselect the line if it matches (all lines start selected)
    +PATTERN    select the line if it matches
    e           copy the first 200 bytes of a selected line to stderr, with
                "..." if it is longer (any word starting with e is e)
    =FILE       replace FILE with the first 1000 bytes of a selected line,
                padded with newlines to 1001 bytes
    sSIZE       current files of later log directories rotate near SIZE
                bytes (4096..16777215, default 99999)
    nNUM        later log directories keep NUM-1 old files (>= 2, default 10)
    !PROCESSOR  later log directories run `sh -c PROCESSOR` on each rotated file
    ./DIR, /DIR a log directory that selected lines are appended to

Each word is read by its first character, as daemontools reads it: "exit"
is e, a first word "tmp" is t. Anything else is ignored, as multilog ignores
it (so `multilog t main` discards every line); parse() says so in
Script.notes, one warning per such word, for the caller to print. A number
missing after s or n counts as 0 (daemontools' scan_ulong()), and is then
raised to the minimum.

Each line is decided on its first PATTERN_SPAN bytes, label included:
patterns look at no more, e and =file show no more, and however long the
line is, what was decided holds for the whole of it.

A pattern is matched against the first 1000 bytes of the line: `*` before a
character c skips up to the first c, a final `*` matches anything, every other
character matches itself. That is exactly the regular expression built by
compile_pattern(), which is how it is matched quickly.
"""


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
    ("status", filename) and ("dir", Dir) tuples; notes holds a warning
    for each word that does nothing, or not what it may seem to.
    """

    __slots__ = ("stamp", "actions", "notes")

    def __init__(self, stamp, actions, notes=()):
        self.stamp = stamp        # None, "t" or "T"
        self.actions = actions
        self.notes = list(notes)

    @property
    def dirs(self):
        return [a[1] for a in self.actions if a[0] == "dir"]

    @property
    def plain(self):
        """True if every line goes to every directory: no patterns, e or =."""
        return all(a[0] == "dir" for a in self.actions)

    @property
    def discards(self):
        """True if no line can go anywhere: no directory, e or =file."""
        return not any(a[0] in ("dir", "alert", "status") for a in self.actions)


def alert(body: bytes) -> bytes:
    """What e prints for a line (without its newline): the first 200 bytes,
    "..." if there were more, and a newline."""
    if len(body) > ALERT_SPAN:
        return body[:ALERT_SPAN] + b"...\n"
    return body + b"\n"


def status(body: bytes) -> bytes:
    """What =file holds for a line: its first 1000 bytes, padded with
    newlines to 1001."""
    return body[:STATUS_SIZE - 1].ljust(STATUS_SIZE, b"\n")


def compile_pattern(pattern: bytes):
    """The regular expression that matches what multilog's pattern matches."""
    import re        # here: a script without patterns (most) costs no re (~1.1 MiB)
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
    stamp, notes = None, []
    if args and (args[0][:1] == "t" or args[0] == "T"):
        if len(args[0]) > 1:
            notes.append(f"reading {args[0]} as t: an action is its first letter")
        stamp, args = args[0][:1], args[1:]
    size, num, processor = DEFAULT_SIZE, DEFAULT_NUM, None
    actions = []
    for arg in args:
        head, rest = arg[:1], arg[1:]
        if head in ("-", "+"):
            actions.append(("select", head == "+", compile_pattern(rest.encode("utf-8", "surrogateescape"))))
        elif head == "e":
            if rest:
                notes.append(f"reading {arg} as e: an action is its first letter")
            actions.append(("alert",))
        elif head == "=":
            actions.append(("status", rest))
        elif head == "s":
            size = min(max(number(rest), MIN_SIZE), MAX_SIZE)
        elif head == "n":
            num = max(number(rest), 2)
        elif head == "!":
            processor = rest or None
        elif head in (".", "/"):
            actions.append(("dir", Dir(arg, size, num, processor)))
        else:
            notes.append(ignoring(arg))
    return Script(stamp, actions, notes)


def ignoring(word):
    """The warning for a word that is no action."""
    if not word:
        return "ignoring an empty word"
    if word in ("t", "T"):
        return f"ignoring {word}: a timestamp must be the first action"
    return f"ignoring {word}: not an action, and a log directory must start with . or / (./{word}?)"


def number(text):
    """The leading ASCII digits as a number, 0 without any (scan_ulong)."""
    digits = ""
    for ch in text:
        if ch not in "0123456789":     # not str.isdigit(): "²" is a digit to it
            break
        digits += ch
    return int(digits) if digits else 0
