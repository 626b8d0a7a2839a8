"""What supervise tells programs beyond the 20-byte status file.

supervise/state.json, rewritten whole (tmp + rename) on every change:

    {"service": PATH, "state": "down"|"run"|"finish", "want": "up"|"down"|"once",
     "pid": N, "since": UNIX, "ready": BOOL, "ready_since": UNIX|null,
     "paused": BOOL, "normally_up": BOOL, "starts": N,
     "last_exit": {"code": N}|{"signal": N}|null, "last_duration": SECONDS|null,
     "quick_deaths": N, "backoff": SECONDS, "failed": BOOL, "critical": BOOL,
     "boot": ID|null, "pid_start": TICKS|null, "readiness": "notify"|"check"|"none",
     "error": TEXT|null, "reason": TEXT|null, "next_start": UNIX|null}

readiness is how the service says it is ready: a notification-fd newline,
a passing ./check, or none (ready once ./run has stayed up a second).
error is why the last attempt to start ./run failed ("unable to start
./run: its interpreter /bin/sh\\r does not exist: run has CRLF line
endings"), null once a start succeeds; reason is why the service failed
for good ("max-deaths 4 reached", "finish exited 125", "critical: 3 failed
exits in a row"); next_start is when ./run will be started again while
supervise waits out a delay (the backoff), null otherwise.

boot and pid_start name the running ./run for the kernel: this boot's id
(/proc/sys/kernel/random/boot_id) and its start time in clock ticks since
boot (field 22 of /proc/PID/stat). A supervise that finds them adopts the
process only if the kernel agrees (see supervise.leftover).

supervise/event/, a fifodir as in s6: a reader creates a fifo in it (any
name not starting with a dot), opens it for reading, and gets one JSON line
per state change: {"service", "event", "time", "pid", "state", "want",
"ready"} with event one of up, ready, exited, down, failed, unhealthy.
supervise opens each fifo without blocking: a fifo with no reader is
removed, a reader whose pipe is full misses the line; nothing waits. The
lines of a change are written after status and state.json, so a reader who
looks at them on hearing of it finds it there.

Names that are not UTF-8. A service path is bytes; Python holds one that is
not UTF-8 with each undecodable byte as a lone surrogate, byte 0xff as
U+DCFF (surrogateescape, PEP 383). Both files are written in ASCII JSON, the
way json.dumps(ensure_ascii=True) writes it: é as \\u00e9, and byte 0xff as
\\udcff. json.loads gives back the same str, which os.fsencode() turns into
the original bytes: "/service/caf\\udcff" names /service/caf<0xff>. (Raw
bytes, as written before, are read the same way by svtree: it decodes the
files with surrogateescape before parsing them.)
"""

import os
import select
# C; json.dumps would build an encoder per call. ASCII: see "Names that are not UTF-8"
from json.encoder import encode_basestring_ascii as encode_string

from . import machine, unix

STATES = {machine.DOWN: "down", machine.RUN: "run", machine.FINISH: "finish"}
WANTS = {machine.WANT_UP: "up", machine.WANT_DOWN: "down", machine.WANT_ONCE: "once"}
EVENT_DIR = "event"


def seconds(wall):
    return None if wall is None else round(wall[0] + wall[1] / 1e9, 6)


def last_exit(wstatus):
    if wstatus is None:
        return None
    if wstatus & 0x7F == 0:
        return {"code": wstatus >> 8 & 0xFF}
    return {"signal": wstatus & 0x7F}


def record(sv, path, normally_up, run_start=None, next_start=None) -> dict:
    """The state.json fields of a Supervisor; run_start: (boot id, start
    time in clock ticks since boot) of the running ./run, which a later
    supervise checks with the kernel before it adopts that process;
    next_start: when the next start is due (Unix time), if delayed."""
    boot, ticks = run_start if run_start and sv.state == machine.RUN else (None, None)
    return {
        "service": path, "state": STATES[sv.state], "want": WANTS[sv.want], "pid": sv.pid,
        "since": seconds(sv.stamp), "ready": sv.ready, "ready_since": seconds(sv.ready_since),
        "paused": sv.paused, "normally_up": normally_up, "starts": sv.starts,
        "last_exit": last_exit(sv.last_wstatus),
        "last_duration": None if sv.last_duration is None else round(sv.last_duration, 3),
        "quick_deaths": sv.quick_deaths, "backoff": sv.delay, "failed": sv.failed,
        "critical": bool(sv.policy.critical), "boot": boot, "pid_start": ticks,
        "readiness": machine.readiness(sv.policy), "error": sv.error, "reason": sv.reason,
        "next_start": next_start,
    }


def past(fields) -> machine.Past:
    """The history in a state.json of our own (record's fields) that an
    adoption carries on; a field of the wrong kind is left at its default."""
    def number(key, default, kind=(int, float)):
        v = fields.get(key)
        return v if isinstance(v, kind) and not isinstance(v, bool) and v >= 0 else default
    wstatus = None
    exit_ = fields.get("last_exit")
    if isinstance(exit_, dict) and len(exit_) == 1:
        (key, v), = exit_.items()
        if type(v) is int and 0 <= v <= 255 and key in ("code", "signal"):
            wstatus = v << 8 if key == "code" else v & 0x7F
    def wall(key):
        v = number(key, None)
        return None if v is None else divmod(round(v * 1e6) * 1000, 1_000_000_000)
    return machine.Past(
        starts=number("starts", 0, int), last_wstatus=wstatus,
        last_duration=number("last_duration", None), quick_deaths=number("quick_deaths", 0, int),
        backoff=number("backoff", machine.THROTTLE), since=wall("since"),
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
    return repr(v)          # int or float: repr is valid JSON for finite numbers


def pack(fields: dict) -> bytes:
    """One line of JSON, written by hand: cheaper for a forked supervise than
    json.dumps, and exactly what json.loads reads back. Pure ASCII: every
    other character, and a byte of a name that is not UTF-8, is escaped."""
    return (value(fields) + "\n").encode("ascii")


def event_fields(sv, path, name, wall) -> dict:
    """What an event line says: the state at the moment of the event."""
    return {"service": path, "event": name, "time": seconds(wall), "pid": sv.pid,
            "state": STATES[sv.state], "want": WANTS[sv.want], "ready": sv.ready}


def make_event_dir(sdir, gid):
    """supervise/event/: readers of group gid (root's unless the service's
    access file names a group) add fifos here. When the group changes, the
    fifos of the old one go: access taken back is taken back."""
    if not os.access(EVENT_DIR, os.F_OK, dir_fd=sdir, follow_symlinks=False):
        os.mkdir(EVENT_DIR, 0o700, dir_fd=sdir)
    fd = os.open(EVENT_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=sdir)
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (os.geteuid(), gid):
            os.fchown(fd, os.geteuid(), gid)
            os.fchmod(fd, 0o700)
            for name in os.listdir(fd):
                try:
                    os.unlink(name, dir_fd=fd)
                except OSError:
                    pass
        os.fchmod(fd, 0o3730)
    finally:
        os.close(fd)


def announce(sdir, events):
    """Write one line for each of events (event_fields dicts) to every fifo
    of supervise/event/ that has a reader; with no fifo there, no line is
    even made."""
    try:
        fd = os.open(EVENT_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=sdir)
    except OSError:
        return
    try:
        try:
            names = [n for n in os.listdir(fd) if not n.startswith(".")]
        except OSError:                          # out of descriptors: nobody told
            return
        if names:
            writes = whole_writes([pack(fields) for fields in events])
            for name in names:
                tell(fd, name, writes)
    finally:
        os.close(fd)


def whole_writes(lines):
    """lines joined into as few writes as keep each within PIPE_BUF, so that
    a reader never gets part of a line (a longer line goes alone)."""
    writes, current = [], b""
    for line in lines:
        if current and len(current) + len(line) > select.PIPE_BUF:
            writes.append(current)
            current = b""
        current += line
    if current:
        writes.append(current)
    return writes


def tell(dfd, name, writes):
    try:
        w = unix.open_fifo_writer(name, dfd)
    except unix.NotRunning:                      # its reader is gone: tidy up
        try:
            os.unlink(name, dir_fd=dfd)
        except OSError:
            pass
        return
    except OSError:
        return
    try:
        for data in writes:
            os.write(w, data)                    # <= PIPE_BUF: whole lines or nothing
    except OSError:
        pass                                     # full: this reader misses the line
    finally:
        os.close(w)


class Subscription:
    """A reader's fifo in a service's supervise/event/, both ends open (our
    own write end keeps it from reading end of file between two writers).

    Raises OSError if the service has no event/ (not svtree's supervise, or
    not yet) or the fifo cannot be made. close() removes the fifo.
    """

    __slots__ = ("dir", "name", "r", "w")

    def __init__(self, service_path, name):
        self.r = self.w = -1
        self.dir = os.open(os.path.join(service_path, "supervise", EVENT_DIR),
                           os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        self.name = name               # set before it exists: an interrupt right
        try:                           # after mkfifo still has close() remove it
            unix.make_fifo(name, self.dir, 0o620)   # the group of event/: a supervise
                                                    # run as the service's owner writes
            self.r, self.w = unix.open_fifo_reader(name, self.dir)
        except BaseException:
            self.close()
            raise

    def close(self):
        for fd in (self.r, self.w):
            if fd >= 0:
                os.close(fd)
        self.r = self.w = -1
        if self.dir >= 0:
            try:
                os.unlink(self.name, dir_fd=self.dir)
            except OSError:
                pass
            os.close(self.dir)
            self.dir = -1
