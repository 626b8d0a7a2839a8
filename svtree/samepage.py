"""Same-page merging: the zygote offers its memory to the kernel's KSM.

Every supervise is a fork of the zygote, and what a supervise costs is the
pages it copies on writing to them (forking.py). Most of those copies end
up identical from one supervise to the next (reference counts raised and
dropped again, the same objects made in the same places), and a fork keeps
every address, so a page of one supervise is byte for byte the page of
another. Linux's same-page merging (KSM) stores such pages once, for the
mappings a process has marked with madvise(MADV_MERGEABLE), and only while
the operator runs its scanner, ksmd (/sys/kernel/mm/ksm/run = 1): the
kernel's trade of CPU time (ksmd's scans) and a timing side channel (a
process that can map a page of the same bytes can tell that one exists) for
memory, made for many copies of the same program, which a tree of
supervise processes is. QEMU marks its guests' memory the same way by
default.

The zygote marks its private writable mappings once, before it forks any
supervise; forked children inherit the mark, exec'd programs (every ./run)
do not: a service's own memory is never offered. Without ksmd, or without
KSM in the kernel, the mark does nothing. SVSCAN_MERGE=0 in svscan's
environment leaves it off.
"""

import os

MADV_MERGEABLE = 12                          # <asm-generic/mman-common.h>
VARIABLE = "SVSCAN_MERGE"


def wanted(environ=os.environ):
    """Whether the operator left merging on (the default)."""
    return environ.get(VARIABLE, "").strip().lower() not in ("0", "no", "off", "false")


def writable_private(maps):
    """(start, length) of each private writable mapping in the text of a
    /proc/PID/maps (bytes): the heap, pymalloc's arenas, the libraries'
    data, the stack."""
    spans = []
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[1][1:2] != b"w" or fields[1][3:4] != b"p":
            continue
        low, _, high = fields[0].partition(b"-")
        try:
            start, end = int(low, 16), int(high, 16)
        except ValueError:
            continue
        if end > start:
            spans.append((start, end - start))
    return spans


def offer():
    """Mark this process's private writable mappings mergeable; the number
    of bytes the kernel took (0: not wanted, no KSM, or no libc to ask).
    Never raises: merging saves memory, its absence costs nothing else."""
    if not wanted():
        return 0
    try:
        import ctypes
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        madvise.restype = ctypes.c_int
        with open("/proc/self/maps", "rb") as f:
            spans = writable_private(f.read())
        taken = 0
        for start, length in spans:
            if madvise(start, length, MADV_MERGEABLE) == 0:   # EINVAL: no KSM, or not that kind
                taken += length
    except Exception:          # no libc to ask, no /proc, out of memory: nothing is lost
        return 0
    return taken

