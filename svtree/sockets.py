"""Listening sockets held for a service across its restarts: its `socket`
file, one address a line:

    tcp:HOST:PORT  [name=NAME] [backlog=N]
    tcp6:HOST:PORT [name=NAME] [backlog=N]          (HOST may be [::1])
    unix:PATH      [name=NAME] [backlog=N] [mode=0660] [owner=USER[:GROUP]]

svscan creates them (as root, so a privileged port can be bound for a
service that runs as another user) when it first starts the service's
supervise, and keeps them open until the service is removed: neither a
restart of ./run nor one of its supervise closes them, so no connection is
refused meanwhile. supervise gets them on its fds 4, 5, ... (SOCKETS_FD)
and gives them to every start of ./run as fds 3, 4, ... with LISTEN_FDS,
LISTEN_PID and LISTEN_FDNAMES set as systemd's sd_listen_fds() expects.
An edit takes effect when the service's supervise is started again
(svc -x).

Root binds what the file asks, so the file counts only if root alone can
have written it (policy.is_ours, as for `critical`): another user's
`socket` file is refused with one line, and the service starts without.
"""

import grp
import os
import pwd
import socket
import stat

from . import unix
from .errors import describe
from .spawn import SOCKET_NAME_MAX as NAME_MAX, SOCKETS_MAX

BACKLOG = 128
FILE = "socket"


class BadSocket(ValueError):
    """A line of a socket file that cannot be used: the words say why."""


class Spec:
    __slots__ = ("family", "address", "name", "backlog", "mode", "owner", "text")

    def __init__(self, family, address, text):
        self.family, self.address, self.text = family, address, text
        self.name, self.backlog, self.mode, self.owner = None, BACKLOG, None, None


def parse(data: bytes) -> list[Spec]:
    """The sockets a socket file asks for (pure). Raises BadSocket."""
    specs = []
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        try:
            spec = address(words[0])
            for word in words[1:]:
                option(spec, word)
        except ValueError as e:
            raise BadSocket(f"line {number}: {e}") from None
        specs.append(spec)
    if len(specs) > SOCKETS_MAX:
        raise BadSocket(f"more than {SOCKETS_MAX} sockets")
    return specs


def address(word: str) -> Spec:
    kind, _, rest = word.partition(":")
    if kind == "unix":
        if not rest.startswith("/"):
            raise ValueError(f"not an absolute path: {rest!r}")
        return Spec(socket.AF_UNIX, rest, word)
    if kind not in ("tcp", "tcp6"):
        raise ValueError(f"not tcp:, tcp6: or unix:: {word!r}")
    host, _, port = rest.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"not HOST:PORT: {rest!r}")
    return Spec(socket.AF_INET6 if kind == "tcp6" else socket.AF_INET, (host, int(port)), word)


def option(spec: Spec, word: str):
    key, _, value = word.partition("=")
    if (key == "name" and value and ":" not in value and value.isprintable()
            and value.isascii() and len(value) <= NAME_MAX):
        spec.name = value
    elif key == "backlog" and value.isdigit() and int(value) > 0:
        spec.backlog = int(value)
    elif key == "mode" and spec.family == socket.AF_UNIX and value:
        spec.mode = int(value, 8) & 0o777
    elif key == "owner" and spec.family == socket.AF_UNIX and value:
        user, _, group = value.partition(":")
        try:
            pw = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
            gid = pw.pw_gid if not group else (int(group) if group.isdigit()
                                              else grp.getgrnam(group).gr_gid)
        except KeyError:
            raise ValueError(f"no such account: {value!r}") from None
        spec.owner = (pw.pw_uid, gid)
    else:
        raise ValueError(f"not an option: {word!r}")


def listen(spec: Spec) -> socket.socket:
    """A listening socket for spec. Raises OSError."""
    sock = socket.socket(spec.family, socket.SOCK_STREAM)
    try:
        if spec.family == socket.AF_UNIX:
            remove_stale(spec.address)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if spec.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if spec.family == socket.AF_UNIX and spec.mode is not None:
            # the mode as the file is made, not by name afterwards: a user who
            # may write its directory could have put a symlink there meanwhile
            old = os.umask(~spec.mode & 0o777)
            try:
                sock.bind(spec.address)
            finally:
                os.umask(old)
        else:
            sock.bind(spec.address)
        if spec.family == socket.AF_UNIX and spec.owner is not None:
            os.chown(spec.address, *spec.owner, follow_symlinks=False)
        sock.listen(spec.backlog)
        return sock
    except BaseException:
        sock.close()
        raise


def remove_stale(path):
    """A socket file left by an earlier svscan is removed; anything else
    at that path is not (bind then says it exists)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def default_name(service: str) -> str:
    """The service's directory name, as ASCII without ":" (LISTEN_FDNAMES'
    separator); a name that is not UTF-8 comes out with ?s."""
    name = os.path.basename(service).encode("ascii", "replace").decode()
    return name.replace(":", "_")[:NAME_MAX] or "socket"


def open_for(service: str, is_ours, warn) -> list[tuple[socket.socket, str]]:
    """The listening sockets service's socket file asks for, with their
    names ([] without a file, or if it cannot be used: said with warn)."""
    path = os.path.join(service, FILE)
    if not os.access(path, os.F_OK, follow_symlinks=False):
        return []
    if not is_ours(path):
        warn(f"unable to use {path}: not a file of uid {os.geteuid()} in a directory only it "
             "can write (root binds what it says); no sockets")
        return []
    try:
        specs = parse(unix.read_regular(path, None, 65536))
    except (OSError, unix.NotRegular, BadSocket) as e:
        warn(f"unable to use {path}: {e}; no sockets")
        return []
    held = []
    for spec in specs:
        try:
            name = spec.name or default_name(service)
            held.append((listen(spec), name))
        except OSError as e:
            warn(f"unable to listen on {spec.text} for {service}: {describe(e)}")
    return held
