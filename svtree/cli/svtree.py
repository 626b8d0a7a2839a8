"""svtree: the view of a supervision tree for humans and scripts, and its
control verbs (click).

Each command is a thin layer over the library (logview, tree and table,
wait, events, metrics); the daemontools-compatible programs (svc, svstat,
...) stay free of click so they start fast.

Look at: status (-v, or why: the block that says why a service fails),
logs, wait, events, metrics. Control: start, stop, restart, once, kill,
which send svc's letters (u, d, r, o, k) and wait, as runit's `sv -w`,
printing one `ok:`, `timeout:` or `fail:` line per service.

Errors are one line on stderr, `svtree: fatal: ...`, whatever click or we
found wrong: 100 for usage errors (an unknown option, a bad argument, a
path for logs, wait or events that is no directory), 111 for other errors.
(status and why say such an argument in a warning and exit 4, as LSB's
status does; the control verbs print a `fail:` line for it, as runit's sv.) That holds whether click
runs standalone (CliRunner) or through main(); status, wait and the verbs
choose their other codes with ctx.exit(). Shell completion is click's:
eval "$(_SVTREE_COMPLETE=bash_source svtree)".

Colour: on a terminal, unless NO_COLOR is set and not empty
(https://no-color.org) or --no-color is given; --color forces it. click
strips the styles from what it echoes when ctx.color says so.

Nothing a service's owner wrote reaches a terminal as a control character:
messages and the table go through table.printable() (\\x1b for ESC, \\xff
for a byte of a name that is not UTF-8), JSON through json_text(), and log
lines shown on a terminal through for_terminal().
"""

import contextlib
import io
import os
import signal
import sys
import time
from pathlib import Path

import click

from .. import events as events_
from .. import logview, metrics as metrics_, servicedir, status, table, tree, unix
from .. import verbs
from .. import wait as wait_
from ..errors import describe
from . import jobs as jobs_
from .output import (COLOUR, Fatal, Usage, directories, exit_code, for_terminal, json_text,
                     paint, seconds, stdout_fd, terminal_width, warn)


# the commands in the order --help and completion give them, by what they are for
SECTIONS = (
    ("Look at", ("status", "why", "logs", "wait", "events", "metrics")),
    ("Control (each waits, up to -w SECONDS, and prints ok, timeout or fail)",
     ("start", "stop", "restart", "once", "kill")),
    ("Jobs", ("run", "rm")),
)


class Group(click.Group):
    """click's group, with daemontools' exit codes also when click runs it
    standalone (as CliRunner does), and its commands listed by section."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        def call():
            return click.Group.main(self, args, prog_name, complete_var, False, **extra)
        if not standalone_mode:
            return call()
        sys.exit(exit_code(call))

    def list_commands(self, ctx):
        ordered = [name for _, names in SECTIONS for name in names if name in self.commands]
        return ordered + sorted(set(self.commands) - set(ordered))

    def format_commands(self, ctx, formatter):
        limit = formatter.width - 6 - max(len(name) for name in self.commands)
        for title, names in SECTIONS:
            rows = [(name, self.commands[name].get_short_help_str(limit))
                    for name in names if name in self.commands]
            with formatter.section(title):
                formatter.write_dl(rows)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="svtree")
@COLOUR
def svtree():
    """Look at and control a svtree (or daemontools or runit) service tree.

    \b
    Look at:  svtree status [-v] DIR...   svtree why SERVICE...
              svtree logs SERVICE         svtree wait up|ready|down|finished SERVICE...
              svtree events DIR...        svtree metrics DIR...
    Control:  svtree start|stop|restart|once|kill [-w SECONDS] SERVICE...

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


TARGETS = click.argument("targets", metavar="[SERVICE|SCANDIR]...", nargs=-1,
                         type=click.Path(path_type=Path))


@svtree.command()
@click.argument("service", type=click.Path(path_type=Path))
@click.option("-n", "--lines", "count", default=10, show_default=True, type=click.IntRange(0),
              help="How many of the last lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep showing new lines, across rotations.")
@click.option("--raw", is_flag=True, help="Keep the TAI64N labels as they are.")
def logs(service, count, follow, raw):
    """Show SERVICE's log (its multilog directory) with local, human timestamps.

    SERVICE is a service directory (its log is looked for in log/, in
    log/*/ and where its logger's script writes: multilog t /var/log/x in
    log/run), or a log directory itself. Exits 100 if SERVICE is not a
    directory, 111 if it has no log (yet).
    """
    directories([service], "read")
    if servicedir.is_instance(service):         # its service's log: one for all instances
        service = Path(os.path.abspath(service)).parent.parent
    try:
        dirs = logview.logdirs(service)
    except OSError as e:
        raise Fatal(f"unable to read {service}/log: {describe(e)}") from None
    if not dirs:
        raise Fatal(f"no log directory with a current file in {service}, its log/, or where "
                    f"its logger's script writes; name the log directory itself: "
                    f"svtree logs DIR")
    if follow and len(dirs) > 1:
        raise Usage(f"{service} has several log directories; name one: "
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


def read_targets(targets):
    """The records of the services targets name, and the LSB code; each
    argument that names none is told on stderr and makes the code 4."""
    entries, problems = tree.search(targets)
    for problem in problems:
        warn(problem)
    records = [tree.read(entry) for entry in entries]
    return records, 4 if problems else tree.lsb_code(records)


@svtree.command("status")
@TARGETS
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of records.")
@click.option("-v", "--verbose", is_flag=True,
              help="Say all that is known of each service, and the end of its log.")
@COLOUR
@click.pass_context
def status_cmd(ctx, targets, as_json, verbose):
    """Show the state of services: a table, JSON, or (-v) why each is as it is.

    Each argument is a service directory (it holds run) or a scan
    directory; none means the current directory. Loggers follow their
    service. Exits 0 if every service wanted up is up, 3 if one is down
    (or failed), 4 if the state of one is unknown (no supervise) or an
    argument names no service.
    """
    records, code = read_targets(targets)
    if as_json:
        click.echo(json_text(records, indent=2))
    elif verbose:
        explain(records)
    elif records:                     # no header for no services: the warnings say it
        for line in table.lines(records, paint, width=terminal_width()):
            click.echo(line)
    ctx.exit(code)


@svtree.command("why")
@TARGETS
@COLOUR
@click.pass_context
def why_cmd(ctx, targets):
    """Say why services are as they are: the same as status -v.

    For each: its state, why ./run last failed to start, how it last ended
    and after how long, its backoff, why it failed for good, its readiness,
    and the last lines of its log. Exits as status does.
    """
    records, code = read_targets(targets)
    explain(records)
    ctx.exit(code)


LOG_LINES = 5


def explain(records):
    """The blocks of status -v, a blank line between two."""
    now = time.time()
    for n, rec in enumerate(records):
        if n:
            click.echo("")
        for line in table.report(rec, now, paint) + log_report(rec):
            click.echo(line)


def log_report(rec) -> list[str]:
    """The log lines of a status -v block: the last LOG_LINES of the log."""
    label = f"  {'log':<12} "
    service = Path(rec["logger_of"] or rec.get("instance_of") or rec["service"])
    try:
        dirs = logview.logdirs(service)
    except OSError as e:
        return [label + table.printable(f"unable to read {service}/log: {describe(e)}")]
    if rec["logger_of"] is not None:          # a logger's own output goes nowhere logged
        if not dirs:
            return [label + "no log directory with a current file yet"]
        return [label + "writes " + table.printable(", ".join(str(d) for d in dirs))]
    if not dirs:
        return [label + table.printable(f"none found (no current file in {service}/log "
                                        "or below it)")]
    out = []
    for d in dirs:
        try:
            lines, _ = logview.tail(d, LOG_LINES)
        except OSError as e:
            out.append(label + table.printable(f"unable to read {d}: {describe(e)}"))
            continue
        shown = f"{d}, the last {len(lines)} line{'' if len(lines) == 1 else 's'}:"
        out.append(label + table.printable(shown if lines else f"{d}, empty"))
        for line in lines:
            text = logview.humanize(line).rstrip(b"\n").decode("utf-8", "surrogateescape")
            out.append("    " + table.printable(text, keep="\t"))
    return out


@svtree.command("wait")
@click.argument("goal", type=click.Choice(wait_.GOALS))
@click.argument("services", metavar="SERVICE...", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("-t", "--timeout", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Give up (exit 1) after this long; default: wait for ever.")
@click.pass_context
def wait_cmd(ctx, goal, services, timeout):
    """Wait until every SERVICE is up, ready, down or finished.

    Woken by supervise's events (or inotify), so it returns as soon as the
    state is reached. A service whose supervise has not started yet is
    waited for. Exits 0, 1 on timeout (saying why for each service not
    there), 100 for a SERVICE that is not a directory, 111 on error (a
    service that cannot be read, or that failed for good while waiting for
    up or ready).
    """
    directories(services, "watch")
    try:
        left = wait_.wait(instances_of(services), goal, timeout)
    except wait_.WaitError as e:
        raise Fatal(str(e)) from None
    except KeyboardInterrupt:
        ctx.exit(130)
    now = time.time()
    for w in left:
        warn(f"timed out after {seconds(timeout)}: {w.path} not {goal}: "
             f"{why_not(wait_.record(w, now), now)}")
    if left:
        ctx.exit(1)


def why_not(rec, now) -> str:
    """Why a service is not where it was waited for: the record's trouble,
    or else its state and what supervise wants of it."""
    trouble = table.why(rec, now)
    if trouble:
        return trouble
    if rec["want"] is None:
        return rec["state"]
    return f"{rec['state']}, want {rec['want']}"


# --- control ------------------------------------------------------------------------

VERB_HELP = {   # verb: (what it does, more)
    "start": (("Start services (svc -u) and wait until they are up, and ready if "
               "they can say so."),
              ("A failed or backing-off service starts at once. Its dependencies "
               "(its depends file) that are down are started too, first; the wait "
               "lasts until it is up after them.")),
    "stop": ("Stop services (svc -d) and wait until they are down, ./finish done.", ""),
    "restart": (("Restart services (svc -r) and wait until a new run is up, and ready "
                 "if it can say so."),
                ("A running service gets its down-signal and is started again; a "
                 "down one (backing off, failed) starts at once. Under daemontools' "
                 "or runit's supervise, the letters sent are t, c, u, as runit's sv does.")),
    "once": (("Start services once (svc -o): up, never restarted; wait until up "
              "(and ready), or until a one-shot run has already ended."), ""),
    "kill": ("KILL services' ./run (svc -k) and wait until it is gone.",
             "supervise restarts a service that is wanted up, as after any death."),
}
DEFAULT_WAIT = 7.0          # runit's sv: "wait up to 7 seconds"
PREFIX_COLOURS = {"ok": {"fg": "green"}, "timeout": {"fg": "yellow", "bold": True},
                  "fail": {"fg": "red", "bold": True}}


def verb_command(verb):
    summary, more = VERB_HELP[verb]

    @svtree.command(verb, help=f"""{summary}

    {more}

    Prints one line per service as runit's `sv -w` does, as soon as it is
    known: `ok: run: SERVICE: (pid N) 0s`, `timeout: down: SERVICE: 7s,
    normally up, want up, WHY`, `fail: SERVICE: supervise not running`.
    Exits 0 when each service got there, else the number of services that
    timed out or failed (99 at most); 100 on a usage error.
    """)
    @click.argument("services", metavar="SERVICE...", nargs=-1, required=True,
                    type=click.Path(path_type=Path))
    @click.option("-w", "--wait", "timeout", type=click.FloatRange(min=0),
                  default=DEFAULT_WAIT, show_default=True, metavar="SECONDS",
                  help="How long to wait for every service (0: look once).")
    @COLOUR
    @click.pass_context
    def command(ctx, services, timeout):
        ctx.exit(control(verb, services, timeout))
    return command


def control(verb, services, timeout) -> int:
    """Send verb to each service, then say how each ended up; the exit code."""
    bad = 0
    targets = []
    services = instances_of(services)
    for path in pulled(verb, services) + list(services):
        try:
            targets.append((path, verbs.send(path, verb if path in services else "start")))
        except wait_.WaitError as e:
            say("fail", f"{path}: {e}")
            bad += 1
    try:
        for w in wait_.settle(targets, timeout):
            rec = wait_.record(w)
            rec["normally_up"] = not os.path.lexists(w.path / "down")
            if w.error:
                say("fail", f"{w.path}: {w.error}")
            else:
                say("ok" if w.done else "fail" if w.lost else "timeout", table.sv_line(rec))
            bad += not w.done
    except KeyboardInterrupt:
        return 130
    return min(bad, 99)


def instances_of(services) -> list[Path]:
    """The services, each with an instances file as its instances."""
    found = []
    for path in services:
        copies = servicedir.instance_paths(path)
        found += [path] if copies is None else [Path(p) for p in copies]
    return found


def pulled(verb, services) -> list[Path]:
    """What start, restart and once bring up beside the services: their
    dependencies (depends files) that are not wanted up, started first.
    One wanted up already is only waited for, through the service's own
    wait (it starts once they are ready)."""
    if verb not in ("start", "restart", "once"):
        return []
    found = []
    for path in services:
        for dep in verbs.dependencies(path):
            if dep not in services and dep not in found and not wanted_up(dep):
                found.append(dep)
    return found


def wanted_up(path) -> bool:
    try:
        fd = unix.open_dir(str(path))
    except OSError:
        return False
    try:
        return tree.snapshot(fd).want == "up"
    except (OSError, status.BadStatus):
        return False
    finally:
        os.close(fd)


def say(outcome, line):
    click.echo(f"{click.style(outcome + ':', **PREFIX_COLOURS[outcome])} "
               f"{table.printable(line)}")


for _verb in VERB_HELP:
    verb_command(_verb)
for _command in jobs_.COMMANDS:
    svtree.add_command(_command)


@svtree.command("events")
@TARGETS
def events_cmd(targets):
    """Print one JSON line per state change of the services, until interrupted.

    Follows the services in each scan directory, new ones too (their first
    line is a "new" event with the state they are in). A line in a service's
    event fifo that is not an event (anyone in its group may write there) is
    dropped, with one warning per service. Exits 100 if an argument is not
    a directory.
    """
    directories(targets, "follow")
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


# click 8.2 and later raise this for a group given no command (its message is the help)
def main(argv=None) -> int:
    """The svtree console script. Without argv, as the program itself, it
    exits at once when done: tearing the interpreter down after click costs
    more than most subcommands take (and `wait` is timed by its exit)."""
    if argv is None:
        unix.leave(main(sys.argv[1:]))
    return exit_code(lambda: svtree.main(args=argv, prog_name="svtree", standalone_mode=False))


if __name__ == "__main__":
    sys.exit(main())
