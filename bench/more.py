#!/usr/bin/env python3
"""More benchmarks: shutdown, logging and load, svtree next to its peers.

    .venv/bin/python bench/more.py [--quick] [--only NAME[,NAME...]] [--output FILE]
    .venv/bin/python bench/more.py --chart-only      # redraw bench/ratios.png

Run after bench/run.py (`make bench` runs both): run.py writes BENCHMARKS.md
whole; this script replaces (or appends) only its own section, the one that
starts with `## Shutdown, logging and load` and ends before the next `## `
heading, then draws bench/ratios.png from every `svtree/peer` ratio row of
every table in BENCHMARKS.md.

Benchmarks (NAME for --only):

  shutdown-prompt    100 services that exit at once on TERM; time from SIGTERM
                     to the scanner's exit: svtree's svscan, s6-svscan (which
                     brings the tree down and waits for it), daemontools'
                     svscan and runsvdir (which exit at once, leaving every
                     supervise and service running: no comparable figure).
  shutdown-stubborn  one service that ignores TERM; svtree's `svscan -g 1`,
                     time from SIGTERM to its exit (target: grace + 100 ms).
                     s6-svscan has no grace period of its own: s6-supervise
                     waits for the service for ever, unless the service dir
                     holds a `timeout-kill` file (measured with 1000 ms).
  shutdown-ordered   10 chains db <- api <- web (api depends on db, web on
                     api) whose services each take 0.1 s to stop after TERM;
                     time from SIGTERM to the scanner's exit: svtree's svscan
                     with depends files (dependents first, level by level),
                     without them, and s6-svscan (no order), next to the
                     ideal 3 x 0.1 s; the order is checked in every round.
  logger             1,000,000 87-byte lines fed by cat through a pipe to
                     multilog (ours and daemontools'), svlogd and s6-log, each
                     timestamping and rotating at 16 MiB, 10 files kept; wall
                     time, lines/s and peak RSS (/usr/bin/time -f %M).
  load-1000          1000 services in one scan directory: time until all 1000
                     ./run have started, PSS per service (scanner + supervise).
  crash-load         100 services that exit 1 at once, for 60 s (15 s with
                     --quick), under svtree and daemontools; latency of
                     `svc -u S` and `svstat S` of a healthy service during
                     that window, next to the same tree before the crash loop.

  wait-ready         one service with a notification-fd that is blocked until
                     the benchmark writes to a fifo, then says it is ready;
                     time from that write to the exit of a waiter started
                     beforehand: `svtree wait ready S` next to s6's
                     `s6-svwait -U S` (daemontools and runit have no
                     readiness to wait for). The service is restarted
                     (svc -t, s6-svc -t) between rounds.

A NAME may also be a peer (daemontools, runit, s6) to restrict the peers;
svtree is always measured. A run with --only writes no BENCHMARKS.md (and no
chart) unless --output is given.

Trees are bench/common.py's, the same as run.py's: a temp dir each, the
scanner in a session of its own, every process tagged through its
environment and killed at the end of each benchmark whatever happens; the
benchmark is a child subreaper. Every wait has a deadline. Standard
library only.
"""

import math
import os
import resource
import shlex
import shutil
import signal
import statistics
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (bench/common.py, shared by the benchmark scripts)
    CLK_TCK, N_TREE, ROOT, VENV_BIN, BenchError, Figure, Tree, alive, bench_options, choose,
    cpu_ticks_with_children, end_group, exit_with, finish, fmt, guarded, kill_group,
    per_process, percentile, pidfd_wait, prepare, rounds, run_benches, say, spawn, spread,
    started, timed_ms, total_pss, verdict, verdict_at_least, write_script, write_section)

SECTION = "## Shutdown, logging and load"
PEERS = ("daemontools", "runit", "s6")
PROGRAMS = {
    "svtree": [str(VENV_BIN / p) for p in ("svscan", "svc", "svstat", "multilog")],
    "daemontools": ["/usr/bin/svscan", "/usr/bin/supervise", "/usr/bin/svc",
                    "/usr/bin/svstat", "/usr/bin/multilog"],
    "runit": ["/usr/bin/runsvdir", "/usr/bin/runsv", "/usr/bin/svlogd"],
    "s6": ["/usr/bin/s6-svscan", "/usr/bin/s6-supervise", "/usr/bin/s6-log"],
}
LOGGER_NAMES = {"svtree": "multilog (svtree)", "daemontools": "multilog",
                "runit": "svlogd -tt", "s6": "s6-log"}
LEAVE_RUNNING = ("daemontools", "runit")     # their scanners exit at once on TERM
GRACE = 1.0                      # svscan -g for shutdown-stubborn
S6_TIMEOUT_KILL_MS = 1000
TIME = "/usr/bin/time"           # GNU time, for the loggers' peak RSS
N_LINES = 1_000_000
LINE_BYTES = 87
LOG_SIZE = 16777215
N_LOAD = 1000
N_CRASH = 100


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --- 1. shutdown, prompt services -------------------------------------------------

def prompt_tree(system, n):
    tree = Tree(system)
    for i in range(n):
        tree.add(f"p{i:03d}", "exec sleep 100000")
    return tree


def shutdown_once(tree, timeout, start_timeout=60):
    """Start the tree, TERM the scanner; (ms to its exit or None, services
    still alive at its exit, services alive 0.5 s later)."""
    started(tree, start_timeout)
    time.sleep(0.5)                        # every supervise has settled
    tree.reporter.pump(0)
    services = set(tree.reporter.pids)
    t0 = time.monotonic()
    os.kill(tree.proc.pid, signal.SIGTERM)
    t1 = pidfd_wait(tree.proc.pid, timeout)
    at_exit = sum(1 for pid in services if alive(pid))
    time.sleep(0.5)
    later = sum(1 for pid in services if alive(pid))
    return (None if t1 is None else (t1 - t0) * 1000), at_exit, later


def shutdown_prompt_once(system):
    """shutdown_once of a fresh tree of N_TREE prompt services."""
    tree = prompt_tree(system, N_TREE)
    try:
        ms, at_exit, later = shutdown_once(tree, 3 if system in LEAVE_RUNNING else 15)
    finally:
        tree.stop()
    if ms is None:
        raise BenchError("the scanner did not exit")
    return ms, at_exit, later


def prompt_detail(system, got, error):
    """The details line of one system (got: shutdown_prompt_once's results)."""
    samples = [ms for ms, _, _ in got]
    gone = (f"; services alive at the scanner's exit: "
            f"{max(a for _, a, _ in got)} at most, 0.5 s later: "
            f"{max(b for _, _, b in got)} at most" if got else "")
    caveat = (" (exits at once on TERM without stopping anything: every supervise "
              "and service keeps running)" if system in LEAVE_RUNNING else "")
    return (f"shutdown-prompt, {system}: {spread(samples) + ' ms' if samples else error}"
            f"{gone}{caveat}")


def shutdown_prompt(run):
    """SIGTERM to the scanner of N_TREE services that die at once of TERM."""
    reps = 3 if run.quick else 7
    say(f"== shutdown, {N_TREE} prompt services ({reps} rounds over "
        f"{', '.join(run.systems)})")
    got, errors = rounds(run.systems, reps, shutdown_prompt_once, 0.2)
    figs = {}
    for s in run.systems:
        samples = [ms for ms, _, _ in got[s]]
        if s in errors:
            figs[s] = Figure(error=errors[s])
        elif s in LEAVE_RUNNING:
            figs[s] = Figure(error="n/a: leaves services running")
        else:
            figs[s] = Figure.of(samples)
        say(f"    {s}: {spread(samples) if samples else errors.get(s)} ms")
    run.rep.compare(f"shutdown, {N_TREE} services, SIGTERM to exit", "ms", figs, run.peers)
    for s in run.systems:
        run.rep.details.append(prompt_detail(s, got[s], errors.get(s)))
    s6, ours = figs.get("s6"), figs["svtree"]
    run.rep.targets.append((f"shutdown, {N_TREE} services", "svtree median <= s6-svscan",
                            verdict(ours.value, s6.value, "ms") if s6 and s6.ok and ours.ok
                            else "s6 not measured" if ours.ok else "not measured"))


# --- 2. shutdown, a stubborn service ----------------------------------------------

STUBBORN = "trap '' TERM\nexec sleep 100000"      # SIG_IGN survives exec
STUBBORN_LABELS = {"svtree": f"svtree, svscan -g {GRACE:g}", "s6": "s6, no timeout-kill",
                   "s6+tk": f"s6, timeout-kill {S6_TIMEOUT_KILL_MS}"}


def stubborn_samples(label, system, options, files, timeout, n):
    """n shutdowns of a tree of one service ignoring TERM, up to the first
    that outlasts timeout; (samples ms, remarks)."""
    samples, remarks = [], []
    try:
        for _ in range(n):
            tree = Tree(system, options=options)
            tree.add("stubborn", STUBBORN, files)
            try:
                ms, at_exit, _ = shutdown_once(tree, timeout, 20)
            finally:
                tree.stop()
            if ms is None:
                remarks.append(f"still running {timeout:.0f} s after SIGTERM")
                break
            samples.append(ms)
            remarks.append(f"service alive at exit: {at_exit}")
    except (BenchError, OSError) as e:
        say(f"  error: {label}: {e}")
        return samples, [f"error: {e}"]
    say(f"    {label}: {spread(samples) if samples else remarks[-1]}")
    return samples, remarks


def s6_stubborn(samples, remarks):
    """s6 without timeout-kill: n/a where it still waited at the deadline."""
    if not samples and remarks and remarks[-1].startswith("still"):
        return Figure(error="n/a: waits for ever (no grace kill)")
    return Figure.of(samples)


def shutdown_stubborn(run):
    """SIGTERM to the scanner of one service that ignores TERM: svscan -g,
    s6 with and without timeout-kill."""
    reps = 3 if run.quick else 5
    say(f"== shutdown, one service ignoring TERM, svscan -g {GRACE:g}")
    # label: (system, scanner options, service files, timeout, reps)
    variants = {"svtree": ("svtree", ["-g", f"{GRACE:g}"], None, GRACE + 10, reps)}
    if "s6" in run.peers:
        variants["s6"] = ("s6", [], None, GRACE + 4, 1)
        variants["s6+tk"] = ("s6", [], {"timeout-kill": f"{S6_TIMEOUT_KILL_MS}\n"},
                             GRACE + 10, reps)
    out = {label: stubborn_samples(label, *variant) for label, variant in variants.items()}
    ours = Figure.of(out["svtree"][0])
    label = f"shutdown, service ignoring TERM (svscan -g {GRACE:g})"
    if "s6" in out:
        run.rep.add(label, "ms", ours, "s6", s6_stubborn(*out["s6"]))
        run.rep.add(label, "ms", ours, f"s6, timeout-kill {S6_TIMEOUT_KILL_MS} ms",
                    Figure.of(out["s6+tk"][0]))
    for key, (samples, remarks) in out.items():
        run.rep.details.append(f"shutdown-stubborn, {STUBBORN_LABELS[key]}: "
                               f"{spread(samples) + ' ms' if samples else 'no figure'}"
                               f"{'; ' + remarks[-1] if remarks else ''}")
    run.rep.targets.append(("shutdown, service ignoring TERM",
                            f"svtree median <= grace + 100 ms ({GRACE * 1000 + 100:.0f} ms)",
                            verdict(ours.value, GRACE * 1000 + 100, "ms") if ours.ok
                            else "not measured"))


# --- 3. shutdown, dependency chains ---------------------------------------------

N_CHAINS = 10
CHAIN = ("db", "api", "web")       # each depends on the one before it
STOP = 0.1                         # seconds each service takes to stop after TERM
IDEAL_MS = len(CHAIN) * STOP * 1000     # the stop times along a chain, one after another
# variant: (system, with depends files)
CHAIN_VARIANTS = {"ordered": ("svtree", True), "svtree": ("svtree", False), "s6": ("s6", False)}
CHAIN_LABELS = {"ordered": "svtree, depends (ordered)", "svtree": "svtree, no depends (unordered)",
                "s6": "s6-svscan (unordered)"}
# NAME LOG: sleeps until TERM, then takes STOP s to stop; its first and last
# lines after TERM go to LOG with the wall clock (bash's, no fork), a second
# TERM (svscan's and its supervise's) ignored
SLOW_STOP = f"""#!/bin/bash
name=$1 log=$2
sleep 100000 & child=$!
trap 'trap "" TERM; echo "$name term $EPOCHREALTIME" >>"$log"; kill $child
      sleep {STOP:g}; echo "$name stop $EPOCHREALTIME" >>"$log"; exit 0' TERM
wait $child
"""


def chain_tree(variant):
    """N_CHAINS chains of CHAIN, each service a SLOW_STOP; (the tree, its
    stop log). The ordered variant has the depends files."""
    system, ordered = CHAIN_VARIANTS[variant]
    tree = Tree(system)
    stopper = shlex.quote(str(write_script(tree.dir / "slow-stop", SLOW_STOP)))
    log = tree.dir / "stops.log"
    for i in range(N_CHAINS):
        below = None
        for role in CHAIN:
            name = f"{role}{i}"
            files = {"depends": f"{below}\n"} if ordered and below else None
            tree.add(name, f"exec {stopper} {name} {shlex.quote(str(log))}", files)
            below = name
    return tree, log


def read_stops(log):
    """The stop log's lines in the order written: [(name, term or stop, wall s)]."""
    try:
        text = log.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        name, what, when = line.split()
        out.append((name, what, float(when)))
    return out


def chain_once(variant):
    """One shutdown of a fresh tree of chains: (ms from SIGTERM to the
    scanner's exit, the stop log, services alive at its exit)."""
    tree, log = chain_tree(variant)
    try:
        ms, at_exit, _ = shutdown_once(tree, 15, 30)   # the ordered tree starts level by level
        stops = read_stops(log)
    finally:
        tree.stop()
    if ms is None:
        raise BenchError("the scanner did not exit")
    return ms, stops, at_exit


def order_faults(stops):
    """What broke the order in one shutdown: a dependency's TERM before its
    dependent's last line, a service without its two lines; [] if none."""
    at = {}                                  # (name, what) -> its first line's index
    for i, (name, what, _) in enumerate(stops):
        at.setdefault((name, what), i)
    faults = []
    for i in range(N_CHAINS):
        names = [f"{role}{i}" for role in CHAIN]
        faults += [f"{name}: no {what} line" for name in names for what in ("term", "stop")
                   if (name, what) not in at]
        for dep, user in zip(names, names[1:]):
            if at.get((dep, "term"), len(stops)) < at.get((user, "stop"), -1):
                faults.append(f"{dep} got TERM before {user}'s last line")
    return faults


def level_gaps(stops):
    """ms from each dependent's last line to its dependency's TERM line."""
    when = {(name, what): t for name, what, t in reversed(stops)}     # the first of each
    gaps = []
    for i in range(N_CHAINS):
        names = [f"{role}{i}" for role in CHAIN]
        gaps += [(when[(dep, "term")] - when[(user, "stop")]) * 1000
                 for dep, user in zip(names, names[1:])
                 if (dep, "term") in when and (user, "stop") in when]
    return gaps


def chain_figure(variant, got, error):
    """The figure of one variant; the ordered one is an error if the order
    was wrong in any round."""
    if error:
        return Figure(error=error)
    wrong = [order_faults(stops) for _, stops, _ in got]
    wrong = [faults for faults in wrong if faults]
    if variant == "ordered" and wrong:
        return Figure(error=f"order wrong in {len(wrong)} of {len(got)} rounds: {wrong[0][0]}")
    return Figure.of([ms for ms, _, _ in got])


def chain_detail(variant, got, error):
    """The details line of one variant: its spread, how often the order
    held (it should not without depends: the check is not vacuous), the
    services alive at the scanner's exit, and for the ordered one the gap
    from a dependent's last line to its dependency's TERM."""
    if not got:
        return f"shutdown-ordered, {CHAIN_LABELS[variant]}: {error}"
    samples = [ms for ms, _, _ in got]
    held = sum(1 for _, stops, _ in got if not order_faults(stops))
    gaps = [g for _, stops, _ in got for g in level_gaps(stops)]
    faults = [f for _, stops, _ in got for f in order_faults(stops)]
    return (f"shutdown-ordered, {CHAIN_LABELS[variant]}: {spread(samples)} ms; order "
            f"dependents first held in {held} of {len(got)} rounds"
            + (f" (first fault: {faults[0]})" if variant == "ordered" and faults else "")
            + f"; services alive at the scanner's exit: {max(a for _, _, a in got)} at most"
            + (f"; a dependent's last line to its dependency's TERM: {spread(gaps)} ms"
               if variant == "ordered" and gaps else ""))


def chain_targets(run, figs, got):
    """The order, and the issue's bound: ordered <= 1.2 x (unordered + the
    stop times along a chain); and the stricter one, with only the levels
    the unordered run does not hold already."""
    ordered, unordered = figs["ordered"], figs["svtree"]
    what = f"shutdown, {N_CHAINS} chains of {len(CHAIN)} with depends"
    n = len(got["ordered"])
    run.rep.targets.append((what, "each dependent's last line before its dependency's TERM, "
                                  "every round",
                            f"met ({n} of {n} rounds)" if ordered.ok
                            else f"FAILED: {ordered.error}"))
    for prefix, levels in (("", len(CHAIN)), ("stricter: ", len(CHAIN) - 1)):
        limit = 1.2 * (unordered.value + levels * STOP * 1000) if unordered.ok else None
        run.rep.targets.append((what, f"{prefix}svtree ordered <= 1.2 x (svtree unordered + "
                                      f"{levels} x {STOP * 1000:.0f} ms)",
                                verdict(ordered.value, limit, "ms")
                                if ordered.ok and limit else "not measured"))


def shutdown_ordered(run):
    """SIGTERM to the scanner of N_CHAINS chains db <- api <- web whose
    services take STOP s to stop: svtree with depends files (dependents
    first), without them, and s6-svscan (no order)."""
    reps = 3 if run.quick else 7
    variants = [v for v, (system, _) in CHAIN_VARIANTS.items() if system in run.systems]
    say(f"== shutdown, {N_CHAINS} chains of {len(CHAIN)} services stopping in {STOP:g} s "
        f"({reps} rounds over {', '.join(variants)})")
    got, errors = rounds(variants, reps, chain_once, 0.2)
    figs = {v: chain_figure(v, got[v], errors.get(v)) for v in variants}
    for v in variants:
        say(f"    {CHAIN_LABELS[v]}: {figs[v].summary()}")
    label = f"shutdown, {N_CHAINS} chains {' <- '.join(CHAIN)}, {STOP * 1000:.0f} ms stop each"
    if "s6" in figs:
        run.rep.add(f"{label}, no depends", "ms", figs["svtree"], "s6-svscan", figs["s6"])
        run.rep.add(f"{label}, depends (ordered)", "ms", figs["ordered"],
                    "s6-svscan, unordered", figs["s6"])
    run.rep.add(f"{label}, depends (ordered)", "ms", figs["ordered"],
                "svtree, no depends (unordered)", figs["svtree"])
    run.rep.add(f"{label}, depends (ordered)", "ms", figs["ordered"],
                f"ideal: {len(CHAIN)} x {STOP * 1000:.0f} ms stop", Figure(IDEAL_MS))
    for v in variants:
        run.rep.details.append(chain_detail(v, got[v], errors.get(v)))
    chain_targets(run, figs, got)


# --- 4. logger throughput ----------------------------------------------------------

def make_lines(path):
    """N_LINES lines of exactly LINE_BYTES bytes (newline included)."""
    filler = b"abcdefghijklmnopqrstuvwxyz0123456789" * 4
    body = LINE_BYTES - 1 - 8
    with open(path, "wb") as f:
        chunk = []
        for i in range(N_LINES):
            chunk.append(b"%07d " % i + filler[i % 36:i % 36 + body] + b"\n")
            if len(chunk) == 10000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))
    if path.stat().st_size != N_LINES * LINE_BYTES:
        raise BenchError("the input file has the wrong size")


def logger_argv(system, logdir):
    d = str(logdir)
    if system == "svtree":
        return [str(VENV_BIN / "multilog"), "t", f"s{LOG_SIZE}", "n10", d]
    if system == "daemontools":
        return ["/usr/bin/multilog", "t", f"s{LOG_SIZE}", "n10", d]
    if system == "runit":
        logdir.mkdir()
        (logdir / "config").write_text(f"s{LOG_SIZE}\nn10\n")
        return ["/usr/bin/svlogd", "-tt", d]
    if system == "s6":
        return ["/usr/bin/s6-log", "t", f"s{LOG_SIZE}", "n10", d]
    raise ValueError(system)


def count_lines(logdir):
    n = 0
    for entry in os.scandir(logdir):
        if entry.name == "current" or entry.name.startswith("@"):
            with open(entry.path, "rb") as f:
                while True:
                    block = f.read(1 << 20)
                    if not block:
                        break
                    n += block.count(b"\n")
    return n


def fed(argv, lines, timeout):
    """Run argv with the file lines fed by cat through a pipe; (monotonic
    time from its spawn to its exit, its exit code, its rusage)."""
    r, w = os.pipe()
    logger = cat = None
    try:
        t0 = time.monotonic()
        logger = spawn(argv, stdin=r)
        cat = spawn(["/bin/cat", str(lines)], stdout=w)
        os.close(r)
        os.close(w)
        r = w = -1
        t1 = pidfd_wait(logger, timeout)
        if t1 is None:
            raise BenchError(f"{argv[0]} did not finish within {timeout:.0f} s")
        _, code, usage = finish(logger, 1, argv[0])
        logger = None
        finish(cat, 5, "cat")
        cat = None
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
        for pid in (logger, cat):
            if pid is not None:
                end_group(pid)
    return t1 - t0, code, usage


def logger_once(system, lines, work, timeout):
    """(wall s, peak RSS KiB) of one logger run on the N_LINES lines."""
    logdir = work / f"log-{system}"
    shutil.rmtree(logdir, ignore_errors=True)
    argv = logger_argv(system, logdir)
    rss_file = work / "maxrss"
    if os.access(TIME, os.X_OK):
        # ru_maxrss of a child of ours would count our own image (fork/vfork
        # then exec keeps the old mm's high-water mark): GNU time's is ~1 MiB
        rss_file.unlink(missing_ok=True)
        argv = [TIME, "-f", "%M", "-o", str(rss_file), *argv]
    wall, code, usage = fed(argv, lines, timeout)
    if code != 0:
        raise BenchError(f"{argv[0]} exited {code}")
    peak = usage.ru_maxrss
    if argv[0] == TIME:
        try:
            peak = int(rss_file.read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            raise BenchError(f"no peak RSS from {TIME}") from None
    got = count_lines(logdir)
    shutil.rmtree(logdir, ignore_errors=True)
    if got != N_LINES:
        raise BenchError(f"{argv[0]} logged {got} lines, not {N_LINES}")
    say(f"    {system}: {wall:.2f} s, {N_LINES / wall:,.0f} lines/s, "
        f"peak RSS {peak / 1024:.1f} MiB")
    return wall, peak


def bench_logger(systems, reps):
    """reps rounds over the loggers, the same lines for all: ({system:
    [(wall s, peak RSS KiB)]}, {system: error})."""
    work = Path(tempfile.mkdtemp(prefix="svbench-logger-"))
    try:
        lines = work / "lines"
        say(f"  writing {N_LINES} lines of {LINE_BYTES} bytes")
        make_lines(lines)
        return rounds(systems, reps, lambda system: logger_once(system, lines, work, 120))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def logger_detail(system, walls, rss, error):
    """The details line of one logger: walls in s, rss in MiB."""
    if not walls:
        return f"logger, {LOGGER_NAMES[system]}: {error}"
    rate = N_LINES / statistics.median(walls)
    return (f"logger, {LOGGER_NAMES[system]}: wall {spread(walls)} s; {fmt(rate)} lines/s "
            f"({fmt(rate * LINE_BYTES / 2**20)} MiB/s); peak RSS "
            f"{', '.join(fmt(x) for x in rss)} MiB")


def logger(run):
    """Each system's logger on N_LINES lines: wall time, rate, peak RSS."""
    reps = 1 if run.quick else 3
    say(f"== logger throughput, {N_LINES} lines ({reps} rounds)")
    got, errors = bench_logger(run.systems, reps)
    walls = {s: [wall for wall, _ in got[s]] for s in run.systems}
    rss = {s: [peak / 1024 for _, peak in got[s]] for s in run.systems}
    wall = {s: Figure(error=errors[s]) if s in errors else Figure.of(walls[s])
            for s in run.systems}
    rate = {s: Figure(N_LINES / w.value, w.n) if w.ok else Figure(error=w.error)
            for s, w in wall.items()}
    peak = {s: Figure(error=errors[s]) if s in errors else Figure(max(rss[s]), len(rss[s]))
            for s in run.systems}
    label = f"logger, {N_LINES // 1000}k lines of {LINE_BYTES} B"
    for what, unit, figs in (("wall time", "s", wall), ("rate", "lines/s", rate),
                             ("peak RSS", "MiB", peak)):
        for peer in run.peers:
            run.rep.add(f"{label}: {what}", unit, figs["svtree"], LOGGER_NAMES[peer], figs[peer])
    for s in run.systems:
        run.rep.details.append(logger_detail(s, walls[s], rss[s], errors.get(s)))
    dt, ours = rate.get("daemontools"), rate["svtree"]
    run.rep.targets.append(("logger throughput", "svtree >= 0.5 x daemontools multilog's rate",
                            verdict_at_least(ours.value, 0.5 * dt.value, "lines/s")
                            if dt and dt.ok and ours.ok else "not measured"))
    run.rep.targets.append(("logger memory", "svtree multilog peak RSS < 20 MiB",
                            verdict(peak["svtree"].value, 20, "MiB")
                            if peak["svtree"].ok else "not measured"))


# --- 5. 1000 services -----------------------------------------------------------------

def load_once(system, timeout):
    """(ms to all started, PSS KiB of the scanner and its supervise processes,
    how many of them, ms to the first start)."""
    options = ["-c", str(2 * N_LOAD)] if system == "s6" else []
    tree = Tree(system, options=options)
    try:
        for i in range(N_LOAD):
            tree.add(f"s{i:04d}", "exec sleep 100000")
        t0, t1 = started(tree, timeout)
        time.sleep(2)                        # let the tree settle
        pids, _ = tree.supervision_pids()
        first = (tree.reporter.events[0][0] - t0) * 1000
        return (t1 - t0) * 1000, total_pss(pids), len(pids), first
    finally:
        tree.stop()


def load_1000(run):
    """N_LOAD services in one scan dir, one tree at a time, within 110 s."""
    say(f"== {N_LOAD} services in one scan directory")
    budget_end = time.monotonic() + 110
    figs, pss, notes = {}, {}, {}
    for system in run.systems:
        left = budget_end - time.monotonic()
        if left < 15:
            figs[system] = pss[system] = Figure(error="skipped: out of time")
            say(f"    {system}: skipped (out of the 2-minute budget)")
            continue
        got = guarded(load_once, system, min(40, left - 10))
        if isinstance(got, Exception):
            figs[system] = pss[system] = Figure(error=str(got))
            notes[system] = str(got)
            continue
        ms, pss_kib, nprocs, first = got
        figs[system] = Figure(ms, 1)
        pss[system] = Figure(pss_kib / 1024 / N_LOAD, 1)
        notes[system] = (f"all started after {fmt(ms)} ms (first after {fmt(first)} ms); "
                         f"{nprocs} scanner/supervise processes, total PSS "
                         f"{fmt(pss_kib / 1024)} MiB, {fmt(pss_kib / N_LOAD)} KiB per service")
        say(f"    {system}: {notes[system]}")
    run.rep.compare(f"{N_LOAD} services started", "ms", figs, run.peers)
    run.rep.compare(f"PSS per service ({N_LOAD} services)", "MiB", pss, run.peers)
    for s in run.systems:
        run.rep.details.append(f"load-{N_LOAD}, {s}: {notes.get(s, figs[s].error)}")


# --- 6. CLI under a crash loop ------------------------------------------------------------

def supervised(service):
    """Does a supervise read service/supervise/control? (svok's test)"""
    try:
        fd = os.open(service / "supervise" / "control", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    os.close(fd)
    return True


def crash_tree(system):
    tree = Tree(system)
    tree.add("healthy", "exec sleep 100000")
    for i in range(N_CRASH):
        tree.add(f"c{i:03d}", "exit 1", files={"down": ""}, wanted=False)
    return tree


def cli_samples(commands, until=None, count=None, gap=0.02, reporter=None):
    """Alternate the commands until a time or a count; {name: [ms]}."""
    out = {name: [] for name in commands}
    i = 0
    while True:
        if until is not None and time.monotonic() >= until:
            break
        if count is not None and i >= count:
            break
        for name, argv in commands.items():
            out[name].append(timed_ms(argv))
        if reporter is not None:
            reporter.pump(0)
        time.sleep(gap)
        i += 1
    return out


def load_idle(r, cmd, p):
    """Load/idle ratio of a command's latency at percentile p (50: median)."""
    if p == 50:
        return statistics.median(r["load"][cmd]) / statistics.median(r["idle"][cmd])
    return percentile(r["load"][cmd], p) / percentile(r["idle"][cmd], p)


def wait_supervised(services, timeout):
    """Until every service has its supervise; BenchError after timeout s."""
    deadline = time.monotonic() + timeout
    while not all(supervised(d) for d in services):
        if time.monotonic() > deadline:
            raise BenchError("the crashing services' supervise processes did not all start")
        time.sleep(0.1)


def crash_once(system, window, n_idle):
    """`svc -u S` and `svstat S` of a healthy service, idle, then while
    N_CRASH services crash-loop for window s; how often they started and the
    CPU the tree used meanwhile."""
    tree = crash_tree(system)
    try:
        started(tree, 30)
        crashers = [tree.scan / f"c{i:03d}" for i in range(N_CRASH)]
        wait_supervised(crashers, 20)
        time.sleep(1)
        prefix = VENV_BIN if system == "svtree" else Path("/usr/bin")
        healthy = str(tree.scan / "healthy")
        commands = {"svc -u S": [str(prefix / "svc"), "-u", healthy],
                    "svstat S": [str(prefix / "svstat"), healthy]}
        for argv in commands.values():        # warm the page cache
            timed_ms(argv)
        idle = cli_samples(commands, count=n_idle)
        before = per_process(cpu_ticks_with_children, tree.supervision_pids()[0])
        mark = tree.reporter.mark()
        timed_ms([str(prefix / "svc"), "-u", *map(str, crashers)])
        t0 = time.monotonic()
        load = cli_samples(commands, until=t0 + window, reporter=tree.reporter)
        elapsed = time.monotonic() - t0
        tree.reporter.pump(0)
        starts = sum(1 for _, name, _ in tree.reporter.events[mark:] if name.startswith("c"))
        after = per_process(cpu_ticks_with_children, before)
        ticks = sum(after[pid] - before[pid] for pid in after)
        return {"idle": idle, "load": load, "starts": starts, "elapsed": elapsed,
                "cpu_ms": ticks * 1000 / CLK_TCK}
    finally:
        tree.stop()


def crash_table(rep, got, window):
    """The table of the CLI's latency idle and under crash load, and the
    details; {(system, command): (load median, load p95)} as Figures."""
    lines = ["| Command | System | Idle median ms | Idle p95 ms | Load median ms | "
             "Load p95 ms | Load/idle, median | Load/idle, p95 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    stats = {}
    for system, r in got.items():
        if isinstance(r, Exception):
            lines.append(f"| - | {system} | error | | | | | |")
            rep.details.append(f"crash-load, {system}: {r}")
            continue
        for cmd in r["idle"]:
            i_med, i_p95 = statistics.median(r["idle"][cmd]), percentile(r["idle"][cmd], 95)
            l_med, l_p95 = statistics.median(r["load"][cmd]), percentile(r["load"][cmd], 95)
            stats[(system, cmd)] = (Figure(l_med, len(r["load"][cmd])),
                                    Figure(l_p95, len(r["load"][cmd])))
            lines.append(f"| `{cmd}` | {system} | {fmt(i_med)} | {fmt(i_p95)} | "
                         f"{fmt(l_med)} | {fmt(l_p95)} | {fmt(load_idle(r, cmd, 50))} | "
                         f"{fmt(load_idle(r, cmd, 95))} |")
        rep.details.append(
            f"crash-load, {system}: {r['starts']} starts of the crashing services in "
            f"{r['elapsed']:.1f} s ({fmt(r['starts'] / r['elapsed'])}/s); CPU of the "
            f"scanner and supervise processes, their reaped children included: "
            f"{fmt(r['cpu_ms'])} ms; samples: idle n={len(r['idle']['svc -u S'])}, "
            f"load n={len(r['load']['svc -u S'])} per command")
    rep.extra_tables.append((f"CLI latency, idle and with {N_CRASH} services "
                             f"crash-looping for {window} s", "\n".join(lines)))
    return stats


def crash_rows(rep, got, stats, window):
    """svtree next to daemontools under crash load: the CLI's latency, how
    often the crashing services started, the CPU the tree used."""
    failed = (Figure(error="error"),) * 2

    def counted(system, key):
        r = got.get(system)
        return Figure(r[key], 1) if isinstance(r, dict) else Figure(error="error")

    for cmd in ("svc -u S", "svstat S"):
        for k, what in ((0, "median"), (1, "p95")):
            rep.add(f"`{cmd}` under crash load, {what}", "ms",
                    stats.get(("svtree", cmd), failed)[k], "daemontools",
                    stats.get(("daemontools", cmd), failed)[k])
    rep.add(f"starts of {N_CRASH} crash-looping services", f"starts / {window} s",
            counted("svtree", "starts"), "daemontools", counted("daemontools", "starts"))
    rep.add(f"CPU of the tree, {N_CRASH} services crash-looping", f"ms CPU / {window} s",
            counted("svtree", "cpu_ms"), "daemontools", counted("daemontools", "cpu_ms"))


def crash_load(run):
    """The CLI's latency while N_CRASH services crash-loop, svtree and daemontools."""
    window = 15 if run.quick else 60
    n_idle = 40 if run.quick else 100
    systems = [s for s in run.systems if s in ("svtree", "daemontools")]
    say(f"== CLI latency with {N_CRASH} services crash-looping for {window} s "
        f"({', '.join(systems)})")
    got = {}
    for system in systems:
        r = got[system] = guarded(crash_once, system, window, n_idle)
        if not isinstance(r, Exception):
            say(f"    {system}: {r['starts']} crash starts, CPU {fmt(r['cpu_ms'])} ms; "
                + "; ".join(f"{cmd} idle {fmt(statistics.median(r['idle'][cmd]))} / load "
                            f"{fmt(statistics.median(r['load'][cmd]))} ms" for cmd in r["idle"]))
    stats = crash_table(run.rep, got, window)
    if "daemontools" in got:
        crash_rows(run.rep, got, stats, window)
    ours = got.get("svtree")
    if isinstance(ours, dict):
        run.rep.targets.append((
            "CLI under crash load", "none (reported): load/idle median and p95",
            "svtree: " + "; ".join(
                f"`{cmd}` x{fmt(load_idle(ours, cmd, 50))} / x{fmt(load_idle(ours, cmd, 95))}"
                for cmd in ours["idle"])))


# --- 7. waiting for readiness ----------------------------------------------------------

WAIT_SYSTEMS = ("svtree", "s6")


def wait_tools(system):
    """(waiter argv without the service, restart argv without the service)."""
    if system == "svtree":
        return ([str(VENV_BIN / "svtree"), "wait", "ready", "--timeout", "30"],
                [str(VENV_BIN / "svc"), "-t"])
    return (["/usr/bin/s6-svwait", "-U", "-t", "30000"], ["/usr/bin/s6-svc", "-t"])


def wait_ready_once(tree, sv, go, waiter_argv, mark, settle=0.3):
    """One round: the service is blocked on the go fifo; start the waiter,
    let it settle, then write to the fifo; ms from the write to its exit."""
    tree.reporter.wait_names(["w"], mark, 10, "restart")
    pid = spawn([*waiter_argv, str(sv)])
    try:
        time.sleep(settle)                 # the waiter is watching by now
        if pidfd_wait(pid, 0) is not None:
            raise BenchError(f"{waiter_argv[0]} exited before the service was ready")
        t0 = time.monotonic()
        fd = os.open(go, os.O_WRONLY)      # the service blocks in open(2) for reading
        os.write(fd, b"go\n")
        os.close(fd)
        t1 = pidfd_wait(pid, 10)
    finally:
        if pidfd_wait(pid, 0) is None:
            kill_group(pid)
    _, code, _ = finish(pid, 5, waiter_argv[0])
    if t1 is None or code != 0:
        raise BenchError(f"{waiter_argv[0]} did not see the service ready (exit {code})")
    return (t1 - t0) * 1000


def bench_wait_ready(systems, reps):
    """{system: samples ms} and {system: error}."""
    samples, errors = {s: [] for s in systems}, {}
    for system in systems:
        tree = Tree(system)
        go = tree.dir / "go.fifo"
        os.mkfifo(go)
        sv = tree.add("w", f"read x < {shlex.quote(str(go))}\necho >&3\nexec sleep 100000",
                      {"notification-fd": "3\n"})
        waiter, restart = wait_tools(system)
        try:
            tree.start()
            mark = 0
            for _ in range(reps):
                samples[system].append(wait_ready_once(tree, sv, go, waiter, mark))
                mark = tree.reporter.mark()
                timed_ms([*restart, str(sv)])
        except (BenchError, OSError) as e:
            say(f"  error: {system}: {e}")
            errors[system] = str(e)
        finally:
            tree.stop()
        if samples[system]:
            say(f"    {system}: {spread(samples[system])} ms")
    return samples, errors


def wait_ready(run):
    """From readiness to the exit of a waiter: svtree wait ready, s6-svwait -U."""
    reps = 5 if run.quick else 15
    waiting = [s for s in WAIT_SYSTEMS if s in run.systems]
    say(f"== waiting for readiness ({reps} rounds: {', '.join(waiting)})")
    samples, errors = bench_wait_ready(waiting, reps)
    figs = {s: Figure(error=errors[s]) if s in errors else Figure.of(samples[s])
            for s in waiting}
    label = "readiness to the waiter's exit (svtree wait ready / s6-svwait -U)"
    for peer in run.peers:
        run.rep.add(label, "ms", figs["svtree"], peer,
                    figs[peer] if peer in figs else Figure(error="n/a: no readiness"))
    for s in waiting:
        run.rep.details.append(f"wait-ready, {s}: "
                               f"{spread(samples[s]) + ' ms' if samples[s] else errors.get(s)}")
    s6, ours = figs.get("s6"), figs["svtree"]
    run.rep.targets.append(("wait for readiness", "none (reported): svtree next to s6-svwait",
                            f"svtree {fmt(ours.value)} ms" + (
                                f", s6 {fmt(s6.value)} ms, x{fmt(ours.value / s6.value)}"
                                if s6 and s6.ok and ours.ok else "")
                            if ours.ok else "not measured"))


BENCHES = {"shutdown-prompt": shutdown_prompt, "shutdown-stubborn": shutdown_stubborn,
           "shutdown-ordered": shutdown_ordered, "logger": logger, "load-1000": load_1000,
           "crash-load": crash_load, "wait-ready": wait_ready}


# --- the section ------------------------------------------------------------------------

HOW = f"""\
- Trees are bench/run.py's (a temp dir each, the scanner in a session of its
  own, everything killed at the end of each benchmark); each `run` reports
  `NAME PID` on a fifo before it does its work.
- **shutdown**: {N_TREE} services whose `run` ends in `exec sleep 100000` (so
  they die at once of TERM), 0.5 s after all have started; from `kill
  -TERM` of the scanner to its exit, seen through a pidfd. svtree's svscan
  and s6-svscan (2.11: SIGTERM = `s6-svscanctl -t`) bring every service down
  and exit when the last supervise has; daemontools' svscan dies of the
  signal (default action) and runsvdir exits 0 at once: both leave every
  supervise and service running, so their time means nothing ("n/a").
  svtree's svscan sends each service its down signal itself, right after
  the TERM to its supervise (svscan.8), so the services all end at once.
- **service ignoring TERM**: one service, `trap '' TERM; exec sleep 100000`;
  svtree's `svscan -g {GRACE:g}` sends TERM, then after the grace period KILL to the
  service's process group. s6 has no such grace period in s6-svscan:
  s6-supervise waits for the service for ever unless its directory holds
  `timeout-kill` (milliseconds from TERM to KILL), measured here with
  {S6_TIMEOUT_KILL_MS}. daemontools and runit exit at once (see above).
- **dependency chains**: {N_CHAINS} chains of {len(CHAIN)} services, {" <- ".join(CHAIN)} (each
  depends on the one before it); every service is a bash script that
  sleeps until TERM, then writes `NAME term` with the wall clock to a log
  file, sleeps {STOP:g} s, writes `NAME stop` and exits 0 (a second TERM
  ignored). One shutdown as above (all started, 0.5 s, `kill -TERM` of the
  scanner, its exit through a pidfd) of a fresh tree per round: svtree's
  svscan with a `depends` file in each api and web (naming the service
  below it; that tree starts a level a second, as a service that cannot
  say it is ready counts as ready after a second up), svtree's svscan
  without them, s6-svscan on the same services (it has no order). Rounds
  interleaved. The order is read from the log file (appended by every
  service, so its lines are in the order written): in every chain each
  dependent's `stop` line must come before its dependency's `term` line,
  else the ordered figure is an error. The ideal is the stop times along
  a chain, {len(CHAIN)} x {STOP * 1000:.0f} ms; the issue's bound is ordered <= 1.2 x
  (unordered + {len(CHAIN)} x {STOP * 1000:.0f} ms). The unordered figure holds one stop
  time already, so the stricter bound counts only the {len(CHAIN) - 1} levels ordering
  adds.
- **logger**: {N_LINES:,} lines of {LINE_BYTES} bytes, written once to a temp file, fed
  by `cat` through a pipe; from the logger's spawn to its exit after end of
  input: `multilog t s{LOG_SIZE} n10 DIR` (svtree's and daemontools'),
  `svlogd -tt DIR` with `s{LOG_SIZE}` and `n10` in DIR/config, `s6-log t
  s{LOG_SIZE} n10 DIR`; the lines are counted in the log dir afterwards.
  Peak RSS, the largest of the runs: `/usr/bin/time -f %M` (GNU time's
  wait4 ru_maxrss: the logger's, plus at most time's own ~1 MiB image it
  was forked from; the benchmark's own ru_maxrss would count the Python
  parent instead). The wall time then includes time's fork and exec (about
  1 ms). Runs interleaved.
- **{N_LOAD} services**: from the scanner's launch to the report of the last
  `run`; PSS (smaps_rollup) of the scanner and every supervise 2 s later, per
  service. s6-svscan gets `-c {2 * N_LOAD}` (2.11 holds 500 services by default and
  warns "too many services" for the rest); daemontools' svscan and runsvdir
  hold at most 1000 services (svtree's svscan too), so {N_LOAD} is their limit
  exactly. One tree at a time, 40 s deadline each, 110 s for all.
- **wait for readiness**: one service, `notification-fd` 3, whose `run`
  blocks reading a fifo, then writes a newline to fd 3; the waiter
  (`svtree wait ready S`, `s6-svwait -U S`) is started 0.3 s before the
  benchmark writes to the fifo; from that write to the waiter's exit, seen
  through a pidfd. The service is restarted (`svc -t`, `s6-svc -t`) between
  rounds. daemontools and runit have no readiness notification ("n/a").
- **crash load**: a healthy service plus {N_CRASH} services whose `run` reports and
  exits 1; first the idle figures (the {N_CRASH} are down: `down` file), then
  `svc -u` of all {N_CRASH} and, for the window, `svc -u S` and `svstat S` of the
  healthy one in turn, 20 ms apart (each tree's own tools: svtree's Python
  ones, daemontools' C ones), timed as whole processes. daemontools'
  supervise restarts a crashing service once a second, for ever; svtree's
  backs off exponentially after quick deaths (1, 2, 4 ... 60 s), so it forks
  far less often: that is the main cause of any difference in the load
  (see the starts and CPU rows). The CPU row counts the scanner and every
  supervise over the window, the crashing `run`s they reaped included
  (utime+stime+cutime+cstime). The idle and load samples are taken minutes
  apart, so other work on the machine can push a load/idle ratio below 1."""


def render(run, argv, nofile):
    extra = "".join(f"{title}:\n\n{table}\n\n" for title, table in run.rep.extra_tables)
    return f"""{SECTION}

Measured by `bench/more.py` (`make bench` runs it after `bench/run.py`), all
systems in the same run; medians; the ratio is svtree's figure divided by
the peer's (below 1: svtree is faster or smaller, except for lines/s, where
above 1 is better). The chart shows every ratio row of this file (log scale;
green: svtree better, red: worse).

![ratios](bench/ratios.png)

{run.header("more.py", argv, f"; RLIMIT_NOFILE {nofile[0]} (soft), {nofile[1]} (hard)")}

### Results

{run.rep.table()}

{extra}### Targets

{run.rep.target_table()}

### How

{HOW}

### Details

{run.rep.detail_list()}
"""


# --- BENCHMARKS.md and the chart ----------------------------------------------------------

def ratio_rows(text):
    """[(section heading, label, unit, ratio)] from every markdown table whose
    last column is svtree/peer and whose ratio cell is a plain number."""
    rows = []
    heading = ""
    header = None
    for line in text.splitlines():
        if line.startswith("#"):
            if line.startswith("## "):
                heading = line[3:].strip()
            header = None
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue                       # the separator row
        if header[-1] != "svtree/peer" or len(cells) != len(header):
            continue
        try:
            r = float(cells[-1])
        except ValueError:
            continue
        col = {name: i for i, name in enumerate(header)}
        label = cells[col.get("Benchmark", 0)].replace("`", "")
        peer = cells[col["Peer"]] if "Peer" in col else ""
        unit = cells[col["Unit"]] if "Unit" in col else ""
        rows.append((heading, f"{label} vs {peer}" if peer else label, unit, r))
    return rows


# 5x7 font (and a descender row for g j p q y), ASCII 32..126: five column
# bytes per glyph, bit 0 at the top.
FONT = bytes.fromhex(
    "0000000000" "00005f0000" "0007000700" "147f147f14" "242a7f2a12" "2313086462"
    "3649552250" "0005030000" "001c224100" "0041221c00" "14083e0814" "08083e0808"
    "0050300000" "0808080808" "0060600000" "2010080402" "3e5149453e" "00427f4000"
    "4261514946" "2141454b31" "1814127f10" "2745454539" "3c4a494930" "0171090503"
    "3649494936" "064949291e" "0036360000" "0056360000" "0814224100" "1414141414"
    "0041221408" "0201510906" "324979413e" "7e1111117e" "7f49494936" "3e41414122"
    "7f4141221c" "7f49494941" "7f09090101" "3e41415132" "7f0808087f" "00417f4100"
    "2040413f01" "7f08142241" "7f40404040" "7f0204027f" "7f0408107f" "3e4141413e"
    "7f09090906" "3e4151215e" "7f09192946" "4649494931" "01017f0101" "3f4040403f"
    "1f2040201f" "7f2018207f" "6314081463" "0304780403" "6151494543" "007f414100"
    "0204081020" "0041417f00" "0402010204" "4040404040" "0001020400" "2054545478"
    "7f48444438" "3844444420" "384444487f" "3854545418" "087e090102" "18a4a4a47c"
    "7f08040478" "00447d4000" "4080847d00" "7f10284400" "00417f4000" "7c04180478"
    "7c08040478" "3844444438" "fc24242418" "18242424fc" "7c08040408" "4854545420"
    "043f444020" "3c4040207c" "1c2040201c" "3c4030403c" "4428102844" "1ca0a0a07c"
    "4464544c44" "0008364100" "00007f0000" "0041360800" "0201020402")


class Canvas:
    def __init__(self, width, height, bg=(255, 255, 255)):
        self.w, self.h = width, height
        self.px = bytearray(bytes(bg) * (width * height))

    def rect(self, x0, y0, x1, y1, color):
        x0, x1 = max(0, min(x0, x1)), min(self.w, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.h, max(y0, y1))
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            i = (y * self.w + x0) * 3
            self.px[i:i + len(row)] = row

    def text(self, x, y, s, color=(0, 0, 0), scale=2):
        for ch in s:
            code = ord(ch)
            if not 32 <= code <= 126:
                code = ord("?")
            glyph = FONT[(code - 32) * 5:(code - 32) * 5 + 5]
            for cx, bits in enumerate(glyph):
                for cy in range(8):
                    if bits >> cy & 1:
                        self.rect(x + cx * scale, y + cy * scale,
                                  x + (cx + 1) * scale, y + (cy + 1) * scale, color)
            x += 6 * scale
        return x

    def png(self):
        raw = b"".join(b"\0" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(kind, data):
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
        return (b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def higher_is_better(unit):
    return unit.replace(" ", "").endswith("/s") and not unit.startswith("ms")


def draw_chart(rows, path):
    """Horizontal bars of log10(ratio) around 1, clipped to [1e-3, 1e3]."""
    lo, hi = -3, 3
    s = 2                                   # font scale: 12 px per character
    cw = 6 * s
    label_w = max((len(label) for _, label, _, _ in rows), default=10) * cw + 30
    value_w = 9 * cw
    plot_w = 600
    row_h = 22
    top = 70
    sections = []
    for heading, *_ in rows:
        if not sections or sections[-1] != heading:
            sections.append(heading)
    height = top + (len(rows) + len(sections)) * row_h + 50
    width = label_w + value_w + plot_w + 30
    c = Canvas(width, height)
    c.text(10, 10, "svtree / peer, median ratios from BENCHMARKS.md (log scale, "
                   f"clipped to 1e{lo}..1e{hi})", scale=s)
    c.text(10, 32, "green: svtree better (lower; higher for lines/s)   red: svtree worse",
           color=(90, 90, 90), scale=s)
    px0 = label_w + value_w

    def x_of(r):
        v = min(max(r, 10.0 ** lo), 10.0 ** hi)
        return px0 + int((math.log10(v) - lo) / (hi - lo) * plot_w)

    y_end = height - 40
    for e in range(lo, hi + 1):              # decade grid and its labels
        x = x_of(10.0 ** e)
        c.rect(x, top - 6, x + (2 if e == 0 else 1), y_end,
               (80, 80, 80) if e == 0 else (215, 215, 215))
        tick = {-3: "0.001", -2: "0.01", -1: "0.1", 0: "1", 1: "10", 2: "100",
                3: "1000"}.get(e, f"1e{e}")
        c.text(x - len(tick) * cw // 2, y_end + 8, tick, color=(60, 60, 60), scale=s)
    y = top
    current = None
    for heading, label, unit, r in rows:
        if heading != current:
            current = heading
            c.text(10, y + 4, heading or "(untitled)", color=(0, 0, 140), scale=s)
            c.rect(10, y + row_h - 3, width - 10, y + row_h - 2, (0, 0, 140))
            y += row_h
        c.text(10, y + 4, label, scale=s)
        shown = "0" if r == 0 else f"x{fmt(r)}"
        c.text(label_w, y + 4, shown, color=(60, 60, 60), scale=s)
        better = r > 1 if higher_is_better(unit) else r < 1
        color = (150, 150, 150) if r == 1 else (40, 150, 60) if better else (200, 50, 40)
        x1 = x_of(1.0)
        x2 = x_of(r) if r > 0 else x_of(10.0 ** lo)
        if abs(x2 - x1) < 2:
            x2 = x1 + 2
        c.rect(min(x1, x2), y + 4, max(x1, x2), y + row_h - 4, color)
        if r > 0 and not 10.0 ** lo <= r <= 10.0 ** hi:
            c.text(x2 + (4 if x2 > x1 else -4 * cw), y + 4, ">>" if x2 > x1 else "<<",
                   color=color, scale=s)
        y += row_h
    path.write_bytes(c.png())


def write_outputs(section_text, output):
    write_section(output, SECTION, section_text)
    chart(output)


def chart(md_path):
    rows = ratio_rows(Path(md_path).read_text())
    out = Path(md_path).resolve().parent / "bench" / "ratios.png"
    if not out.parent.is_dir():
        out = Path(__file__).resolve().parent / "ratios.png"
    draw_chart(rows, out)
    say(f"wrote {out} ({len(rows)} ratios)")


# --- main ---------------------------------------------------------------------------------

def parse_args(argv):
    p = bench_options(__doc__, BENCHES, PEERS, "fewer repetitions, a 15 s crash window",
                      "the markdown file whose section to replace (default "
                      "BENCHMARKS.md; with --only, none unless given)")
    p.add_argument("--chart-only", action="store_true",
                   help="only redraw bench/ratios.png from BENCHMARKS.md (or --output)")
    args = p.parse_args(argv)
    names = choose(p, args, BENCHES, PEERS)
    if args.output is None and (not names or args.chart_only):
        args.output = str(ROOT / "BENCHMARKS.md")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.chart_only:
        chart(args.output)
        return 0
    prepare()
    nofile = raise_nofile()
    run = run_benches("more.py", PROGRAMS, BENCHES, args)
    if run is None:
        return 111
    text = render(run, argv, nofile)
    print()
    print(text)
    if args.output:
        write_outputs(text, args.output)
    return 0


if __name__ == "__main__":
    exit_with(main)
