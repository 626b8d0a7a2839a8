"""svtree run and svtree rm: transient jobs (svtree/jobs.py says how)."""

import json
import sys
from pathlib import Path

import click

from .. import jobs, table, verbs
from .. import wait as wait_
from .output import Fatal, directories

# a new job run once: it has run, and ./run and ./finish are done
ENDED = wait_.Goal("ended", lambda s: s.process == "down" and (s.starts or 0) >= 1)
SUPERVISE_WAIT = 10.0     # seconds for svscan to start the new service's supervise
DEFAULT_WAIT = 7.0
CHUNK = 3600.0            # seconds of one settle() round while waiting without a limit


@click.command("run")
@click.option("--once", is_flag=True,
              help="Run it once, never restarted, and wait until it has ended; "
                   "exit with its code (128 + signal if killed).")
@click.option("--name", metavar="NAME", help="The service's name (default: the "
              "command's name and a random suffix).")
@click.option("-w", "--wait", "timeout", type=click.FloatRange(min=0), metavar="SECONDS",
              help="How long to wait (default: 7 for up; with --once, until it ends).")
@click.option("--json", "as_json", is_flag=True, help="Print the job's record as "
              "`svtree status --json` does, instead of NAME PID.")
@click.argument("scandir", type=click.Path(path_type=Path))
@click.argument("command", nargs=-1, required=True, metavar="-- COMMAND [ARGS]...")
def run_cmd(once, name, timeout, as_json, scandir, command):
    """Run COMMAND as a new service of SCANDIR (a job), wait until it is up
    (with --once: until it has ended), and print its name and pid.

    The service directory is made aside and renamed in, so svscan never sees
    half of it; its output goes to the built-in logger, in SCANDIR/.log/NAME,
    which `svtree rm` keeps. `svtree status --json SCANDIR/NAME` tells its
    pid, its exit and its start and end times; `svtree rm SCANDIR/NAME`
    brings it down and removes it. COMMAND runs in the current directory,
    with svscan's environment. Exits 0 (or, with --once, the job's code), 1
    on timeout, 100 on a usage error, 111 if it cannot be made or started.
    """
    directories([scandir], "use")
    try:
        path = jobs.make(scandir, list(command), name, once)
    except (jobs.JobError, OSError) as e:
        raise Fatal(f"unable to make a service in {scandir}: {e}") from None
    if not jobs.until(lambda: jobs.supervised(path), jobs.supervise_watches(path),
                      SUPERVISE_WAIT):
        raise Fatal(f"{path}: supervise not running after {SUPERVISE_WAIT:g}s "
                    f"(is svscan running on {scandir}?)")
    if once:
        verbs.send(path, "once")
    goal = ENDED if once else wait_.BY_NAME["up"]
    w = settled(path, goal, timeout if timeout is not None else None if once else DEFAULT_WAIT)
    rec = wait_.record(w)
    rec["normally_up"] = not (path / "down").exists()
    if as_json:
        click.echo(json.dumps(rec))
    else:
        pid = rec["pid"] or rec.get("last_pid") or 0
        click.echo(f"{path.name} {pid}")
    if not w.done:
        why = w.error or w.lost or f"not {'finished' if once else 'up'} yet"
        click.echo(f"svtree: warning: {path}: {table.printable(why)}", err=True)
        sys.exit(111 if (w.error or w.lost) else 1)
    if once:
        sys.exit(exit_code(rec))


def settled(path, goal, timeout):
    """The Waited of path once it is done, hopeless or in error, or when
    timeout seconds (None: no limit) have passed."""
    left = timeout
    while True:
        chunk = CHUNK if left is None else min(left, CHUNK)
        (w,) = wait_.settle([(path, goal)], chunk)
        if w.done or w.error or w.lost or (left is not None and left <= chunk):
            return w
        left = None if left is None else left - chunk


def exit_code(rec) -> int:
    last = rec.get("last_exit") or {}
    if "code" in last:
        return last["code"]
    return 128 + last["signal"] if "signal" in last else 111


@click.command("rm")
@click.argument("services", metavar="SERVICE...", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("-w", "--wait", "timeout", type=click.FloatRange(min=0), default=DEFAULT_WAIT,
              show_default=True, metavar="SECONDS",
              help="How long to wait for each one's supervise to exit.")
def rm_cmd(services, timeout):
    """Bring jobs down and remove their service directories (only those
    `svtree run` made); their logs stay in SCANDIR/.log/NAME. Exits 0, or
    111 if one could not be removed (it is left as it was)."""
    directories(services, "remove")
    bad = False
    for path in services:
        try:
            logdir = jobs.remove(path, timeout)
        except (jobs.JobError, OSError) as e:
            click.echo(f"svtree: warning: unable to remove {table.printable(str(path))}: "
                       f"{table.printable(str(e))}", err=True)
            bad = True
            continue
        if logdir is not None:
            click.echo(f"removed {table.printable(str(path))}; its log stays in "
                       f"{table.printable(str(logdir))}")
        else:
            click.echo(f"removed {table.printable(str(path))}")
    if bad:
        sys.exit(111)


COMMANDS = (run_cmd, rm_cmd)
