"""A tree as people see it: which services the arguments name, and one record each.

Finding services. An argument is a service directory if it holds `run`, and
otherwise a scan directory, whose services are its subdirectories (or
symlinks to them) that hold `run` and whose names do not start with a dot,
in name order: what svscan starts. No argument means the current directory.
A service with a `log` directory is followed by its logger, `SERVICE/log`.

Reading one service. `snapshot()` decodes what supervise/ says, without
asking whether supervise is alive: the 20-byte status (18 from daemontools),
and, when it describes the same run (same pid and the same TAI64N stamp,
so a state.json left by an earlier supervise is not believed),
supervise/state.json for what only svtree knows: readiness, starts, the
last exit, backoff and failure. `read()` adds liveness (supervise/ok) and
the `down` file, and names the one state a human wants to see:

    skipped      NAME@HOST for another host, and no supervise running
    unknown      no supervise running, or supervise/ unreadable (`error` says why)
    failed       supervise gave up (max-deaths, finish exit 125): down until svc -u
    finish       ./finish is running
    paused       ./run is running, stopped by svc -p
    ready        ./run is running and ready (always so without readiness checks)
    up           ./run is running, not ready yet (or readiness unknown: daemontools)
    backing off  down and wanted up, waiting out the delay after quick deaths
    down         ./run is not running

`Record` below is the typed description of that record; `svtree status
--json` prints a list of them.
"""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

from . import control, status, unix
from .errors import NotRunning, describe
from .scan import meant_for_this_host

STATES = ("up", "ready", "down", "finish", "failed", "backing off", "paused",
          "skipped", "unknown")
PROCESS = {status.DOWN: "down", status.RUN: "run", status.FINISH: "finish"}
WANTS = {status.WANT_UP: "up", status.WANT_DOWN: "down", status.WANT_ONCE: "once"}


class LastExit(TypedDict, total=False):
    """Exactly one key: how ./run last ended."""
    code: int
    signal: int


class Record(TypedDict):
    """One service as `svtree status --json` prints it (None: not known)."""
    service: str                  # its directory, as svc would be given it
    logger_of: str | None         # the service whose output this logger reads
    state: str                    # one of STATES
    process: Literal["down", "run", "finish"] | None
    pid: int | None               # ./run's (or ./finish's) pid, 0 when down
    since: float | None           # Unix time the state began
    seconds: float | None         # how long the service has been in that state
    want: Literal["up", "down", "once"] | None
    normally_up: bool | None      # False when a `down` file is present
    ready: bool | None            # None without state.json (daemontools, runit)
    paused: bool | None
    failed: bool | None
    starts: int | None            # None without state.json
    last_exit: LastExit | None
    supervised: bool              # a supervise holds supervise/ok open
    source: Literal["state.json", "status"] | None
    error: str | None             # why the state is unknown


@dataclass
class Entry:
    """A service directory found from the arguments."""
    path: Path
    logger_of: Path | None = None


def find(args) -> list[Entry]:
    """The services the arguments name (see the module docstring).

    A missing argument is returned as is: read() reports it as unknown.
    """
    entries = []
    for arg in args or ["."]:
        path = Path(arg)
        if is_service(path) or not path.is_dir():
            entries += with_logger(path)
            continue
        for name in scan_names(path):
            entries += with_logger(path / name)
    return entries


def is_service(path: Path) -> bool:
    return os.path.lexists(path / "run")


def scan_names(scandir: Path) -> list[str]:
    """Names of the services in a scan directory, sorted (skipped ones too)."""
    try:
        names = sorted(os.listdir(scandir))
    except OSError:
        return []
    return [n for n in names
            if not n.startswith(".") and (scandir / n).is_dir() and is_service(scandir / n)]


def with_logger(path: Path) -> list[Entry]:
    log = path / "log"
    return [Entry(path), Entry(log, path)] if log.is_dir() else [Entry(path)]


@dataclass
class Snapshot:
    """What a service's supervise/ says, whether or not supervise still runs."""
    process: str            # down, run, finish
    pid: int
    since: float            # Unix time of the last pid change
    want: str               # up, down, once
    paused: bool
    ready: bool | None = None
    ready_since: float | None = None
    starts: int | None = None
    last_exit: dict | None = None
    failed: bool | None = None
    quick_deaths: int | None = None
    source: str = "status"
    stale_record: bool = False  # a state.json of another run (or being replaced)


def snapshot(dir_fd: int) -> Snapshot:
    """Decode supervise/status (and state.json if it matches) of the service
    open as dir_fd. Raises OSError (FileNotFoundError: never supervised) or
    status.BadStatus."""
    data = read_file("supervise/status", dir_fd, status.SIZE + 1)
    st = status.unpack(data)
    since = st.seconds + st.nanoseconds / 1e9
    snap = Snapshot(PROCESS[st.state], st.pid, since, WANTS[st.want], st.paused)
    try:
        fields = json.loads(read_file("supervise/state.json", dir_fd, 65536))
    except (OSError, ValueError):
        return snap
    if (not isinstance(fields, dict) or fields.get("pid") != st.pid
            or not isinstance(fields.get("since"), (int, float))
            or abs(fields["since"] - since) > 1e-5):
        snap.stale_record = isinstance(fields, dict)
        return snap                  # another run's record (or one being replaced)
    snap.want = fields.get("want", snap.want)
    snap.ready = bool(fields.get("ready"))
    snap.ready_since = fields.get("ready_since")
    snap.starts = fields.get("starts")
    snap.last_exit = fields.get("last_exit")
    snap.failed = bool(fields.get("failed"))
    snap.quick_deaths = fields.get("quick_deaths")
    snap.source = "state.json"
    return snap


def read_file(name: str, dir_fd: int, size: int) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def is_supervised(dir_fd: int) -> bool:
    """A supervise holds supervise/ok open (daemontools, runit and svtree)."""
    return control.is_up(dir_fd)


def read(entry: Entry, now: float | None = None) -> Record:
    """The record of one service."""
    now = time.time() if now is None else now
    rec = blank(entry)
    try:
        fd = unix.open_dir(str(entry.path))
    except OSError as e:
        rec["error"] = f"unable to chdir to {entry.path}: {describe(e)}"
        return rec
    try:
        rec["normally_up"] = not os.access("down", os.F_OK, dir_fd=fd, follow_symlinks=False)
        try:
            rec["supervised"] = is_supervised(fd)
        except OSError as e:
            rec["error"] = f"unable to open supervise/ok: {describe(e)}"
            return rec
        if not rec["supervised"]:
            if not meant_for_this_host(os.path.basename(os.path.abspath(entry.path))):
                rec["state"] = "skipped"
                rec["error"] = "not for this host"
            else:
                rec["error"] = "supervise not running"
            return rec
        try:
            snap = snapshot(fd)
        except (OSError, status.BadStatus, NotRunning) as e:
            rec["error"] = f"unable to read supervise/status: {describe(e)}"
            return rec
    finally:
        os.close(fd)
    fill(rec, snap, now)
    return rec


def blank(entry: Entry) -> Record:
    return Record(service=str(entry.path),
                  logger_of=None if entry.logger_of is None else str(entry.logger_of),
                  state="unknown", process=None, pid=None, since=None, seconds=None,
                  want=None, normally_up=None, ready=None, paused=None, failed=None,
                  starts=None, last_exit=None, supervised=False, source=None, error=None)


def fill(rec: Record, snap: Snapshot, now: float) -> None:
    rec.update(process=snap.process, pid=snap.pid, want=snap.want, ready=snap.ready,
               paused=snap.paused if snap.process == "run" else False, failed=snap.failed,
               starts=snap.starts, last_exit=snap.last_exit, source=snap.source)
    rec["state"] = state_of(snap)
    since = snap.since
    if rec["state"] == "ready" and snap.ready_since is not None:
        since = snap.ready_since
    rec["since"] = round(since, 6)
    rec["seconds"] = round(max(0.0, now - since), 3)


def state_of(snap: Snapshot) -> str:
    """The one word for a supervised service (see the module docstring)."""
    if snap.failed:
        return "failed"
    if snap.process == "finish":
        return "finish"
    if snap.process == "run":
        if snap.paused:
            return "paused"
        return "ready" if snap.ready else "up"
    if snap.want == "up" and snap.quick_deaths:
        return "backing off"
    return "down"


def down_but_wanted(rec: Record) -> bool:
    """LSB's "not running": failed, or down (./run not running) while wanted up."""
    return rec["state"] == "failed" or (rec["process"] == "down" and rec["want"] == "up")


def lsb_code(records: list[Record]) -> int:
    """0 all well, 3 some service wanted up is down, 4 some state unknown.

    Unknown wins: an unknown service may be down too. Skipped services do
    not count, nor do services that want down.
    """
    if any(r["state"] == "unknown" for r in records):
        return 4
    if any(down_but_wanted(r) for r in records):
        return 3
    return 0
