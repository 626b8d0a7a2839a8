"""The trust boundary (issue 10): nothing a service's owner writes makes
root's svscan or supervise act outside that service.

Each test runs root's real supervise or svscan over a service directory that
belongs to a real second user (made for the test), lets that user do what a
hostile owner would (through setpriv, from programs staged where the user can
read them: conftest.staged_programs), and checks that root signalled, killed,
chowned, adopted or shut down nothing outside that user's own service, said
why in one line, and that the rest of the tree still runs.

Covered elsewhere: hostile records read by the tools (state.json, event
lines, status fifos for svstat, log directories: test_hostile), the metrics
server (test_metrics_server), symlinks planted in a root supervise/
(test_supervise).
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (SLEEPER, comm, kill_everything, pid_alive, processes_under, program, run,
                      start_supervise, status_pid, wait_until, write_script)
from svtree import procfs, status

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (useradd, chown)")
STUBBORN = "#!/bin/sh\ntrap '' TERM\nexec sleep 1000\n"    # TERM ignored, through exec


@pytest.fixture
def two_users():
    """Two throwaway accounts, each with a group of its own: [(name, uid, gid)] * 2."""
    if os.geteuid() != 0:
        pytest.skip("needs root to add users")
    import pwd
    created = []
    try:
        for tag in "ab":
            name = f"svtf{os.getpid() % 100000}{tag}"
            subprocess.run(["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", name],
                           check=True, capture_output=True)
            created.append(name)
        yield [(n, pwd.getpwnam(n).pw_uid, pwd.getpwnam(n).pw_gid) for n in created]
    finally:
        for name in created:
            subprocess.run(["userdel", "-r", name], capture_output=True)
            subprocess.run(["groupdel", name], capture_output=True)


@pytest.fixture
def open_tree(procs):
    """A directory every user can reach (tmp_path's parents are root's 0700)."""
    top = Path(tempfile.mkdtemp(prefix="svtree-trust-"))
    os.chmod(top, 0o755)
    yield top
    kill_everything(procs, [top])       # or supervise writes as rmtree deletes
    shutil.rmtree(top)


@pytest.fixture
def as_user(staged_programs):
    """as_user(user, prog, *args): one of our programs run to completion as
    user, from copies user can read wherever the checkout lives (conftest)."""
    return staged_programs.run


def as_shell(user, script):
    """A shell script run as user (who owns the service: mv, mkdir, cp)."""
    _, uid, gid = user
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                           "sh", "-ec", script], capture_output=True, text=True, timeout=30,
                          cwd="/")


def owned_service(top, user, name="svc", run=SLEEPER, access=None):
    """A service directory owned by user; access: the text of a root-owned
    access file (root's opt-in), if any."""
    sv = top / name
    write_script(sv / "run", run)
    if access is not None:
        (sv / "access").write_text(access)
    os.chown(sv, user[1], user[2])
    return sv


def victim(procs):
    """A root process leading its own session, as a ./run does: what a
    forged record would have root signal."""
    return procs.start("sleep", "1000").pid


def forgery(top, pid):
    """status and state.json naming pid, as the previous supervise would
    have written them for it (its real start time, this boot): files the
    service's owner can copy into a supervise/ of their own."""
    ticks = int(procfs.proc_stat(pid)[19])
    lived = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    seconds, nanos = divmod(time.time_ns() - int(lived * 1e9), 1_000_000_000)
    d = top / f"forged-{pid}"
    d.mkdir(mode=0o755)
    (d / "status").write_bytes(status.pack(status.Status(
        seconds, nanos, pid, False, status.WANT_UP, False, status.RUN)))
    (d / "state.json").write_text(json.dumps({
        "pid": pid, "since": round(seconds + nanos / 1e9, 6), "state": "run",
        "boot": procfs.boot_id(), "pid_start": ticks}))
    for f in d.iterdir():
        f.chmod(0o644)
    return d


def swap_in(user, sv, files):
    """The owner renames supervise/ away and makes one of their own holding
    files (copies of the given directory's, or a fifo where status goes)."""
    plant = (f"cp {files}/status {files}/state.json supervise/" if files
             else "mkfifo supervise/status")
    r = as_shell(user, f"cd {sv}; mv supervise supervise.old; mkdir supervise; {plant}")
    assert r.returncode == 0, r.stderr


# --- who may control a service ----------------------------------------------------------

def test_only_root_controls_a_service_without_an_opt_in(procs, two_users, open_tree, as_user):
    """No access file: supervise/ and its fifos stay root's (0700, 0600),
    even where another user owns the service directory."""
    owner, other = two_users
    sv = owned_service(open_tree, owner)
    start_supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    sup = sv / "supervise"
    st = sup.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o700, 0, 0)
    for fifo in ("control", "ok"):
        st = (sup / fifo).lstat()
        assert stat.S_ISFIFO(st.st_mode) and (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0)
    for user in (owner, other):
        r = as_user(user, "svc", "-d", sv)
        assert (r.returncode, r.stderr) == (
            111, f"svc: warning: unable to control {sv}: access denied\n")
    assert status_pid(sv) == pid and pid_alive(pid)


def test_the_access_file_lets_a_group_control_it(procs, two_users, open_tree, as_user):
    """Root's service directory, a root-made access file naming a group:
    its members may write the fifos (0620) but not read them."""
    member, other = two_users
    sv = open_tree / "svc"
    write_script(sv / "run", SLEEPER)
    (sv / "access").write_text(f"group {member[0]}   # the member's own group\n")
    start_supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    sup = sv / "supervise"
    st = sup.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 0, member[2])
    for fifo in ("control", "ok"):
        st = (sup / fifo).lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o620, 0, member[2])
    r = as_user(other, "svc", "-d", sv)
    assert (r.returncode, r.stderr) == (111, f"svc: warning: unable to control {sv}: access denied\n")
    assert status_pid(sv) == pid and pid_alive(pid)
    assert as_shell(member, f"cat {sup}/control").returncode != 0   # cannot take commands
    assert as_user(member, "svok", sv).returncode == 0
    r = as_user(member, "svc", "-d", sv)
    assert (r.returncode, r.stderr) == (0, "")
    wait_until(lambda: not pid_alive(pid))


def test_access_taken_back_is_taken_back(procs, two_users, open_tree):
    """A member who kept the control fifo open from when the group had
    access commands nothing once the access file is gone and supervise
    restarted: the fifos are made anew."""
    member, _ = two_users
    sv = open_tree / "svc"
    write_script(sv / "run", SLEEPER)
    (sv / "access").write_text(f"group {member[0]}\n")
    first = start_supervise(procs, sv)
    wait_until(lambda: status_pid(sv))
    _, uid, gid = member
    holder = procs.start("setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                         "sh", "-c", f"exec 3>{sv}/supervise/control; echo held; "
                         "read line; printf k >&3; echo sent", stdin=subprocess.PIPE, cwd="/")
    assert holder.stdout.readline() == b"held\n"
    (sv / "access").unlink()
    assert run("svc", "-dx", sv).returncode == 0
    first.wait(timeout=10)
    start_supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    holder.stdin.write(b"go\n")
    holder.stdin.flush()
    holder.wait(timeout=10)              # the old fifo has no reader: SIGPIPE, nothing sent
    assert stat.S_IMODE((sv / "supervise").stat().st_mode) == 0o700
    assert run("svok", sv).returncode == 0 and status_pid(sv) == pid and pid_alive(pid)


def test_an_access_file_the_owner_wrote_counts_for_nothing(procs, two_users, open_tree,
                                                           as_user):
    owner, _ = two_users
    sv = owned_service(open_tree, owner)
    (sv / "access").write_text(f"group {owner[0]}\n")
    os.chown(sv / "access", owner[1], owner[2])
    proc = start_supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    r = as_user(owner, "svc", "-d", sv)
    assert (r.returncode, r.stderr) == (111, f"svc: warning: unable to control {sv}: access denied\n")
    assert pid_alive(pid)
    proc.terminate()
    err = proc.communicate(timeout=10)[1].decode()
    assert f"supervise: warning: unable to use {sv}/access: the service directory is " \
           "writable by others; root alone controls it\n" in err


# --- 1. a forged status is not adopted ----------------------------------------------------

def test_a_forged_status_is_not_adopted(procs, two_users, open_tree):
    """supervise dies (SIGKILL), and before svscan starts the next one the
    owner puts a supervise/ of their own in place whose status and
    state.json name a root process, with its true start time: the next
    supervise takes supervise/ back, starts a ./run of its own, and
    signals nothing else."""
    owner, _ = two_users
    target = victim(procs)
    files = forgery(open_tree, target)
    sv = owned_service(open_tree, owner, run="#!/bin/sh\necho $$ > pid\nexec sleep 1000\n")
    first = start_supervise(procs, sv)
    old = wait_until(lambda: status_pid(sv))
    first.kill()
    first.wait()
    os.kill(old, signal.SIGKILL)
    (sv / "pid").unlink()
    swap_in(owner, sv, files)

    second = start_supervise(procs, sv)                 # as svscan would, a second later
    mine = wait_until(lambda: (sv / "pid").exists() and int((sv / "pid").read_text() or 0))
    wait_until(lambda: status_pid(sv) == mine)
    st = (sv / "supervise").stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
    assert (sv / "supervise" / "status").stat().st_uid == 0
    for letters in ("k", "p", "d"):
        assert run("svc", f"-{letters}", sv).returncode == 0
    wait_until(lambda: not pid_alive(mine))
    assert pid_alive(target)
    assert procfs.proc_stat(target)[0] != b"T"             # not stopped either
    second.terminate()
    err = second.communicate(timeout=10)[1].decode()
    assert err == f"supervise: warning: {sv}/supervise was not ours: taken back, " \
                  "and what others made there removed\n"


def orphaned_run(procs, service):
    """(service dir, pid of its ./run) once its supervise was SIGKILLed;
    ./run appends its pid to `pids` at each start."""
    sv = service(run="#!/bin/sh\necho $$ >> pids\nexec sleep 1000\n")
    first = start_supervise(procs, sv)
    pid = wait_until(lambda: status_pid(sv))
    first.kill()
    first.wait()
    return sv, pid


def test_a_recorded_run_is_adopted_after_a_clock_step(procs, service):
    """The wall clock jumps 60 s (here: the status stamp is 60 s off, as it
    would be), supervise is SIGKILLed: the next one still adopts ./run, by
    its start tick, and starts no second one."""
    sv, pid = orphaned_run(procs, service)
    path = sv / "supervise" / "status"
    s = status.unpack(path.read_bytes())
    s.seconds += 60
    path.write_bytes(status.pack(s))
    start_supervise(procs, sv)
    wait_until(lambda: json.loads((sv / "supervise" / "state.json").read_text())["pid"] == pid)
    assert status_pid(sv) == pid and (sv / "pids").read_text() == f"{pid}\n"
    assert run("svc", "-d", sv).returncode == 0
    wait_until(lambda: not pid_alive(pid))


def test_a_run_whose_start_tick_differs_is_not_adopted(procs, service):
    """A record whose pid lives but started at another tick (a reused pid)
    is not adopted: a fresh ./run is started, the old process left alone."""
    sv, pid = orphaned_run(procs, service)
    record = sv / "supervise" / "state.json"
    fields = json.loads(record.read_text())
    fields["pid_start"] -= 1
    record.write_text(json.dumps(fields))
    start_supervise(procs, sv)
    new = wait_until(lambda: status_pid(sv) != pid and status_pid(sv))
    assert (sv / "pids").read_text() == f"{pid}\n{new}\n"
    assert pid_alive(pid)
    os.kill(pid, signal.SIGKILL)


# --- 2. a supervise symlink ---------------------------------------------------------------

def test_a_supervise_symlink_of_another_user_is_not_followed(procs, two_users, open_tree):
    owner, _ = two_users
    sv = owned_service(open_tree, owner)
    existing = open_tree / "rootdir"
    existing.mkdir(mode=0o755)
    (existing / "keep").write_text("x")
    private = open_tree / "private"
    private.mkdir(mode=0o700)
    nowhere = private / "made-by-root"
    before = os.stat(existing)
    for target in (existing, nowhere):
        link = sv / "supervise"
        link.symlink_to(target)
        os.lchown(link, owner[1], owner[2])
        r = run("supervise", sv, timeout=10)
        assert (r.returncode, r.stderr) == (
            111, f"supervise: fatal: unable to use {sv}/supervise: a symlink in a directory "
                 "others can write\n")
        link.unlink()
    after = os.stat(existing)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid,
                                                           before.st_mode)
    assert os.listdir(existing) == ["keep"] and not nowhere.exists()
    assert not processes_under(sv)

    # root's own symlink in root's service directory still works (runit's
    # read-only service trees)
    os.chown(sv, 0, 0)
    (sv / "supervise").symlink_to(nowhere)
    start_supervise(procs, sv)
    wait_until(lambda: status_pid(sv))
    st = nowhere.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)


# --- 3, 4. svscan's shutdown ---------------------------------------------------------------

@pytest.mark.parametrize("plant", ["forged status", "fifo at status"])
def test_shutdown_kills_only_what_the_kernel_says_is_the_service(procs, two_users, open_tree,
                                                                 plant):
    """A service that ignores TERM, whose owner swaps in a supervise/ of
    their own (a status naming a root process group, or a fifo at status):
    svscan's shutdown neither hangs nor kills the named process; the
    service's own ./run is KILLed after the grace period all the same."""
    owner, _ = two_users
    scan = open_tree / "service"
    scan.mkdir()
    target = victim(procs)
    files = forgery(open_tree, target) if plant == "forged status" else None
    sv = owned_service(scan, owner, run=STUBBORN)
    scanner = procs.start(program("svscan"), "-g", "1", scan)
    mine = wait_until(lambda: status_pid(sv))
    wait_until(lambda: open(f"/proc/{mine}/comm").read() == "sleep\n")   # past its trap
    swap_in(owner, sv, files)
    started = time.monotonic()
    scanner.send_signal(signal.SIGTERM)
    assert scanner.wait(timeout=15) == 111              # the grace period ran out
    assert time.monotonic() - started < 5
    assert not pid_alive(mine) and pid_alive(target)


# --- 5. critical --------------------------------------------------------------------------

def test_a_critical_file_of_another_user_stops_nothing(procs, two_users, open_tree):
    owner, _ = two_users
    scan = open_tree / "service"
    scan.mkdir()
    sv = owned_service(scan, owner, run="#!/bin/sh\nexit 3\n")
    (sv / "critical").write_text("1\n")
    os.chown(sv / "critical", owner[1], owner[2])
    other = scan / "other"
    write_script(other / "run", SLEEPER)
    scanner = procs.start(program("svscan"), scan)
    wait_until(lambda: (sv / "supervise" / "state.json").exists()
               and json.loads((sv / "supervise" / "state.json").read_text())["starts"] >= 2)
    assert scanner.poll() is None
    assert status_pid(other) and run("svok", other).returncode == 0
    scanner.terminate()
    err = scanner.communicate(timeout=15)[1].decode()
    assert "supervise: warning: unable to use svc/critical: not a file of uid 0 in a directory " \
           "only it can write (only such a file makes a service critical); ignored\n" in err
    assert "shutting down" not in err


# --- a log symlink -------------------------------------------------------------------------

def test_a_log_symlink_of_another_user_starts_nothing(procs, two_users, open_tree):
    """svscan would run whatever `log` leads to, as root: a link the owner
    made is not followed (a warning), the service runs without a logger."""
    owner, _ = two_users
    scan = open_tree / "service"
    scan.mkdir()
    elsewhere = open_tree / "not-a-service"
    write_script(elsewhere / "run", "#!/bin/sh\ntouch ran\nexec sleep 1000\n")
    sv = owned_service(scan, owner)
    (sv / "log").symlink_to(elsewhere)
    os.lchown(sv / "log", owner[1], owner[2])
    scanner = procs.start(program("svscan"), scan)
    wait_until(lambda: status_pid(sv))
    probe = scan / "probe"
    write_script(probe / "run", SLEEPER)
    wait_until(lambda: status_pid(probe))               # scanned since
    assert not (elsewhere / "ran").exists() and not (elsewhere / "supervise").exists()
    scanner.terminate()
    err = scanner.communicate(timeout=15)[1].decode()
    assert "svscan: warning: unable to use svc/log: a symlink in a directory others can " \
           "write; no logger\n" in err


def test_a_signal_sent_by_command_is_no_failure_of_a_critical_service(procs, tmp_path):
    """svc -a (or -1, -2, -h) kills a service that does not catch it: a
    death asked for by whoever may control it, which stops no tree."""
    scan = tmp_path / "service"
    crit = scan / "crit"
    write_script(crit / "run", SLEEPER)
    (crit / "critical").write_text("1\n")
    other = scan / "other"
    write_script(other / "run", SLEEPER)
    scanner = procs.start(program("svscan"), scan)
    for letter in "a12":
        pid = wait_until(lambda: status_pid(crit))
        assert run("svc", f"-{letter}", crit).returncode == 0
        wait_until(lambda: status_pid(crit) not in (0, pid), timeout=15)
    assert scanner.poll() is None and status_pid(other)


# --- 7. nothing runs unsupervised ------------------------------------------------------------

def test_a_failed_setup_starts_no_run(service):
    """supervise/ok cannot be made (a directory is in the way): supervise
    exits 111 before ./run is ever started, so nothing runs unsupervised."""
    sv = service(run="#!/bin/sh\ntouch ran\nexec sleep 1000\n")
    (sv / "supervise").mkdir(mode=0o700)
    (sv / "supervise" / "ok").mkdir()
    r = run("supervise", sv, timeout=10)
    assert (r.returncode, r.stderr) == (
        111, f"supervise: fatal: unable to open {sv}/supervise/ok: is a directory\n")
    assert not (sv / "ran").exists()


def test_removing_services_under_svscan_leaves_no_run_behind(procs, tmp_path):
    """Services made and removed at once, over and over, under svscan: no
    ./run outlives its directory (each was started by a supervise that
    could be probed, and is brought down with it)."""
    scan = tmp_path / "service"
    scan.mkdir()
    procs.start(program("svscan"), scan)
    for i in range(60):
        sv = scan / f"s{i}"
        write_script(sv / "run", "#!/bin/sh\nexec sleep 1000\n")
        if i % 2:
            wait_until(lambda: status_pid(sv), timeout=10)
        # supervise may be making its files as rm deletes them: again until gone
        wait_until(lambda: subprocess.run(["rm", "-rf", str(sv)], capture_output=True)
                   .returncode == 0)
    wait_until(lambda: not [p for p in processes_under(scan) if comm(p) == "sleep"],
               timeout=15)


# --- 9. limits -------------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [8, 9, 10, 11, 12])
def test_out_of_descriptors_is_a_line_not_a_traceback(procs, service, limit):
    """With few descriptors, each step that runs out says so in one line:
    supervise exits 111 (leaving no ./run behind) or carries on."""
    sv = service(run="#!/bin/sh\nexec sleep 1000\n")
    (sv / "notification-fd").write_text("3\n")
    proc = procs.start("prlimit", f"--nofile={limit}", program("supervise"), sv)
    wait_until(lambda: proc.poll() is not None or run("svok", sv).returncode == 0)
    if proc.poll() is None:
        proc.terminate()
    err = proc.communicate(timeout=10)[1].decode()
    assert "Traceback" not in err, err
    assert all(line.startswith("supervise: ") for line in err.splitlines()), err
    if proc.returncode == 111:
        assert err.endswith(": out of file descriptors\n"), err
        wait_until(lambda: not processes_under(sv))
    if limit <= 10:
        assert "out of file descriptors" in err, err


def test_a_notification_fd_past_the_limit_is_named(procs, service):
    sv = service(run="#!/bin/sh\nexec sleep 1000\n")
    (sv / "notification-fd").write_text("5000000\n")
    proc = start_supervise(procs, sv)
    wait_until(lambda: status_pid(sv))
    proc.terminate()
    err = proc.communicate(timeout=10)[1].decode()
    limit = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[0]
    assert err.startswith(f"supervise: warning: unable to use {sv}/notification-fd: 5000000 "
                          f"is not below the descriptor limit ({limit}, RLIMIT_NOFILE)\n")
