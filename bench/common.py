"""What the benchmark scripts share: processes, trees, figures and the report.

bench/run.py, more.py, faults.py, init.py and container.py import it (each
puts bench/ on sys.path first: they are run as files, and the tests load
container.py by path). In here:

- processes: reading /proc (stat, CPU, PSS), killing a whole tree or session,
  spawning a command (in a session of its own) and waiting for it with a
  deadline, timing one (timed_ms: milliseconds);
- trees: a supervision tree of one system (svtree, daemontools, runit, s6,
  supervisord) in a temp dir of its own, whose every ./run reports `NAME
  PID` on a fifo, and which is killed whole at the end whatever happens;
- figures: a system's figure (the median of its samples, or an error), its
  spread, the ratio svtree/peer and the verdicts on targets;
- the report: rows of svtree's figure next to each peer's, the header of a
  BENCHMARKS.md section (date, command, machine, load, peers), and the
  replacement of one section of that file;
- the command line: --quick, --only and --output, which run.py and more.py
  share, and the start and end every script goes through.

Standard library only.
"""

import argparse
import ctypes
import datetime
import os
import platform
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# SVBENCH_VENV=DIR: svtree from another venv (another Python), e.g. for
# BENCHMARKS.md's memory by Python version
VENV_BIN = Path(os.environ.get("SVBENCH_VENV") or ROOT / ".venv") / "bin"
VENV_PY = VENV_BIN / "python"
TAG_VAR = "SVBENCH_TAG"
TREE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"   # so svscan/runsvdir find the peers' programs
CLK_TCK = os.sysconf("SC_CLK_TCK")
N_TREE = 100                      # services in the big trees
PACKAGES = {"daemontools": "daemontools", "runit": "runit", "s6": "s6",
            "supervisord": "supervisor", "tini": "tini", "dumb-init": "dumb-init"}


class BenchError(Exception):
    """A benchmark could not get its figure (timeout, missing program...)."""


def say(*words):
    print(*words, file=sys.stderr, flush=True)


# --- processes --------------------------------------------------------------

def become_subreaper():
    """Orphans of the trees we kill come to us, and we reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)          # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap_orphans():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def all_pids():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def read_stat(pid):
    """(comm, fields after comm) of /proc/PID/stat; fields[0] is the state."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    rp = data.rindex(b")")
    comm = data[data.index(b"(") + 1:rp].decode(errors="replace")
    return comm, data[rp + 2:].split()


def alive(pid):
    """Whether pid is a process and not a zombie."""
    try:
        _, fields = read_stat(pid)
    except (OSError, ValueError):
        return False
    return fields[0] != b"Z"


def process_table():
    """pid -> (ppid, comm, state) for every live process."""
    table = {}
    for pid in all_pids():
        try:
            comm, fields = read_stat(pid)
        except (OSError, ValueError):
            continue
        table[pid] = (int(fields[1]), comm, fields[0].decode())
    return table


def descendants(root, table=None):
    """root and every process below it (by parent pid), root first."""
    table = process_table() if table is None else table
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def environ_of(pid):
    """The NAME=value entries (bytes) of a process's environment; [] if it is gone."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def tagged(tag):
    """Live processes whose environment carries TAG_VAR=tag."""
    needle = f"{TAG_VAR}={tag}".encode()
    me = os.getpid()
    return [pid for pid in all_pids() if pid != me and needle in environ_of(pid)]


def kill(pid, signum=signal.SIGKILL):
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(pid):
    """SIGKILL to the process group (session) led by pid, and to pid."""
    for target in (-pid, pid):
        kill(target)


def pidfd_wait(pid, timeout):
    """Monotonic time at which pid exits, or None after timeout seconds.

    Through a pidfd, so the time is not that of a polling loop's next round.
    The process is not reaped.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return time.monotonic()
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0.0, timeout) * 1000):
            return None
        return time.monotonic()
    finally:
        os.close(fd)


GROUPS = set()                   # sessions spawn() started and no one has reaped yet


def spawn(argv, *, stdin=None, stdout=None, setsid=True, env=None):
    """posix_spawn with stdin/stdout from fds (or /dev/null), stderr to /dev/null."""
    actions = []
    actions.append((os.POSIX_SPAWN_DUP2, stdin, 0) if stdin is not None
                   else (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0))
    actions.append((os.POSIX_SPAWN_DUP2, stdout, 1) if stdout is not None
                   else (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0))
    actions.append((os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0))
    env = env or {"PATH": TREE_PATH, "LC_ALL": "C"}
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=setsid)
    GROUPS.add(pid)
    return pid


def finish(pid, timeout, what):
    """Wait for pid (our child) to exit within timeout, and reap it; (the
    monotonic time it exited, its exit code, its rusage).

    On timeout its session is killed and BenchError raised.
    """
    t = pidfd_wait(pid, timeout)
    if t is None:
        end_group(pid)
        raise BenchError(f"{what} did not finish within {timeout:.0f} s")
    _, wstatus, usage = os.wait4(pid, 0)
    GROUPS.discard(pid)
    return t, os.waitstatus_to_exitcode(wstatus), usage


def end_group(pid):
    """Kill the session we spawned as pid, reap its leader, forget it."""
    kill_group(pid)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    GROUPS.discard(pid)


def timed_ms(argv, timeout=10.0, expect=0):
    """Wall time in milliseconds of one whole process, from its spawn to its
    exit as the pidfd tells it (not counting the reaping), its output to
    /dev/null; BenchError if it exits other than expect. No session of its
    own: setsid() would be counted in its time."""
    t0 = time.monotonic()
    pid = spawn(argv, setsid=False)
    t1, code, _ = finish(pid, timeout, argv[0])
    if code != expect:
        raise BenchError(f"{' '.join(argv[:3])}... exited {code}, not {expect}")
    return (t1 - t0) * 1000


# --- what a process uses --------------------------------------------------------

def per_process(read, pids):
    """pid -> read(pid) for those of pids still there to be read."""
    out = {}
    for pid in pids:
        try:
            out[pid] = read(pid)
        except (OSError, ValueError):
            continue
    return out


def cpu_of(pid):
    """(utime+stime in ticks, on-CPU ns from schedstat) of one process."""
    _, fields = read_stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            ns = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ns = None
    return ticks, ns


def cpu_ticks_with_children(pid):
    """utime+stime+cutime+cstime of a process (its reaped children included)."""
    _, fields = read_stat(pid)
    return sum(int(fields[i]) for i in (11, 12, 13, 14))


def smaps_rollup(pid):
    """Fields of /proc/PID/smaps_rollup in KiB (Rss, Pss, Private_Dirty...)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def total_pss(pids):
    """Sum of the PSS (KiB) of those of pids still there."""
    return sum(m.get("Pss", 0) for m in per_process(smaps_rollup, pids).values())


def private_dirty_by_mapping(pid, top=4):
    """[(mapping, KiB)] of the mappings holding most Private_Dirty of a process."""
    sums = {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else "[anon]"
                name = os.path.basename(name) if name.startswith("/") else name
            elif parts[0] == "Private_Dirty:":
                sums[name] = sums.get(name, 0) + int(parts[1])
    return sorted(sums.items(), key=lambda kv: -kv[1])[:top]


# --- same-page merging (ksmd) ----------------------------------------------------

KSM = Path("/sys/kernel/mm/ksm")


def ksm_read(name):
    return int((KSM / name).read_text().split()[0])


class Ksmd:
    """ksmd switched on for a while, as fast as FAST pages a round where the
    kernel lets us set the rate (its advisor off), then put back as it was
    (run first, then pages_to_scan): svscan's zygote marks its memory
    mergeable (svtree/samepage.py), which only pays where ksmd runs. None of
    the peers marks any memory, so their figures do not change with it."""

    FAST = 2000                    # pages per round (the kernel's default: 100 per 20 ms)

    def __init__(self):
        self.saved = {}

    @staticmethod
    def possible():
        return os.access(KSM / "run", os.W_OK)

    @staticmethod
    def advised():
        """Whether the kernel's advisor sets the rate (pages_to_scan is then
        not ours to write: EINVAL)."""
        try:
            return "[none]" not in (KSM / "advisor_mode").read_text()
        except OSError:
            return False

    def __enter__(self):
        self.saved = {name: (KSM / name).read_text().strip() for name in ("run", "pages_to_scan")}
        try:
            if not self.advised():
                (KSM / "pages_to_scan").write_text(str(self.FAST))
            (KSM / "run").write_text("1")
        except BaseException:
            self.restore()
            raise
        return self

    def __exit__(self, *exc):
        self.restore()
        return False

    def restore(self):
        for name in ("run", "pages_to_scan"):
            try:
                if (KSM / name).read_text().strip() != self.saved[name]:
                    (KSM / name).write_text(self.saved[name])
            except OSError:
                pass

    def settle(self, scans=3, timeout=60.0):
        """Wait for scans whole passes of ksmd from now: what is mergeable is merged."""
        target = ksm_read("full_scans") + scans
        deadline = time.monotonic() + timeout
        while ksm_read("full_scans") < target:
            if time.monotonic() > deadline:
                raise BenchError(f"ksmd made fewer than {scans} passes in {timeout:.0f} s")
            time.sleep(0.2)

    def default_rate_cpu(self, seconds=10.0):
        """ksmd's CPU share (percent of one CPU) at the rate the machine had
        before (pages_to_scan as saved), over seconds."""
        fast = not self.advised()
        if fast:
            (KSM / "pages_to_scan").write_text(self.saved["pages_to_scan"])
        try:
            pid = next((p for p in all_pids() if read_stat(p)[0] == "ksmd"), None)
            if pid is None:
                return None
            before, t0 = cpu_of(pid)[1], time.monotonic()
            time.sleep(seconds)
            used = (cpu_of(pid)[1] - before) / 1e9 if before is not None else None
        finally:
            if fast:
                (KSM / "pages_to_scan").write_text(str(self.FAST))
        return None if used is None else 100.0 * used / (time.monotonic() - t0)

# --- the report fifo ----------------------------------------------------------

class Reporter:
    """The fifo every ./run writes `NAME PID` to when it starts.

    We hold a reader and a writer open, so a run script never blocks on open
    and poll() never sees a hangup. An event's time is when we read it.
    """

    def __init__(self, path):
        os.mkfifo(path, 0o622)
        self.r = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.w = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.poller = select.poll()
        self.poller.register(self.r, select.POLLIN)
        self.partial = b""
        self.events = []            # (monotonic time, name, pid)
        self.last = {}              # name -> (time, pid) of its latest start
        self.pids = set()           # every pid a run script reported

    def close(self):
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass

    def pump(self, timeout):
        """Wait up to timeout seconds for lines; record them."""
        ready = self.poller.poll(max(0, timeout) * 1000)
        now = time.monotonic()
        if not ready:
            return
        chunks = []
        while True:
            try:
                data = os.read(self.r, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        data = self.partial + b"".join(chunks)
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            words = line.split()
            if len(words) != 2:
                continue
            name, pid = words[0].decode(), int(words[1])
            self.events.append((now, name, pid))
            self.last[name] = (now, pid)
            self.pids.add(pid)

    def mark(self):
        self.pump(0)
        return len(self.events)

    def wait_names(self, names, since=0, timeout=10.0, what="start"):
        """Time of the event that completes names (all seen after `since`)."""
        names = set(names)
        deadline = time.monotonic() + timeout
        i = since
        while True:
            while i < len(self.events):
                t, name, _ = self.events[i]
                names.discard(name)
                i += 1
                if not names:
                    return t
            left = deadline - time.monotonic()
            if left <= 0:
                shown = ", ".join(sorted(names)[:5])
                raise BenchError(f"timed out after {timeout:.0f} s waiting for the {what} "
                                 f"of {len(names)} service(s) ({shown})")
            self.pump(min(left, 0.5))


# --- trees --------------------------------------------------------------------

LIVE = set()            # trees not yet stopped: cleanup() stops them on any exit
SCANNERS = {"svtree": str(VENV_BIN / "svscan"), "daemontools": "/usr/bin/svscan",
            "runit": "/usr/bin/runsvdir", "s6": "/usr/bin/s6-svscan"}


def write_script(path: Path, text: str):
    """An executable file at path (its directory made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def make_service(path, name, fifo, body="exec sleep 100000", files=None, logger=None):
    """A service dir whose run reports `NAME PID` on the fifo, then runs body.

    files: other files of the dir (name -> text). logger: a log/ that files
    into ./main, "builtin" for svtree's log/multilog, else log/run's command
    (lines before the exec'd one: put before it, newline-separated).
    """
    path.mkdir(parents=True)
    write_script(path / "run", f'#!/bin/sh\necho "{name} $$" >{shlex.quote(str(fifo))}\n'
                               f'{body}\n')
    for fname, text in (files or {}).items():
        (path / fname).write_text(text)
    if logger:
        log = path / "log"
        (log / "main").mkdir(parents=True)      # svlogd wants it made
        if logger == "builtin":
            (log / "multilog").write_text("t ./main\n")
        else:
            *before, command = logger.split("\n")
            write_script(log / "run", "".join(f"{line}\n" for line in ["#!/bin/sh", *before])
                         + f"exec {command} ./main\n")


class Tree:
    """One supervision tree of one system, in a temp dir of its own.

    names: its services (each `exec sleep 100000`); pool: prepared service
    dirs outside the scan dir; options: the scanner's, before the scan dir.
    """

    def __init__(self, system, names=(), pool=(), logger=None, options=()):
        self.system = system
        self.options = list(options)
        self.dir = Path(tempfile.mkdtemp(prefix=f"svbench-{system}-"))
        LIVE.add(self)
        self.tag = self.dir.name
        self.scan = self.dir / "scan"
        self.pool = self.dir / "pool"
        self.scan.mkdir()
        self.fifo = self.dir / "report.fifo"
        self.reporter = Reporter(self.fifo)
        self.names = list(names)
        for name in self.names:
            make_service(self.scan / name, name, self.fifo, logger=logger)
        for name in pool:
            make_service(self.pool / name, name, self.fifo)
        self.proc = None
        self.log = None

    def add(self, name, body, files=None, wanted=True):
        """A service whose run reports NAME PID on the fifo, then runs body;
        a wanted one is waited for when the tree starts."""
        d = self.scan / name
        make_service(d, name, self.fifo, body, files)
        if wanted:
            self.names.append(name)
        return d

    def argv(self):
        if self.system == "supervisord":
            conf = self.dir / "supervisord.conf"
            conf.write_text(self.supervisord_conf())
            return ["/usr/bin/supervisord", "-n", "-c", str(conf)]
        return [SCANNERS[self.system], *self.options, str(self.scan)]

    def supervisord_conf(self):
        d = self.dir
        parts = [f"[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\n"
                 f"pidfile={d}/supervisord.pid\nchildlogdir={d}\n"
                 + ("user=root\n" if os.getuid() == 0 else "")]
        for name in self.names:
            parts.append(f"[program:{name}]\ncommand={self.scan / name / 'run'}\n"
                         f"directory={self.scan / name}\nautostart=true\n"
                         f"autorestart=true\nstartsecs=0\nstartretries=1000\n"
                         f"stdout_logfile=NONE\nstderr_logfile=NONE\n")
        return "\n".join(parts)

    def start(self):
        """Launch the scanner in a session of its own; the monotonic launch time."""
        argv = self.argv()
        env = {"PATH": TREE_PATH, "LC_ALL": "C", "HOME": str(self.dir), TAG_VAR: self.tag}
        self.log = open(self.dir / "tree.log", "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return t0

    def wait_all(self, timeout=60.0):
        return self.reporter.wait_names(self.names, 0, timeout)

    def log_tail(self):
        try:
            text = (self.dir / "tree.log").read_text(errors="replace").strip()
        except OSError:
            return ""
        return text[-400:]

    def supervision_pids(self):
        """The scanner and its supervise processes: its tree minus the services."""
        table = process_table()
        pids = []
        for pid in descendants(self.proc.pid, table):
            _, comm, state = table[pid]
            if pid in self.reporter.pids or comm in ("sleep", "sh") or state == "Z":
                continue
            pids.append(pid)
        return pids, table

    def stop(self):
        """Kill everything of the tree, whatever state it is in; remove its dir."""
        try:
            if self.proc is not None:
                self.kill_all()
        finally:
            self.reporter.close()
            if self.log:
                self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            LIVE.discard(self)

    def kill_all(self):
        """SIGKILL to the scanner's session, its descendants and every
        process with the tree's tag, until none is left (10 s at most)."""
        doomed = set(tagged(self.tag))
        if self.proc.poll() is None:
            doomed.update(descendants(self.proc.pid))
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in doomed:
            kill(pid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            say(f"  warning: {self.system} scanner {self.proc.pid} did not die")
        deadline = time.monotonic() + 10
        while True:
            reap_orphans()
            left = tagged(self.tag)
            if not left:
                break
            if time.monotonic() > deadline:
                say(f"  warning: {self.system}: processes left over: {left}")
                break
            for pid in left:
                kill(pid)
            time.sleep(0.01)
        reap_orphans()


def stop_all(trees):
    for tree in list(trees):
        try:
            tree.stop()
        except Exception as e:         # keep stopping the others
            say(f"  warning: stopping {tree.system}: {e}")


def started(tree, timeout):
    """Start a tree and wait for every wanted service; the launch time and
    the time the last one reported. BenchError with how many started and
    the tree's log if they do not all start in time."""
    t0 = tree.start()
    try:
        t1 = tree.wait_all(timeout)
    except BenchError:
        seen = {name for _, name, _ in tree.reporter.events}
        tail = tree.log_tail().replace("\n", " / ")
        if tree.proc.poll() is not None:
            why = f"the scanner exited ({tree.proc.returncode})"
        else:
            why = f"timed out after {timeout:.0f} s"
        raise BenchError(f"{len(seen & set(tree.names))} of {len(tree.names)} services "
                         f"started ({why}){'; log: ' + tail[-300:] if tail else ''}") from None
    return t0, t1


def cleanup():
    """Every tree still up and every session spawned killed, orphans reaped."""
    stop_all(LIVE)
    for pid in list(GROUPS):
        end_group(pid)
    reap_orphans()


# --- figures --------------------------------------------------------------------

def fmt(x):
    """A figure with three significant digits or so (n/a for None)."""
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def ratio(a, b):
    if a is None or b is None:
        return "n/a"
    if b == 0:
        return "n/a (peer 0)" if a else "1 (both 0)"
    return fmt(a / b)


def spread(samples):
    """Median, min, max and n of samples; "" if there are none."""
    if not samples:
        return ""
    s = sorted(samples)
    return (f"median {fmt(statistics.median(s))}, min {fmt(s[0])}, max {fmt(s[-1])}, "
            f"n={len(s)}")


def percentile(samples, p):
    """Nearest-rank percentile."""
    s = sorted(samples)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


class Figure:
    """One system's figure in one benchmark: a value from n samples, or an
    error, "n/a: ..." where the measure does not apply to the system.

    samples: what the value is the median of, if it is; extra: what else the
    benchmark found, for the details.
    """

    def __init__(self, value=None, n=0, error=None, samples=(), extra=None):
        self.value, self.n, self.error = value, n, error
        self.samples = list(samples)
        self.extra = extra or {}

    @classmethod
    def of(cls, samples, extra=None):
        """The median of samples; an error if there are none."""
        if not samples:
            return cls(error="no samples")
        return cls(statistics.median(samples), len(samples), samples=samples, extra=extra)

    @property
    def ok(self):
        return self.error is None and self.value is not None

    def cell(self):
        """Its cell in a table: `value (n=N)` (the bare value for one of no
        samples: a bound worked out, not measured), the n/a text, or "error"."""
        if self.ok:
            return f"{fmt(self.value)}{f' (n={self.n})' if self.n else ''}"
        return self.error if self.error and self.error.startswith("n/a") else "error"

    def summary(self):
        """The spread of its samples, else its error: for progress and details."""
        return spread(self.samples) or self.error


def guarded(fn, *args):
    """fn(*args), or the BenchError or OSError it raised, said on stderr:
    one system's failure costs its figure, not the run."""
    try:
        return fn(*args)
    except (BenchError, OSError) as e:
        say(f"  error: {e}")
        return e


def rounds(systems, reps, once, pause=0.0):
    """reps rounds of once(system) over the systems, so that load from
    elsewhere hits them all alike, a pause after each success; a system
    that fails is left out of the rounds after. ({system: [results]},
    {system: error})."""
    got = {s: [] for s in systems}
    errors = {}
    for _ in range(reps):
        for system in systems:
            if system in errors:
                continue
            try:
                got[system].append(once(system))
            except (BenchError, OSError) as e:
                say(f"  error: {system}: {e}")
                errors[system] = str(e)
                continue
            time.sleep(pause)
    return got, errors


def verdict(value, limit, unit):
    """Whether value is within limit, and by how much it missed."""
    if value is None:
        return "not measured"
    if value <= limit:
        return f"met ({fmt(value)} {unit}; limit {fmt(limit)} {unit})"
    over = value - limit
    return (f"MISSED by {fmt(over)} {unit} ({fmt(value)} {unit} vs {fmt(limit)} {unit}, "
            f"x{fmt(value / limit) if limit else 'inf'})")


def verdict_at_least(value, floor, unit):
    """Whether value reaches floor (where higher is better, as lines/s)."""
    if value is None:
        return "not measured"
    if value >= floor:
        return f"met ({fmt(value)} {unit}; floor {fmt(floor)} {unit})"
    return (f"MISSED by {fmt(floor - value)} {unit} ({fmt(value)} {unit} vs {fmt(floor)} "
            f"{unit}, x{fmt(value / floor)})")


# --- the report -------------------------------------------------------------------

class Report:
    """What a script's benchmarks found: rows of svtree's figure next to a
    peer's, targets with their verdicts, details, and tables of their own."""

    def __init__(self):
        self.rows = []          # (label, unit, svtree Figure, peer, peer Figure)
        self.targets = []       # (benchmark, target, verdict)
        self.details = []       # lines of observations
        self.extra_tables = []  # (title, markdown)

    def add(self, label, unit, ours, peer, theirs):
        self.rows.append((label, unit, ours, peer, theirs))

    def compare(self, label, unit, figs, peers, ours="svtree"):
        """A row per peer: figs[ours] next to figs[peer]."""
        for peer in peers:
            self.add(label, unit, figs[ours], peer, figs[peer])

    def table(self):
        lines = ["| Benchmark | Unit | svtree | Peer | Peer figure | svtree/peer |",
                 "|---|---|---:|---|---:|---:|"]
        for label, unit, ours, peer, theirs in self.rows:
            r = ratio(ours.value if ours.ok else None, theirs.value if theirs.ok else None)
            lines.append(f"| {label} | {unit} | {ours.cell()} | {peer} | {theirs.cell()} | {r} |")
        return "\n".join(lines)

    def target_table(self):
        lines = ["| Benchmark | Target | Result |", "|---|---|---|"]
        lines += [f"| {b} | {t} | {v} |" for b, t, v in self.targets]
        return "\n".join(lines)

    def detail_list(self):
        return "\n".join("- " + d for d in self.details)


class Run:
    """One run of run.py or more.py: what each benchmark function gets (the
    options, the peers installed, svtree and them, the report its rows go
    to), and what the header says of the run."""

    def __init__(self, quick, peers):
        self.when = datetime.datetime.now(datetime.timezone.utc)
        self.revision = svtree_revision()
        self.load_before = os.getloadavg()
        self.t_begin = time.monotonic()
        self.quick = quick
        self.peers = peers
        self.systems = ["svtree"] + peers
        self.rep = Report()

    def header(self, script, argv, machine_note=""):
        """The list under a section's title: date, command, svtree's commit,
        machine (machine_note after it), load, peers and their versions."""
        took = time.monotonic() - self.t_begin
        command = f".venv/bin/python bench/{script}" + "".join(f" {shlex.quote(a)}"
                                                               for a in argv)
        info = machine()
        peers = ", ".join(f"{p} {v}" for p, v in versions(self.peers).items()) or "none"
        return "\n".join([
            f"- Date: {self.when.strftime('%Y-%m-%d %H:%M UTC')} (run took {took:.0f} s"
            f"{', --quick' if self.quick else ''})",
            f"- Command: `{command}`",
            f"- svtree: {self.revision}",
            f"- Machine: {info['nproc']} CPUs (nproc)"
            f"{', ' + info['cpu'] if info['cpu'] else ''}, Linux {info['kernel']}, "
            f"Python {info['python']} (.venv){machine_note}",
            f"- Load: {self.load_before[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the "
            f"end (1-minute load average; other work on the machine adds noise)",
            f"- Peers: {peers} (Debian packages)"])


def machine():
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    py = subprocess.run([str(VENV_PY), "-c", "import sys; print(sys.version.split()[0])"],
                        capture_output=True, text=True).stdout.strip()
    return {"nproc": len(os.sched_getaffinity(0)), "kernel": platform.release(),
            "python": py or platform.python_version(), "cpu": cpu}


def svtree_revision():
    """The commit measured, and whether svtree/ had uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "svtree", "pyproject.toml"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if not head:
        return "unknown"
    return head + (" plus uncommitted changes in svtree/" if dirty else "")


def versions(peers):
    """peer -> the version of its Debian package ("?" if not found)."""
    out = {}
    for peer in peers:
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", PACKAGES[peer]],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            v = ""
        out[peer] = v or "?"
    return out


def installed_peers(script, programs, wanted):
    """The peers of wanted whose programs are all installed (a word on stderr
    for each one left out), or None, with a fatal word, if svtree's are not."""
    for prog in programs["svtree"]:
        if not os.access(prog, os.X_OK):
            say(f"{script}: fatal: {prog} is missing: run make first (make test or make bench)")
            return None
    peers = []
    for peer in wanted:
        missing = [p for p in programs[peer] if not os.access(p, os.X_OK)]
        if missing:
            say(f"skipping {peer}: {', '.join(missing)} not installed")
        else:
            peers.append(peer)
    return peers


def replace_section(text, heading, section, before=None):
    """text (markdown) with the section that starts at the line `heading`
    (up to the next `## ` line) replaced by section; a missing one goes in
    before the line `before` if there is one, else at the end."""
    lines = text.splitlines(keepends=True)
    body = section.rstrip("\n") + "\n"
    start = next((i for i, line in enumerate(lines) if line.rstrip("\n") == heading), None)
    if start is not None:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")),
                   len(lines))
        tail = "".join(lines[end:])
        return "".join(lines[:start]) + body + ("\n" + tail if tail else "")
    at = next((i for i, line in enumerate(lines) if line.rstrip("\n") == before), None)
    if before is None or at is None:
        head = text.rstrip("\n")
        return (head + "\n\n" if head else "") + body
    return "".join(lines[:at]) + body + "\n" + "".join(lines[at:])


def write_section(path, heading, section, before=None):
    """Replace (or add, see replace_section) one section of the markdown file."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    path.write_text(replace_section(old, heading, section, before))
    say(f"wrote {path}")


def publish(text, path, heading, before=None):
    """A script's report: printed, and its section of the markdown file at
    path replaced (none: printed only)."""
    print(text)
    if path:
        write_section(path, heading, text, before)


# --- the command line, the start and the end --------------------------------------------

def section_options(doc):
    """A parser of the options of a script that writes one section of
    BENCHMARKS.md: --output FILE (BENCHMARKS.md by default), --no-write."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-write", action="store_true", help="print the section only")
    return p


def bench_options(doc, benches, peers, quick_help, output_help):
    """A parser of the options run.py and more.py share: --quick, --only
    (benchmarks and peers), --output; the script's docstring is its help."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(doc.split("\n\n")[1:]))
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help=f"benchmarks ({', '.join(benches)}) and/or peers "
                        f"({', '.join(peers)}); comma-separated or repeated")
    p.add_argument("--output", metavar="FILE", help=output_help)
    return p


def parsed(p, argv, benches, peers):
    """argv parsed by p (bench_options'), --only chosen (choose()); the
    report goes to BENCHMARKS.md unless --only narrowed the run (then only
    where --output says)."""
    args = p.parse_args(argv)
    narrowed = choose(p, args, benches, peers)
    if args.output is None and not narrowed:
        args.output = str(ROOT / "BENCHMARKS.md")
    return args


def choose(p, args, benches, peers):
    """The names --only gave (an error for an unknown one); args.benches and
    args.peers become those it named, or all where it named none."""
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    known = (*benches, "svtree", *peers)
    unknown = [n for n in names if n not in known]
    if unknown:
        p.error(f"unknown NAME(s): {', '.join(unknown)}; choose from {', '.join(known)}")
    args.benches = [b for b in benches if b in names] or list(benches)
    args.peers = [s for s in peers if s in names] or list(peers)
    return names


def prepare():
    """SIGTERM ends the script as an error would, through the finally
    clauses that kill what it started; and it reaps what it kills."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    become_subreaper()


def run_benches(script, programs, registry, args):
    """The benchmarks of registry that args names, in turn, against the
    peers of args whose programs are installed: the Run, or None if svtree's
    are not (said on stderr). Every tree and session is killed after,
    whatever happens."""
    peers = installed_peers(script, programs, args.peers)
    if peers is None:
        return None
    run = Run(args.quick, peers)
    try:
        for name in args.benches:
            registry[name](run)
    finally:
        cleanup()
    return run


def exit_with(main, on_interrupt=cleanup):
    """sys.exit(main()); on Ctrl-C, on_interrupt() and exit 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        on_interrupt()
        sys.exit(130)
