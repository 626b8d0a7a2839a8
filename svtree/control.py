"""The control protocol: letters written to SERVICE/supervise/control.

Each byte is one command; supervise ignores bytes it does not know. A client
opens the fifo with O_WRONLY|O_NONBLOCK: ENXIO means supervise is not
running. The same trick on supervise/ok is the liveness probe (svok).
"""

import os

from . import unix

# letter -> its word: daemontools 0.76's, runit's q 1 2, s6's r P C K. In
# svc's synopsis order; supervise's meaning of each is machine.COMMANDS.
LETTERS = {
    "u": "up", "d": "down", "o": "once", "p": "pause", "c": "continue", "h": "hup",
    "a": "alarm", "i": "interrupt", "t": "term", "k": "kill", "q": "quit", "x": "exit",
    "1": "usr1", "2": "usr2", "r": "restart", "P": "pause group", "C": "continue group",
    "K": "kill group",
}
# the order svc's words list them in: what a service does first
SAID = "udoxpchaitkq12rPCK"


def words(order: str = SAID) -> str:
    """`u up, d down, ...`: each letter with its word."""
    return ", ".join(f"{letter} {LETTERS[letter]}" for letter in order)


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
