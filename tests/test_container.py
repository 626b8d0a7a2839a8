"""svscan as PID 1 of a real OCI container under runc, with tini as the reference.

The bundle is bench/container.py's (one home for it: its root is the host's
/, bind-mounted in runc run's own mount namespace, so the scan directory has
the same path inside and out). Each test starts `runc run` in the foreground
and stops the container as `docker stop` does: `runc kill ID TERM`. The
exit code is runc run's, which is PID 1's. Every container is `runc delete
-f`'d at teardown. A quick probe (`/bin/true` in a container) skips the whole
file, with runc's words, where runc cannot run containers (no root, a
nested container without privileges, no cgroups).

Not tested here: the time from TERM to exit (bench/container.py measures it
next to tini), and a main command (test_init.py covers it without runc).
"""

import importlib.util
import os
import shutil
import signal
import time

import pytest

from conftest import ROOT, pid_alive, program, wait_until, write_script


def load_bench_module():
    spec = importlib.util.spec_from_file_location("svtree_bench_container",
                                                  ROOT / "bench" / "container.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oci = load_bench_module()
GRACE = 1                       # svscan -g: the TERM-deaf service is KILLed after this


@pytest.fixture(scope="module")
def pivot(tmp_path_factory):
    """Whether runc run can pivot_root here; skips the module if it cannot run at all."""
    try:
        return oci.probe(tmp_path_factory.mktemp("probe")).pivot
    except oci.Unusable as e:
        pytest.skip(f"runc cannot run a container here: {e}")


@pytest.fixture
def bundle(pivot, tmp_path):
    b = oci.Bundle(tmp_path / "bundle", pivot=pivot)
    yield b
    b.close()


def svscan_in(bundle, scandir):
    """A container whose PID 1 is svscan -g GRACE SCANDIR, once it runs; (container, pid)."""
    container = bundle.start([program("svscan"), "-g", GRACE, scandir])
    return container, container.running()


def numbered(lines, name):
    return [int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(f"{name}: line ")]


def host_children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def ns_pid(pid):
    """pid as seen in its innermost PID namespace (the last NSpid field)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise AssertionError(f"no NSpid for {pid}")


def test_runc_kill_term_shuts_the_tree_down_with_every_line_logged(bundle, scandir):
    """svscan is PID 1; on TERM the talker prints its final line from its trap
    and exits, the logger drains the pipe, svscan exits 0 (a clean shutdown)."""
    talker = oci.talker(scandir / "talker")
    container, pid1 = svscan_in(bundle, scandir)
    assert ns_pid(pid1) == 1
    assert cmdline(pid1)[1].endswith(b"/svscan"), cmdline(pid1)
    log = talker / "log" / "main"
    wait_until(lambda: len(oci.logged_lines(log)) >= 5)
    container.kill("TERM")
    assert container.wait() == 0, container.text()
    lines = oci.logged_lines(log)
    assert oci.complete(lines), lines[-3:]
    assert not pid_alive(pid1)
    assert "svscan:" not in container.text() and "supervise:" not in container.text()


def test_a_service_deaf_to_term_is_killed_after_the_grace_and_no_line_is_lost(
        bundle, scandir):
    """The deaf service is KILLed after -g; svscan exits 111 (forced), the
    talker's final line and every line the deaf one printed are in their logs."""
    talker = oci.talker(scandir / "talker")
    deaf = scandir / "deaf"
    write_script(deaf / "run", "#!/bin/sh\ni=0\n"
                 "trap 'echo \"deaf: TERM ignored after $i\"' TERM\n"
                 "while :; do i=$((i+1)); echo \"deaf: line $i\"; echo $i >> printed; "
                 "sleep 0.02; done\n")
    write_script(deaf / "log" / "run", f"#!/bin/sh\nexec {program('multilog')} t ./main\n")
    container, _ = svscan_in(bundle, scandir)
    wait_until(lambda: oci.logged_lines(talker / "log" / "main")
               and oci.logged_lines(deaf / "log" / "main"))
    began = time.monotonic()
    container.kill("TERM")
    assert container.wait() == 111, container.text()
    took = time.monotonic() - began
    assert GRACE <= took < GRACE + 5, took
    assert oci.complete(oci.logged_lines(talker / "log" / "main"))
    lines = oci.logged_lines(deaf / "log" / "main")
    numbers = numbered(lines, "deaf")
    assert numbers == list(range(1, len(numbers) + 1)), lines
    # appended after each line: a KILL between the two loses no number it names
    assert numbers[-1] >= int((deaf / "printed").read_text().split()[-1]), lines[-3:]
    assert any(line.startswith("deaf: TERM ignored after ") for line in lines)


def test_a_forced_shutdown_names_the_service_it_killed(bundle, scandir):
    """svscan.8: 'svscan: warning: still running Ns after TERM, killed: NAME (pid P)'."""
    write_script(scandir / "deaf" / "run", "#!/bin/sh\ntrap 'touch ignored' TERM\n"
                 "touch deaf\nwhile :; do sleep 0.02; done\n")
    container, _ = svscan_in(bundle, scandir)
    wait_until(lambda: (scandir / "deaf" / "deaf").exists())
    container.kill("TERM")
    assert container.wait() == 111, container.text()
    assert (scandir / "deaf" / "ignored").exists()
    assert f"still running {GRACE}s after TERM, killed: deaf (pid " in container.text()


def test_an_orphan_reparented_to_pid_1_is_reaped(bundle, scandir):
    """A service leaves a process behind; it becomes svscan's child (PID 1's),
    and once it exits it is reaped: it does not stay a zombie."""
    parent = scandir / "parent"
    write_script(parent / "run", "#!/bin/sh\n"
                 "(sh -c 'touch orphaned; while [ ! -e go ]; do sleep 0.01; done' orphan &)\n"
                 "exec sleep 1000\n")
    container, pid1 = svscan_in(bundle, scandir)
    orphan = wait_until(lambda: next((p for p in host_children(pid1)
                                      if cmdline(p)[-2:] == [b"orphan", b""]), 0))
    (parent / "go").touch()
    wait_until(lambda: not os.path.exists(f"/proc/{orphan}"),
               message=f"orphan {orphan} not reaped (a zombie?)")
    container.kill("TERM")
    assert container.wait() == 0, container.text()


@pytest.mark.skipif(not shutil.which("tini"), reason="tini not installed")
def test_tini_as_pid_1_in_the_same_harness(bundle, tmp_path):
    """The reference: tini runs the same talker, output to a file; on TERM
    it passes the signal on and exits with the talker's 0."""
    talker = oci.talker(tmp_path / "talker", logged=False)
    container = bundle.start(oci.tini_args(), cwd=talker)
    pid1 = container.running()
    assert cmdline(pid1)[0].endswith(b"tini")
    wait_until(lambda: len(oci.file_lines(talker / "out")) >= 5)
    container.kill("TERM")
    assert container.wait() == 0, container.text()
    assert oci.complete(oci.file_lines(talker / "out"))


def test_runc_kill_kill_ends_the_container_at_once(bundle, scandir):
    """What docker stop does after its timeout: SIGKILL to PID 1 ends the
    namespace; runc run reports 128 + 9."""
    oci.talker(scandir / "talker")
    container, _ = svscan_in(bundle, scandir)
    wait_until(lambda: oci.logged_lines(scandir / "talker" / "log" / "main"))
    container.kill("KILL")
    assert container.wait() == 128 + signal.SIGKILL, container.text()
