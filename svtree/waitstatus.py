"""What a wait status says, in the words supervise gives it: the shell's
number and runit's ./finish arguments."""


def exit_code(wstatus: int) -> int:
    """The shell's number for a wait status: the exit code, or 128 + signal."""
    return wstatus >> 8 & 0xFF if wstatus & 0x7F == 0 else 128 + (wstatus & 0x7F)


def finish_args(wstatus) -> list[str]:
    """runit's finish arguments: exit code or -1, then the signal number or 0.
    (None: an adopted process, whose exit status nobody can know.)"""
    if wstatus is None:
        return ["-1", "0"]
    if wstatus & 0x7F == 0:
        return [str(wstatus >> 8 & 0xFF), "0"]
    return ["-1", str(wstatus & 0x7F)]
