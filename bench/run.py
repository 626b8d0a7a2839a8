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
           without the services, per service, at 100 services. As root,
           svtree again with ksmd switched on (then put back as it was) once
           it has merged what it can, and ksmd's CPU share at the machine's
           own rate.
  logged   PSS of everything a 30-service tree runs but the services (the
           scanner, its supervise processes, the loggers), measured from
           outside, divided by 30: each service logged with `t ./main`.
           svtree three times: the built-in logger (log/multilog), log/run =
           `exec multilog t ./main` (which supervise runs as the built-in
           logger), and the same with one more line (sh and an exec'd
           multilog); daemontools' multilog, runit's svlogd -tt, s6-log t.
           supervisord: n/a (it logs in its one process). As root, svtree's
           again with ksmd on.
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

import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (bench/common.py, shared by the benchmark scripts)
    CLK_TCK, KSM, N_TREE, VENV_BIN, VENV_PY, BenchError, Figure, Ksmd, Tree, bench_options, cpu_of,
    exit_with, fmt, guarded, parsed, per_process, prepare, private_dirty_by_mapping, rounds,
    run_benches, say, smaps_rollup, started, stop_all, timed_ms, total_pss, verdict)

PEERS = ("daemontools", "runit", "s6", "supervisord")
POLLING = ("daemontools", "runit")          # they look at the scan dir every 5 s

PROGRAMS = {
    "svtree": [str(VENV_BIN / p) for p in ("svscan", "svc", "svok", "svstat")],
    "daemontools": ["/usr/bin/svscan", "/usr/bin/supervise", "/usr/bin/svc",
                    "/usr/bin/svok", "/usr/bin/svstat"],
    "runit": ["/usr/bin/runsvdir", "/usr/bin/runsv"],
    "s6": ["/usr/bin/s6-svscan", "/usr/bin/s6-supervise", "/usr/bin/s6-svscanctl"],
    "supervisord": ["/usr/bin/supervisord"],
}

NAMES_100 = [f"n{i:03d}" for i in range(N_TREE)]

# the logger of a logged tree: (system, its log/run command or "builtin")
BUILTIN = "svtree (built-in logger)"
PIPED = "svtree (log/run: exec multilog)"
EXECD = "svtree (log/run: exec multilog, exec'd)"
LOGGED = {
    BUILTIN: ("svtree", "builtin"),
    # the plain script: supervise runs it as the built-in logger (builtinlog.exec_script)
    PIPED: ("svtree", f"{VENV_BIN / 'multilog'} t"),
    # one more line: sh runs it, and the exec starts a new interpreter
    EXECD: ("svtree", f"export LOGGER=exec\n{VENV_BIN / 'multilog'} t"),
    "daemontools": ("daemontools", "/usr/bin/multilog t"),
    "runit": ("runit", "/usr/bin/svlogd -tt"),
    "s6": ("s6", "/usr/bin/s6-log t"),
}
N_LOGGED = 30

RESTART_UPTIME = 11.0   # svtree counts a death within 10 s of the start as quick, and backs off
CLI_TOOLS = ("svc -u S", "svok S", "svstat S", "svstat (100 services)")
PYTHON = ("python -c pass", "python")


def measured(fn, *args):
    """fn(*args), a Figure; the Figure of its error if it failed."""
    got = guarded(fn, *args)
    return Figure(error=str(got)) if isinstance(got, Exception) else got


def start_side_by_side(trees, systems, names, timeout):
    """A tree of names for each system, in trees, all started; the Figure of
    the error of each system whose tree did not start."""
    errors = {}
    for system in systems:
        trees[system] = Tree(system, names)
        try:
            started(trees[system], timeout)
        except BenchError as e:
            say(f"  error: {system}: {e}")
            errors[system] = Figure(error=str(e))
    return errors


# --- detect ---------------------------------------------------------------------

def bench_detect(system, reps):
    polling = system in POLLING
    pool = [f"new{i}" for i in range(reps)]
    tree = Tree(system, ["a1", "a2", "a3"], pool)
    samples = []
    try:
        started(tree, 20)
        for name in pool:
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
    return Figure.of(samples)


def detect(run):
    """New-service detection; supervisord has no scan dir."""
    say("== new-service detection")
    figs = {}
    for system in run.systems:
        if system == "supervisord":
            continue
        reps = (3 if run.quick else 9) if system in POLLING else (10 if run.quick else 20)
        say(f"  {system}: {reps} reps")
        figs[system] = measured(bench_detect, system, reps)
        say(f"    {figs[system].summary()}")
    for peer in run.peers:
        if peer == "supervisord":
            run.rep.add("new-service detection", "ms", figs["svtree"], "supervisord",
                        Figure(error="n/a: no scan dir"))
            continue
        label = "new-service detection" + (" (s6: ln + s6-svscanctl -a)" if peer == "s6"
                                           else "")
        run.rep.add(label, "ms", figs["svtree"], peer, figs[peer])
    for s, f in figs.items():
        run.rep.details.append(f"detect, {s}: {f.summary()} ms")
    run.rep.targets.append(("new-service detection", "svtree median < 20 ms",
                            verdict(figs["svtree"].value, 20, "ms")))


# --- restart --------------------------------------------------------------------

def restart_samples(tree, names):
    """ms from the kill -9 of each service, RESTART_UPTIME s after its start,
    to its next start."""
    samples = []
    for name in names:
        t_last, pid = tree.reporter.last[name]
        pause = t_last + RESTART_UPTIME - time.monotonic()
        time.sleep(max(pause, 0.1))
        mark = tree.reporter.mark()
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        t1 = tree.reporter.wait_names([name], mark, 15, what="restart")
        samples.append((t1 - t0) * 1000)
    return samples


def bench_restart(systems, reps):
    """Each of `reps` services killed once, after RESTART_UPTIME seconds up.

    The trees of all systems run side by side (idle but for the one service
    being restarted), so the wait for the uptime is paid once.
    """
    names = [f"r{i:02d}" for i in range(reps)]
    trees = {}
    try:
        out = start_side_by_side(trees, systems, names, 30)
        for system, tree in trees.items():
            if system in out:
                continue
            try:
                out[system] = Figure.of(restart_samples(tree, names))
            except (BenchError, OSError) as e:
                say(f"  error: {system}: {e}")
                out[system] = Figure(error=str(e))
                continue
            say(f"    {system}: {out[system].summary()}")
    finally:
        stop_all(trees.values())
    return out


def restart(run):
    """Restart latency after kill -9, the trees side by side."""
    say("== restart latency")
    reps = 6 if run.quick else 20
    say(f"  {reps} reps each, all trees side by side")
    figs = bench_restart(run.systems, reps)
    run.rep.compare("restart after kill -9", "ms", figs, run.peers)
    for s, f in figs.items():
        run.rep.details.append(f"restart, {s}: {f.summary()} ms")
    dt = figs.get("daemontools")
    limit = 2 * dt.value if dt and dt.value is not None else None
    run.rep.targets.append(("restart latency", "svtree median <= 2 x daemontools",
                            verdict(figs["svtree"].value, limit, "ms")
                            if limit is not None else "daemontools not measured"))


# --- startup --------------------------------------------------------------------

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


def startup_figure(samples):
    """The Figure of startup_once's samples: the time to all started; the
    time to the first and the CPU used in its extra."""
    totals, firsts, cpus = zip(*samples)
    return Figure.of(totals, extra={"first": statistics.median(firsts),
                                    "cpu": Figure.of(cpus)})


def startup(run):
    """A 100-service tree fully started; rounds over the systems."""
    say("== 100-service tree fully started")
    reps = 3 if run.quick else 7
    say(f"  {reps} rounds over {', '.join(run.systems)}")
    got, errors = rounds(run.systems, reps, startup_once, 0.2)
    figs = {s: Figure(error=errors[s]) if s in errors else startup_figure(got[s])
            for s in run.systems}
    for system in run.systems:
        say(f"    {system}: {figs[system].summary()}")
    run.rep.compare("100 services started", "ms", figs, run.peers)
    cpu = {s: f.extra["cpu"] if f.ok else f for s, f in figs.items()}
    run.rep.compare("CPU to start 100 services (schedstat)", "ms", cpu, run.peers)
    for s, f in figs.items():
        first = (f"; the first run reported after {fmt(f.extra['first'])} ms (median); "
                 f"CPU of the scanner and its supervise processes by then: "
                 f"{f.extra['cpu'].summary()} ms" if f.ok else "")
        run.rep.details.append(f"startup, {s}: {f.summary()} ms{first}")
    run.rep.targets.append(("100-service startup", "svtree median < 300 ms",
                            verdict(figs["svtree"].value, 300, "ms")))


# --- memory ---------------------------------------------------------------------

def supervise_breakdown(pids, scanner):
    """Private_Dirty by mapping of the first supervise process still there."""
    for pid in pids:
        if pid != scanner:
            try:
                return private_dirty_by_mapping(pid)
            except OSError:
                continue
    return []


def memory_extra(per, scanner, breakdown):
    """The details of a tree's memory: per is [(pid, comm, smaps_rollup)] of
    the scanner and its supervise processes."""
    ours = [m for pid, _, m in per if pid == scanner]
    # svtree's zygote (which forks every supervise) counts in the total, not as a supervise
    others = [m for pid, comm, m in per if pid != scanner and comm != "svscan-zygote"]

    def mean(key, ms):
        return statistics.mean(m.get(key, 0) for m in ms) if ms else 0

    return {
        "processes": len(per),
        "total_pss_kib": sum(m.get("Pss", 0) for _, _, m in per),
        "scanner_pss_kib": ours[0].get("Pss", 0) if ours else 0,
        "scanner_rss_kib": ours[0].get("Rss", 0) if ours else 0,
        "supervise_count": len(others),
        "supervise_pss_kib": mean("Pss", others),
        "supervise_rss_kib": mean("Rss", others),
        "supervise_private_dirty_kib": mean("Private_Dirty", others),
        "supervise_private_clean_kib": mean("Private_Clean", others),
        "supervise_shared_kib": mean("Shared_Clean", others) + mean("Shared_Dirty", others),
        "comms": sorted({c for _, c, _ in per}),
        "breakdown": breakdown,
    }


def bench_memory(system, ksmd=None, cpu_window=10.0):
    """PSS of a 100-service tree; with ksmd (a running common.Ksmd), once
    it has merged what it can, and its CPU share at the machine's rate."""
    tree = Tree(system, NAMES_100)
    ksmd_cpu = None
    try:
        started(tree, 60)
        time.sleep(2)                 # let the tree settle
        if ksmd:
            ksmd.settle()
            ksmd_cpu = ksmd.default_rate_cpu(cpu_window)
        pids, table = tree.supervision_pids()
        per = [(pid, table[pid][1], m) for pid, m in per_process(smaps_rollup, pids).items()]
        breakdown = supervise_breakdown([p for p in pids if table[p][1] != "svscan-zygote"],
                                        tree.proc.pid)
    finally:
        tree.stop()
    if not per:
        raise BenchError("no supervision process found")
    extra = memory_extra(per, tree.proc.pid, breakdown)
    extra["ksmd_cpu_percent"] = ksmd_cpu
    return Figure.of([extra["total_pss_kib"] / N_TREE / 1024], extra=extra)


def memory_detail(e):
    """The details line of one system's memory (e: memory_extra's)."""
    return (f"{e['processes']} processes ({', '.join(e['comms'])}), "
            f"total PSS {fmt(e['total_pss_kib'] / 1024)} MiB; scanner PSS "
            f"{fmt(e['scanner_pss_kib'] / 1024)} MiB (RSS {fmt(e['scanner_rss_kib'] / 1024)}"
            f" MiB); {e['supervise_count']} supervise: mean PSS "
            f"{fmt(e['supervise_pss_kib'])} KiB, RSS {fmt(e['supervise_rss_kib'])} KiB, "
            f"Private_Dirty {fmt(e['supervise_private_dirty_kib'])} KiB, Private_Clean "
            f"{fmt(e['supervise_private_clean_kib'])} KiB, shared "
            f"{fmt(e['supervise_shared_kib'])} KiB"
            + ("; one supervise's Private_Dirty by mapping: " + ", ".join(
                f"{m} {k} KiB" for m, k in e["breakdown"]) if e["breakdown"] else ""))


def memory(run):
    """PSS of the scanner and its supervise processes at 100 services."""
    say("== memory (PSS) at 100 services")
    figs = {}
    for system in run.systems:
        f = figs[system] = measured(bench_memory, system)
        say(f"    {system}: {fmt(f.value) if f.ok else f.error} MiB/service"
            + (f", {fmt(f.extra['supervise_pss_kib'] / 1024)} MiB PSS per supervise"
               if f.ok else ""))
    run.rep.compare("PSS per service (100 services)", "MiB", figs, run.peers)
    for s, f in figs.items():
        run.rep.details.append(f"memory, {s}: {f.error or memory_detail(f.extra)}")
    ours = figs["svtree"]
    target = "svtree <= 0.8 MiB PSS per supervise (CPython 3.11)"
    run.rep.targets.append(("memory, ksmd off", target, verdict(
        ours.extra["supervise_pss_kib"] / 1024 if ours.ok else None, 0.8, "MiB")))
    if not Ksmd.possible():
        run.rep.details.append("memory with ksmd: not measured (cannot switch "
                               f"{KSM / 'run'}: not root, or no KSM in this kernel)")
        return
    say("== memory (PSS) at 100 services, ksmd on")
    try:
        with Ksmd() as ksmd:
            merged = measured(bench_memory, "svtree", ksmd, 5.0 if run.quick else 10.0)
    except OSError as e:
        run.rep.details.append(f"memory with ksmd: not measured: unable to switch ksmd on: {e}")
        return
    say(f"    svtree, ksmd on: {fmt(merged.value) if merged.ok else merged.error} MiB/service"
        + (f", {fmt(merged.extra['supervise_pss_kib'] / 1024)} MiB PSS per supervise"
           if merged.ok else ""))
    run.rep.compare("PSS per service (100 services), ksmd on", "MiB",
                    {**figs, "svtree": merged}, run.peers)
    cpu = merged.extra.get("ksmd_cpu_percent") if merged.ok else None
    run.rep.details.append(
        f"memory, svtree with ksmd on: {merged.error or memory_detail(merged.extra)}"
        + ("" if cpu is None else f"; ksmd at the machine's rate "
           f"({ksmd.saved['pages_to_scan']} pages a round) used {fmt(cpu)}% of one CPU"))
    run.rep.targets.append(("memory, ksmd on", target, verdict(
        merged.extra["supervise_pss_kib"] / 1024 if merged.ok else None, 0.8, "MiB")))


# --- logged ---------------------------------------------------------------------

def bench_logged(label, ksmd=None):
    """PSS of a 30-service logged tree but its services, per service (with
    ksmd: once it has merged what it can)."""
    system, logger = LOGGED[label]
    tree = Tree(system, NAMES_100[:N_LOGGED], logger=logger)
    try:
        started(tree, 60)
        time.sleep(2)                 # let the tree settle, the loggers start
        if ksmd:
            ksmd.settle()
        pids, table = tree.supervision_pids()
        total = total_pss(pids)
    finally:
        tree.stop()
    return Figure.of([total / N_LOGGED / 1024],
                     extra={"processes": len(pids),
                            "comms": sorted({table[pid][1] for pid in pids})})


def logged(run):
    """PSS per logged service, the loggers included, svtree's three ways."""
    say(f"== memory (PSS) per logged service, {N_LOGGED} services, from outside")
    figs = {}
    for label, (system, _) in LOGGED.items():
        if system != "svtree" and system not in run.peers:
            continue
        f = figs[label] = measured(bench_logged, label)
        say(f"    {label}: {fmt(f.value) if f.ok else f.error} MiB/logged service")
        run.rep.details.append(f"logged, {label}: " + (f.error or (
            f"{f.extra['processes']} processes ({', '.join(f.extra['comms'])})")))
    others = [label for label in figs if not label.startswith("svtree")]
    run.rep.compare("PSS per logged service (30 services)", "MiB", figs, others + [PIPED, EXECD],
                    ours=BUILTIN)
    targets = ((BUILTIN, "logged service, built-in logger", 2.5),
               (PIPED, "logged service, log/run = exec multilog", 5))
    for label, name, limit in targets:
        run.rep.targets.append((f"{name}, ksmd off", f"svtree <= {limit} MiB PSS",
                                verdict(figs[label].value, limit, "MiB")))
    if not Ksmd.possible():
        return
    merged = {}
    try:
        with Ksmd() as ksmd:
            for label in (BUILTIN, PIPED, EXECD):
                f = merged[label] = measured(bench_logged, label, ksmd)
                say(f"    {label}, ksmd on: {fmt(f.value) if f.ok else f.error} MiB/logged service")
    except OSError as e:
        run.rep.details.append(f"logged with ksmd: not measured: unable to switch ksmd on: {e}")
        return
    run.rep.compare("PSS per logged service (30 services), ksmd on", "MiB", {**figs, **merged},
                    others + [PIPED, EXECD], ours=BUILTIN)
    for label, name, limit in targets:
        run.rep.targets.append((f"{name}, ksmd on", f"svtree <= {limit} MiB PSS",
                                verdict(merged[label].value, limit, "MiB")))


# --- cli ------------------------------------------------------------------------

def cli_commands(trees):
    """(tool, system) -> argv: each tool against each tree; PYTHON -> python -c pass."""
    commands = {PYTHON: [str(VENV_PY), "-c", "pass"]}
    for system, tree in trees.items():
        prefix = VENV_BIN if system == "svtree" else Path("/usr/bin")
        one = str(tree.scan / "n000")
        every = [str(tree.scan / n) for n in NAMES_100]
        commands[("svc -u S", system)] = [str(prefix / "svc"), "-u", one]
        commands[("svok S", system)] = [str(prefix / "svok"), one]
        commands[("svstat S", system)] = [str(prefix / "svstat"), one]
        commands[("svstat (100 services)", system)] = [str(prefix / "svstat"), *every]
    return commands


def bench_cli(reps, with_daemontools):
    """Commands -> Figure (ms); keys PYTHON and (tool, system)."""
    trees = {}
    try:
        for system in ["svtree"] + (["daemontools"] if with_daemontools else []):
            trees[system] = Tree(system, NAMES_100)
            started(trees[system], 60)
        time.sleep(0.5)
        commands = cli_commands(trees)
        # sanity: our svstat sees the service up
        out = subprocess.run([str(VENV_BIN / "svstat"), str(trees["svtree"].scan / "n000")],
                             capture_output=True, text=True, timeout=10).stdout
        if ": up (pid " not in out:
            raise BenchError(f"svstat does not see the service up: {out!r}")
        for argv in commands.values():          # warm the page cache
            timed_ms(argv)
        samples = {key: [] for key in commands}
        for _ in range(reps):
            keys = list(commands)
            random.shuffle(keys)                # interleaved, so drift hits all alike
            for key in keys:
                samples[key].append(timed_ms(commands[key]))
    finally:
        stop_all(trees.values())
    return {key: Figure.of(s) for key, s in samples.items()}


def cli(run):
    """Whole-process wall time of the CLI, next to python -c pass and
    daemontools' C tools."""
    say("== CLI wall time")
    with_dt = "daemontools" in run.peers
    figs = guarded(bench_cli, 10 if run.quick else 30, with_dt)
    if isinstance(figs, Exception):
        run.rep.details.append(f"cli: error: {figs}")
        return
    py = figs[PYTHON]
    run.rep.details.append(f"cli, python -c pass: {py.summary()} ms")
    worst = None
    for tool in CLI_TOOLS:
        ours = figs[(tool, "svtree")]
        run.rep.add(f"CLI `{tool}`", "ms", ours, "python -c pass", py)
        if with_dt:
            run.rep.add(f"CLI `{tool}`", "ms", ours, "daemontools", figs[(tool, "daemontools")])
        run.rep.details.append(f"cli, svtree {tool}: {ours.summary()} ms")
        if with_dt:
            run.rep.details.append(f"cli, daemontools {tool}: "
                                   f"{figs[(tool, 'daemontools')].summary()} ms")
        worst = max(worst or (ours.value / py.value, tool), (ours.value / py.value, tool))
        run.rep.targets.append((f"CLI `{tool}`", "svtree <= 2 x python -c pass",
                                verdict(ours.value, 2 * py.value, "ms")))
    say(f"    python -c pass {fmt(py.value)} ms; worst svtree/python x{fmt(worst[0])} "
        f"({worst[1]})")


# --- idle -----------------------------------------------------------------------

def idle_figure(tree, snap, elapsed):
    """The CPU the processes of snap have used since, in ms of utime+stime
    (schedstat's ns in extra)."""
    ticks = ns = gone = 0
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
    new = len(set(tree.supervision_pids()[0]) - set(snap))
    return Figure.of([ticks * 1000 / CLK_TCK], extra={
        "sched_ms": ns / 1e6 if have_ns else None, "window": elapsed,
        "processes": len(snap), "gone": gone, "new": new})


def bench_idle(systems, window):
    """All trees at once, idle for `window` seconds; CPU used by each."""
    trees = {}
    try:
        out = start_side_by_side(trees, systems, NAMES_100, 60)
        time.sleep(3)                 # let every tree settle
        before = {s: per_process(cpu_of, tree.supervision_pids()[0])
                  for s, tree in trees.items() if s not in out}
        t0 = time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - t0
        for system, snap in before.items():
            out[system] = idle_figure(trees[system], snap, elapsed)
    finally:
        stop_all(trees.values())
    return out


def idle_verdict(figs, sched):
    """svtree's idle CPU next to daemontools', both ways of counting."""
    dt, ours = figs.get("daemontools"), figs["svtree"]
    if not (dt and dt.ok and ours.ok):
        return "not measured"
    v = verdict(ours.value, dt.value, "ms")
    v2 = (verdict(sched["svtree"].value, sched["daemontools"].value, "ms")
          if sched["svtree"].ok and sched["daemontools"].ok else "n/a")
    return f"utime+stime: {v}; schedstat: {v2}"


def idle(run):
    """CPU of idle 100-service trees, all at once."""
    window = 10 if run.quick else 30
    say(f"== idle CPU over {window} s (all trees at once)")
    figs = bench_idle(run.systems, window)
    sched = {s: Figure.of([f.extra["sched_ms"]]) if f.ok and f.extra["sched_ms"] is not None
             else Figure(error=f.error or "no schedstat") for s, f in figs.items()}
    for s, f in figs.items():
        say(f"    {s}: {fmt(f.value) if f.ok else f.error} ms (utime+stime), "
            f"{fmt(sched[s].value) if sched[s].ok else '-'} ms (schedstat)")
    unit = f"ms CPU / {window} s"
    run.rep.compare("idle CPU, utime+stime", unit, figs, run.peers)
    run.rep.compare("idle CPU, schedstat run time", unit, sched, run.peers)
    for s, f in figs.items():
        e = f.extra
        run.rep.details.append(f"idle, {s}: " + (f.error or (
            f"{fmt(f.value)} ms utime+stime, {fmt(e['sched_ms'])} ms schedstat over "
            f"{e['window']:.1f} s, {e['processes']} processes ({e['gone']} gone, "
            f"{e['new']} new during the window)")))
    run.rep.targets.append(("idle CPU", "svtree <= daemontools", idle_verdict(figs, sched)))


BENCHES = {"detect": detect, "restart": restart, "startup": startup, "memory": memory,
           "logged": logged, "cli": cli, "idle": idle}


# --- BENCHMARKS.md ----------------------------------------------------------------

HOW = f"""\
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
- **PSS per logged service**: the same for a 30-service tree whose services
  each have a logger filing into `./main` with `t`, loggers included, divided
  by 30. svtree three ways: `log/multilog` (the built-in logger), `log/run` =
  `exec multilog t ./main` (which supervise runs as the built-in logger), and
  that `log/run` with one more line (sh, then an exec'd multilog).
- **ksmd on**: as root, svtree's trees again with the kernel's same-page
  merging switched on (2000 pages a round, then put back as it was), measured
  once ksmd has made three passes; svscan's zygote marks its memory mergeable
  (svtree/samepage.py), the peers mark none, so their figures stand. ksmd's
  CPU is read over 5-10 s at the machine's own rate once the tree is merged.
- **CLI**: whole-process wall time (posix_spawn to waitpid, output to
  /dev/null) of each command against a 100-service tree, runs interleaved in
  random order; `python -c pass` is the .venv interpreter, daemontools' tools
  are the C programs in /usr/bin run against a daemontools tree.
- **idle CPU**: utime+stime (`/proc/PID/stat`, {CLK_TCK} ticks/s, hence 10 ms
  steps) and the on-CPU time in `/proc/PID/schedstat` (ns) of the scanner and
  its supervise processes of each 100-service tree over the window, 3 s after
  they started; the trees of all systems idle side by side."""


def render(run, argv):
    return f"""# Benchmarks

svtree next to the supervision suites installed on the same machine, all
measured in the same run by `bench/run.py` (`make bench`). Figures are
medians; n is the number of samples; the ratio is svtree's median divided by
the peer's (below 1: svtree is faster or smaller).

{run.header("run.py", argv)}

## Results

{run.rep.table()}

## Targets

{run.rep.target_table()}

## How

{HOW}

## Details

{run.rep.detail_list()}
"""


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


# --- main -------------------------------------------------------------------------

def parse_args(argv):
    p = bench_options(__doc__, BENCHES, PEERS, "fewer repetitions, 10 s idle window",
                      "where to write the report (default BENCHMARKS.md; "
                      "with --only, none unless given)")
    p.add_argument("--seed", type=int, default=None, help="seed for the random pauses")
    return parsed(p, argv, BENCHES, PEERS)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    random.seed(args.seed)
    prepare()
    run = run_benches("run.py", PROGRAMS, BENCHES, args)
    if run is None:
        return 111
    text = render(run, argv)
    print()
    print(text)
    if args.output:
        path = Path(args.output)
        path.write_text(text + sections_of_others(path.read_text() if path.exists() else ""))
        say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    exit_with(main)
