"""The zygote: a quiet copy of svscan that forks every supervise.

A supervise forked from svscan copies every page it writes, and svscan's
own work between two forks (scans, Service objects, the garbage of each
rescan, the type method cache its lookups overwrite) spreads what it
writes over more pages: its allocations land in the holes svscan left, and
each method-cache entry it replaces drops a reference to a name somewhere
in svscan's heap. svscan forks the zygote once, right after the warm-up
(forking.warm_up), and the zygote does nothing between two forks but wait for
the next request: every supervise finds the heap and the cache as the
warm-up left them.

Each supervise is still svscan's child (svscan reaps it, signals it, and
checks that a ./run is its child): the zygote forks a middle process, which
forks the supervise, sends svscan its pid and exits at once; svscan, a
child subreaper (or PID 1), becomes the supervise's parent.

The protocol, on a SOCK_SEQPACKET socket pair, one message each way per fork:

    request (svscan -> zygote)   1 byte N, the number of descriptors given
                                 (0 to MAX_FDS), then N bytes: the
                                 descriptor the supervise gets each on, then
                                 the service's path (relative to the scan
                                 directory), a NUL and its sockets' names
                                 joined by ":", a NUL and its instance
                                 number (empty: none); the N descriptors
                                 as SCM_RIGHTS
    reply (middle -> svscan)     4 bytes, native order: the supervise's pid,
                                 or -errno if it could not be forked

svscan waits for the reply before it does anything else, so the pid is in
its table before its loop can reap that supervise: no SIGCHLD names a pid
it does not know yet. A supervise that dies before the middle process has
exited is a zombie the kernel hands over to svscan, with a SIGCHLD.

The zygote keeps every signal blocked (as forking.fork_quietly left it; each
supervise unblocks its own once its handlers are set), so Ctrl-C and a HUP
to the process group leave it be. It exits when svscan closes its end: at
shutdown, or when svscan dies. If it is gone or does not answer, svscan
kills it and forks each supervise itself, as it did before there was one.
"""

import _socket
import gc
import os
import sys

from .errors import TEMPORARY, tell
from .spawn import SOCKET_NAME_MAX, SOCKETS_MAX

MAX_FDS = 2 + SOCKETS_MAX       # the log pipe's end, the dependencies' pipe, sockets
PATH_MAX = 4096
# count, targets, path, NUL, the sockets' names each with its ":", NUL, an instance number
REQUEST_MAX = 1 + MAX_FDS + PATH_MAX + 1 + SOCKETS_MAX * (SOCKET_NAME_MAX + 1) + 1 + 10
ANSWER_WITHIN = 5.0             # seconds; a fork takes milliseconds
PID_BYTES = 4


class Gone(Exception):
    """The zygote has exited or does not answer."""


def pair():
    """(svscan's end, the zygote's end). Raises OSError."""
    return _socket.socketpair(_socket.AF_UNIX,
                              _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC, 0)


class Zygote:
    """svscan's handle on the zygote: its pid and svscan's end of the pair."""

    __slots__ = ("pid", "sock")

    def __init__(self, pid, sock):
        self.pid = pid
        self.sock = sock
        sock.settimeout(ANSWER_WITHIN)

    def fork(self, path, fds=(), names=(), instance=None):
        """The pid of a new supervise of path, with each fd of fds, (fd,
        target) pairs, on its descriptor target. Raises OSError if it could
        not be forked, Gone if the zygote cannot be used any more."""
        request = (bytes((len(fds), *(target for _, target in fds))) + os.fsencode(path)
                   + b"\0" + ":".join(names).encode()
                   + b"\0" + (b"" if instance is None else b"%d" % instance))
        rights = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                   b"".join(fd.to_bytes(4, sys.byteorder) for fd, _ in fds))] if fds else []
        try:
            self.sock.sendmsg([request], rights)
            reply = self.sock.recv(PID_BYTES)
        except OSError as e:      # EPIPE, ECONNRESET, TimeoutError
            raise Gone(str(e) or type(e).__name__) from None
        if len(reply) != PID_BYTES:
            raise Gone("it exited")
        pid = int.from_bytes(reply, sys.byteorder, signed=True)
        if pid <= 0:
            raise OSError(-pid, os.strerror(-pid))
        return pid

    def close(self):
        """The zygote reads end of file and exits."""
        self.sock.close()


def serve(sock, become):
    """The zygote's life: fork a supervise for each request until svscan
    closes its end. become(path, fds, names, instance) is the supervise's; it never
    returns. Never returns."""
    code = 0
    try:
        keep = sock.fileno()
        os.closerange(3, keep)                 # svscan's wakeup pipe, its pipes
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        room = _socket.CMSG_SPACE(4 * MAX_FDS)
        while True:
            data, ancillary, _, _ = sock.recvmsg(REQUEST_MAX, room)
            if not data:
                break                          # svscan closed its end, or died
            received = []
            for level, kind, raw in ancillary:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    received += [int.from_bytes(raw[i:i + 4], sys.byteorder)
                                 for i in range(0, len(raw) - 3, 4)]
            count = data[0]
            path, _, rest = data[1 + count:].partition(b"\0")
            names, _, instance = rest.partition(b"\0")
            try:
                spawn(sock, become, os.fsdecode(path), tuple(zip(received, data[1:1 + count])),
                      tuple(names.decode().split(":")) if names else (),
                      int(instance) if instance else None)
            finally:
                for fd in received:
                    os.close(fd)
    except BaseException as e:                 # never return into svscan's code
        code = TEMPORARY
        try:
            tell("svscan", "warning", "the zygote failed", e)
        except BaseException:
            pass
    finally:
        os._exit(code)


def spawn(sock, become, path, fds, names, instance):
    """Fork the middle process, which forks the supervise, sends its pid
    and exits; wait for it (the zygote's only child, ever)."""
    gc.freeze()              # the collector of each supervise skips what is ours
    try:
        middle = os.fork()
    except OSError as e:
        sock.send((-e.errno).to_bytes(PID_BYTES, sys.byteorder, signed=True))
        return
    if middle == 0:
        try:
            try:
                pid = os.fork()
            except OSError as e:
                pid = -e.errno
            if pid == 0:
                become(path, fds, names, instance)
            sock.send(pid.to_bytes(PID_BYTES, sys.byteorder, signed=True))
        finally:
            os._exit(0)
    os.waitpid(middle, 0)
