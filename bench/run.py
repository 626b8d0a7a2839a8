#!/usr/bin/env python3
"""Benchmarks: svtree next to the supervision suites installed on this machine.

    .venv/bin/python bench/run.py [--quick] [--only NAME[,NAME...]] [--output FILE]

Every figure comes from this one run: svtree and each installed peer
(daemontools, runit, s6, supervisord) are measured in turn (restart and
idle: side by side), on the same machine, with the same service scripts,
and compared by median.

Benchmarks (NAME for --only):

  detect   a symlink to a prepared service dir appears in a running scan dir;
           time until its ./run has started. daemontools and runit poll the
           scan dir every 5 s, so they get few repetitions, each after a random
           pause (the phase of their poll is then uniform); s6-svscan does not
           poll at all, so for s6 `s6-svscanctl -a` is run right after the
           symlink and counted in the time. supervisord has no scan dir: n/a.
  restart  kill -9 of a service's process; time until ./run has started again.
           Each service is killed once, after 11 s up (every supervise
           throttles restarts to one a second, and svtree backs off after a
           death within 10 s of the start); the trees of all systems run side
           by side, so that wait is paid once.
  startup  launch of the scanner; time until all 100 ./run have started, and
           the CPU time (schedstat) the scanner and its supervise processes
           have used by then. The systems take turns, round after round.
  memory   PSS (smaps_rollup) of the scanner plus its supervise processes,
           without the services, per service, at 100 services.
  logged   PSS of everything a 30-service tree runs but the services (the
           scanner, its supervise processes, the loggers), measured from
           outside, divided by 30: each service logged with `t ./main`.
           svtree twice: the built-in logger (log/multilog) and log/run =
           `exec multilog t ./main`; daemontools' multilog, runit's svlogd -tt,
           s6-log t. supervisord: n/a (it logs in its one process).
  cli      whole-process wall time of svc -u S, svok S, svstat S and svstat on
           100 services, next to `python -c pass` (the .venv interpreter) and
           to daemontools' C tools.
  idle     CPU time (utime+stime from /proc/PID/stat; also the ns-precise
           on-CPU time from /proc/PID/schedstat) of the scanner and its
           supervise processes in an idle 100-service tree over 30 s (10 s
           with --quick). The trees of all systems idle at the same time.

A NAME may also be a peer (daemontools, runit, s6, supervisord) to restrict
the peers; svtree is always measured. A run with --only writes no
BENCHMARKS.md unless --output is given.

Every ./run reports `NAME PID` on a fifo the benchmark blocks on (poll), then
execs `sleep 100000`. Each tree lives in a temp dir and in a session of its
own; at the end of each benchmark, whatever happens, the whole tree is killed:
its process group, every descendant and every process that carries the
tree's tag in its environment (the services run in sessions of their own).
The benchmark makes itself a child subreaper so it reaps what it kills.

Standard library only.
"""

import argparse
import ctypes
import datetime
import os
import platform
import random
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

SYSTEMS = ("svtree", "daemontools", "runit", "s6", "supervisord")
PEERS = SYSTEMS[1:]
BENCHES = ("detect", "restart", "startup", "memory", "logged", "cli", "idle")

PROGRAMS = {
    "svtree": [str(VENV_BIN / p) for p in ("svscan", "svc", "svok", "svstat")],
    "daemontools": ["/usr/bin/svscan", "/usr/bin/supervise", "/usr/bin/svc",
                    "/usr/bin/svok", "/usr/bin/svstat"],
    "runit": ["/usr/bin/runsvdir", "/usr/bin/runsv"],
    "s6": ["/usr/bin/s6-svscan", "/usr/bin/s6-supervise", "/usr/bin/s6-svscanctl"],
    "supervisord": ["/usr/bin/supervisord"],
}
PACKAGES = {"daemontools": "daemontools", "runit": "runit", "s6": "s6",
            "supervisord": "supervisor", "tini": "tini", "dumb-init": "dumb-init"}

N_TREE = 100                      # services in the big trees
NAMES_100 = [f"n{i:03d}" for i in range(N_TREE)]
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def tagged(tag):
    """Live processes whose environment carries TAG_VAR=tag."""
    needle = f"{TAG_VAR}={tag}".encode()
    me = os.getpid()
    found = []
    for pid in all_pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(pid)
    return found


def kill(pid, signum=signal.SIGKILL):
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


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


def smaps_rollup(pid):
    """Fields of /proc/PID/smaps_rollup in KiB (Rss, Pss, Private_Dirty...)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


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

LIVE = set()            # trees not yet stopped: main() stops them on any exit


def make_service(path, name, fifo, logger=None):
    path.mkdir(parents=True)
    run = path / "run"
    run.write_text(f'#!/bin/sh\necho "{name} $$" >{shlex.quote(str(fifo))}\n'
                   f'exec sleep 100000\n')
    run.chmod(0o755)
    if logger:
        log = path / "log"
        (log / "main").mkdir(parents=True)      # svlogd wants it made
        if logger == "builtin":
            (log / "multilog").write_text("t ./main\n")
        else:
            (log / "run").write_text(f"#!/bin/sh\nexec {logger} ./main\n")
            (log / "run").chmod(0o755)


# the logger of a logged tree: (system, its log/run command or "builtin")
LOGGED = {
    "svtree (built-in logger)": ("svtree", "builtin"),
    "svtree (log/run: exec multilog)": ("svtree", f"{VENV_BIN / 'multilog'} t"),
    "daemontools": ("daemontools", "/usr/bin/multilog t"),
    "runit": ("runit", "/usr/bin/svlogd -tt"),
    "s6": ("s6", "/usr/bin/s6-log t"),
}
N_LOGGED = 30


class Tree:
    """One supervision tree of one system, in a temp dir of its own."""

    def __init__(self, system, names, pool=(), logger=None):
        self.system = system
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
            make_service(self.scan / name, name, self.fifo, logger)
        for name in pool:
            make_service(self.pool / name, name, self.fifo)
        self.proc = None
        self.log = None

    def argv(self):
        scan = str(self.scan)
        if self.system == "svtree":
            return [str(VENV_BIN / "svscan"), scan]
        if self.system == "daemontools":
            return ["/usr/bin/svscan", scan]
        if self.system == "runit":
            return ["/usr/bin/runsvdir", scan]
        if self.system == "s6":
            return ["/usr/bin/s6-svscan", scan]
        if self.system == "supervisord":
            conf = self.dir / "supervisord.conf"
            conf.write_text(self.supervisord_conf())
            return ["/usr/bin/supervisord", "-n", "-c", str(conf)]
        raise ValueError(self.system)

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
        finally:
            self.reporter.close()
            if self.log:
                self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            LIVE.discard(self)


def stop_all(trees):
    for tree in list(trees):
        try:
            tree.stop()
        except Exception as e:         # keep stopping the others
            say(f"  warning: stopping {tree.system}: {e}")


def started(tree, timeout=60.0):
    """Start a tree and wait for every service; raise with the tree's log if not."""
    t0 = tree.start()
    try:
        t1 = tree.wait_all(timeout)
    except BenchError as e:
        tail = tree.log_tail()
        raise BenchError(f"{e}{'; log: ' + tail if tail else ''}") from None
    return t0, t1


# --- benchmarks -----------------------------------------------------------------

class Figures:
    """Samples of one system in one benchmark."""

    def __init__(self, samples=None, error=None, extra=None):
        self.samples = list(samples or [])
        self.error = error
        self.extra = extra or {}

    @property
    def median(self):
        return statistics.median(self.samples) if self.samples else None

    @property
    def n(self):
        return len(self.samples)


def guarded(fn, *args):
    try:
        return fn(*args)
    except BenchError as e:
        say(f"  error: {e}")
        return Figures(error=str(e))
    except OSError as e:
        say(f"  error: {e}")
        return Figures(error=str(e))


def bench_detect(system, reps):
    polling = system in ("daemontools", "runit")
    pool = [f"new{i}" for i in range(reps)]
    tree = Tree(system, ["a1", "a2", "a3"], pool)
    samples = []
    try:
        started(tree, 20)
        for i, name in enumerate(pool):
            time.sleep(random.uniform(0, 5) if polling else 0.05)
            mark = tree.reporter.mark()
            t0 = time.monotonic()
            os.symlink(tree.pool / name, tree.scan / name)
            if system == "s6":
                subprocess.run(["/usr/bin/s6-svscanctl", "-a", str(tree.scan)], check=True,
                               timeout=5, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t1 = tree.reporter.wait_names([name], mark, 15 if polling else 5,
                                          what="detection")
            samples.append((t1 - t0) * 1000)
    finally:
        tree.stop()
    return Figures(samples)


RESTART_UPTIME = 11.0   # svtree counts a death within 10 s of the start as quick, and backs off


def bench_restart(systems, reps):
    """Each of `reps` services killed once, after RESTART_UPTIME seconds up.

    The trees of all systems run side by side (idle but for the one service
    being restarted), so the wait for the uptime is paid once.
    """
    names = [f"r{i:02d}" for i in range(reps)]
    trees = {}
    out = {}
    try:
        for system in systems:
            trees[system] = Tree(system, names)
            try:
                started(trees[system], 30)
            except BenchError as e:
                say(f"  error: {system}: {e}")
                out[system] = Figures(error=str(e))
        for system, tree in trees.items():
            if system in out:
                continue
            samples = []
            try:
                for name in names:
                    t_last, pid = tree.reporter.last[name]
                    pause = t_last + RESTART_UPTIME - time.monotonic()
                    time.sleep(max(pause, 0.1))
                    mark = tree.reporter.mark()
                    t0 = time.monotonic()
                    os.kill(pid, signal.SIGKILL)
                    t1 = tree.reporter.wait_names([name], mark, 15, what="restart")
                    samples.append((t1 - t0) * 1000)
            except (BenchError, OSError) as e:
                say(f"  error: {system}: {e}")
                out[system] = Figures(error=str(e))
                continue
            out[system] = Figures(samples)
            say(f"    {system}: {spread(out[system])}")
    finally:
        stop_all(trees.values())
    return out


def startup_once(system):
    """(ms to all 100 started, ms to the first, CPU ms of the scanner and
    its supervise processes by then) for one fresh tree."""
    tree = Tree(system, NAMES_100)
    try:
        t0, t1 = started(tree, 60)
        cpu = 0
        for pid in tree.supervision_pids()[0]:
            try:
                cpu += cpu_of(pid)[1] or 0
            except (OSError, ValueError):
                pass
        return (t1 - t0) * 1000, (tree.reporter.events[0][0] - t0) * 1000, cpu / 1e6
    finally:
        tree.stop()


def bench_startup(systems, reps):
    """Rounds over the systems, so load from elsewhere hits them all alike."""
    alls = {s: [] for s in systems}
    firsts = {s: [] for s in systems}
    cpus = {s: [] for s in systems}
    errors = {}
    for _ in range(reps):
        for system in systems:
            if system in errors:
                continue
            try:
                total, first, cpu = startup_once(system)
            except (BenchError, OSError) as e:
                say(f"  error: {system}: {e}")
                errors[system] = str(e)
                continue
            alls[system].append(total)
            firsts[system].append(first)
            cpus[system].append(cpu)
            time.sleep(0.2)
    return {s: Figures(error=errors[s]) if s in errors else
            Figures(alls[s], extra={"first": statistics.median(firsts[s]),
                                    "cpu": Figures(cpus[s])})
            for s in systems}


def bench_memory(system):
    tree = Tree(system, NAMES_100)
    try:
        started(tree, 60)
        time.sleep(2)                 # let the tree settle
        pids, table = tree.supervision_pids()
        per = []
        for pid in pids:
            try:
                per.append((pid, table[pid][1], smaps_rollup(pid)))
            except OSError:
                continue
        breakdown = []
        for pid in pids:
            if pid != tree.proc.pid:
                try:
                    breakdown = private_dirty_by_mapping(pid)
                except OSError:
                    continue
                break
    finally:
        tree.stop()
    if not per:
        raise BenchError("no supervision process found")
    total_pss = sum(m.get("Pss", 0) for _, _, m in per)
    root = tree.proc.pid
    scanner = [m for pid, _, m in per if pid == root]
    others = [m for pid, _, m in per if pid != root]

    def mean(key, ms):
        return statistics.mean(m.get(key, 0) for m in ms) if ms else 0

    extra = {
        "processes": len(per),
        "total_pss_kib": total_pss,
        "scanner_pss_kib": scanner[0].get("Pss", 0) if scanner else 0,
        "scanner_rss_kib": scanner[0].get("Rss", 0) if scanner else 0,
        "supervise_count": len(others),
        "supervise_pss_kib": mean("Pss", others),
        "supervise_rss_kib": mean("Rss", others),
        "supervise_private_dirty_kib": mean("Private_Dirty", others),
        "supervise_private_clean_kib": mean("Private_Clean", others),
        "supervise_shared_kib": mean("Shared_Clean", others) + mean("Shared_Dirty", others),
        "comms": sorted({c for _, c, _ in per}),
        "breakdown": breakdown,
    }
    return Figures([total_pss / N_TREE / 1024], extra=extra)


def bench_logged(label):
    """PSS of a 30-service logged tree but its services, per service."""
    system, logger = LOGGED[label]
    tree = Tree(system, NAMES_100[:N_LOGGED], logger=logger)
    try:
        started(tree, 60)
        time.sleep(2)                 # let the tree settle, the loggers start
        pids, table = tree.supervision_pids()
        total = 0
        comms = set()
        for pid in pids:
            try:
                total += smaps_rollup(pid).get("Pss", 0)
                comms.add(table[pid][1])
            except OSError:
                continue
    finally:
        tree.stop()
    return Figures([total / N_LOGGED / 1024],
                   extra={"processes": len(pids), "comms": sorted(comms)})


def bench_idle(systems, window):
    """All trees at once, idle for `window` seconds; CPU used by each."""
    trees = {}
    out = {}
    try:
        for system in systems:
            trees[system] = Tree(system, NAMES_100)
            try:
                started(trees[system], 60)
            except BenchError as e:
                say(f"  error: {system}: {e}")
                out[system] = Figures(error=str(e))
        time.sleep(3)                 # let every tree settle
        before = {}
        for system, tree in trees.items():
            if system in out:
                continue
            pids, _ = tree.supervision_pids()
            before[system] = {}
            for pid in pids:
                try:
                    before[system][pid] = cpu_of(pid)
                except (OSError, ValueError):
                    pass
        t0 = time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - t0
        for system, snap in before.items():
            ticks = ns = 0
            gone = 0
            have_ns = True
            for pid, (t_a, ns_a) in snap.items():
                try:
                    t_b, ns_b = cpu_of(pid)
                except (OSError, ValueError):
                    gone += 1
                    continue
                ticks += t_b - t_a
                if ns_a is None or ns_b is None:
                    have_ns = False
                else:
                    ns += ns_b - ns_a
            now, _ = trees[system].supervision_pids()
            new = len(set(now) - set(snap))
            out[system] = Figures([ticks * 1000 / CLK_TCK], extra={
                "sched_ms": ns / 1e6 if have_ns else None, "window": elapsed,
                "processes": len(snap), "gone": gone, "new": new})
    finally:
        stop_all(trees.values())
    return out


def timed(argv, expect=0):
    """Wall time (s) of one whole process, stdout and stderr to /dev/null."""
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
    env = {"PATH": TREE_PATH, "LC_ALL": "C"}
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, wstatus = os.waitpid(pid, 0)
    t1 = time.perf_counter()
    code = os.waitstatus_to_exitcode(wstatus)
    if code != expect:
        raise BenchError(f"{' '.join(argv[:3])}... exited {code}, not {expect}")
    return t1 - t0


def bench_cli(reps, with_daemontools):
    """Commands -> Figures (ms); keys ('python', None) and (tool, system)."""
    trees = {}
    try:
        systems = ["svtree"] + (["daemontools"] if with_daemontools else [])
        for system in systems:
            trees[system] = Tree(system, NAMES_100)
            started(trees[system], 60)
        time.sleep(0.5)
        commands = {("python -c pass", "python"): [str(VENV_PY), "-c", "pass"]}
        for system, tree in trees.items():
            prefix = VENV_BIN if system == "svtree" else Path("/usr/bin")
            one = str(tree.scan / "n000")
            every = [str(tree.scan / n) for n in NAMES_100]
            commands[("svc -u S", system)] = [str(prefix / "svc"), "-u", one]
            commands[("svok S", system)] = [str(prefix / "svok"), one]
            commands[("svstat S", system)] = [str(prefix / "svstat"), one]
            commands[("svstat (100 services)", system)] = [str(prefix / "svstat"), *every]
        # sanity: our svstat sees the service up
        out = subprocess.run([str(VENV_BIN / "svstat"), str(trees["svtree"].scan / "n000")],
                             capture_output=True, text=True, timeout=10).stdout
        if ": up (pid " not in out:
            raise BenchError(f"svstat does not see the service up: {out!r}")
        for argv in commands.values():          # warm the page cache
            timed(argv)
        samples = {key: [] for key in commands}
        for _ in range(reps):
            keys = list(commands)
            random.shuffle(keys)                # interleaved, so drift hits all alike
            for key in keys:
                samples[key].append(timed(commands[key]) * 1000)
    finally:
        stop_all(trees.values())
    return {key: Figures(s) for key, s in samples.items()}


# --- report ---------------------------------------------------------------------

def fmt(x):
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


def cell(fig, unit_fmt=fmt):
    if fig is None:
        return "not run"
    if fig.error:
        return fig.error if fig.error.startswith("n/a") else "error"
    return f"{unit_fmt(fig.median)} (n={fig.n})"


def spread(fig):
    if not fig or not fig.samples:
        return ""
    s = sorted(fig.samples)
    return f"median {fmt(fig.median)}, min {fmt(s[0])}, max {fmt(s[-1])}, n={len(s)}"


class Report:
    def __init__(self):
        self.rows = []        # (label, unit, svtree Figures, peer name, peer Figures)
        self.details = []     # lines of observations
        self.targets = []     # (benchmark, target text, verdict text)

    def add(self, label, unit, ours, peer, theirs):
        self.rows.append((label, unit, ours, peer, theirs))

    def table(self):
        lines = ["| Benchmark | Unit | svtree | Peer | Peer figure | svtree/peer |",
                 "|---|---|---:|---|---:|---:|"]
        for label, unit, ours, peer, theirs in self.rows:
            r = ratio(ours.median if ours and not ours.error else None,
                      theirs.median if theirs and not theirs.error else None)
            lines.append(f"| {label} | {unit} | {cell(ours)} | {peer} | {cell(theirs)} | {r} |")
        return "\n".join(lines)

    def target_table(self):
        lines = ["| Benchmark | Target | Result |", "|---|---|---|"]
        for bench, target, verdict in self.targets:
            lines.append(f"| {bench} | {target} | {verdict} |")
        return "\n".join(lines)


def verdict(value, limit, unit, lower_is_better=True):
    if value is None:
        return "not measured"
    if value <= limit:
        return f"met ({fmt(value)} {unit}; limit {fmt(limit)} {unit})"
    over = value - limit
    return (f"MISSED by {fmt(over)} {unit} ({fmt(value)} {unit} vs {fmt(limit)} {unit}, "
            f"x{fmt(value / limit) if limit else 'inf'})")


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


def versions(peers):
    out = {}
    for peer in peers:
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", PACKAGES[peer]],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            v = ""
        out[peer] = v or "?"
    return out


# --- main -------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--quick", action="store_true", help="fewer repetitions, 10 s idle window")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help=f"benchmarks ({', '.join(BENCHES)}) and/or peers "
                        f"({', '.join(PEERS)}); comma-separated or repeated")
    p.add_argument("--output", metavar="FILE",
                   help="where to write the report (default BENCHMARKS.md; "
                        "with --only, none unless given)")
    p.add_argument("--seed", type=int, default=None, help="seed for the random pauses")
    args = p.parse_args(argv)
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES and n not in SYSTEMS]
    if unknown:
        p.error(f"unknown NAME(s): {', '.join(unknown)}; "
                f"choose from {', '.join(BENCHES + SYSTEMS)}")
    args.benches = [b for b in BENCHES if b in names] or list(BENCHES)
    chosen = [s for s in PEERS if s in names]
    args.peers = chosen or list(PEERS)
    if args.output is None and not names:
        args.output = str(ROOT / "BENCHMARKS.md")
    return args


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


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    random.seed(args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    become_subreaper()
    started_at = datetime.datetime.now(datetime.timezone.utc)
    revision = svtree_revision()
    load_before = os.getloadavg()
    t_begin = time.monotonic()
    peers = installed_peers("run.py", PROGRAMS, args.peers)
    if peers is None:
        return 111
    systems = ["svtree"] + peers
    q = args.quick
    rep = Report()
    try:
        run_benches(args, q, peers, systems, rep)
    finally:
        stop_all(LIVE)
        reap_orphans()
    took = time.monotonic() - t_begin

    command = ".venv/bin/python bench/run.py" + ("".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv)))
    info = machine()
    info["revision"] = revision
    info["load"] = (f"{load_before[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
                    f"(1-minute load average; other work on the machine adds noise)")
    text = render(rep, info, versions(peers), started_at, command, took, q)
    print()
    print(text)
    if args.output:
        path = Path(args.output)
        path.write_text(text + sections_of_others(path.read_text() if path.exists() else ""))
        say(f"wrote {args.output}")
    return 0


OWN_SECTIONS = ("## Results", "## Targets", "## How", "## Details")


def sections_of_others(old):
    """What the other benchmarks (more.py, faults.py, init.py, container.py)
    and people wrote in the file: every `## ` section but this script's own,
    kept after them in their order."""
    lines = old.splitlines(keepends=True)
    kept, keep = [], False
    for line in lines:
        if line.startswith("## "):
            keep = line.rstrip("\n") not in OWN_SECTIONS
        if keep:
            kept.append(line)
    return ("\n" + "".join(kept)) if kept else ""


def run_benches(args, q, peers, systems, rep):
    n_fast = 10 if q else 20
    n_poll = 3 if q else 9

    if "detect" in args.benches:
        say("== new-service detection")
        figs = {}
        for system in systems:
            if system == "supervisord":
                continue
            reps = n_poll if system in ("daemontools", "runit") else n_fast
            say(f"  {system}: {reps} reps")
            figs[system] = guarded(bench_detect, system, reps)
            say(f"    {spread(figs[system]) or figs[system].error}")
        for peer in peers:
            if peer == "supervisord":
                rep.add("new-service detection", "ms", figs["svtree"], "supervisord",
                        Figures(error="n/a: no scan dir"))
                continue
            label = "new-service detection" + (" (s6: ln + s6-svscanctl -a)" if peer == "s6"
                                               else "")
            rep.add(label, "ms", figs["svtree"], peer, figs.get(peer))
        for s, f in figs.items():
            rep.details.append(f"detect, {s}: {spread(f) or f.error} ms")
        rep.targets.append(("new-service detection", "svtree median < 20 ms",
                            verdict(figs["svtree"].median, 20, "ms")))

    if "restart" in args.benches:
        say("== restart latency")
        reps = 6 if q else 20
        say(f"  {reps} reps each, all trees side by side")
        figs = bench_restart(systems, reps)
        for peer in peers:
            rep.add("restart after kill -9", "ms", figs["svtree"], peer, figs[peer])
        for s, f in figs.items():
            rep.details.append(f"restart, {s}: {spread(f) or f.error} ms")
        dt = figs.get("daemontools")
        limit = 2 * dt.median if dt and dt.median is not None else None
        rep.targets.append(("restart latency", "svtree median <= 2 x daemontools",
                            verdict(figs["svtree"].median, limit, "ms")
                            if limit is not None else "daemontools not measured"))

    if "startup" in args.benches:
        say("== 100-service tree fully started")
        reps = 3 if q else 7
        say(f"  {reps} rounds over {', '.join(systems)}")
        figs = bench_startup(systems, reps)
        for system in systems:
            say(f"    {system}: {spread(figs[system]) or figs[system].error}")
        for peer in peers:
            rep.add("100 services started", "ms", figs["svtree"], peer, figs[peer])
        cpu = {s: f.extra["cpu"] if f.samples else f for s, f in figs.items()}
        for peer in peers:
            rep.add("CPU to start 100 services (schedstat)", "ms", cpu["svtree"], peer,
                    cpu[peer])
        for s, f in figs.items():
            first = (f"; the first run reported after {fmt(f.extra['first'])} ms (median); "
                     f"CPU of the scanner and its supervise processes by then: "
                     f"{spread(f.extra['cpu'])} ms" if f.samples else "")
            rep.details.append(f"startup, {s}: {spread(f) or f.error} ms{first}")
        rep.targets.append(("100-service startup", "svtree median < 300 ms",
                            verdict(figs["svtree"].median, 300, "ms")))

    if "memory" in args.benches:
        say("== memory (PSS) at 100 services")
        figs = {}
        for system in systems:
            figs[system] = guarded(bench_memory, system)
            f = figs[system]
            say(f"    {system}: {fmt(f.median) if f.samples else f.error} MiB/service"
                + (f", {fmt(f.extra['supervise_pss_kib'] / 1024)} MiB PSS per supervise"
                   if f.samples else ""))
        for peer in peers:
            rep.add("PSS per service (100 services)", "MiB", figs["svtree"], peer, figs[peer])
        for s, f in figs.items():
            if f.error:
                rep.details.append(f"memory, {s}: {f.error}")
                continue
            e = f.extra
            rep.details.append(
                f"memory, {s}: {e['processes']} processes ({', '.join(e['comms'])}), "
                f"total PSS {fmt(e['total_pss_kib'] / 1024)} MiB; scanner PSS "
                f"{fmt(e['scanner_pss_kib'] / 1024)} MiB (RSS {fmt(e['scanner_rss_kib'] / 1024)}"
                f" MiB); {e['supervise_count']} supervise: mean PSS "
                f"{fmt(e['supervise_pss_kib'])} KiB, RSS {fmt(e['supervise_rss_kib'])} KiB, "
                f"Private_Dirty {fmt(e['supervise_private_dirty_kib'])} KiB, Private_Clean "
                f"{fmt(e['supervise_private_clean_kib'])} KiB, shared "
                f"{fmt(e['supervise_shared_kib'])} KiB"
                + (f"; one supervise's Private_Dirty by mapping: " + ", ".join(
                    f"{m} {k} KiB" for m, k in e["breakdown"]) if e["breakdown"] else ""))
        rep.targets.append(("memory", "svtree <= 0.8 MiB PSS per supervise (CPython 3.11)",
                            verdict(figs["svtree"].extra.get("supervise_pss_kib", 0) / 1024
                                    if figs["svtree"].samples else None, 0.8, "MiB")))

    if "logged" in args.benches:
        say(f"== memory (PSS) per logged service, {N_LOGGED} services, from outside")
        figs = {}
        for label, (system, _) in LOGGED.items():
            if system != "svtree" and system not in peers:
                continue
            figs[label] = guarded(bench_logged, label)
            f = figs[label]
            say(f"    {label}: {fmt(f.median) if f.samples else f.error} MiB/logged service")
            if f.error:
                rep.details.append(f"logged, {label}: {f.error}")
            else:
                rep.details.append(f"logged, {label}: {f.extra['processes']} processes "
                                   f"({', '.join(f.extra['comms'])})")
        ours = figs["svtree (built-in logger)"]
        for label, f in figs.items():
            if not label.startswith("svtree"):
                rep.add("PSS per logged service (30 services)", "MiB", ours, label, f)
        rep.add("PSS per logged service (30 services)", "MiB", ours,
                "svtree (log/run: exec multilog)", figs["svtree (log/run: exec multilog)"])
        rep.targets.append(("logged service, built-in logger", "svtree <= 2.5 MiB PSS",
                            verdict(ours.median, 2.5, "MiB")))
        rep.targets.append(("logged service, log/run = exec multilog", "svtree <= 5 MiB PSS",
                            verdict(figs["svtree (log/run: exec multilog)"].median, 5, "MiB")))

    if "cli" in args.benches:
        say("== CLI wall time")
        reps = 10 if q else 30
        with_dt = "daemontools" in peers
        try:
            figs = bench_cli(reps, with_dt)
        except (BenchError, OSError) as e:
            say(f"  error: {e}")
            figs = None
            rep.details.append(f"cli: error: {e}")
        if figs:
            py = figs[("python -c pass", "python")]
            rep.details.append(f"cli, python -c pass: {spread(py)} ms")
            worst = None
            for tool in ("svc -u S", "svok S", "svstat S", "svstat (100 services)"):
                ours = figs[(tool, "svtree")]
                rep.add(f"CLI `{tool}`", "ms", ours, "python -c pass", py)
                if with_dt:
                    rep.add(f"CLI `{tool}`", "ms", ours, "daemontools", figs[(tool, "daemontools")])
                rep.details.append(f"cli, svtree {tool}: {spread(ours)} ms")
                if with_dt:
                    rep.details.append(f"cli, daemontools {tool}: "
                                       f"{spread(figs[(tool, 'daemontools')])} ms")
                r = ours.median / py.median
                worst = max(worst or (r, tool), (r, tool))
                rep.targets.append((f"CLI `{tool}`", "svtree <= 2 x python -c pass",
                                    verdict(ours.median, 2 * py.median, "ms")))
            say(f"    python -c pass {fmt(py.median)} ms; worst svtree/python x{fmt(worst[0])} "
                f"({worst[1]})")

    if "idle" in args.benches:
        window = 10 if q else 30
        say(f"== idle CPU over {window} s (all trees at once)")
        figs = bench_idle(systems, window)
        sched = {s: Figures([f.extra["sched_ms"]]) if f.samples and f.extra.get("sched_ms")
                 is not None else Figures(error=f.error or "no schedstat")
                 for s, f in figs.items()}
        for s, f in figs.items():
            say(f"    {s}: {fmt(f.median) if f.samples else f.error} ms (utime+stime), "
                f"{fmt(sched[s].median) if sched[s].samples else '-'} ms (schedstat)")
        unit = f"ms CPU / {window} s"
        for peer in peers:
            rep.add("idle CPU, utime+stime", unit, figs["svtree"], peer, figs[peer])
        for peer in peers:
            rep.add("idle CPU, schedstat run time", unit, sched["svtree"], peer, sched[peer])
        for s, f in figs.items():
            if f.samples:
                e = f.extra
                rep.details.append(
                    f"idle, {s}: {fmt(f.median)} ms utime+stime, "
                    f"{fmt(e['sched_ms'])} ms schedstat over {e['window']:.1f} s, "
                    f"{e['processes']} processes ({e['gone']} gone, {e['new']} new during the "
                    f"window)")
            else:
                rep.details.append(f"idle, {s}: {f.error}")
        dt = figs.get("daemontools")
        ours = figs["svtree"]
        if dt and dt.samples and ours.samples:
            v = verdict(ours.median, dt.median, "ms")
            v2 = verdict(sched["svtree"].median, sched["daemontools"].median, "ms") \
                if sched["svtree"].samples and sched["daemontools"].samples else "n/a"
            rep.targets.append(("idle CPU", "svtree <= daemontools",
                                f"utime+stime: {v}; schedstat: {v2}"))
        else:
            rep.targets.append(("idle CPU", "svtree <= daemontools", "not measured"))


def render(rep, info, vers, when, command, took, quick):
    peers = ", ".join(f"{p} {v}" for p, v in vers.items()) or "none"
    return f"""# Benchmarks

svtree next to the supervision suites installed on the same machine, all
measured in the same run by `bench/run.py` (`make bench`). Figures are
medians; n is the number of samples; the ratio is svtree's median divided by
the peer's (below 1: svtree is faster or smaller).

- Date: {when.strftime('%Y-%m-%d %H:%M UTC')} (run took {took:.0f} s{', --quick' if quick else ''})
- Command: `{command}`
- svtree: {info['revision']}
- Machine: {info['nproc']} CPUs (nproc){', ' + info['cpu'] if info['cpu'] else ''}, Linux {info['kernel']}, Python {info['python']} (.venv)
- Load: {info['load']}
- Peers: {peers} (Debian packages)

## Results

{rep.table()}

## Targets

{rep.target_table()}

## How

- Every service's `run` is `echo "NAME $$" >FIFO; exec sleep 100000`; the
  benchmark blocks in poll() on that fifo, and an event's time is when it is
  read. Each tree lives in a temp dir, its scanner in a session of its own,
  and is killed whole (process group, descendants, and every process that
  carries the tree's tag in its environment) at the end of each benchmark.
- **new-service detection**: three services already running; `ln -s` of a
  prepared service dir into the scan dir, until its `run` reports. daemontools'
  svscan and runit's runsvdir look at the scan dir every 5 s, so they get few
  repetitions, each after a random pause of 0-5 s (their poll phase is then
  uniform). s6-svscan does not look by itself: for s6 the time covers `ln -s`
  plus `s6-svscanctl -a` (run right after it). supervisord has no scan dir.
- **restart after kill -9**: n services, each killed once after it has been
  up for {RESTART_UPTIME:.0f} s, past every supervisor's restart throttle and past
  svtree's 10 s "quick death" window (inside it, svtree backs off
  exponentially); from the kill to the new `run`'s report. The trees of all
  systems run side by side, idle but for the one being measured. supervisord:
  `autorestart=true`, `startsecs=0`. s6-supervise (2.11) was seen to wait 1 s
  after every death, however long the service had run; supervisord acts on
  SIGCHLD in its main loop, which wakes once a second.
- **100 services started**: from just before the scanner is launched to the
  report of the last of the 100 `run`s (a fresh tree each time; the systems
  take turns, round after round, so load from elsewhere hits them alike).
  The second row is the CPU time the scanner and its supervise processes
  have used by then (`/proc/PID/schedstat`): a view without the waiting for
  a CPU, though on a busy VM it rises with load too (fork, exec and page
  faults cost more).
- **PSS per service**: sum of `Pss` in `/proc/PID/smaps_rollup` of the scanner
  and of its supervise processes (not the services), 2 s after the 100
  services have started, divided by 100. supervisord: its one process.
- **CLI**: whole-process wall time (posix_spawn to waitpid, output to
  /dev/null) of each command against a 100-service tree, runs interleaved in
  random order; `python -c pass` is the .venv interpreter, daemontools' tools
  are the C programs in /usr/bin run against a daemontools tree.
- **idle CPU**: utime+stime (`/proc/PID/stat`, {CLK_TCK} ticks/s, hence 10 ms
  steps) and the on-CPU time in `/proc/PID/schedstat` (ns) of the scanner and
  its supervise processes of each 100-service tree over the window, 3 s after
  they started; the trees of all systems idle side by side.

## Details

{chr(10).join('- ' + d for d in rep.details)}
"""


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all(LIVE)
        sys.exit(130)
