"""svtree: the view of a supervision tree for humans and scripts (click).

Each command is a thin layer over the library (logview, tree and table,
wait, events, metrics); the daemontools-compatible programs (svc, svstat,
...) stay free of click so they start fast.

Exit codes are daemontools' whether click runs standalone (CliRunner) or
through main(): 100 for usage errors, 111 for other errors; status, wait
and the rest choose theirs with ctx.exit(). Shell completion is click's:
eval "$(_SVTREE_COMPLETE=bash_source svtree)".

Nothing a service's owner wrote reaches a terminal as a control character:
messages and the table go through table.printable() (\\x1b for ESC, \\xff
for a byte of a name that is not UTF-8), JSON through json_text(), and log
lines shown on a terminal through for_terminal().
"""

import contextlib
import io
import json
import os
import re
import signal
import sys
from pathlib import Path

import click

from .. import events as events_
from .. import logview, metrics as metrics_, table, tree, unix
from .. import wait as wait_
from ..errors import describe


class Fatal(click.ClickException):
    """`svtree: fatal: MESSAGE` and exit 111, in CliRunner as in main()."""
    exit_code = 111

    def show(self, file=None):
        click.echo(f"svtree: fatal: {table.printable(self.format_message())}", err=True)


class Failure(click.ClickException):
    """click's own error line and exit 111, with its message made printable."""

    def __init__(self, message):
        super().__init__(table.printable(message))


def warn(message):
    click.echo(f"svtree: warning: {table.printable(message)}", err=True)


# what json.dumps(ensure_ascii=False) leaves raw: DEL and C1 controls, and lone
# surrogates (the bytes of a name that is not UTF-8: 0xff is U+DCFF)
JSON_RAW = re.compile("[\x7f-\x9f\ud800-\udfff]")


def json_text(value, **options) -> str:
    """JSON with UTF-8 text as it is, but no control character unescaped and
    no lone surrogate (which no UTF-8 output could carry): each as \\uXXXX,
    so a name with byte 0xff reads back as "\\udcff" (see history.py)."""
    text = json.dumps(value, ensure_ascii=False, **options)
    return JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def for_terminal(line: bytes) -> bytes:
    """A log line for a terminal: its controls but tab as \\xNN, as in the table."""
    text = line.decode("utf-8", "surrogateescape")
    return table.printable(text, keep="\t\n").encode("utf-8")


class Group(click.Group):
    """click's group, with daemontools' exit codes also when click runs it
    standalone (as CliRunner does)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        def call():
            return click.Group.main(self, args, prog_name, complete_var, False, **extra)
        if not standalone_mode:
            return call()
        sys.exit(exit_code(call))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="svtree")
def svtree():
    """Look at and control a svtree (or daemontools or runit) service tree.

    Shell completion: eval "$(_SVTREE_COMPLETE=bash_source svtree)" (or
    zsh_source, fish_source).
    """


@contextlib.contextmanager
def until_interrupted():
    """Ctrl-C, SIGTERM and a reader of our output that went away end the
    command quietly (the finally clauses inside still run)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # the interpreter's last flush of stdout would complain: point it at /dev/null
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    finally:
        signal.signal(signal.SIGTERM, previous)


def stdout_fd():
    """Our stdout's fd, or None (CliRunner gives us a BytesIO)."""
    try:
        return sys.stdout.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


TARGETS = click.argument("targets", metavar="[SERVICE|SCANDIR]...", nargs=-1,
                         type=click.Path(path_type=Path))


@svtree.command()
@click.argument("service", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("-n", "--lines", "count", default=10, show_default=True, type=click.IntRange(0),
              help="How many of the last lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep showing new lines, across rotations.")
@click.option("--raw", is_flag=True, help="Keep the TAI64N labels as they are.")
def logs(service, count, follow, raw):
    """Show SERVICE's log (its multilog directory) with local, human timestamps.

    SERVICE is a service directory (its log is looked for in log/ and in
    log/*/), or a log directory itself.
    """
    dirs = logview.logdirs(service)
    if not dirs:
        raise Failure(f"no log directory with a current file in {service}")
    if follow and len(dirs) > 1:
        raise Failure(f"{service} has several log directories; name one: "
                      + ", ".join(str(d) for d in dirs))
    out = sys.stdout.buffer
    show = shower(raw, out.isatty())
    for d in dirs:
        try:
            lines, offset = logview.tail(d, count)
        except OSError as e:
            raise Fatal(f"unable to read {d}: {describe(e)}") from None
        for line in lines:
            out.write(show(line))
    out.flush()
    if follow:
        try:
            for line in logview.follow(dirs[0], offset):
                out.write(show(line))
                out.flush()
        except KeyboardInterrupt:
            pass
        except (OSError, unix.NotRegular) as e:
            raise Fatal(f"unable to follow {dirs[0]}/current: {describe(e)}") from None


def shower(raw, terminal):
    """How a log line is shown: local times unless raw; escaped on a terminal
    (in a pipe, the bytes as logged, for grep and friends)."""
    def show(line):
        line = line if raw else logview.humanize(line)
        return for_terminal(line) if terminal else line
    return show


@svtree.command("status")
@TARGETS
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of records.")
@click.pass_context
def status_cmd(ctx, targets, as_json):
    """Show the state of services: a table, or JSON.

    Each argument is a service directory (it holds run) or a scan
    directory; none means the current directory. Loggers follow their
    service. Exits 0 if every service wanted up is up, 3 if one is down
    (or failed), 4 if the state of one is unknown (no supervise).
    """
    records = [tree.read(entry) for entry in tree.find(targets)]
    if as_json:
        click.echo(json_text(records, indent=2))
    else:
        def paint(text, state):
            return click.style(text, **table.COLOURS.get(state, {}))
        for line in table.lines(records, paint):
            click.echo(line)
    ctx.exit(tree.lsb_code(records))


@svtree.command("wait")
@click.argument("goal", type=click.Choice(wait_.GOALS))
@click.argument("services", metavar="SERVICE...", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("-t", "--timeout", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Give up (exit 1) after this long; default: wait for ever.")
@click.pass_context
def wait_cmd(ctx, goal, services, timeout):
    """Wait until every SERVICE is up, ready, down or finished.

    Woken by inotify, so it returns as soon as the state is reached. A
    service whose supervise has not started yet is waited for. Exits 0,
    1 on timeout, 111 on error (a service that cannot be read, or that
    failed for good while waiting for up or ready).
    """
    try:
        left = wait_.wait(services, goal, timeout)
    except wait_.WaitError as e:
        raise Fatal(str(e)) from None
    except KeyboardInterrupt:
        ctx.exit(130)
    if left:
        why = ", ".join(f"{w.path} {w.why}" for w in left)
        warn(f"timed out after {timeout:g} seconds: {why}")
        ctx.exit(1)


@svtree.command("events")
@TARGETS
def events_cmd(targets):
    """Print one JSON line per state change of the services, until interrupted.

    Follows the services in each scan directory, new ones too (their first
    line is a "new" event with the state they are in). A line in a service's
    event fifo that is not an event (anyone in its group may write there) is
    dropped, with one warning per service.
    """
    stream = events_.follow(targets, hangup_fd=stdout_fd(), warn=warn)
    with until_interrupted():
        try:
            for fields in stream:
                sys.stdout.write(json_text(fields) + "\n")
                sys.stdout.flush()
        except OSError as e:
            if isinstance(e, BrokenPipeError):
                raise
            raise Fatal(f"unable to follow {e.filename or 'the services'}: {describe(e)}") from None
        finally:
            stream.close()


def parse_listen(ctx, param, value):
    if value is None:
        return None
    try:
        return metrics_.parse_address(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@svtree.command("metrics")
@TARGETS
@click.option("--listen", metavar="ADDR:PORT", callback=parse_listen,
              help="Serve the metrics over HTTP (GET /metrics) until interrupted.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True),
              default=metrics_.TIMEOUT, show_default=True, metavar="SECONDS",
              help="With --listen: how long a client may take to ask and to read "
                   "the answer before it is disconnected.")
def metrics_cmd(targets, listen, timeout):
    """Print the services' metrics in Prometheus' text format.

    For node_exporter's textfile collector, or served with --listen
    (port 0 picks a free port; the address is printed on stderr). Clients
    are served at once, each within --timeout seconds.
    """
    def render():
        return metrics_.exposition([tree.read(entry) for entry in tree.find(targets)])
    if listen is None:
        click.echo(render(), nl=False)
        return
    try:
        server = metrics_.server(*listen, render, timeout)
    except OSError as e:
        raise Fatal(f"unable to listen on {listen[0]}:{listen[1]}: {describe(e)}") from None
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    try:
        # announced once a SIGTERM already ends us quietly: whoever read the
        # address may stop us at once
        with until_interrupted():
            click.echo(f"svtree: serving http://{shown}:{port}/metrics", err=True)
            server.serve_forever()
    finally:
        server.server_close()


def exit_code(call) -> int:
    """Run click without its standalone handling; usage errors exit 100 and
    other errors 111, as in the daemontools-style programs (click's own
    codes would be 2 and 1)."""
    try:
        result = call()
    except click.UsageError as e:
        e.show()
        return 100
    except click.ClickException as e:
        e.show()
        return 111
    except click.Abort:
        return 111
    return result if isinstance(result, int) else 0


def main(argv=None) -> int:
    """The svtree console script. Without argv, as the program itself, it
    exits at once when done: tearing the interpreter down after click costs
    more than most subcommands take (and `wait` is timed by its exit)."""
    if argv is None:
        unix.leave(main(sys.argv[1:]))
    return exit_code(lambda: svtree.main(args=argv, prog_name="svtree", standalone_mode=False))


if __name__ == "__main__":
    sys.exit(main())
