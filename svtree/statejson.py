"""supervise/state.json, the history beyond the 20-byte status file: its
codec. Rewritten whole (tmp + rename) on every change:

    {"service": PATH, "state": "down"|"run"|"finish", "want": "up"|"down"|"once",
     "pid": N, "since": UNIX, "ready": BOOL, "ready_since": UNIX|null,
     "paused": BOOL, "normally_up": BOOL, "starts": N,
     "last_exit": {"code": N}|{"signal": N}|null, "last_duration": SECONDS|null,
     "quick_deaths": N, "backoff": SECONDS, "failed": BOOL, "critical": BOOL,
     "boot": ID|null, "pid_start": TICKS|null, "readiness": "notify"|"check"|"none",
     "error": TEXT|null, "reason": TEXT|null, "next_start": UNIX|null,
     "waiting_for": [NAME...]|null, "blocked_by": {NAME: WHY...}|null,
     "last_pid": N|null, "last_start": UNIX|null, "last_end": UNIX|null}

readiness is how the service says it is ready: a notification-fd newline,
a passing ./check, or none (ready once ./run has stayed up a second).
error is why the last attempt to start ./run failed ("unable to start
./run: its interpreter /bin/sh\\r does not exist: run has CRLF line
endings"), null once a start succeeds; reason is why the service failed
for good ("max-deaths 4 reached", "finish exited 125", "critical: 3 failed
exits in a row"); next_start is when ./run will be started again while
supervise waits out a delay (the backoff), null otherwise. waiting_for
names the dependencies (the depends file) svscan says are not ready yet,
blocked_by those that cannot be, each with why ("failed", "no such
service"); ./run is not started while either is set. last_pid, last_start
and last_end are the pid and the start and end times of the last run that
ended (with last_exit, what a program asks of a job it started).

boot and pid_start name the running ./run for the kernel: this boot's id
(/proc/sys/kernel/random/boot_id) and its start time in clock ticks since
boot (field 22 of /proc/PID/stat). A supervise that finds them adopts the
process only if the kernel agrees (see supervisedir.leftover).

Event lines (fifodir.py) are packed here too: event_fields is what one says.

Names that are not UTF-8. A service path is bytes; Python holds one that is
not UTF-8 with each undecodable byte as a lone surrogate, byte 0xff as
U+DCFF (surrogateescape, PEP 383). It is written in ASCII JSON, the
way json.dumps(ensure_ascii=True) writes it: é as \\u00e9, and byte 0xff as
\\udcff. json.loads gives back the same str, which os.fsencode() turns into
the original bytes: "/service/caf\\udcff" names /service/caf<0xff>. (Raw
bytes, as written before, are read the same way by svtree: it decodes the
files with surrogateescape before parsing them.)
"""

# C; json.dumps would build an encoder per call. ASCII: see "Names that are not UTF-8"
from json.encoder import encode_basestring_ascii as encode_string

from . import servicestate as state, wstatus

STATES = {state.DOWN: "down", state.RUN: "run", state.FINISH: "finish"}
WANTS = {state.WANT_UP: "up", state.WANT_DOWN: "down", state.WANT_ONCE: "once"}


def seconds(wall):
    return None if wall is None else round(wall[0] + wall[1] / 1e9, 6)


def record(sv, path, normally_up, run_start=None, next_start=None) -> dict:
    """The state.json fields of a Supervisor; run_start: (boot id, start
    time in clock ticks since boot) of the running ./run, which a later
    supervise checks with the kernel before it adopts that process;
    next_start: when the next start is due (Unix time), if delayed."""
    boot, ticks = run_start if run_start and sv.state == state.RUN else (None, None)
    return {
        "service": path, "state": STATES[sv.state], "want": WANTS[sv.want], "pid": sv.pid,
        "since": seconds(sv.stamp), "ready": sv.ready, "ready_since": seconds(sv.ready_since),
        "paused": sv.paused, "normally_up": normally_up, "starts": sv.starts,
        "last_exit": wstatus.to_fields(sv.last_wstatus),
        "last_duration": None if sv.last_duration is None else round(sv.last_duration, 3),
        "quick_deaths": sv.quick_deaths, "backoff": sv.delay, "failed": sv.failed,
        "critical": bool(sv.policy.critical), "boot": boot, "pid_start": ticks,
        "readiness": state.readiness(sv.policy), "error": sv.error, "reason": sv.reason,
        "next_start": next_start,
        "waiting_for": list(sv.waiting_for) if sv.waiting_for else None,   # no empty ones
        "blocked_by": dict(sv.blocked_by) if sv.blocked_by else None,      # made per write
        "last_pid": sv.last_run and sv.last_run[0],
        "last_start": sv.last_run and seconds(sv.last_run[1]),
        "last_end": sv.last_run and seconds(sv.last_run[2]),
    }


def past(fields) -> state.Past:
    """The history in a state.json of our own (record's fields) that an
    adoption carries on; a field of the wrong kind is left at its default."""
    def number(key, default, kind=(int, float)):
        v = fields.get(key)
        return v if isinstance(v, kind) and not isinstance(v, bool) and v >= 0 else default
    last = None
    exit_ = fields.get("last_exit")
    if isinstance(exit_, dict) and len(exit_) == 1:
        (key, v), = exit_.items()
        if type(v) is int and 0 <= v <= 255 and key in ("code", "signal"):
            last = wstatus.from_fields(key, v)
    def wall(key):
        v = number(key, None)
        return None if v is None else divmod(round(v * 1e6) * 1000, 1_000_000_000)
    return state.Past(
        starts=number("starts", 0, int), last_wstatus=last,
        last_duration=number("last_duration", None), quick_deaths=number("quick_deaths", 0, int),
        backoff=number("backoff", state.THROTTLE), since=wall("since"),
        ready_since=wall("ready_since"))


def value(v) -> str:
    """JSON for the few kinds of value these records hold."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return encode_string(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{encode_string(k)}: {value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    return repr(v)          # int or float: repr is valid JSON for finite numbers


def pack(fields: dict) -> bytes:
    """One line of JSON, written by hand: cheaper for a forked supervise than
    json.dumps, and exactly what json.loads reads back. Pure ASCII: every
    other character, and a byte of a name that is not UTF-8, is escaped."""
    return (value(fields) + "\n").encode("ascii")


def event_fields(sv, path, name, wall) -> dict:
    """What an event line says: the state at the moment of the event; a
    waiting or blocked line also names the dependencies."""
    fields = {"service": path, "event": name, "time": seconds(wall), "pid": sv.pid,
              "state": STATES[sv.state], "want": WANTS[sv.want], "ready": sv.ready}
    if name == "waiting":
        fields["waiting_for"] = list(sv.waiting_for)
    elif name == "blocked":
        fields["blocked_by"] = dict(sv.blocked_by)
    return fields
