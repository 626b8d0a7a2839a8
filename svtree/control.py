"""The control protocol: letters written to SERVICE/supervise/control.

Each byte is one command; supervise ignores bytes it does not know. A client
opens the fifo with O_WRONLY|O_NONBLOCK: ENXIO means supervise is not
running. The same trick on supervise/ok is the liveness probe (svok).
"""

import os

from . import unix

# letter -> what supervise does (daemontools 0.76 plus runit's q, 1, 2)
LETTERS = {
    "u": "up: want up; start if down",
    "d": "down: want down; TERM then CONT if up",
    "o": "once: start if down; do not restart",
    "p": "pause: STOP",
    "c": "continue: CONT",
    "h": "hangup: HUP",
    "a": "alarm: ALRM",
    "i": "interrupt: INT",
    "t": "terminate: TERM",
    "k": "kill: KILL",
    "q": "quit: QUIT",
    "1": "user 1: USR1",
    "2": "user 2: USR2",
    "x": "exit: supervise exits once the service is down",
}


def send(dir_fd: int, letters: str) -> None:
    """Write letters to the control fifo of the service open as dir_fd.

    Raises errors.NotRunning or OSError.
    """
    fd = unix.open_fifo_writer("supervise/control", dir_fd)
    try:
        unix.write_all(fd, letters.encode("ascii"))
    finally:
        os.close(fd)


def is_up(dir_fd: int | None, service: str = ".") -> bool:
    """True if a supervise holds the service's ok fifo open: the service open
    as dir_fd, or the path service (dir_fd None).

    Returns False for a missing fifo, something else in its place, or no
    reader; raises other OSErrors.
    """
    try:
        fd = unix.open_fifo_writer(os.path.join(service, "supervise/ok"), dir_fd)
    except (unix.NotRunning, unix.NotFifo, FileNotFoundError):
        return False
    os.close(fd)
    return True
