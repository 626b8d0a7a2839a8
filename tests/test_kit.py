"""The run-script kit: tai64n, tai64nlocal, setuidgid, envuidgid, envdir,
softlimit, setlock, pgrphack.

Real processes throughout; the effect of each chain loader is read back
from the kernel by the child it runs (/proc/self/status, /proc/self/limits,
/proc/self/stat, /proc/locks). Where daemontools is installed, its program
runs on the same input and the two outputs are compared whole
(peer(name) is daemontools', program(name) ours).

Not tested: I/O errors on stdin or stdout (exit 111); setgid/setuid
failures other than EPERM; a lock file on NFS.
"""

import os
import re
import subprocess
import time

import pytest
from hypothesis import given, strategies as st

from conftest import peer, program, run, wait_until
from svtree import tai64n
from svtree.cli.tai64n import stamp
from svtree.cli.tai64nlocal import Converter

LABEL = re.compile(rb"@4[0-9a-f]{23} ")
CHAINS = ("setuidgid root", "envuidgid root", "envdir {tmp}", "softlimit",
          "setlock {tmp}/lock", "pgrphack")


def both(name, *args, **kw):
    """Run ours and daemontools' NAME with the same arguments: (ours, theirs)."""
    kw.setdefault("timeout", 30)
    kw.setdefault("capture_output", True)
    argv = [str(a) for a in args]
    return (subprocess.run([program(name), *argv], **kw),
            subprocess.run([peer(name), *argv], **kw))


def labels_and_bodies(output: bytes):
    """[(label seconds+nanoseconds as ns, line without label)] of tai64n output."""
    found = []
    for line in output.split(b"\n"):
        if line:
            assert LABEL.match(line), line
            seconds, nano = tai64n.unpack(bytes.fromhex(line[1:25].decode()))
            found.append((seconds * 10**9 + nano, line[26:]))
    return found


# --- tai64n ------------------------------------------------------------------

def test_tai64n_stamps_every_line_with_the_time_it_was_read():
    """'@' + 24 hex + ' ' before each line, the line itself unchanged; the
    time lies between the start and the end of the run."""
    data = b"first\n\n  spaces  \n\ttab\x00nul\n" + b"x" * 100_000 + b"\nlast\n"
    before = time.time_ns()
    out = subprocess.run([program("tai64n")], input=data, capture_output=True,
                         timeout=30)
    after = time.time_ns()
    assert out.returncode == 0 and out.stderr == b""
    found = labels_and_bodies(out.stdout)
    assert [body for _, body in found] == data.split(b"\n")[:-1]
    assert all(before <= ns <= after for ns, _ in found)


def test_tai64n_last_line_without_newline_and_empty_input():
    """A last line without a newline is stamped and copied without one."""
    out = subprocess.run([program("tai64n")], input=b"a\nb", capture_output=True)
    assert out.returncode == 0
    assert re.fullmatch(rb"@4[0-9a-f]{23} a\n@4[0-9a-f]{23} b", out.stdout)
    out = subprocess.run([program("tai64n")], input=b"", capture_output=True)
    assert (out.returncode, out.stdout) == (0, b"")


def test_tai64n_output_has_daemontools_format():
    """Same bytes as daemontools' tai64n once labels are blanked; labels of
    the same form and clock (within the seconds the two runs took)."""
    data = b"".join(b"line %d %s\n" % (i, b"." * (i % 90)) for i in range(3000)) + b"tail"
    ours, theirs = both("tai64n", input=data)
    assert ours.returncode == theirs.returncode == 0
    assert LABEL.sub(b"L", ours.stdout) == LABEL.sub(b"L", theirs.stdout)
    assert len(ours.stdout) == len(theirs.stdout)
    a, b = labels_and_bodies(ours.stdout), labels_and_bodies(theirs.stdout)
    assert abs(a[0][0] - b[0][0]) < 30 * 10**9


def test_tai64n_stamps_a_line_when_its_first_byte_arrives(procs):
    """A line split across writes keeps the stamp of its first part, and
    each part is passed on as soon as it is read."""
    proc = procs.start(program("tai64n"), stdin=subprocess.PIPE)
    os.set_blocking(proc.stdout.fileno(), False)
    got = bytearray()

    def output_has(n):
        try:
            got.extend(os.read(proc.stdout.fileno(), 4096) or b"")
        except BlockingIOError:
            pass
        return len(got) >= n

    proc.stdin.write(b"ab")
    proc.stdin.flush()
    wait_until(lambda: output_has(28))
    proc.stdin.write(b"c\nd")
    proc.stdin.flush()
    wait_until(lambda: output_has(28 + 2 + 27))
    first, second = labels_and_bodies(bytes(got))
    assert first[1] == b"abc" and second[1] == b"d"
    assert first[0] <= second[0]
    assert bytes(got[26:30]) == b"abc\n"         # no second label for "c"
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0


@given(st.lists(st.text("ab\n", max_size=12), max_size=8))
def test_stamp_of_pieces_is_stamp_of_the_whole(texts):
    """However the input is split into reads, with one label throughout the
    output is the whole input stamped at once."""
    pieces = [t.encode() for t in texts]
    at_start, out = True, b""
    for piece in filter(None, pieces):
        out += stamp(piece, b"L ", at_start)
        at_start = piece.endswith(b"\n")
    whole = b"".join(pieces)
    # the alphabet has no \r or other line breaks splitlines() knows
    assert out == b"".join(b"L " + line for line in whole.splitlines(keepends=True))


# --- tai64nlocal -------------------------------------------------------------

PACIFIC = {**os.environ, "TZ": "America/Los_Angeles"}
# Checked against daemontools 0.76's tai64nlocal (Debian), TZ=America/Los_Angeles.
# (The man page's 21:03:43 assumes a right/ zone; labels here carry the
# fixed offset both programs use.)
GOLDEN = [
    (b"@4000000037c219bf2ef02e94 mark", b"1999-08-23 21:04:05.787492500 mark"),
    (b"plain line", b"plain line"),
    (b"@4000000037c219bf2ef02e94", b"1999-08-23 21:04:05.787492500"),
    (b"@4000000037c219bf2ef02e94x", b"1999-08-23 21:04:05.787492500x"),
    (b"", b""),
    (b"  @4000000037c219bf2ef02e94 indented", b"  @4000000037c219bf2ef02e94 indented"),
    (b"@400000000000000000000000 epoch", b"1969-12-31 15:59:50.000000000 epoch"),
    (b"@3fffffffffffffff00000000 before", b"1969-12-31 15:59:49.000000000 before"),
    (b"@400000006b0240ae05ddbb5c 2026", b"2026-11-21 17:08:52.098417500 2026"),
]
# daemontools crashes (SIGSEGV) on these; we copy them unchanged.
MALFORMED = [b"@ not a label", b"@4000000037c219bf short", b"@4000000037C219BF2EF02E94 upper",
             b"@4000000037c219bfffffffff too many nanoseconds", b"@"]
GOLDEN_IN = b"".join(line + b"\n" for line, _ in GOLDEN)
GOLDEN_OUT = b"".join(line + b"\n" for _, line in GOLDEN)


def test_tai64nlocal_golden_lines():
    out = subprocess.run([program("tai64nlocal")], input=GOLDEN_IN, env=PACIFIC,
                         capture_output=True, timeout=30)
    assert (out.returncode, out.stdout, out.stderr) == (0, GOLDEN_OUT, b"")


def test_tai64nlocal_agrees_with_daemontools():
    """The same bytes as daemontools' on the golden lines and on a real
    tai64n stream."""
    stream = subprocess.run([program("tai64n")], input=b"x\n" * 5000,
                            capture_output=True).stdout
    for data in (GOLDEN_IN, stream):
        ours, theirs = both("tai64nlocal", input=data, env=PACIFIC)
        assert ours.returncode == theirs.returncode == 0
        assert ours.stdout == theirs.stdout


def test_tai64nlocal_copies_malformed_labels_and_a_last_partial_line():
    data = b"\n".join(MALFORMED) + b"\n@4000000037c219bf2ef02e94 no newline"
    out = subprocess.run([program("tai64nlocal")], input=data, env=PACIFIC,
                         capture_output=True, timeout=30)
    assert out.returncode == 0
    assert out.stdout == (b"\n".join(MALFORMED) + b"\n1999-08-23 21:04:05.787492500 no newline")


def test_converter_sees_labels_split_between_reads(monkeypatch):
    """Every two-way split of the input gives the same output."""
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        data = GOLDEN_IN + b"\n".join(MALFORMED) + b"\n" + b"y" * 40
        whole = Converter()
        expected = whole.feed(data) + whole.end()
        for cut in range(len(data) + 1):
            c = Converter()
            assert c.feed(data[:cut]) + c.feed(data[cut:]) + c.end() == expected, cut
    finally:
        monkeypatch.undo()
        time.tzset()


def test_local_text(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        label = tai64n.parse("@4000000037c219bf2ef02e94")
        assert tai64n.local_text(label) == "1999-08-24 04:04:05.787492500"
    finally:
        monkeypatch.undo()
        time.tzset()


# --- usage and error messages, word for word ---------------------------------

COMPAT = [
    ("setuidgid",), ("setuidgid", "root"), ("setuidgid", "svtree-nosuchuser", "true"),
    ("setuidgid", "root", "/nonexistent"), ("setuidgid", "root", "/etc/passwd"),
    ("envuidgid",), ("envuidgid", "svtree-nosuchuser", "true"),
    ("envuidgid", "root", "/nonexistent"),
    ("envdir", "/nonexistent", "true"), ("envdir", "/etc/passwd", "true"),
    ("softlimit",), ("softlimit", "-z", "true"), ("softlimit", "-o", "x", "true"),
    ("softlimit", "-o"), ("softlimit", "-o", "10"), ("softlimit", "/nonexistent"),
    ("setlock",), ("setlock", "{tmp}/lock"), ("setlock", "-z", "{tmp}/lock", "true"),
    ("setlock", "/nonexistent/lock", "true"), ("setlock", "-x", "/nonexistent/lock", "true"),
    ("setlock", "{tmp}/lock", "/nonexistent"),
    ("pgrphack",), ("pgrphack", "/nonexistent"),
]


@pytest.mark.parametrize("argv", COMPAT, ids=" ".join)
def test_messages_and_exit_codes_match_daemontools(argv, tmp_path):
    name, *args = argv
    args = [a.format(tmp=tmp_path) for a in args]
    ours, theirs = both(name, *args, text=True, stdin=subprocess.DEVNULL)
    assert (ours.returncode, ours.stderr, ours.stdout) == \
        (theirs.returncode, theirs.stderr, theirs.stdout)


def test_envdir_usage_exits_100():
    """A deliberate difference: daemontools' envdir exits 111 here."""
    out = run("envdir", "dir")
    assert (out.returncode, out.stderr) == (100, "envdir: usage: envdir dir child\n")


@pytest.mark.parametrize("chain", CHAINS)
def test_child_sees_no_trace_of_python(chain, tmp_path):
    """CPython ignores SIGPIPE and SIGXFSZ, and invents LC_CTYPE=C.UTF-8 in
    a C locale (PEP 538); the child gets neither: the same signal
    dispositions and environment as without the chain loader."""
    name, *args = chain.format(tmp=tmp_path).split()
    env = {"PATH": os.environ["PATH"], "KEEP": "1"}
    show = ["sh", "-c", "grep ^SigIgn /proc/self/status; env | grep -v ^PWD= | sort"]
    plain = subprocess.run(show, capture_output=True, text=True, env=env)
    out = run(name, *args, *show, env=env)
    assert out.returncode == 0, out.stderr
    if name == "envuidgid":
        out.stdout = re.sub(r"(?m)^[UG]ID=0\n", "", out.stdout)
    assert out.stdout == plain.stdout


def test_child_keeps_a_locale_it_was_given():
    env = {"PATH": os.environ["PATH"], "LC_CTYPE": "C"}
    assert run("pgrphack", "env", env=env).stdout == f"PATH={env['PATH']}\nLC_CTYPE=C\n"
    env["LC_CTYPE"] = "C.UTF-8"
    assert run("pgrphack", "env", env=env).stdout == f"PATH={env['PATH']}\nLC_CTYPE=C.UTF-8\n"


# --- setuidgid, envuidgid ----------------------------------------------------

@pytest.fixture
def account():
    """A throwaway user with a group of its own: (name, uid, gid)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to add a user")
    name = f"svt{os.getpid()}"
    subprocess.run(["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    try:
        import pwd
        pw = pwd.getpwnam(name)
        yield name, pw.pw_uid, pw.pw_gid
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


def status_of(text):
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_setuidgid_sets_uid_gid_and_drops_groups(account):
    """Real, effective, saved and fs ids are the account's; the
    supplementary groups the caller had are gone."""
    name, uid, gid = account
    ours, theirs = both("setuidgid", name, "cat", "/proc/self/status",
                        text=True, extra_groups=[0, 4, 100])
    assert ours.returncode == 0, ours.stderr
    status = status_of(ours.stdout)
    assert status["Uid"].split() == [str(uid)] * 4
    assert status["Gid"].split() == [str(gid)] * 4
    assert status["Groups"].split() == [str(gid)]
    them = status_of(theirs.stdout)
    assert [status[k] for k in ("Uid", "Gid", "Groups")] == \
        [them[k] for k in ("Uid", "Gid", "Groups")]


def test_setuidgid_cannot_change_back(account):
    """Once the account, always the account: a nested setuidgid root fails."""
    name, _, _ = account
    out = run("setuidgid", name, "/usr/bin/setuidgid", "root", "true")
    assert (out.returncode, out.stderr) == (111, "setuidgid: fatal: unable to setgid: permission denied\n")


def test_envuidgid_sets_only_the_variables(account):
    name, uid, gid = account
    env = {"PATH": os.environ["PATH"], "UID": "old"}
    ours, theirs = both("envuidgid", name, "env", text=True, env=env)
    assert ours.returncode == 0
    assert sorted(ours.stdout.splitlines()) == sorted(
        [f"PATH={env['PATH']}", f"UID={uid}", f"GID={gid}"])
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines())
    assert status_of(run("envuidgid", name, "cat", "/proc/self/status").stdout)["Uid"].split()[0] == "0"


# --- envdir ------------------------------------------------------------------

def environment(out: bytes) -> dict[bytes, bytes]:
    return dict(entry.split(b"=", 1) for entry in out.split(b"\0") if entry)


@pytest.fixture
def envdir_dir(tmp_path):
    d = tmp_path / "env"
    d.mkdir()
    (d / "PLAIN").write_bytes(b"value\n")
    (d / "TRIMMED").write_bytes(b"  value \t \t\nsecond line\n")
    (d / "NULS").write_bytes(b"one\0two\0\n")
    (d / "NO_NEWLINE").write_bytes(b"last ")
    (d / "EMPTY_LINE").write_bytes(b"\n")
    (d / "GONE").write_bytes(b"")
    (d / ".hidden").write_bytes(b"skipped\n")
    return d


def test_envdir_sets_trims_and_unsets(envdir_dir):
    env = {"PATH": os.environ["PATH"], "GONE": "here", "PLAIN": "old", "KEPT": "kept"}
    out = subprocess.run([program("envdir"), str(envdir_dir), "env", "-0"], env=env,
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert environment(out.stdout) == {
        b"PATH": os.environ["PATH"].encode(), b"KEPT": b"kept", b"PLAIN": b"value",
        b"TRIMMED": b"  value", b"NULS": b"one\ntwo\n", b"NO_NEWLINE": b"last",
        b"EMPTY_LINE": b""}


def test_envdir_agrees_with_daemontools(envdir_dir):
    env = {"PATH": os.environ["PATH"], "GONE": "here", "PLAIN": "old"}
    ours, theirs = both("envdir", envdir_dir, "env", "-0", env=env)
    assert ours.returncode == theirs.returncode == 0
    assert environment(ours.stdout) == environment(theirs.stdout)


def test_envdir_finds_child_in_the_old_path(tmp_path):
    """A PATH file changes the child's PATH, not where the child is looked
    for (daemontools' pathexec does the same)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "only-here").write_text("#!/bin/sh\necho found\n")
    (tmp_path / "bin" / "only-here").chmod(0o755)
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "PATH").write_text(f"{tmp_path}/bin\n")
    ours, theirs = both("envdir", tmp_path / "env", "only-here", text=True)
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr) == \
        (111, "envdir: fatal: unable to run only-here: file does not exist\n")
    out = run("envdir", tmp_path / "env", "sh", "-c", 'echo "$PATH"; only-here')
    assert out.stdout == f"{tmp_path}/bin\nfound\n"


def test_envdir_errors(tmp_path):
    d = tmp_path / "env"
    d.mkdir()
    (d / "sub").mkdir()
    out = run("envdir", d, "true")
    assert (out.returncode, out.stderr) == (111, f"envdir: fatal: unable to read {d}/sub: is a directory\n")
    (d / "sub").rmdir()
    (d / "A=B").write_text("x\n")
    out = run("envdir", d, "true")
    assert (out.returncode, out.stderr) == (
        111, f"envdir: fatal: unable to use {d}/A=B: a name cannot contain =\n")


# --- softlimit ---------------------------------------------------------------

def limits(text):
    """{name: (soft, hard)} from /proc/self/limits."""
    found = {}
    for line in text.splitlines()[1:]:
        m = re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", line)
        found[m[1]] = (m[2], m[3])
    return found


def test_softlimit_sets_the_soft_limit():
    hard = limits(open("/proc/self/limits").read())["Max open files"][1]
    out = run("softlimit", "-o", "77", "cat", "/proc/self/limits")
    assert out.returncode == 0
    assert limits(out.stdout)["Max open files"] == ("77", hard)


def test_softlimit_m_sets_four_limits_and_clamps_at_the_hard_limit():
    out = run("softlimit", "-m", "100000000", "-c0", "cat", "/proc/self/limits")
    found = limits(out.stdout)
    for name in ("Max data size", "Max stack size", "Max address space", "Max locked memory"):
        soft, hard = found[name]
        assert soft == (hard if hard != "unlimited" and int(hard) < 100000000 else "100000000")
    assert found["Max core file size"][0] == "0"


def test_softlimit_equals_means_hard():
    out = run("softlimit", "-c", "0", "softlimit", "-c", "=", "cat", "/proc/self/limits")
    soft, hard = limits(out.stdout)["Max core file size"]
    assert soft == hard


@pytest.mark.parametrize("args", [["-o", "77"], ["-m", "100000000"], ["-o", "="],
                                  ["-t", "1000", "-f", "5000000", "-p", "50"],
                                  ["-o", "99999999999"], ["-o10", "-o", "20"], ["-c", "0"]])
def test_softlimit_agrees_with_daemontools(args):
    ours, theirs = both("softlimit", *args, "cat", "/proc/self/limits", text=True)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout


# --- setlock -----------------------------------------------------------------

def lock_holders(path, waiting=False):
    """Pids holding (or, with waiting, waiting for) a flock on path."""
    try:
        inode = os.stat(path).st_ino
    except FileNotFoundError:     # setlock has not created it yet
        return []
    pids = []
    for line in open("/proc/locks"):
        fields = line.split()
        is_waiter = fields[1] == "->"
        if is_waiter:
            fields.pop(1)
        if fields[1] == "FLOCK" and int(fields[5].rsplit(":", 1)[1]) == inode \
                and is_waiter == waiting:
            pids.append(int(fields[4]))
    return pids


def hold(procs, setlock, path):
    """A process (setlock, then sleep) holding the lock on path."""
    holder = procs.start(setlock, path, "sleep", "1000")
    wait_until(lambda: holder.pid in lock_holders(path))
    return holder


@pytest.mark.parametrize("holder_kit", ["ours", "daemontools"])
def test_setlock_n_gives_up_on_a_held_lock(procs, tmp_path, holder_kit):
    lock = tmp_path / "lock"
    hold(procs, program("setlock") if holder_kit == "ours" else peer("setlock"), lock)
    out = run("setlock", "-n", lock, "true")
    assert (out.returncode, out.stderr) == (
        111, f"setlock: fatal: unable to lock {lock}: temporary failure\n")
    out = run("setlock", "-nx", lock, "true")
    assert (out.returncode, out.stderr) == (0, "")
    theirs = subprocess.run([peer("setlock"), "-n", lock, "true"], capture_output=True,
                            text=True)
    assert (theirs.returncode, theirs.stderr) == (
        111, f"setlock: fatal: unable to lock {lock}: temporary failure\n")


def test_setlock_waits_for_the_lock(procs, tmp_path):
    """Without -n the second setlock blocks in flock until the holder exits,
    then runs its child."""
    lock, done = tmp_path / "lock", tmp_path / "done"
    holder = hold(procs, program("setlock"), lock)
    waiter = procs.start(program("setlock"), lock, "touch", done)
    wait_until(lambda: waiter.pid in lock_holders(lock, waiting=True))
    assert waiter.poll() is None and not done.exists()
    holder.kill()
    holder.wait()
    assert waiter.wait(timeout=10) == 0
    assert done.exists()


def test_setlock_child_keeps_the_descriptor(tmp_path):
    """The child inherits the locked descriptor: its own fd table shows it."""
    lock = tmp_path / "lock"
    out = run("setlock", lock, "sh", "-c", "ls -l /proc/$$/fd")
    assert out.returncode == 0
    assert str(lock) in out.stdout
    assert oct(os.stat(lock).st_mode & 0o777) == "0o600"


# --- pgrphack ----------------------------------------------------------------

def test_pgrphack_starts_a_new_session():
    """The child leads a new session and process group, away from ours."""
    out = subprocess.run([program("pgrphack"), "cat", "/proc/self/stat"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    fields = out.stdout.rsplit(")", 1)[1].split()
    pid = int(out.stdout.split()[0])
    pgrp, session = int(fields[2]), int(fields[3])
    assert pgrp == session == pid
    assert session != os.getsid(0)


def test_pgrphack_as_a_group_leader_still_runs_the_child(procs):
    """setsid fails for a process group leader; the child runs anyway."""
    proc = procs.start(program("pgrphack"), "cat", "/proc/self/stat")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert int(out.rsplit(b")", 1)[1].split()[3]) == proc.pid
