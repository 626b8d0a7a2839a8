"""TAI64N labels (daemontools' tai64n(8), cr.yp.to/libtai/tai64.html).

A TAI64N label is 12 bytes, big-endian: 8 bytes of 2**62 + TAI seconds since
1970, then 4 bytes of nanoseconds (0..999999999). Like daemontools and
skalibs we convert with a fixed 10-second TAI-UTC offset and ignore the leap
seconds since 1972, so labels agree with theirs byte for byte.

The external form is "@" followed by the 24 lowercase hex digits of the label.
"""

import time

BASE = 2**62 + 10          # label of the Unix epoch, in daemontools' convention
SIZE = 12


class BadLabel(ValueError):
    """Bytes or text that are not a TAI64N label."""


def pack(seconds: int, nanoseconds: int = 0) -> bytes:
    """The 12-byte label of a Unix time given as whole seconds and nanoseconds."""
    return (BASE + seconds).to_bytes(8, "big") + nanoseconds.to_bytes(4, "big")


def unpack(data: bytes) -> tuple[int, int]:
    """(seconds, nanoseconds) since the Unix epoch of a 12-byte label."""
    if len(data) != SIZE:
        raise BadLabel(f"{len(data)} bytes, expected {SIZE}")
    nano = int.from_bytes(data[8:], "big")
    if nano > 999_999_999:
        raise BadLabel(f"nanoseconds out of range: {nano}")
    return int.from_bytes(data[:8], "big") - BASE, nano


def now() -> tuple[int, int]:
    """The current time as (seconds, nanoseconds)."""
    return divmod(time.time_ns(), 1_000_000_000)


def format(data: bytes) -> str:
    """'@' + 24 hex digits: the text form tai64n prints."""
    return "@" + data.hex()


def parse(text: str) -> bytes:
    """The label written as '@' + 24 hex digits."""
    if len(text) != 25 or text[0] != "@":
        raise BadLabel(f"not a TAI64N label: {text!r}")
    try:
        data = bytes.fromhex(text[1:])
    except ValueError:
        raise BadLabel(f"not a TAI64N label: {text!r}") from None
    unpack(data)
    return data


def local_text(data: bytes) -> str:
    """The label as local time, 'YYYY-MM-DD HH:MM:SS.nnnnnnnnn' (tai64nlocal's form).

    Raises BadLabel for a bad label, and OverflowError or OSError for a
    time localtime() cannot express.
    """
    seconds, nano = unpack(data)
    return f"{local_seconds(seconds)}.{nano:09}"


def local_seconds(seconds: int) -> str:
    """A Unix time as local 'YYYY-MM-DD HH:MM:SS', the year unpadded.

    Labels carry the fixed offset of pack(), so this is the same clock
    daemontools' tai64nlocal shows under an ordinary (not right/) zone.
    """
    t = time.localtime(seconds)
    return (f"{t.tm_year}-{t.tm_mon:02}-{t.tm_mday:02} "
            f"{t.tm_hour:02}:{t.tm_min:02}:{t.tm_sec:02}")


WIDTH = 25                        # "@" + 24 hex digits
HEX = frozenset(b"0123456789abcdef")


class Converter:
    """tai64nlocal's conversion, for a stream (feed, end) or line by line
    (convert). Stream state: lines may start and end anywhere across reads.

    A line's head is held back until WIDTH bytes (or its end) have arrived,
    so a label split between two reads is still seen whole; the rest of a
    long line passes straight through, however long the line.
    """

    def __init__(self):
        self.held = b""           # the start of a line, shorter than WIDTH
        self.inside = False       # the current line's head is already out
        self.heads = {}           # b"@" + 24 hex digits -> local time
        self.seconds = {}         # the label's 16 hex digits of seconds -> local time

    def feed(self, data: bytes) -> bytes:
        """The output for data, the next bytes of the input."""
        out = b""
        if self.inside:
            end = data.find(b"\n")
            if end < 0:
                return data
            out, data = data[:end + 1], data[end + 1:]
            self.inside = False
        lines = (self.held + data).split(b"\n")
        partial = lines.pop()
        if lines:
            out += b"\n".join(map(self.convert, lines)) + b"\n"
        self.held = b""
        if len(partial) >= WIDTH or partial[:1] not in (b"", b"@"):
            out += self.convert(partial)
            self.inside = True
        else:
            self.held = partial
        return out

    def end(self) -> bytes:
        """The output for a last line that never got its newline."""
        return self.convert(self.held)

    def convert(self, line: bytes) -> bytes:
        """line with its label, if it starts with one, in local time."""
        if line[:1] != b"@":
            return line
        # tai64n gives every line of one read the same label, and the lines
        # of one second share the date: each is worked out once.
        head = self.heads.get(line[:WIDTH])
        if head is None:
            head = self.local(line[:WIDTH])
            if head is None:
                return line
            if len(self.heads) >= 4096:
                self.heads.clear()
            self.heads[line[:WIDTH]] = head
        return head + line[WIDTH:]

    def local(self, label: bytes) -> bytes | None:
        """b"@" + 24 hex digits in local time, or None if it is no label."""
        if len(label) < WIDTH or not HEX.issuperset(label[1:]):
            return None
        nano = int(label[17:], 16)
        if nano > 999_999_999:
            return None
        text = self.seconds.get(label[1:17])
        if text is None:
            try:
                text = local_seconds(int(label[1:17], 16) - BASE).encode()
            except (OverflowError, OSError):
                return None
            if len(self.seconds) >= 4096:
                self.seconds.clear()
            self.seconds[label[1:17]] = text
        return b"%s.%09d" % (text, nano)
