"""Starting ./run, ./check and ./finish: each in a session of its own,
every signal at its default, from the service directory. posix_spawn,
but a fork and an exec for a ./run given listening sockets (sockets.py),
whose LISTEN_PID only a fork knows before the exec.
"""

import _signal
import fcntl
import os

from . import unix

SOCKETS_FD = 4            # svscan's listening sockets for the service (sockets.py)
SOCKETS_MAX = 16          # at most this many in a socket file
SOCKET_NAME_MAX = 255     # a socket's name (LISTEN_FDNAMES), in bytes
# every signal a handler can be set for, as plain ints: what a child starts
# with at its default (posix_spawn's setsigdef), whatever its parent caught;
# here, not in unix.py, which svc and svstat load at every start
CATCHABLE = tuple(sorted(_signal.valid_signals() - {_signal.SIGKILL, _signal.SIGSTOP}))


def listening(argv, notify, names):
    """Start ./run with the service's sockets (supervise's fds SOCKETS_FD
    on) as fds 3, 4, ..., LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID set,
    as sd_listen_fds() wants them: LISTEN_PID is the pid ./run will have,
    which only a fork knows before the exec. Otherwise as spawn(). Raises
    OSError (the exec's own error, told by the child on a pipe)."""
    env = dict(os.environ._data)
    env[b"LISTEN_FDS"] = str(len(names)).encode()
    env[b"LISTEN_FDNAMES"] = ":".join(names).encode()
    moves = [(SOCKETS_FD + i, 3 + i) for i in range(len(names))]
    if notify:
        moves.append(notify)
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        raise
    if pid == 0:                                # the child: nothing here returns
        try:
            os.close(r)
            w = fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, max(t for _, t in moves) + 1)  # off them
            os.setsid()
            for signum in CATCHABLE:
                _signal.signal(signum, _signal.SIG_DFL)
            _signal.set_wakeup_fd(-1)
            _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
            for fd, target in unix.copied_above(moves):
                os.dup2(fd, target)
            env[b"LISTEN_PID"] = str(os.getpid()).encode()
            os.execve(argv[0], argv, env)
        except OSError as e:
            os.write(w, e.errno.to_bytes(4, "little"))
        finally:
            os._exit(127)
    os.close(w)
    try:
        told = os.read(r, 4)
    finally:
        os.close(r)
    if told:
        os.waitpid(pid, 0)
        code = int.from_bytes(told, "little")
        raise OSError(code, os.strerror(code))
    return pid


def spawn(argv, notify=None, stderr_to_stdout=False):
    """Start argv[0] from the service directory in a session of its own.

    notify: (fd to give, number it gets in the child) for notification-fd.
    stderr_to_stdout: for ./check, whose complaints (curl's "Failed to
    connect" while the service starts) belong in the service's log, which
    is where supervise's stdout goes, not on svscan's stderr.
    """
    actions = [(os.POSIX_SPAWN_DUP2, notify[0], notify[1])] if notify else []
    if stderr_to_stdout:
        actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
    return os.posix_spawn(argv[0], argv, os.environ._data, setsid=True,
                          setsigdef=CATCHABLE, setsigmask=(), file_actions=actions)
