"""multilog with real processes and real log directories."""

import os
import re
import signal
import stat
import subprocess

import pytest

from conftest import archives, everything, peer, program, wait_until

STAMP = re.compile(rb"^@[0-9a-f]{24} ")


def multilog(*script, input=b"", cwd=None, timeout=30):
    return subprocess.run([program("multilog"), *script], input=input, cwd=cwd,
                          capture_output=True, timeout=timeout)


def test_plain_directory_layout_and_final_newline(tmp_path):
    r = multilog("./main", input=b"one\ntwo\nthree", cwd=tmp_path)
    assert r.returncode == 0
    d = tmp_path / "main"
    assert (d / "current").read_bytes() == b"one\ntwo\nthree\n"
    assert stat.S_IMODE((d / "current").stat().st_mode) == 0o744     # cleanly finished
    assert {p.name for p in d.iterdir()} == {"current", "lock", "state"}


def test_timestamps(tmp_path):
    multilog("t", "./main", input=b"a\nb\n", cwd=tmp_path)
    lines = (tmp_path / "main" / "current").read_bytes().splitlines()
    assert len(lines) == 2 and all(STAMP.match(l) for l in lines)
    assert [l[26:] for l in lines] == [b"a", b"b"]


def test_iso_timestamps(tmp_path):
    multilog("T", "./main", input=b"a\n", cwd=tmp_path)
    line = (tmp_path / "main" / "current").read_bytes()
    assert re.match(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}  a\n$", line)


def test_rotation_size_and_count(tmp_path):
    lines = b"".join(b"line %05d\n" % i for i in range(20000))     # 220 kB
    multilog("s4096", "n3", "./main", input=lines, cwd=tmp_path)
    d = tmp_path / "main"
    names = archives(d)
    assert len(names) == 2                           # n3: two old files and current
    assert all(re.match(r"^@[0-9a-f]{24}\.s$", n) for n in names)
    for name in names:
        size = (d / name).stat().st_size
        assert 4096 - 2000 <= size <= 4096
        assert (d / name).read_bytes().endswith(b"\n")
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o744
    assert everything(d)[-1] == b"line 19999"


def test_nothing_lost_across_rotations(tmp_path):
    lines = b"".join(b"%d\n" % i for i in range(50000))
    multilog("s4096", "n1000", "./main", input=lines, cwd=tmp_path)
    assert everything(tmp_path / "main") == [b"%d" % i for i in range(50000)]


def test_selection_alert_and_status_file(tmp_path):
    text = b"info: fine\nerror: disk\ninfo: again\nerror: net\n"
    r = multilog("-*", "+error: *", "e", "=last", "./errors", input=text, cwd=tmp_path)
    assert r.stderr == b"error: disk\nerror: net\n"
    assert (tmp_path / "errors" / "current").read_bytes() == b"error: disk\nerror: net\n"
    status = (tmp_path / "last").read_bytes()
    assert len(status) == 1001 and status.startswith(b"error: net\n\n")


def test_patterns_see_the_timestamp(tmp_path):
    multilog("t", "-*", "+@* keep*", "./kept", input=b"keep me\ndrop me\n", cwd=tmp_path)
    lines = (tmp_path / "kept" / "current").read_bytes().splitlines()
    assert len(lines) == 1 and lines[0].endswith(b" keep me")


def test_processor(tmp_path):
    lines = b"".join(b"word %d\n" % i for i in range(3000))
    multilog("s4096", "n100", "!tr a-z A-Z; echo processed >&5", "./main",
             input=lines, cwd=tmp_path)
    d = tmp_path / "main"
    names = archives(d)
    assert names and all(n.endswith(".s") for n in names)
    assert (d / names[0]).read_bytes().startswith(b"WORD 0\n")
    assert (d / "state").read_bytes() == b"processed\n"
    assert not (d / "previous").exists() and not (d / "processed").exists()


def test_lock_held_exits_111(tmp_path, procs):
    first = procs.start(program("multilog"), "./main", cwd=tmp_path, stdin=subprocess.PIPE)
    wait_until(lambda: (tmp_path / "main" / "current").exists())
    r = multilog("./main", input=b"x\n", cwd=tmp_path)
    assert r.returncode == 111
    assert r.stderr == b"multilog: fatal: unable to lock directory ./main: temporary failure\n"
    first.stdin.close()
    assert first.wait(timeout=10) == 0


def test_alrm_rotates_and_term_finishes_the_line(tmp_path, procs):
    proc = procs.start(program("multilog"), "./main", cwd=tmp_path, stdin=subprocess.PIPE)
    d = tmp_path / "main"
    proc.stdin.write(b"first\n")
    proc.stdin.flush()
    wait_until(lambda: (d / "current").exists() and (d / "current").read_bytes() == b"first\n")
    proc.send_signal(signal.SIGALRM)
    wait_until(lambda: len(archives(d)) == 1)
    proc.stdin.write(b"half a ")
    proc.stdin.flush()
    proc.send_signal(signal.SIGTERM)
    proc.stdin.write(b"line\nnever read\n")
    proc.stdin.flush()
    assert proc.wait(timeout=10) == 0
    lines = everything(d)
    assert lines[:2] == [b"first", b"half a line"]


def test_killed_logger_loses_and_repeats_nothing(tmp_path, procs):
    """SIGKILL mid-stream, three times; the unfinished current is kept as .u."""
    d = tmp_path / "main"
    r, w = os.pipe()
    sent = 0
    try:
        for _ in range(3):
            logger = procs.start(program("multilog"), "s4096", "n1000", "./main", cwd=tmp_path,
                                 stdin=r)
            for _ in range(2000):
                os.write(w, b"%d\n" % sent)
                sent += 1
            # the logger has filed everything once the pipe is empty
            wait_until(lambda: len(everything(d)) == sent)
            logger.kill()
            logger.wait()
        os.close(w)
        w = -1
        final = procs.start(program("multilog"), "s4096", "n1000", "./main", cwd=tmp_path, stdin=r)
        assert final.wait(timeout=10) == 0
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert everything(d) == [b"%d" % i for i in range(sent)]
    assert any(n.endswith(".u") for n in archives(d))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_pauses_and_loses_nothing(tmp_path, procs):
    """A 64 KiB tmpfs fills up; the logger pauses, then goes on once space is freed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt], check=True)
    try:
        (mnt / "filler").write_bytes(b"\0" * 40 * 1024)
        proc = procs.start(program("multilog"), "s16777215", "./main", cwd=mnt,
                           stdin=subprocess.PIPE)
        lines = b"".join(b"line %06d %s\n" % (i, b"x" * 40) for i in range(1000))   # 53 kB
        proc.stdin.write(lines)
        proc.stdin.flush()
        wait_until(lambda: b"pausing: out of disk space" in os.read(proc.stderr.fileno(), 4096),
                   timeout=15)
        (mnt / "filler").unlink()
        proc.stdin.close()
        assert proc.wait(timeout=15) == 0
        assert (mnt / "main" / "current").read_bytes() == lines
    finally:
        subprocess.run(["umount", "-l", mnt])


def test_same_layout_as_daemontools_multilog(tmp_path):
    """Side by side: the same files, modes and content. (Where exactly each
    file is cut differs: multilog checks the 2000-byte rule per input buffer,
    we at the first newline past it, as its manual says.)"""
    theirs = peer("multilog")
    lines = b"".join(b"line %05d\n" % i for i in range(3000))
    ours_dir, their_dir = tmp_path / "ours", tmp_path / "theirs"
    ours_dir.mkdir()
    their_dir.mkdir()
    multilog("s4096", "n100", "./main", input=lines, cwd=ours_dir)
    subprocess.run([theirs, "s4096", "n100", "./main"], input=lines, cwd=their_dir, check=True)
    ours, their = ours_dir / "main", their_dir / "main"
    assert b"".join(l + b"\n" for l in everything(ours)) == lines
    assert b"".join(l + b"\n" for l in everything(their)) == lines
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)
    for d in (ours, their):
        assert {p.name for p in d.iterdir()} - set(archives(d)) == {"current", "lock", "state"}
        for name in archives(d):
            assert re.match(r"^@[0-9a-f]{24}\.s$", name)
            assert 4096 - 2000 <= (d / name).stat().st_size <= 4096
    for name in ("current", "lock", "state", archives(ours)[0]):
        other = their / (name if not name.startswith("@") else archives(their)[0])
        assert mode(ours / name) == mode(other), name
    assert mode(ours) == mode(their)
