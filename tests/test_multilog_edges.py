"""multilog at the edges, next to daemontools' own multilog, byte for byte.

No script, `e` on lines around 200 bytes, words that are no action, lines
far longer than a read (selected and deselected, stamped, with two
directories, e and =file), and a logger SIGKILLed while it waits on a full
disk. Each case runs our program and, where it is installed, daemontools'
/usr/bin/multilog on the same input, and compares what they leave. A
Hypothesis property feeds the Logger the same input cut anywhere and checks
it against daemontools' algorithm, transcribed.

Not tested here: where a rotation cuts a file (documented to differ:
test_multilog), the timestamps' values (each program reads its own clock:
labels are compared as "@" + 24 hex digits), a full disk under a
processor (`!`).
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import peer, program, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svtree import logger, logscript
from svtree.logdir import LogDir

LABEL = re.compile(rb"@[0-9a-f]{24} ")
KiB, MiB = 1 << 10, 1 << 20
CHUNK = logger.CHUNK


def ours(*script, input=b"", cwd, stdin=None, timeout=60):
    return subprocess.run([program("multilog"), *script], input=input if stdin is None else None,
                          stdin=stdin, cwd=cwd, capture_output=True, timeout=timeout)


def theirs(*script, input=b"", cwd, stdin=None, timeout=60):
    return subprocess.run([peer("multilog"), *script], input=input if stdin is None else None,
                          stdin=stdin, cwd=cwd, capture_output=True, timeout=timeout)


def unlabelled(data: bytes) -> bytes:
    return LABEL.sub(b"@ ", data)


def without_warnings(err: bytes) -> bytes:
    return b"".join(l for l in err.splitlines(keepends=True)
                    if not l.startswith(b"multilog: warning: "))


def logged(d: Path) -> bytes:
    """Everything a log directory holds, oldest file first."""
    names = sorted(p.name for p in d.iterdir() if p.name.startswith("@"))
    return b"".join((d / n).read_bytes() for n in names) + (d / "current").read_bytes()


def side_by_side(tmp_path, script, data):
    """Run both programs on data in two directories; return them."""
    mine, peers = tmp_path / "ours", tmp_path / "theirs"
    mine.mkdir(parents=True)
    peers.mkdir()
    theirs_run = theirs(*script, input=data, cwd=peers)       # skips if not installed
    ours_run = ours(*script, input=data, cwd=mine)
    assert (ours_run.returncode, theirs_run.returncode) == (0, 0)
    return (mine, ours_run), (peers, theirs_run)


def assert_same_logs(tmp_path, script, data, dirs, statuses=()):
    """Every directory, =file and stderr the same (labels aside); no file
    longer than its size."""
    (mine, r1), (peers, r2) = side_by_side(tmp_path, script, data)
    assert unlabelled(without_warnings(r1.stderr)) == unlabelled(r2.stderr)
    for d in dirs:
        assert unlabelled(logged(mine / d)) == unlabelled(logged(peers / d)), d
        for f in (mine / d).iterdir():
            assert f.stat().st_size <= logscript.DEFAULT_SIZE
    for name in statuses:
        assert unlabelled((mine / name).read_bytes()) == unlabelled((peers / name).read_bytes())
    return mine


# --- 1. no script -------------------------------------------------------------------------

@pytest.mark.parametrize("prog", [ours, theirs], ids=["ours", "daemontools"])
def test_no_script_reads_everything_and_exits_0(prog, tmp_path):
    """As daemontools': the input is read to its end (the shared file offset
    says so), dropped, exit 0, no file made."""
    src = tmp_path / "input"
    src.write_bytes(b"line\n" * 200_000)
    work = tmp_path / "work"
    work.mkdir()
    with open(src, "rb") as f:
        r = prog(cwd=work, stdin=f)
        assert os.lseek(f.fileno(), 0, os.SEEK_CUR) == src.stat().st_size
    assert (r.returncode, r.stdout) == (0, b"")
    assert list(work.iterdir()) == []
    if prog is ours:
        assert r.stderr == (b"multilog: warning: no log directory, e or =file: "
                            b"input is read and discarded\n")
    else:
        assert r.stderr == b""


# --- 2. e ---------------------------------------------------------------------------------

def test_e_marks_a_cut_line_with_dots(tmp_path):
    r = ours("e", input=b"0" * 201 + b"\n" + b"1" * 200 + b"\n", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, b"0" * 200 + b"...\n" + b"1" * 200 + b"\n")


E_LINES = b"".join(b"%s\n" % (b"%d" % n * 1001)[:n] for n in
                   (0, 1, 173, 174, 175, 199, 200, 201, 202, 999, 1000, 1001, 70000)) + b"z" * 300


@pytest.mark.parametrize("script", [["e"], ["t", "e"], ["-*", "+1*", "e"], ["e", "e"]])
def test_e_bytes_as_daemontools(script, tmp_path):
    """Lines of 200 and 201 bytes, with and without a 26-byte label (174 and
    175 bytes of text), the unterminated last line: stderr byte for byte."""
    (_, r1), (_, r2) = side_by_side(tmp_path, script, E_LINES)
    assert r1.stderr and unlabelled(r1.stderr) == unlabelled(r2.stderr)


# --- 3. words that are no action -----------------------------------------------------------

def test_word_that_is_no_directory_is_ignored_with_a_warning(tmp_path):
    """`multilog t main`: every line is dropped, as in daemontools, and a
    warning says why, once."""
    r = ours("t", "main", input=b"a\nb\n" * 1000, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, b"")
    assert r.stderr == (b"multilog: warning: ignoring main: not an action, and a log "
                        b"directory must start with . or / (./main?)\n")
    assert list(tmp_path.iterdir()) == []


def test_word_that_is_no_directory_in_daemontools(tmp_path):
    r = theirs("t", "main", input=b"a\nb\n", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert list(tmp_path.iterdir()) == []


def test_warnings_for_each_word(tmp_path):
    r = ours("tmp", "t", "", "exit", "x/y", "./main", input=b"a\n", cwd=tmp_path)
    assert r.returncode == 0
    *warnings, alert = r.stderr.decode().splitlines()
    assert re.fullmatch("@[0-9a-f]{24} a", alert)         # from "exit", taken for e
    assert warnings == [
        "multilog: warning: reading tmp as t: an action is its first letter",
        "multilog: warning: ignoring t: a timestamp must be the first action",
        "multilog: warning: ignoring an empty word",
        "multilog: warning: reading exit as e: an action is its first letter",
        ("multilog: warning: ignoring x/y: not an action, and a log directory must start "
         "with . or / (./x/y?)"),
    ]


def test_words_read_by_their_first_letter_as_daemontools(tmp_path):
    """A first word "tmp" stamps, "exit" is e; t later on and "x/y" do
    nothing: the same logs and alerts."""
    data = b"".join(b"line %05d\n" % i for i in range(3000))
    mine = assert_same_logs(tmp_path, ["tmp", "t", "x/y", "-*", "+@* line 00*", "exit", "+*",
                                       "./main"], data, ["main"])
    assert len(LABEL.findall(logged(mine / "main"))) == 3000


def test_bare_s_and_n_as_daemontools(tmp_path):
    """A number missing after s or n is 0, raised to the minimum: s4096, n2."""
    data = b"".join(b"line %05d\n" % i for i in range(2000))
    (mine, _), (peers, _) = side_by_side(tmp_path, ["s", "n1000", "./main"], data)
    for d in (mine, peers):
        sizes = [p.stat().st_size for p in (d / "main").iterdir() if p.name.startswith("@")]
        assert len(sizes) >= 4 and max(sizes) <= 4096, d
        assert logged(d / "main") == data
    (mine, _), (peers, _) = side_by_side(tmp_path / "n", ["s", "n", "./main"], data)
    for d in (mine, peers):
        assert len([p for p in (d / "main").iterdir() if p.name.startswith("@")]) == 1, d


# --- 4. lines longer than a read ------------------------------------------------------------

def long_input():
    """Short lines around lines of 1 MiB and of several reads' worth,
    some with a password, some without; an unterminated long last line."""
    parts = [b"before\n"]
    for n in (999, 1000, 1001, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5, MiB):
        parts.append(b"password=" + b"p" * n + b"\n")
        parts.append(b"between %d\n" % n)
        parts.append(b"x" * n + b"\n")
    parts.append(b"password=" + b"q" * (2 * CHUNK))
    return b"".join(parts)


LONG = long_input()


def test_a_deselected_long_line_leaves_no_trace(tmp_path):
    r = ours("-password=*", "e", "./main", input=b"a\npassword=" + b"s" * MiB + b"\nb\n",
             cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, b"a\nb\n")
    assert logged(tmp_path / "main") == b"a\nb\n"


def test_a_long_line_gets_one_label(tmp_path):
    data = b"a\n" + b"y" * (3 * MiB) + b"\nb\n"
    r = ours("t", "s16777215", "./main", input=data, cwd=tmp_path)
    assert r.returncode == 0
    out = (tmp_path / "main" / "current").read_bytes()
    assert len(LABEL.findall(out)) == 3
    assert unlabelled(out) == b"@ a\n@ " + b"y" * (3 * MiB) + b"\n@ b\n"


@pytest.mark.parametrize("script,dirs,statuses", [
    (["n100", "-password=*", "./main"], ["main"], []),
    (["t", "n100", "-@* password=*", "./main"], ["main"], []),
    (["n100", "./all", "-password=*", "./clean", "-*", "+password=*", "e", "=last", "./secret"],
     ["all", "clean", "secret"], ["last"]),
    (["t", "n100", "./all", "-@* password=*", "e", "./clean", "-*", "+@* password=*", "=last",
      "./secret"], ["all", "clean", "secret"], ["last"]),
], ids=["deselect", "labelled", "two-selections-e-status", "labelled-two-selections"])
def test_long_lines_as_daemontools(script, dirs, statuses, tmp_path):
    """The decision made on a line's first 1000 bytes holds for the whole
    line: the same directories (rotated at the default size: lines longer
    than a file are cut by rotation alone), alerts and =file as
    daemontools' multilog, labels aside."""
    mine = assert_same_logs(tmp_path, script, LONG, dirs, statuses)
    if "clean" in dirs:
        assert b"password=" not in logged(mine / "clean")
        whole = b"@ " + LONG.replace(b"\n", b"\n@ ") if "t" in script else LONG
        assert unlabelled(logged(mine / "all")) == whole + b"\n"


def test_only_a_newline_ends_a_line(tmp_path):
    """A carriage return, alone or before the newline, is part of its line,
    for patterns too (bytes.splitlines() would end a line at a lone CR)."""
    data = b"keep 1\r\ndrop 2\r\nkeep\r3\nkeep 4\x0b\x0c\x1c\x1d\x1e\x85 5\n\r\n"
    mine = assert_same_logs(tmp_path, ["-*", "+keep*", "e", "./main"], data, ["main"])
    assert logged(mine / "main") == b"keep 1\r\nkeep\r3\nkeep 4\x0b\x0c\x1c\x1d\x1e\x85 5\n"


def test_term_in_a_long_line_finishes_it(tmp_path, procs):
    """TERM while a long selected line is being streamed: the line is
    finished, then the logger exits."""
    proc = procs.start(program("multilog"), "./main", cwd=tmp_path, stdin=subprocess.PIPE)
    current = tmp_path / "main" / "current"
    proc.stdin.write(b"first\n" + b"z" * 5000)
    proc.stdin.flush()
    wait_until(lambda: current.exists() and current.stat().st_size == 6 + 5000)
    proc.terminate()
    proc.stdin.write(b"z" * 5000 + b"\nnever read\n")
    proc.stdin.flush()
    assert proc.wait(timeout=10) == 0
    assert current.read_bytes().startswith(b"first\n" + b"z" * 10000 + b"\n")


# the same, through the Logger itself, with the input cut anywhere

def reference(script, data, label):
    """daemontools' doit(), transcribed: (each directory's bytes, stderr, =files)."""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    logs, alerts, statuses = {}, [], {}
    for line in data.split(b"\n")[:-1]:
        full = label + line
        head = full[:logscript.PATTERN_SPAN]
        selected = True
        for action in script.actions:
            if action[0] == "select":
                if selected != action[1] and logscript.matches(action[2], head):
                    selected = action[1]
            elif not selected:
                continue
            elif action[0] == "alert":
                alerts.append(head[:200] + (b"...\n" if len(head) > 200 else b"\n"))
            elif action[0] == "status":
                statuses[action[1]] = head.ljust(1001, b"\n")
            elif action[0] == "dir":
                logs[action[1].path] = logs.get(action[1].path, b"") + full + b"\n"
    return logs, b"".join(alerts), statuses


SCRIPTS = [["./a"], ["-p*", "e", "./a"], ["t", "./a", "-@* p*", "./b", "+*1", "e", "=s"],
           ["-*", "+*x", "./a", "-p*", "=s", "./b"]]
line = st.tuples(st.sampled_from([b"", b"p", b"px", b"q"]),
                 st.sampled_from([0, 1, 150, 199, 200, 974, 999, 1000, 1001, 3000, 70000]),
                 st.sampled_from([b"", b"1", b"x"])).map(lambda t: t[0] + b"y" * t[1] + t[2])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(SCRIPTS), st.lists(line, min_size=1, max_size=8), st.booleans(),
       st.lists(st.integers(1, 80000), max_size=12))
def test_logger_decides_a_line_once_however_it_is_cut(capfdbinary, words, lines, newline,
                                                       cuts):
    """Fed in pieces of any size, the Logger files exactly what daemontools'
    algorithm files for the whole input."""
    script = logscript.parse(words)
    data = b"\n".join(lines) + (b"\n" if newline else b"")
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as top:
        os.chdir(top)                  # where ./a, ./b and =s are
        try:
            dirs = {id(d): LogDir(d.path, logscript.MAX_SIZE, 10) for d in script.dirs}
            log = logger.Logger(script, dirs, clock=lambda: 1_700_000_000_123_456_789)
            capfdbinary.readouterr()
            at = 0
            for n in cuts + [len(data)]:
                if at < len(data):
                    log.feed(data[at:at + n])
                    at += n
            log.flush()
            log.close()
            alerts = capfdbinary.readouterr().err
        finally:
            os.chdir(here)
            for d in dirs.values():
                os.close(d.lock)
                os.close(d.dfd)
        label = logger.stamp_t(1_700_000_000_123_456_789) if script.stamp else b""
        logs, expected_alerts, statuses = reference(script, data, label)
        for d in script.dirs:
            assert Path(top, d.path, "current").read_bytes() == logs.get(d.path, b"")
        assert alerts == expected_alerts
        for name, content in statuses.items():
            assert Path(top, name).read_bytes() == content


# --- 5. SIGKILL on a full disk ------------------------------------------------------------

TOTAL, WIDTH = 3000, 100
NUMBERED = re.compile(rb"(\d{5}) x{%d}" % (WIDTH - 7))
# all at once, so that the pipe is always full and every read() gets all it asks for
WRITER = (f"import sys\nsys.stdout.buffer.write(b''.join(b'%05d ' % i + b'x' * {WIDTH - 7}"
          f" + b'\\n' for i in range({TOTAL})))\n")


class Disk:
    """A fake log directory: only its room, as statvfs would tell it."""

    def __init__(self, room):
        self.free = room

    def room(self):
        return self.free


def test_reads_shrink_as_the_disk_fills():
    one, two = Disk(None), Disk(None)
    script = logscript.parse(["./a", "./b"])
    log = logger.Logger(script, dict(zip((id(d) for d in script.dirs), (one, two))))
    assert log.budget() == CHUNK                          # statvfs says nothing
    one.free = two.free = 1 << 30
    assert log.budget() == CHUNK
    two.free = 10_000
    assert log.budget() == 2_500                          # half, shared by two
    two.free = 0
    assert [log.budget() for _ in range(logger.TRICKLE)] == [1] * logger.TRICKLE
    assert log.budget() == CHUNK      # a disk that takes what it has no room for
    two.free = 4096
    assert log.budget() == 1024
    two.free = 0
    assert log.budget() == 1


DISK = "size=224k"            # fills up in the middle of a 64 KiB read, not at its end


def mount_small_disk(mnt):
    return subprocess.run(["mount", "-t", "tmpfs", "-o", DISK, "tmpfs", mnt],
                          capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or not mount_small_disk(mnt):
        pytest.skip("cannot mount a tmpfs (root needed)")
    yield mnt
    subprocess.run(["umount", "-l", mnt], capture_output=True)


def make_room(mnt, how):
    """A bigger disk, or the old files removed; returns what they held."""
    if how == "remount":
        subprocess.run(["mount", "-o", "remount,size=4m", mnt], check=True)
        return []
    held = []
    for old in sorted((mnt / "main").glob("@*.s")):
        held.append(old.read_bytes())
        old.unlink()
    return held


def killed_on_a_full_disk(procs, mnt, argv, how):
    """3000 numbered 100-byte lines through a pipe this test keeps open, as
    svscan does, to a logger on a 224 KiB disk; once the logger says it is
    pausing, SIGKILL it, make room (HOW: a bigger disk, or the old files
    removed), start another on the same pipe and let the writer finish.
    Returns (lines lost, lines repeated)."""
    r, w = os.pipe()
    try:
        writer = procs.start(sys.executable, "-c", WRITER, stdout=w)
        first = procs.start(*argv, "./main", cwd=mnt, stdin=r)
        os.set_blocking(first.stderr.fileno(), False)
        said = []

        def pausing():
            try:
                said.append(os.read(first.stderr.fileno(), 4096))
            except BlockingIOError:
                pass
            return b"pausing: out of disk space" in b"".join(said)
        wait_until(pausing, timeout=30)
        first.kill()
        first.wait(timeout=10)
        removed = make_room(mnt, how)
        second = procs.start(*argv, "./main", cwd=mnt, stdin=r)
        assert writer.wait(timeout=30) == 0
        os.close(w)
        w = -1
        assert second.wait(timeout=30) == 0
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    d = mnt / "main"
    files = sorted(p.name for p in d.iterdir() if p.name.startswith("@")) + ["current"]
    # file by file: the torn line ends the .u file, without a newline
    good = [int(m.group(1)) for data in removed + [(d / name).read_bytes() for name in files]
            for m in map(NUMBERED.fullmatch, data.split(b"\n")) if m]
    assert good == sorted(good)
    return len(set(range(TOTAL)) - set(good)), len(good) - len(set(good))


@pytest.mark.parametrize("how", ["remount", "remove"])
def test_killed_on_a_full_disk_loses_the_line_in_flight_only(procs, small_disk, how):
    """What the logger read but could not write dies with it; the rest waits
    in the pipe. Once the disk is full it reads one byte at a time, so what
    dies is the line it was writing, and no more: never more than daemontools'
    multilog loses in the same test (which holds up to 1.5 KiB; svtree's
    multilog held a 64 KiB read, some 300 lines here)."""
    lost, repeated = killed_on_a_full_disk(procs, small_disk, [program("multilog")], how)
    print(f"\nours: lost {lost}, repeated {repeated}")
    assert (lost, repeated) == (1, 0)
    dt = peer("multilog")
    subprocess.run(["umount", small_disk], check=True)
    assert mount_small_disk(small_disk)
    their_lost, _ = killed_on_a_full_disk(procs, small_disk, [dt], how)
    print(f"daemontools: lost {their_lost}")
    assert lost <= their_lost
