"""What svtree's commands share: its one-line errors and warnings in the
daemontools shape, the exit codes, and how output is made safe and coloured
for a terminal (JSON included)."""

import io
import json
import os
import re
import shutil
import sys

import click

from .. import table
from ..errors import TEMPORARY, USAGE, describe


class Fatal(click.ClickException):
    """`svtree: fatal: MESSAGE` and exit 111, in CliRunner as in main()."""
    exit_code = TEMPORARY

    def show(self, file=None):
        click.echo(f"svtree: fatal: {table.printable(self.format_message())}", err=True)


class Usage(Fatal):
    """A bad argument found by us rather than click: the same line, exit 100."""
    exit_code = USAGE


def usage_line(e: click.UsageError) -> str:
    """click's usage error as one line of ours: `svtree: fatal: no such
    option '--bogus' (svtree status --help)`."""
    message = " ".join(e.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    where = e.ctx.command_path if e.ctx is not None else "svtree"
    return f"svtree: fatal: {table.printable(message)} ({table.printable(where)} --help)"


def warn(message):
    click.echo(f"svtree: warning: {table.printable(message)}", err=True)


def directories(paths, verb):
    """A usage error (100) unless each path is a directory: a typo on the
    command line is said at once, in one line, the same way by every command."""
    for path in paths:
        try:
            if not os.path.isdir(path):
                os.listdir(path)          # the reason: does not exist, not a directory...
        except OSError as e:
            raise Usage(f"unable to {verb} {path}: {describe(e)}") from None


def seconds(n: float) -> str:
    """1 second, 1.5 seconds, 0 seconds."""
    return f"{n:g} second{'' if n == 1 else 's'}"


# what json.dumps(ensure_ascii=False) leaves raw: DEL and C1 controls, and lone
# surrogates (the bytes of a name that is not UTF-8: 0xff is U+DCFF)
JSON_RAW = re.compile("[\x7f-\x9f\ud800-\udfff]")


def json_text(value, **options) -> str:
    """JSON with UTF-8 text as it is, but no control character unescaped and
    no lone surrogate (which no UTF-8 output could carry): each as \\uXXXX,
    so a name with byte 0xff reads back as "\\udcff" (see statejson.py)."""
    text = json.dumps(value, ensure_ascii=False, **options)
    return JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def for_terminal(line: bytes) -> bytes:
    """A log line for a terminal: its controls but tab as \\xNN, as in the table."""
    text = line.decode("utf-8", "surrogateescape")
    return table.printable(text, keep="\t\n").encode("utf-8")


def choose_colour(ctx, param, value):
    """--color/--no-color, or NO_COLOR (set and not empty: none), decides
    for this command and the ones below it; neither: colour on terminals."""
    if value is None and ctx.parent is None and os.environ.get("NO_COLOR"):
        value = False
    if value is not None:
        ctx.color = value
    return value


COLOUR = click.option("--color/--no-color", default=None, expose_value=False,
                      callback=choose_colour,
                      help="Colour the output even in a pipe, or never "
                           "(default: on a terminal, unless NO_COLOR is set).")


def paint(text, key):
    """click's styles for a state (click.echo strips them where no colour goes)."""
    return click.style(text, **table.COLOURS.get(key, {}))


def terminal_width():
    """The width of the terminal our output goes to, or None (a pipe)."""
    fd = stdout_fd()
    if fd is None or not os.isatty(fd):
        return None
    return shutil.get_terminal_size().columns


def stdout_fd():
    """Our stdout's fd, or None (CliRunner gives us a BytesIO)."""
    try:
        return sys.stdout.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())


def exit_code(call) -> int:
    """Run click without its standalone handling; usage errors exit 100 and
    other errors 111, as in the daemontools-style programs (click's own
    codes would be 2 and 1)."""
    try:
        result = call()
    except NO_ARGS as e:              # `svtree` alone: its help, on stderr, and 100
        click.echo(e.format_message(), err=True)
        return USAGE
    except click.UsageError as e:
        click.echo(usage_line(e), err=True)
        return USAGE
    except Fatal as e:
        e.show()
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"svtree: fatal: {table.printable(' '.join(e.format_message().split()))}",
                   err=True)
        return TEMPORARY
    except click.Abort:
        return TEMPORARY
    return result if isinstance(result, int) else 0
