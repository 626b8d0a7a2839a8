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
    unknown      no supervise running, supervise/ unreadable, or a state.json
                 that cannot be believed (`error` says why)
    failed       supervise gave up (max-deaths, finish exit 125): down until svc -u
    finish       ./finish is running
    paused       ./run is running, stopped by svc -p
    ready        ./run is running and said it is ready (notification-fd, ./check)
    up           ./run is running: not ready yet, or it has no way to say so
                 (readiness "none", loggers too), or readiness unknown (daemontools)
    backing off  down and wanted up, waiting out the delay after quick deaths
    blocked      down and wanted up, held by a dependency that failed for good
                 or is no service (its depends file: svtree-service(5))
    waiting      down and wanted up, held until its dependencies are ready
    down         ./run is not running

"ready" is shown only for a service that can say so. A service whose
readiness is "none" (no notification-fd, no ./check) has its `ready` field
turn true once ./run has stayed up a second (supervise's rule: a
crash-looping service is never ready, and `svtree wait ready` waits for
that field), but it is shown as "up": nothing it said makes it ready. A
state.json without `readiness` (an older svtree supervise) is shown as
before: ready when its `ready` says so.

What only svtree's supervise tells, beside the state (None when not told):
`readiness` ("notify", "check" or "none"); `start_error`, why the last
attempt to start ./run failed (state.json's "error"; not to be confused
with the Record's `error`, why the state is unknown); `reason`, why it
failed for good; `next_start`, when supervise will start ./run again while
it waits out a delay; `last_duration`, how long the last run lasted;
`quick_deaths` and `backoff` (the delay, in seconds). Texts of theirs are
cut to TEXT_MAX characters: their owner may write anything there.

`Record` below is the typed description of that record; `svtree status
--json` prints a list of them.

Both files are their owner's to forge (the service's owner may write in
supervise/, or plant a fifo or a symlink there): they are read as regular
files only, without blocking or following a symlink (unix.read_regular),
and state.json is checked field by field (RECORD_FIELDS) before a word of
it is used. A state.json that fails is not set aside for the status file
alone, which would make a service whose readiness is unknown look ready:
the service is unknown, with the status file's fields (pid, process...)
and `error` saying "unable to read supervise/state.json: bad format (WHY)".
"""

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

from . import control, servicedir, status, unix
from .errors import NotRunning, describe

STATES = ("up", "ready", "down", "finish", "failed", "backing off", "blocked", "waiting",
          "paused",
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
    instance_of: str | None       # the service this is one instance of (its instances file)
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
    readiness: Literal["notify", "check", "none"] | None
    start_error: str | None       # why the last start of ./run failed
    reason: str | None            # why it failed for good
    next_start: float | None      # Unix time of the next start, while delayed
    last_duration: float | None   # seconds the last run lasted
    quick_deaths: int | None      # quick deaths in a row
    backoff: float | None         # the delay before the next start, in seconds
    last_pid: int | None          # the last run that ended: its pid,
    last_start: float | None      # its start (Unix time)
    last_end: float | None        # and its end
    depends: list | None          # what its depends file lists (None: no such file)
    waiting_for: list | None      # dependencies not ready yet (names), held by svscan
    blocked_by: dict | None       # dependencies that cannot be: name -> why


@dataclass
class Entry:
    """A service directory found from the arguments."""
    path: Path
    logger_of: Path | None = None
    instance_of: Path | None = None   # SERVICE/instance/K: one of SERVICE's copies


def find(args) -> list[Entry]:
    """The services the arguments name (see the module docstring).

    A missing argument is returned as is: read() reports it as unknown.
    """
    return search(args, keep_missing=True)[0]


def search(args, keep_missing=False) -> tuple[list[Entry], list[str]]:
    """The services the arguments name, and for each argument that names
    none (missing, not a directory, unreadable, or a directory with neither
    `run` nor services: `svtree status /tmp`, a typo, the wrong directory)
    a line saying so; keep_missing: an argument that is not a directory is
    an entry all the same (find)."""
    entries, problems = [], []
    for arg in args or ["."]:
        path = Path(arg)
        if servicedir.is_service(path) or (keep_missing and not path.is_dir()):
            entries += with_logger(path)
            continue
        try:
            names = os.listdir(path)
        except OSError as e:
            verb = "read" if os.path.isdir(path) else "chdir to"
            problems.append(f"unable to {verb} {arg}: {describe(e)}")
            continue
        found = servicedir.names(path, names)
        if not found:
            problems.append(f"{arg}: not a service directory, and no services in it")
        for name in found:
            entries += with_logger(path / name)
    return entries, problems


def with_logger(path: Path) -> list[Entry]:
    """The service (or each of its instances) and its logger."""
    log = path / "log"
    copies = servicedir.instance_paths(path)
    own = [Entry(path)] if copies is None else [Entry(Path(p), None, path) for p in copies]
    return own + [Entry(log, path)] if log.is_dir() else own


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
    readiness: str | None = None
    start_error: str | None = None
    reason: str | None = None
    next_start: float | None = None
    last_duration: float | None = None
    backoff: float | None = None
    last_pid: int | None = None
    last_start: float | None = None
    last_end: float | None = None
    waiting_for: list | None = None     # dependencies not ready yet (names)
    blocked_by: dict | None = None      # dependencies that cannot be: name -> why
    source: str = "status"
    stale_record: bool = False  # a state.json of another run (or being replaced)
    record_error: str | None = None   # why state.json cannot be believed at all


def snapshot(dir_fd: int) -> Snapshot:
    """Decode supervise/status (and state.json if it matches) of the service
    open as dir_fd. Raises OSError (FileNotFoundError: never supervised) or
    status.BadStatus (a fifo, say, is "not a regular file"). A state.json
    that is unreadable or malformed raises nothing: record_error says why."""
    st = status.read(dir_fd=dir_fd)
    since = st.seconds + st.nanoseconds / 1e9
    snap = Snapshot(PROCESS[st.state], st.pid, since, WANTS[st.want], st.paused)
    try:
        fields = parse_record(unix.read_regular("supervise/state.json", dir_fd,
                                                RECORD_MAX + 1))
    except FileNotFoundError:
        return snap                  # daemontools, runit: the status file alone
    except (OSError, unix.NotRegular) as e:
        snap.record_error = f"unable to read supervise/state.json: {describe(e)}"
        return snap
    except BadRecord as e:
        snap.record_error = f"unable to read supervise/state.json: bad format ({e})"
        return snap
    if (fields.get("pid") != st.pid or fields.get("since") is None
            or abs(fields["since"] - since) > 1e-5):
        snap.stale_record = True
        return snap                  # another run's record (or one being replaced)
    snap.want = fields.get("want") or snap.want
    snap.ready = bool(fields.get("ready"))
    snap.ready_since = fields.get("ready_since")
    snap.starts = fields.get("starts")
    snap.last_exit = fields.get("last_exit")
    snap.failed = bool(fields.get("failed"))
    snap.quick_deaths = fields.get("quick_deaths")
    snap.readiness = fields.get("readiness")
    snap.start_error = cut(fields.get("error"))
    snap.reason = cut(fields.get("reason"))
    snap.next_start = fields.get("next_start")
    snap.last_duration = fields.get("last_duration")
    snap.backoff = fields.get("backoff")
    snap.last_pid = fields.get("last_pid")
    snap.last_start = fields.get("last_start")
    snap.last_end = fields.get("last_end")
    snap.waiting_for = [cut(n) for n in fields.get("waiting_for") or ()] or None
    snap.blocked_by = {cut(n): cut(w) for n, w in (fields.get("blocked_by") or {}).items()} or None
    snap.source = "state.json"
    return snap


def cut(text: str | None) -> str | None:
    """A text of the record's, at most TEXT_MAX characters (None stays None)."""
    if text is None or len(text) <= TEXT_MAX:
        return text
    return text[:TEXT_MAX - 3] + "..."


# --- JSON records (state.json, event lines): as hostile as anything their owner writes ---

# A record is well under 1 KiB; a service path of PATH_MAX bytes, each
# written as a six-character escape, still fits.
RECORD_MAX = 65536
# supervise's texts (error, reason) are a line: an interpreter's path and a few words
TEXT_MAX = 512
READINESS = ("notify", "check", "none")
NAMES_MAX = 64         # dependencies named in a record: a depends file lists a few


class BadRecord(ValueError):
    """A JSON record (state.json, an event line) that is not what it should
    be: str() says how, in a few words of ours (never the record's own)."""


def is_time(v) -> bool:
    # type(): a bool is no time; an int past 2**53 is none either (and
    # isfinite() of a 400-digit one raises)
    return (type(v) is float and math.isfinite(v)) or (type(v) is int and abs(v) < 2**53)


def is_count(v) -> bool:
    return type(v) is int and 0 <= v < 2**63


def is_pid(v) -> bool:
    return type(v) is int and 0 <= v < 2**32                 # 4 bytes in status


def is_duration(v) -> bool:
    return is_time(v) and v >= 0


def is_bool(v) -> bool:
    return type(v) is bool


def is_text(v) -> bool:
    return type(v) is str          # any words: cut and escaped where shown


def is_readiness(v) -> bool:
    return type(v) is str and v in READINESS


def is_want(v) -> bool:
    return type(v) is str and v in WANTS.values()


def is_names(v) -> bool:
    return type(v) is list and len(v) <= NAMES_MAX and all(type(n) is str for n in v)


def is_blocked_by(v) -> bool:
    return (type(v) is dict and len(v) <= NAMES_MAX
            and all(type(w) is str for w in v.values()))


def is_last_exit(v) -> bool:
    if type(v) is not dict or len(v) != 1:
        return False
    (key, n), = v.items()
    return type(n) is int and (key == "code" and 0 <= n <= 255
                               or key == "signal" and 0 < n < 128)


# the fields snapshot() uses: each may be absent or null, or else must pass its
# check. The others (state, paused, backoff...) are not read, so not judged.
RECORD_FIELDS = {
    "pid": (is_pid, "not a pid"),
    "since": (is_time, "not a time"),
    "want": (is_want, "not up, down or once"),
    "ready": (is_bool, "not true or false"),
    "ready_since": (is_time, "not a time"),
    "starts": (is_count, "not a count"),
    "last_exit": (is_last_exit, 'not {"code": N} or {"signal": N}'),
    "failed": (is_bool, "not true or false"),
    "quick_deaths": (is_count, "not a count"),
    "readiness": (is_readiness, "not notify, check or none"),
    "error": (is_text, "not a string"),
    "reason": (is_text, "not a string"),
    "next_start": (is_time, "not a time"),
    "last_duration": (is_duration, "not a duration"),
    "backoff": (is_duration, "not a duration"),
    "last_pid": (is_pid, "not a pid"),
    "last_start": (is_time, "not a time"),
    "last_end": (is_time, "not a time"),
    "waiting_for": (is_names, "not a list of names"),
    "blocked_by": (is_blocked_by, "not an object of names and reasons"),
}


def parse_record(data: bytes) -> dict:
    """The fields of a state.json (pure). Raises BadRecord."""
    if len(data) > RECORD_MAX:
        raise BadRecord(f"more than {RECORD_MAX} bytes")
    fields = load_object(data)
    check_fields(fields, RECORD_FIELDS)
    return fields


def load_object(data: bytes) -> dict:
    """A JSON object from bytes anyone may have written (pure). Raises BadRecord.

    Bytes that are not UTF-8 are read as Python's surrogateescape reads file
    names (PEP 383), so a path written raw by an older supervise reads back
    the same as one written with \\udcXX escapes (see statejson.py).
    """
    try:
        fields = json.loads(data.decode("utf-8", "surrogateescape"))
    except RecursionError:
        raise BadRecord("nested too deep") from None
    except ValueError:
        raise BadRecord("not JSON") from None
    if type(fields) is not dict:
        raise BadRecord("not a JSON object")
    return fields


def check_fields(fields: dict, checks: dict, required: bool = False) -> None:
    """BadRecord unless each field named in checks ({name: (check, why)})
    passes its check. Not required: absent or null passes too."""
    for name, (check, why) in checks.items():
        if name not in fields:
            if required:
                raise BadRecord(f"{name} is missing")
            continue
        value = fields[name]
        if not check(value) and (required or value is not None):
            raise BadRecord(f"{name} is {why}")


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
        rec["depends"] = None if entry.logger_of is not None else depends_of(fd)
        try:
            rec["supervised"] = is_supervised(fd)
        except OSError as e:
            rec["error"] = f"unable to open supervise/ok: {describe(e)}"
            return rec
        if not rec["supervised"]:
            if not servicedir.meant_for_this_host(os.path.basename(os.path.abspath(entry.path))):
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


def depends_of(dir_fd: int) -> list[str] | None:
    """What the depends file of the service open as dir_fd lists; None
    without one, or when it cannot be read (svscan says why)."""
    if not os.access(servicedir.DEPENDS, os.F_OK, dir_fd=dir_fd, follow_symlinks=False):
        return None
    try:
        return [cut(word) for word in servicedir.read_depends(".", dir_fd)]
    except (OSError, servicedir.BadDepends):
        return None


def blank(entry: Entry) -> Record:
    return Record(service=str(entry.path),
                  logger_of=None if entry.logger_of is None else str(entry.logger_of),
                  instance_of=None if entry.instance_of is None else str(entry.instance_of),
                  state="unknown", process=None, pid=None, since=None, seconds=None,
                  want=None, normally_up=None, ready=None, paused=None, failed=None,
                  starts=None, last_exit=None, supervised=False, source=None, error=None,
                  readiness=None, start_error=None, reason=None, next_start=None,
                  last_duration=None, quick_deaths=None, backoff=None, depends=None,
                  last_pid=None, last_start=None, last_end=None,
                  waiting_for=None, blocked_by=None)


def fill(rec: Record, snap: Snapshot, now: float) -> None:
    rec.update(process=snap.process, pid=snap.pid, want=snap.want, ready=snap.ready,
               paused=snap.paused if snap.process == "run" else False, failed=snap.failed,
               starts=snap.starts, last_exit=snap.last_exit, source=snap.source,
               readiness=snap.readiness, start_error=snap.start_error, reason=snap.reason,
               next_start=snap.next_start, last_duration=snap.last_duration,
               quick_deaths=snap.quick_deaths, backoff=snap.backoff,
               waiting_for=snap.waiting_for, blocked_by=snap.blocked_by,
               last_pid=snap.last_pid, last_start=snap.last_start, last_end=snap.last_end)
    rec["state"] = state_of(snap)
    rec["error"] = snap.record_error
    since = snap.since
    if rec["state"] == "ready" and snap.ready_since is not None:
        since = snap.ready_since
    rec["since"] = round(since, 6)
    rec["seconds"] = round(max(0.0, now - since), 3)


def state_of(snap: Snapshot) -> str:
    """The one word for a supervised service (see the module docstring)."""
    if snap.record_error:
        return "unknown"             # its readiness, failure... cannot be told
    if snap.failed:
        return "failed"
    if snap.process == "finish":
        return "finish"
    if snap.process == "run":
        if snap.paused:
            return "paused"
        # ready only if it can say so: readiness "none" is ready by the clock alone
        return "ready" if snap.ready and snap.readiness != "none" else "up"
    if snap.want == "up" and snap.blocked_by:
        return "blocked"
    if snap.want == "up" and snap.waiting_for:
        return "waiting"
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
