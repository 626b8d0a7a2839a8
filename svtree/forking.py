"""How svscan makes supervise processes cheaply: a fork without exec, from
svscan or from its zygote (zygote.py), after a rehearsal that warms the
code every supervise runs.

A forked supervise reuses the interpreter already in memory; what it costs
is the pages it writes. So before the first fork svscan runs a supervise's
whole life once on a scratch service (warm_up), in pages the children
share, and freezes its objects (gc.freeze) so that a child's collections
leave them alone. fork_quietly blocks every signal across the fork, and
become_supervise puts svscan's signals, descriptors and limits back as a
service expects them before supervise.run takes over.
"""

import _signal
import gc
import os
import resource
import select
import signal

from . import (logdir, logger, logscript, machine, proctitle, samepage, supervise, supervisedir,
               unix, zygote)
from .errors import TEMPORARY, tell

# what svscan catches that a forked supervise must not (plain ints: see supervise.py)
CHILD_DEFAULTS = tuple(int(s) for s in (
    signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGCHLD, signal.SIGPWR,
    signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT, signal.SIGWINCH))


DEPS_FD = 3             # where a supervise finds svscan's word on its dependencies
NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)   # as svscan was started
ALL_SIGNALS = tuple(int(s) for s in signal.valid_signals())
MASK = tuple(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, ()))  # as svscan started


def warn(what, e=None):
    tell("svscan", "warning", what, e)


def fork_quietly():
    """fork(), with every signal blocked in the child until it has put
    svscan's handlers and wakeup fd aside (supervise.install_signals, or the
    main command's reset, unblocks them). Otherwise a signal that reaches
    the child first (the TERM of a service removed as soon as it was made)
    runs svscan's handler there, which writes its number into svscan's own
    wakeup pipe: svscan would take a child's TERM for its own and shut the
    tree down."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, ALL_SIGNALS)   # the C function: no enums
    try:
        pid = os.fork()
    except OSError:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, MASK)
        raise
    if pid:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, MASK)
    return pid


def fork_supervise(path, fds=(), names=(), instance=None):
    """The pid of a new supervise of path, forked by svscan itself, with
    each fd of fds, (fd, target) pairs, on its descriptor target (names:
    its sockets', see sockets.py). Raises OSError."""
    # Frozen objects are skipped by the collector: the child's collections
    # then leave the pages it shares with svscan untouched.
    gc.freeze()
    try:
        pid = fork_quietly()
    except OSError:
        gc.unfreeze()
        raise
    if pid == 0:
        become_supervise(path, fds, names, instance)
    gc.unfreeze()              # svscan's own garbage stays collectable
    return pid


def become_supervise(path, fds=(), names=(), instance=None):
    """In a forked child (of svscan, or of the zygote's middle process):
    drop svscan's fds and signals, then supervise path. fds: (fd, target)
    pairs: the log pipe's end on 0 or 1 (the service's stdout, the logger's
    stdin), the dependencies' pipe on DEPS_FD, the service's listening
    sockets on SOCKETS_FD and after (all close-on-exec: ./run gets the
    sockets from supervise as fds 3, 4...); names: the sockets'. Never
    returns."""
    code = TEMPORARY
    try:
        _signal.set_wakeup_fd(-1)
        for signum in CHILD_DEFAULTS:
            _signal.signal(signum, _signal.SIG_DFL)
        deps_r = -1
        for fd, target in unix.copied_above(fds):
            os.dup2(fd, target, inheritable=target < 3)
            deps_r = target if target == DEPS_FD else deps_r
        # 0, 1, 2 stay (the logger's supervise gets only its stdin from us);
        # every other fd but the targets goes
        targets = {t for _, t in fds}
        top = max([2, *targets])
        for fd in range(3, top):
            if fd not in targets:
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.closerange(top + 1, os.sysconf("SC_OPEN_MAX"))
        resource.setrlimit(resource.RLIMIT_NOFILE, NOFILE)
        code = supervise.run(path, under_svscan=True, deps_r=deps_r, sockets=names,
                             instance=instance)
    except BaseException as e:     # never return into svscan's loop
        try:
            warn(f"supervise {path} failed", e)
        except BaseException:
            pass
    finally:
        os._exit(code)


def start_zygote():
    """Fork the zygote (zygote.py); None if it cannot be made: svscan then
    forks each supervise itself."""
    try:
        ours, theirs = zygote.pair()
    except OSError:
        return None
    gc.freeze()                   # as for a supervise: its collections skip all of ours
    try:
        pid = fork_quietly()
    except OSError:
        gc.unfreeze()
        ours.close()
        theirs.close()
        return None
    if pid == 0:
        ours.close()
        proctitle.name_process(f"svscan zygote {os.getcwd()}", "svscan-zygote")
        samepage.offer()          # before the first fork: every supervise inherits the mark
        zygote.serve(theirs, become_supervise)
    gc.unfreeze()
    theirs.close()
    return zygote.Zygote(pid, ours)


WARM_UP_ROUNDS = 8



def warm_up(rounds=WARM_UP_ROUNDS):
    """Rehearse a supervise's work here, on a scratch service, before the
    first fork.

    CPython 3.11 writes into a code object as it runs it (warm-up counters,
    then the specialised instructions and their caches), and fills the type
    method cache in libpython's data as methods are looked up. Done once
    here, in pages every forked supervise shares, those writes are not made
    again in each child: bench/run.py --only memory, 1587 -> 1355 KiB mean
    PSS per supervise (8 rounds; 1 round: 1437). The first round starts
    ./run (a shell that exits) at once, the others only at their `u`.
    Nothing is said, whatever happens (no writable TMPDIR, a noexec /tmp:
    stderr points at /dev/null meanwhile, and any error ends the rehearsal):
    the tree runs the same, at a little more memory.
    """
    base = os.environ.get("TMPDIR") or "/tmp"
    scratch = os.path.join(base, f".svscan-warm-up.{os.getpid()}.{os.urandom(4).hex()}")
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.mkdir(scratch, 0o700)       # ours alone: nobody else can put anything there
    except OSError:
        os.close(here)
        return
    stderr = quiet()
    try:
        fd = os.open(os.path.join(scratch, "run"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        os.write(fd, b"#!/bin/sh\nexit 0\n")
        os.close(fd)
        for i in range(rounds):
            if i == 1:
                os.close(os.open(os.path.join(scratch, "down"), os.O_WRONLY | os.O_CREAT, 0o600))
            rehearse(scratch)
            os.fchdir(here)
        rehearse_logger(scratch)
    except Exception:                  # a rehearsal: whatever went wrong costs memory only
        pass
    finally:
        try:
            os.fchdir(here)
            remove_tree(scratch)
        except OSError:
            pass
        os.close(here)
        if stderr >= 0:
            os.dup2(stderr, 2)
            os.close(stderr)


def quiet():
    """Point fd 2 at /dev/null; the saved fd 2 (-1 if it could not be)."""
    try:
        saved = os.dup(2)
    except OSError:
        return -1
    try:
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        os.close(saved)
        return -1
    os.dup2(null, 2)
    os.close(null)
    return saved


def rehearse(path):
    """One supervise's life on path, without its signals or its poll:
    setup, the first start and status write, ./run's exit, then the control
    letters d u d x, each followed by what supervise does after it."""
    sdir, lock, ctl_r, ctl_w, gid = supervisedir.setup(path)
    deps_r, deps_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    for fd, _ in unix.copied_above([(deps_r, DEPS_FD)]):     # as become_supervise moves them
        os.close(fd)
    loop = supervise.Loop(path, sdir, ctl_r, deps_r=deps_r)
    ok = -1
    try:
        loop.poller.register(ctl_r, select.POLLIN)
        loop.poller.register(deps_r, select.POLLIN)
        loop.on_deps()                   # nothing said: a service without dependencies
        os.write(deps_w, b'{"waiting_for":["a"],"blocked_by":{}}\n'
                         b'{"waiting_for":[],"blocked_by":{}}\n')
        loop.on_deps()                   # what a held service hears
        supervisedir.open_up(sdir, gid, path)
        supervisedir.make_ok(sdir, path, gid)
        loop.adopt_leftover()
        loop.feed(machine.TIMEOUT)
        loop.write_status()
        ok = supervisedir.open_ok(sdir)
        for letter in b" dudx":
            if letter != 32:
                os.write(ctl_w, bytes([letter]))
                loop.on_control()
            loop.write_status()
            if loop.sv.pid:
                _, wstatus = os.waitpid(loop.sv.pid, 0)
                loop.run_ended(wstatus)
                loop.write_status()
        loop.poller.poll(0)
    finally:
        for fd in (ok, sdir, lock, ctl_r, ctl_w, loop.deps_r, deps_w):
            if fd >= 0:
                os.close(fd)


def rehearse_logger(path):
    """The built-in logger's work, for the same reason: `multilog t s4096
    n2 ./main` on a few hundred lines, rotating on size and on ALRM."""
    os.chdir(path)
    script = logscript.parse(["t", "s4096", "n2", "./main"])
    dirs = {id(d): logdir.LogDir(d.path, d.size, d.num, d.processor) for d in script.dirs}
    log = logger.Logger(script, dirs)
    try:
        for _ in range(40):
            log.feed(b"a line of a service's output\n" * 8)
            log.budget()
        log.rotate()
        log.flush()
    finally:
        log.close()


def remove_tree(path):
    for top, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(top, name))
        for name in dirs:
            os.rmdir(os.path.join(top, name))
    os.rmdir(path)


