#!/usr/bin/env python3
"""svscan as a container's init, next to tini and dumb-init (and s6-svscan).

    .venv/bin/python bench/init.py [--output FILE] [--no-write]

Each init runs as PID 1 of a fresh PID namespace (`unshare --pid --fork
--mount-proc`, so root only) with a main command, as a container's entry
point would: `svscan -g 1 EMPTYDIR -- CMD`, `tini -- CMD`, `dumb-init CMD`.
s6-svscan runs no main command, so it takes part only where a service can
stand in for one (the orphan storm). Scenarios:

  orphans      CMD makes 300 orphans (`(sleep 0.2 &)` in a loop), then
               waits 2 s; the zombies in the namespace are counted every
               10 ms from outside: the most seen at once, and how many are
               left 1 s after the last orphan died (expected 0).
  exit codes   CMD exits 3; CMD kills itself with SIGKILL; CMD does not
               exist. The init's own exit code is what a container runtime
               reports (tini's rule: the code, 128 + signal, 127).
  term         CMD is `exec sleep 100000` (dies of TERM at once); SIGTERM
               to the init (PID 1 seen from outside); time to its exit,
               through a pidfd, and its exit code. 7 rounds, interleaved.
  stubborn     CMD ignores TERM; SIGTERM to the init; time to its exit
               within 5 s. svscan kills the command's process group after
               its grace period (-g 1 here); tini and dumb-init forward the
               signal and wait for ever (a runtime's own SIGKILL ends them).

Replaces (or adds) the section `## svscan as a container's init` of
BENCHMARKS.md, at the end. Every process started runs in a session of its
own and is killed at the end; every wait has a deadline. Standard library
only.
"""

import datetime
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (bench/common.py, shared by the benchmark scripts)
    VENV_BIN, BenchError, exit_with, fmt, guarded, kill_group, machine, pidfd_wait, prepare,
    publish, read_stat, reap_orphans, say, section_options, svtree_revision, versions,
    write_script)

SECTION = "## svscan as a container's init"
INITS = {
    "svtree": [str(VENV_BIN / "svscan")],
    "tini": ["/usr/bin/tini"],
    "dumb-init": ["/usr/bin/dumb-init"],
}
GRACE = 1.0
ORPHANS = 300
TERM_ROUNDS = 7
STUBBORN_WAIT = 5.0

STORM = (f"i=0; while [ $i -lt {ORPHANS} ]; do (sleep 0.2 &); i=$((i+1)); done; "
         "sleep 2")
STARTED = set()                   # sessions we started, killed at the end


# --- processes ----------------------------------------------------------------------

def start(argv):
    """argv in a session of its own, output to /dev/null; the Popen."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    STARTED.add(p)
    return p


def stop(p):
    kill_group(p.pid)
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        say(f"  warning: {p.args[0]} {p.pid} did not die")
    STARTED.discard(p)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def init_pid(unshare, timeout=5.0):
    """The namespace's PID 1 as seen from here: unshare's only child."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = children(unshare.pid)
        if found:
            return found[0]
        if unshare.poll() is not None:
            raise BenchError(f"unshare exited {unshare.returncode} at once")
        time.sleep(0.002)
    raise BenchError("no PID 1 appeared in the namespace")


def zombies_below(pid):
    count, todo = 0, [pid]
    while todo:
        for child in children(todo.pop()):
            try:
                _, fields = read_stat(child)
            except (OSError, ValueError):
                continue
            if fields[0] == b"Z":
                count += 1
            todo.append(child)
    return count


def code_of(p, timeout=10.0):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p)
        return None


# --- the inits ----------------------------------------------------------------------

class Lab:
    """Temp dirs: an empty scan dir for svscan, a one-service one for s6."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="svbench-init-"))
        self.empty = self.dir / "empty"
        self.empty.mkdir()

    def argv(self, init, command):
        ns = ["unshare", "--pid", "--fork", "--mount-proc"]
        if init == "svtree":
            return [*ns, *INITS[init], "-g", f"{GRACE:g}", str(self.empty), "--", *command]
        if init == "tini":
            return [*ns, *INITS[init], "--", *command]
        return [*ns, *INITS[init], *command]

    def s6_argv(self, run_body):
        scan = self.dir / "s6scan"
        shutil.rmtree(scan, ignore_errors=True)
        write_script(scan / "storm" / "run", f"#!/bin/sh\n{run_body}\nexec sleep 100000\n")
        return ["unshare", "--pid", "--fork", "--mount-proc", "/usr/bin/s6-svscan", str(scan)]

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def orphans(lab, init):
    """(most zombies seen at once, zombies left at the end)."""
    argv = (lab.s6_argv(STORM) if init == "s6"
            else lab.argv(init, ["/bin/sh", "-c", STORM]))
    p = start(argv)
    try:
        pid1 = init_pid(p)
        most, left = 0, 0
        end = time.monotonic() + 3.4             # the storm, its 0.2 s sleeps, + 1 s
        while time.monotonic() < end:
            most = max(most, zombies_below(pid1))
            time.sleep(0.01)
        left = zombies_below(pid1)
        return most, left
    finally:
        stop(p)


def exit_codes(lab, init):
    cases = {"exit 3": ["/bin/sh", "-c", "exit 3"],
             "SIGKILL": ["/bin/sh", "-c", "kill -KILL $$"],
             "not found": ["/nonexistent/command"]}
    out = {}
    for label, command in cases.items():
        p = start(lab.argv(init, command))
        out[label] = code_of(p)
        STARTED.discard(p)
    return out


def term_once(lab, init, command, timeout):
    """(ms from SIGTERM to the init's exit or None, its exit code or None)."""
    p = start(lab.argv(init, command))
    try:
        pid1 = init_pid(p)
        deadline = time.monotonic() + 5
        while not children(pid1) and time.monotonic() < deadline:
            time.sleep(0.002)                    # the command has started
        time.sleep(0.3)                          # and set its traps
        t0 = time.monotonic()
        os.kill(pid1, signal.SIGTERM)
        t1 = pidfd_wait(pid1, timeout)
        code = code_of(p, 5) if t1 is not None else None
        return (None if t1 is None else (t1 - t0) * 1000), code
    finally:
        stop(p)


# --- the report ---------------------------------------------------------------------

def shown(x):
    """Counts and exit codes as they are; times as the other sections write them."""
    return fmt(x) if isinstance(x, float) else str(x)


def render(results, inits, when, took, peers):
    info = machine()
    names = " | ".join(inits)
    lines = [SECTION, "",
             "svscan as PID 1 of a fresh PID namespace with a main command, next to",
             "tini and dumb-init doing the same job (and s6-svscan where it can),",
             "all measured in the same run by `bench/init.py` (`make bench`).", "",
             f"- Date: {when:%Y-%m-%d %H:%M} UTC (run took {took:.0f} s)",
             "- Command: `.venv/bin/python bench/init.py`",
             f"- svtree: {svtree_revision()}",
             f"- Machine: {info['nproc']} CPUs (nproc), {info['cpu']}, Linux {info['kernel']}",
             "- Peers: " + (", ".join(f"{k} {v}" for k, v in peers.items()) or "none"), "",
             f"| Scenario | {names} |", "|---|" + "---:|" * len(inits)]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(i) for i in inits) + " |")

    def orphan_cell(i, k):
        r = results.get(("orphans", i))
        return "n/a" if r is None else "error" if isinstance(r, Exception) else shown(r[k])
    row(f"orphan storm ({ORPHANS}): most zombies at once", lambda i: orphan_cell(i, 0))
    row(f"orphan storm ({ORPHANS}): zombies left after 1 s", lambda i: orphan_cell(i, 1))
    for case in ("exit 3", "SIGKILL", "not found"):
        def code(i, case=case):
            r = results.get(("codes", i))
            return ("n/a" if r is None else "error" if isinstance(r, Exception)
                    else shown(r.get(case)))
        row(f"exit code, command {'killed by ' if case == 'SIGKILL' else ''}"
            f"{case if case != 'SIGKILL' else 'SIGKILL'}", code)

    def timing(key):
        def cell(i):
            r = results.get((key, i))
            if r is None:
                return "n/a"
            if isinstance(r, Exception):
                return "error"
            samples, codes = r
            if not samples:
                return f"still running after {STUBBORN_WAIT:g} s"
            return f"{shown(statistics.median(samples))} (n={len(samples)})"
        return cell
    row("SIGTERM to exit, command dies of TERM (ms, median)", timing("term"))
    row(f"SIGTERM to exit, command ignores TERM (ms; svscan -g {GRACE:g})", timing("stubborn"))

    def term_code(key):
        def cell(i):
            r = results.get((key, i))
            if r is None or isinstance(r, Exception) or not r[1]:
                return "n/a"
            return str(r[1][-1]) if r[1][-1] is not None else "n/a: still running"
        return cell
    row("exit code after SIGTERM, command dies of TERM", term_code("term"))
    row("exit code after SIGTERM, command ignores TERM", term_code("stubborn"))
    lines += ["", "n/a: not applicable (s6-svscan has no main command) or nothing to show.",
              "Zombies are counted from outside the namespace, every 10 ms, among all",
              "the init's descendants. A wait for the init's exit goes through a pidfd.",
              ""]
    return "\n".join(lines)


# key, command, rounds, seconds to wait for the init's exit
TERM_CASES = (("term", ["/bin/sh", "-c", "exec sleep 100000"], TERM_ROUNDS, 10),
              ("stubborn", ["/bin/sh", "-c", "trap '' TERM; exec sleep 100000"], 3,
               STUBBORN_WAIT))


def term_rounds(lab, inits, command, rounds, timeout):
    """Rounds of term_once over the inits, interleaved: {init: ([ms], [exit
    code])}, or the last error of the init."""
    got = {i: ([], []) for i in inits}
    for _ in range(rounds):
        for init in inits:
            r = guarded(term_once, lab, init, command, timeout)
            if isinstance(r, Exception):
                got[init] = r
                continue
            if isinstance(got[init], Exception):
                continue
            ms, code = r
            if ms is not None:
                got[init][0].append(ms)
            got[init][1].append(code)
    return got


def measure_inits(lab, inits, s6):
    """{(scenario, init): its outcome or error}; s6 (if installed) takes
    part in the orphan storm only."""
    results = {}
    for init in inits + (["s6"] if s6 else []):
        say(f"orphans {init} ...")
        results[("orphans", init)] = guarded(orphans, lab, init)
    for init in inits:
        say(f"exit codes {init} ...")
        results[("codes", init)] = guarded(exit_codes, lab, init)
    for key, command, rounds, timeout in TERM_CASES:
        got = term_rounds(lab, inits, command, rounds, timeout)
        for init in inits:
            results[(key, init)] = got[init]
            say(f"  {key} {init}: {got[init]}")
    return results


def main(argv=None):
    args = section_options(__doc__).parse_args(argv)
    if os.geteuid() != 0 or not shutil.which("unshare"):
        say("init.py: skipped: PID namespaces need root and unshare")
        return 0
    prepare()
    if not os.access(INITS["svtree"][0], os.X_OK):
        say("init.py: fatal: svscan missing: run make first")
        return 111
    inits = ["svtree"] + [i for i in ("tini", "dumb-init") if os.access(INITS[i][0], os.X_OK)]
    s6 = os.access("/usr/bin/s6-svscan", os.X_OK)
    peers = versions(inits[1:] + (["s6"] if s6 else []))
    when = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    lab = Lab()
    try:
        results = measure_inits(lab, inits, s6)
    finally:
        stop_started()
        reap_orphans()
        lab.close()
    inits_shown = inits + (["s6"] if s6 else [])
    text = render(results, inits_shown, when, time.monotonic() - t0, peers)
    publish(text, None if args.no_write else args.output, SECTION)
    return 0


def stop_started():
    """Every session start() started and stop() has not, killed."""
    for proc in list(STARTED):
        stop(proc)


if __name__ == "__main__":
    exit_with(main, stop_started)
