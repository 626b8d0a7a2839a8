"""A wait status (what waitpid() returns), decoded once for everyone: the
machine, the state.json codec and svscan. Pure: no os calls."""


def signal_of(wstatus: int) -> int:
    """The signal that ended the process; 0 if it exited."""
    return wstatus & 0x7F


def code_of(wstatus: int) -> int | None:
    """The exit code; None if a signal ended the process."""
    return wstatus >> 8 & 0xFF if wstatus & 0x7F == 0 else None


def exit_code(wstatus: int) -> int:
    """The shell's number for a wait status: the exit code, or 128 + signal."""
    code = code_of(wstatus)
    return 128 + signal_of(wstatus) if code is None else code


def finish_args(wstatus: int | None) -> list[str]:
    """runit's finish arguments: exit code or -1, then the signal number or 0.
    (None: an adopted process, whose exit status nobody can know.)"""
    if wstatus is None:
        return ["-1", "0"]
    code = code_of(wstatus)
    return [str(code), "0"] if code is not None else ["-1", str(signal_of(wstatus))]


def to_fields(wstatus: int | None) -> dict | None:
    """state.json's last_exit: {"code": N} or {"signal": N}; None for none."""
    if wstatus is None:
        return None
    code = code_of(wstatus)
    return {"code": code} if code is not None else {"signal": signal_of(wstatus)}


def from_fields(key: str, value: int) -> int:
    """The wait status a last_exit field stands for."""
    return (value & 0xFF) << 8 if key == "code" else value & 0x7F
