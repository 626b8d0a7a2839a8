"""Same-page merging (svtree/samepage.py): the supervise processes svscan
forks offer their memory to the kernel's KSM; the services they start, and
everything else exec'd, do not. Whether pages are then merged is ksmd's
business, a machine-wide switch the tests leave alone (bench/run.py
measures it): what is checked here is the mark, the VmFlag `mg` the kernel
shows in /proc/PID/smaps, which is there whether ksmd runs or not."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    SLEEPER, start_svscan, status_pid, supervise_pids, wait_until, write_script)
from svtree import samepage

def kernel_takes_the_mark():
    """Whether madvise(MADV_MERGEABLE) works here at all (KSM built in, and
    no seccomp filter or container runtime refusing it): asked of a
    throwaway interpreter."""
    if not Path("/sys/kernel/mm/ksm").is_dir():
        return False
    code = "from svtree import samepage; print(samepage.offer())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "SVSCAN_MERGE": "1"})
    return out.stdout.strip().isdigit() and int(out.stdout) > 0


needs_ksm = pytest.mark.skipif(not kernel_takes_the_mark(),
                               reason="no KSM here (not built in, or madvise refused)")


def mergeable(pid):
    """{mapping name: whether it is marked mergeable} of a process, for its
    private writable mappings."""
    marks = {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if fields and "-" in fields[0] and not fields[0].endswith(":"):
                private_writable = fields[1][1] == "w" and fields[1][3] == "p"
                name = (fields[5] if len(fields) > 5 else "[anon]") if private_writable else None
            elif fields and fields[0] == "VmFlags:" and name is not None:
                marks[name] = marks.get(name, False) or "mg" in fields[1:]
    return marks


def tree(scandir):
    """A service with the built-in logger: a supervise, the logger's
    supervise and the logger (forked by the latter) are ours."""
    d = scandir / "web"
    write_script(d / "run", "#!/bin/sh\necho hello\n" + SLEEPER.split("\n", 1)[1])
    (d / "log").mkdir()
    (d / "log" / "multilog").write_text("./main\n")
    return d


def logger_of(log_supervise):
    """The built-in logger: the log supervise's child."""
    with open(f"/proc/{log_supervise}/task/{log_supervise}/children") as f:
        kids = [int(p) for p in f.read().split()]
    return kids[0] if kids else None


@needs_ksm
def test_supervise_memory_is_offered_and_services_is_not(procs, scandir, strays):
    d = tree(scandir)
    svscan = start_svscan(procs, scandir)
    wait_until(lambda: status_pid(d) and status_pid(d / "log")
               and len(supervise_pids(svscan.pid)) == 2, timeout=15)
    ours = supervise_pids(svscan.pid)
    log_supervise = next(p for p in ours if os.readlink(f"/proc/{p}/cwd").endswith("/log"))
    wait_until(lambda: logger_of(log_supervise), timeout=10)
    for pid in (*ours, logger_of(log_supervise)):
        marks = mergeable(pid)
        assert marks.get("[heap]") and sum(marks.values()) >= 3, (pid, marks)
    # ./run is exec'd: a new address space, unmarked
    service = status_pid(d)
    assert not any(mergeable(service).values()), mergeable(service)
    # svscan itself keeps its own memory out of it: only its zygote marks
    assert not any(mergeable(svscan.pid).values())


@needs_ksm
def test_svscan_merge_0_leaves_it_off(procs, scandir, strays):
    d = tree(scandir)
    svscan = start_svscan(procs, scandir, env={**os.environ, "SVSCAN_MERGE": "0"})
    wait_until(lambda: status_pid(d) and len(supervise_pids(svscan.pid)) == 2, timeout=15)
    for pid in supervise_pids(svscan.pid):
        assert not any(mergeable(pid).values()), mergeable(pid)


def test_writable_private_mappings():
    maps = (b"55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n"
            b"7f1c2c000000-7f1c2c021000 rw-p 00000000 00:00 0 \n"
            b"7f1c2d200000-7f1c2d400000 r-xp 00000000 08:01 131 /usr/lib/libpython3.11.so.1.0\n"
            b"7f1c2d600000-7f1c2d650000 rw-p 00400000 08:01 131 /usr/lib/libpython3.11.so.1.0\n"
            b"7f1c2e000000-7f1c2e001000 rw-s 00000000 00:05 9 /dev/zero (deleted)\n"
            b"7ffd5e9d0000-7ffd5e9f1000 rw-p 00000000 00:00 0                          [stack]\n"
            b"garbage\n\n"
            b"zz-yy rw-p 0 0 0\n")
    assert samepage.writable_private(maps) == [
        (0x55d0c0a00000, 0x21000), (0x7f1c2c000000, 0x21000),
        (0x7f1c2d600000, 0x50000), (0x7ffd5e9d0000, 0x21000)]


@pytest.mark.parametrize("value, wanted", [
    (None, True), ("", True), ("1", True), ("yes", True),
    ("0", False), ("no", False), (" off ", False), ("false", False), ("OFF", False),
    ("False", False)])
def test_svscan_merge_values(value, wanted):
    env = {} if value is None else {"SVSCAN_MERGE": value}
    assert samepage.wanted(env) is wanted
