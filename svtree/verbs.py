"""The control verbs (svtree start, stop, restart, once, kill): the letter
each sends, and what it then waits for (with wait.settle()).

Each service waits for a goal of its own made from what it was before the
command (after()): a restart waits for a *new* run, a kill for the death of the run
it was sent to. They wait with settle(), which hands each service over as
soon as it is done (or hopeless, or in error) instead of all at the same
moment, the way runit's `sv -w` reports each service when it is. What a
verb waits for:

    start    up, wanted up, and ready if it can say so (readiness notify
             or check; a service with readiness "none", or of daemontools
             or runit, is done once up)
    restart  the same, and a run other than the one before (pid or start
             time changed), if one ran
    once     the same as start, but not wanted up (svtree writes want
             "once", runit "down"); or, for a service that was down, a
             run that has already ended again (a one-shot job)
    stop     down (./finish done too), wanted down
    kill     the run it was sent to is gone (down, or another run); a
             service that was not running is done at once

start, restart and once are hopeless once the service has failed for good
in a run after the command (not in the one before: `u` revives a failed
service, and that is what is waited for).
"""

import os
from pathlib import Path

from . import control, servicedir, status, tree, unix
from .errors import NotRunning, describe
from .wait import Goal, WaitError, failed_for_good


def up_enough(snap) -> bool:
    """Running, and ready if it has a way to say so (pure)."""
    if snap.process != "run" or snap.record_error:
        return False
    return snap.ready or snap.readiness not in ("notify", "check")


def another_run(before, snap) -> bool:
    """Has the status changed since before (a new pid or a new stamp)?"""
    return before is None or (snap.pid, snap.since) != (before.pid, before.since)


def after(verb: str, before: tree.Snapshot | None) -> Goal:
    """The goal of a control verb sent to a service that was `before` (None:
    no status yet)."""
    was_up = before is not None and before.process == "run"

    def hopeless(snap):                # a failure of a run after the command
        # (blocked is no failure here: the dependencies a start brings up
        # may mend it, which svscan says a moment later; a timeout says why)
        return failed_for_good(snap) if snap.failed and another_run(before, snap) else None
    if verb == "start":
        return Goal(verb, lambda s: up_enough(s) and s.want == "up", supervised=True,
                    ready=True, hopeless=hopeless)
    if verb == "restart":
        return Goal(verb, lambda s: (up_enough(s) and s.want == "up"
                                     and (not was_up or another_run(before, s))),
                    supervised=True, ready=True, hopeless=hopeless)
    if verb == "once":
        return Goal(verb, lambda s: (up_enough(s) and s.want != "up"
                                     or not was_up and s.process == "down"
                                     and another_run(before, s)),
                    supervised=True, ready=True, hopeless=hopeless)
    if verb == "stop":
        return Goal(verb, lambda s: s.process == "down" and s.want == "down")
    if verb == "kill":
        return Goal(verb, lambda s: not was_up or s.process != "run" or another_run(before, s))
    raise ValueError(verb)


# verb -> the control letters for svtree's supervise, and for daemontools' and
# runit's, which know no `r` (runit's `sv restart` sends term, cont, up)
LETTERS = {"start": ("u", "u"), "stop": ("d", "d"), "restart": ("r", "tcu"),
           "once": ("o", "o"), "kill": ("k", "k")}


def dependencies(path: Path) -> list[Path]:
    """The services path's depends file lists, and theirs, dependencies
    first, each once, found as svscan finds them (relative to path's scan
    directory); those that cannot be read are left out."""
    path = Path(os.path.abspath(path))
    found, seen = [], {path}

    def visit(service):
        try:
            words = servicedir.read_depends(str(service))
        except (OSError, servicedir.BadDepends):
            return
        for word in words:
            dep = Path(servicedir.dependency_path(service.parent, word))
            if dep not in seen:
                seen.add(dep)
                visit(dep)
                found.append(dep)
    visit(path)
    return found


def send(path: Path, verb: str) -> Goal:
    """Send a control verb to the service at path (see LETTERS) and return
    what to wait for then. Raises WaitError, whose words follow the path:
    "unable to chdir: file does not exist", "not a service directory",
    "supervise not running", "unable to control: REASON"."""
    try:
        fd = unix.open_dir(str(path))
    except OSError as e:
        raise WaitError(f"unable to chdir: {describe(e)}") from None
    try:
        if not servicedir.is_service(dir_fd=fd):
            raise WaitError("not a service directory (no run file)")
        try:
            before = tree.snapshot(fd)
        except (OSError, status.BadStatus):
            before = None                # no status yet, or a bad one: any change counts
        ours, theirs = LETTERS[verb]
        # a state.json about this very run: svtree's supervise, which knows `r`
        letters = ours if before is not None and before.source == "state.json" else theirs
        try:
            control.send(fd, letters)
        except (NotRunning, FileNotFoundError):
            raise WaitError("supervise not running") from None
        except OSError as e:
            raise WaitError(f"unable to control: {describe(e)}") from None
    finally:
        os.close(fd)
    return after(verb, before)
