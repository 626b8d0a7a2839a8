"""inotify for everyone in svtree: the event bits by name, and
inotify_simple's INotify made without ctypes.util.

ctypes.util imports subprocess and with it threading, whose at-fork hook
then runs in every supervise svscan forks and costs each about 250 KiB of
private memory; inotify_simple only needs find_library("c") from it. The
bits are the kernel's (inotify(7)): plain ints, for masks and for testing
an event's mask, without loading inotify_simple's enum.
"""

import sys

ACCESS, MODIFY, ATTRIB, CLOSE_WRITE, CLOSE_NOWRITE = 0x1, 0x2, 0x4, 0x8, 0x10
OPEN, MOVED_FROM, MOVED_TO, CREATE, DELETE = 0x20, 0x40, 0x80, 0x100, 0x200
DELETE_SELF, MOVE_SELF = 0x400, 0x800
Q_OVERFLOW, IGNORED = 0x4000, 0x8000
ONLYDIR, ONESHOT = 0x1000000, 0x80000000


def module():
    """inotify_simple, imported with a stand-in ctypes.util (see above)."""
    if "inotify_simple" in sys.modules or "ctypes.util" in sys.modules:
        import inotify_simple
        return inotify_simple
    import types
    stub = types.ModuleType("ctypes.util")
    stub.find_library = lambda name: "libc.so.6" if name == "c" else None
    sys.modules["ctypes.util"] = stub
    try:
        import inotify_simple
    finally:
        del sys.modules["ctypes.util"]
    return inotify_simple


def make():
    """A new INotify. Raises OSError (out of instances) or ImportError."""
    return module().INotify()
