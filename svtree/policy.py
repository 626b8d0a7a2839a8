"""A service's policy, read from small files in its directory.

Every file is optional; a missing one means the default, a bad one is
reported and the default used. supervise reads them before each start of
./run, so an edit takes effect at the next start.

    notification-fd  N     ./run writes a newline to fd N when it is ready (s6)
    check                  executable: readiness probe, then health check (runit's ./check)
    check-interval   S     seconds between two health checks once ready (default: none)
    check-failures   N     failed health checks in a row that restart it (default 3)
    check-timeout    S     seconds before a hanging check is killed (default 10)
    restart          WORD  always (default), on-failure (exit 0 stays down), never
    backoff-max      S     cap of the restart delay, doubling from 1 s (default 60)
    max-deaths       N     quick deaths in a row that fail it for good (default: never)
    down-signal      SIG   what svc -d and svc -r send (default TERM) (s6)
    timeout-kill     MS    then KILL its process group this long after (s6; 0: never)
    timeout-finish   MS    finish is killed this long after it starts (default 5000;
                           0: no limit) (s6)
    critical         [N]   under svscan, N failed exits in a row stop the whole tree;
                           only a regular file of supervise's own user (root) counts
"""

import math
import os
import signal
import stat

from . import trust

CRITICAL_DEFAULT = 3


class Policy:
    __slots__ = ("notify_fd", "check", "check_interval", "check_failures", "check_timeout",
                 "restart", "backoff_max", "max_deaths", "down_signal", "timeout_kill",
                 "finish_timeout", "critical", "finish")

    def __init__(self, **kw):
        self.notify_fd = None
        self.check = False
        self.check_interval = None
        self.check_failures = 3
        self.check_timeout = 10.0
        self.restart = "always"
        self.backoff_max = 60.0
        self.max_deaths = 0
        self.down_signal = int(signal.SIGTERM)
        self.timeout_kill = None
        self.finish_timeout = 5.0
        self.critical = 0
        self.finish = True           # ./finish is there (supervise looks when ./run ends)
        for key, value in kw.items():
            setattr(self, key, value)


def signal_number(text: str) -> int:
    """TERM, SIGTERM or 15 -> 15."""
    text = text.strip().upper()
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
        raise ValueError(text)
    name = text if text.startswith("SIG") else "SIG" + text
    return int(getattr(signal.Signals, name))


def positive(convert):
    def parse(text):
        value = convert(text.strip())
        if value < 0 or not math.isfinite(value):
            raise ValueError(text)
        return value
    return parse


def milliseconds(text):
    """s6's convention: a number of milliseconds, 0 meaning never."""
    value = positive(int)(text)
    return value / 1000 if value else None


def restart_word(text):
    word = text.strip()
    if word not in ("always", "on-failure", "never"):
        raise ValueError(word)
    return word


def critical_count(text):
    text = text.strip()
    return max(1, int(text)) if text else CRITICAL_DEFAULT


FILES = (
    ("notification-fd", "notify_fd", positive(int)),
    ("check-interval", "check_interval", positive(float)),
    ("check-failures", "check_failures", positive(int)),
    ("check-timeout", "check_timeout", positive(float)),
    ("restart", "restart", restart_word),
    ("backoff-max", "backoff_max", positive(float)),
    ("max-deaths", "max_deaths", positive(int)),
    ("down-signal", "down_signal", signal_number),
    ("timeout-kill", "timeout_kill", milliseconds),
    ("timeout-finish", "finish_timeout", milliseconds),
    ("critical", "critical", critical_count),
)


def read_text(name: str) -> str:
    """The text of a policy file; ValueError if it is not a regular file
    (a fifo must not hang us), OSError if it cannot be read."""
    if not stat.S_ISREG(os.stat(name).st_mode):     # a device is not even opened
        raise ValueError(name)
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):      # swapped since the stat
            raise ValueError(name)
        return os.read(fd, 256).decode("utf-8", "replace")
    finally:
        os.close(fd)


def fd_limit() -> int:
    """The soft RLIMIT_NOFILE: ./run can be given no descriptor at or above it."""
    import resource       # svscan has it already; a lone supervise pays only here
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


def is_ours(name: str) -> bool:
    """Is NAME a regular file that only we can have made (not a symlink,
    one link, owned by us, writable by nobody else, in a directory of ours
    nobody else can write, so no file of ours was renamed into its name)?
    `critical` counts only then: a service's owner must not be able to
    bring root's tree down."""
    try:
        return trust.safe_file(os.stat(name, follow_symlinks=False)) \
            and trust.safe_dir(os.stat(os.path.dirname(name) or "."))
    except OSError:
        return False


def read(path: str, warn) -> Policy:
    """The policy of the service whose directory is the current directory.

    path names it in warnings; warn(message) reports a bad file.
    """
    policy = Policy()
    for name, field, parse in FILES:
        if not os.access(name, os.F_OK):
            continue
        if field == "critical" and not is_ours(name):
            warn(f"unable to use {path}/{name}: not a file of uid {os.geteuid()} in a directory"
                 " only it can write (only such a file makes a service critical); ignored")
            continue
        try:
            setattr(policy, field, parse(read_text(name)))
        except (OSError, ValueError, AttributeError):
            warn(f"unable to use {path}/{name}: not a valid value; using the default")
            if field == "critical":
                policy.critical = CRITICAL_DEFAULT   # still critical, as it says
    if policy.notify_fd is not None and policy.notify_fd < 3:
        warn(f"unable to use {path}/notification-fd: must be 3 or more")
        policy.notify_fd = None
    elif policy.notify_fd is not None and policy.notify_fd >= fd_limit():
        warn(f"unable to use {path}/notification-fd: {policy.notify_fd} is not below "
             f"the descriptor limit ({fd_limit()}, RLIMIT_NOFILE)")
        policy.notify_fd = None
    policy.check = os.access("check", os.X_OK)
    return policy
