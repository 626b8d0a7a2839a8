"""svc, svstat and svok: messages, exit codes and svstat's exact words."""

import os

from conftest import program, run, status_pid, wait_until
from svtree import status
from svtree.cli import svstat


def test_svc_usage_error():
    r = run("svc", "-z", "/tmp")
    assert r.returncode == 100
    assert r.stderr.startswith("svc: illegal option -- z\nsvc options: u up, d down")


def test_svc_warnings_and_exit_codes(tmp_path):
    missing = tmp_path / "missing"
    unsupervised = tmp_path / "plain"
    unsupervised.mkdir()
    r = run("svc", "-u", missing, unsupervised)
    assert r.returncode == 111
    assert r.stderr.splitlines() == [
        f"svc: warning: unable to chdir to {missing}: file does not exist",
        f"svc: warning: unable to control {unsupervised}: supervise/control: file does not exist"]
    (unsupervised / "supervise").mkdir()
    os.mkfifo(unsupervised / "supervise" / "control")
    r = run("svc", "-u", unsupervised)
    assert r.returncode == 111
    assert r.stderr == f"svc: warning: unable to control {unsupervised}: supervise not running\n"
    assert run("svc", "-u").returncode == 0          # no service: nothing to do


def test_svc_sends_letters_in_order(tmp_path):
    """-dx and -d -x both write "dx"; a fake supervise is a fifo we read."""
    sv = tmp_path / "s"
    (sv / "supervise").mkdir(parents=True)
    fifo = sv / "supervise" / "control"
    os.mkfifo(fifo)
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert run("svc", "-dx", "-u", "--", sv).returncode == 0
        assert os.read(r, 100) == b"dxu"
    finally:
        os.close(r)


def test_svok_codes(tmp_path, procs, service):
    assert run("svok").returncode == 100
    r = run("svok", tmp_path / "nope")
    assert r.returncode == 111
    assert r.stderr == f"svok: fatal: unable to chdir to {tmp_path / 'nope'}: file does not exist\n"
    sv = service()
    assert run("svok", sv).returncode == 100
    procs.start(program("supervise"), sv)
    wait_until(lambda: run("svok", sv).returncode == 0)


def line(data, normally_up=True, now=None, name="foo"):
    stamp = int.from_bytes(data[:8], "big") - status.TAI_BASE
    return svstat.format_line(name, data, normally_up, stamp + 5 if now is None else now)


def packed(**kw):
    return status.pack(status.Status(**kw))


def test_svstat_words_match_daemontools():
    """The lines daemontools 0.76 prints, suffixes in its order."""
    assert line(packed(pid=4686, paused=True, state=1)) == "foo: up (pid 4686) 5 seconds, paused"
    assert line(packed(want=b"d")) == "foo: down 5 seconds, normally up"
    assert line(packed(pid=4829, state=1), normally_up=False) == \
        "foo: up (pid 4829) 5 seconds, normally down"
    assert line(packed(pid=5633, want=b"d", state=1)) == "foo: up (pid 5633) 5 seconds, want down"
    assert line(packed(want=b"u")) == "foo: down 5 seconds, normally up, want up"
    assert line(packed(pid=9, paused=True, want=b"d", state=1), normally_up=False) == \
        "foo: up (pid 9) 5 seconds, normally down, paused, want down"
    assert line(packed(want=b"d"), normally_up=False) == "foo: down 5 seconds"
    assert line(packed(pid=3, want=b"\0", state=1)) == "foo: up (pid 3) 5 seconds"


def test_svstat_clamps_future_stamps():
    assert line(packed(seconds=2000, pid=1, state=1), now=1000) == "foo: up (pid 1) 0 seconds"


def test_svstat_error_lines(tmp_path, procs, service):
    missing = tmp_path / "missing"
    plain = tmp_path / "plain"
    plain.mkdir()
    dead = service("dead")
    (dead / "supervise").mkdir()
    os.mkfifo(dead / "supervise" / "ok")
    short = service("short")
    procs.start(program("supervise"), short)
    wait_until(lambda: run("svok", short).returncode == 0)
    (short / "supervise" / "status").write_bytes(b"\0" * 10)
    r = run("svstat", missing, plain, dead, short)
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        f"{missing}: unable to chdir: file does not exist",
        f"{plain}: unable to open supervise/ok: file does not exist",
        f"{dead}: supervise not running",
        f"{short}: unable to read supervise/status: bad format"]


def test_svstat_on_a_live_service(procs, service):
    sv = service(down=True)
    procs.start(program("supervise"), sv)
    wait_until(lambda: run("svok", sv).returncode == 0)
    assert run("svstat", sv).stdout in (f"{sv}: down {s} seconds\n" for s in (0, 1))
    run("svc", "-u", sv)
    pid = wait_until(lambda: status_pid(sv))
    out = run("svstat", sv).stdout
    assert out in (f"{sv}: up (pid {pid}) {s} seconds, normally down\n" for s in (0, 1))


def test_control_that_is_not_a_fifo_is_left_untouched(tmp_path):
    """supervise/control and ok are in a directory the service's owner may
    write: a regular file (or a hard link to someone else's) put there is
    not written to, and does not count as a supervise."""
    sv = tmp_path / "sv"
    (sv / "supervise").mkdir(parents=True)
    for name in ("control", "ok"):
        (sv / "supervise" / name).write_bytes(b"precious\n")
    r = run("svc", "-u", sv)
    assert (r.returncode, r.stderr) == (
        111, f"svc: warning: unable to control {sv}: supervise/control: not a fifo\n")
    assert (sv / "supervise" / "control").read_bytes() == b"precious\n"
    assert run("svok", sv).returncode == 100
