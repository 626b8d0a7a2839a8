"""What ps, top and docker top show for svtree's daemons: `svscan DIR`,
`supervise NAME`, `multilog SCRIPT` as the title, `svscan`, `supervise`,
`multilog` as comm."""

import os

def name_process(title, comm):
    """Show the process as title (`supervise web`) in ps -o args, top and
    docker top, and as comm (`supervise`) in ps -o comm and pgrep -x, as
    daemontools' processes show. setproctitle rewrites the argv area in
    place (only that: a longer title is cut); without it, comm alone is set.

    SPT_NOENV, in the C environment only and only for the first call (the
    one that sets setproctitle up): without it the environment's area
    would be taken for the title too, and /proc/PID/environ of svscan and
    every supervise would show the title's bytes instead of the
    environment (which ps e, debuggers and benchmarks read)."""
    global set_title
    first = set_title is None
    if first:
        set_title = load_title_setter()
    if set_title:       # a name that is not UTF-8 shows its bytes as \xNN
        if first:
            os.putenv("SPT_NOENV", "1")
        try:
            set_title(title.encode(errors="surrogateescape").decode(errors="backslashreplace"))
        finally:
            if first:
                os.unsetenv("SPT_NOENV")
    try:
        fd = os.open("/proc/self/comm", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, comm.encode())
    except OSError:
        pass
    finally:
        os.close(fd)


set_title = None        # setproctitle's function once loaded (svscan: before forking)


def load_title_setter():
    """setproctitle's C function, loaded without its package: the package's
    __init__ imports logging, and logging threading, whose fork hooks cost
    every supervise svscan forks some 330 KiB of private memory. False if
    the module is not there (or laid out otherwise): comm alone then."""
    try:
        from importlib.machinery import PathFinder
        package = PathFinder.find_spec("setproctitle")
        spec = PathFinder.find_spec("_setproctitle", list(package.submodule_search_locations))
        module = spec.loader.create_module(spec)
        spec.loader.exec_module(module)
        return module.setproctitle
    except (ImportError, AttributeError, TypeError, OSError):
        return False
