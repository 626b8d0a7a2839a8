#!/usr/bin/env python3
"""Fault scenarios, svtree next to its peers: the same faults, outcomes counted.

    .venv/bin/python bench/faults.py [--output FILE] [--no-write]

Scenarios, each against svtree and every installed peer (daemontools, runit,
s6), each system under its own scanner (svtree svscan, svscan, runsvdir,
s6-svscan):

  supervise-kill   one service (`exec sleep 100000`, marked through its
                   environment); its supervisor (supervise, runsv,
                   s6-supervise) SIGKILLed; once the scanner has started a new
                   one (up to 8 s: daemontools rescans every 5 s), how many
                   instances of the service run (expected 1).
  scanner-kill     the scanner SIGKILLed and started again on the same
                   directory; supervisors of the service afterwards (expected
                   1), and whether the service kept its pid.
  logger-kill      a talker writing 20,000 numbered lines as fast as it can,
                   with each system's own logger as log/run (multilog, svlogd,
                   s6-log); the logger SIGKILLed 3 times as 5,000, 10,000 and
                   15,000 lines have been filed; lines lost and repeated in
                   the log directory at the end.

Replaces (or adds) the section `## Faults next to the peers` of BENCHMARKS.md,
before `## Shutdown, logging and load` if that exists, else at the end.
Trees are bench/common.py's, the same as run.py's: a temp dir each, the
scanner in a session of its own, every process tagged through its
environment and killed at the end, whatever happens; this script is a child
subreaper. Every wait has a deadline. Standard library only.
"""

import datetime
import os
import re
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (bench/common.py, shared by the benchmark scripts)
    TAG_VAR, VENV_BIN, BenchError, Tree, alive, cleanup, environ_of, exit_with, guarded,
    installed_peers, kill, machine, prepare, read_stat, reap_orphans, say, section_options,
    svtree_revision, tagged, versions, publish, write_script)

SECTION = "## Faults next to the peers"
BEFORE = "## Shutdown, logging and load"
SYSTEMS = ("svtree", "daemontools", "runit", "s6")
PROGRAMS = {
    "svtree": [str(VENV_BIN / p) for p in ("svscan", "supervise", "multilog")],
    "daemontools": ["/usr/bin/svscan", "/usr/bin/supervise", "/usr/bin/multilog"],
    "runit": ["/usr/bin/runsvdir", "/usr/bin/runsv", "/usr/bin/svlogd"],
    "s6": ["/usr/bin/s6-svscan", "/usr/bin/s6-supervise", "/usr/bin/s6-log"],
}
SUPERVISOR = {"svtree": "supervise", "daemontools": "supervise", "runit": "runsv",
              "s6": "s6-supervise"}
LOGGER = {"svtree": "multilog", "daemontools": "multilog", "runit": "svlogd",
          "s6": "s6-log"}
MARK_VAR = "SVFAULT_MARK"
TOTAL = 20000
LINE = b"%06d abcdefghij"
WIDTH = len(LINE % 0) + 1
KILL_AT = (5000, 10000, 15000)
RESPAWN_WAIT = 8.0
OVERALL = 170.0                  # seconds: scenarios not begun by then are skipped


# --- processes ------------------------------------------------------------------

def program_of(pid):
    """The process's comm: svtree's svscan forks its supervise processes
    without exec and names them `supervise` (argv stays svscan's)."""
    try:
        return read_stat(pid)[0]
    except (OSError, ValueError):
        return ""


def live_tagged(tree):
    return [p for p in tagged(tree.tag) if alive(p)]


def services(tree):
    """Live instances of the marked service: sleep with MARK_VAR in its env."""
    out = []
    for pid in live_tagged(tree):
        if program_of(pid) == "sleep" and f"{MARK_VAR}={tree.tag}".encode() in environ_of(pid):
            out.append(pid)
    return sorted(out)


def running(tree, name):
    return sorted(p for p in live_tagged(tree) if program_of(p) == name)


def wait_for(cond, timeout, interval=0.05):
    """cond()'s first true value within timeout seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
        reap_orphans()


# --- trees ----------------------------------------------------------------------

SLEEPER = f"#!/bin/sh\nexec env {MARK_VAR}=\"${TAG_VAR}\" sleep 100000\n"


def sleeper_tree(system):
    tree = Tree(system)
    write_script(tree.scan / "svc" / "run", SLEEPER)
    return tree


def restart_scanner(tree):
    """SIGKILL the scanner, reap it, start another on the same directory."""
    tree.proc.kill()
    tree.proc.wait(timeout=5)
    if tree.log:
        tree.log.close()
    tree.start()


# --- 1. supervise SIGKILLed -------------------------------------------------------

def start_sleeper(tree, sup):
    """Start the tree; its supervisors (sup) once the one service runs,
    within 10 s."""
    tree.start()
    first = wait_for(lambda: len(services(tree)) == 1 and running(tree, sup), 10)
    if not first:
        raise BenchError("the service did not start within 10 s")
    return first


def supervise_kill(system):
    tree = sleeper_tree(system)
    sup = SUPERVISOR[system]
    try:
        old_sup = start_sleeper(tree, sup)[0]
        old_svc = services(tree)[0]
        kill(old_sup)
        new = wait_for(lambda: [p for p in running(tree, sup) if p != old_sup], RESPAWN_WAIT)
        if not new:
            return {"instances": len(services(tree)), "note": "no new supervisor in 8 s"}
        time.sleep(1.5)                   # the new supervisor starts (or adopts) the service
        pids = services(tree)
        return {"instances": len(pids), "old kept": old_svc in pids,
                "supervisors": len(running(tree, sup))}
    finally:
        tree.stop()


# --- 2. scanner SIGKILLed and started again ----------------------------------------

def scanner_kill(system):
    tree = sleeper_tree(system)
    sup = SUPERVISOR[system]
    try:
        start_sleeper(tree, sup)
        time.sleep(0.3)
        old_svc = services(tree)[0]
        restart_scanner(tree)
        time.sleep(3.0)                   # every scanner scans at once when it starts
        pids = services(tree)
        return {"supervisors": len(running(tree, sup)), "instances": len(pids),
                "kept pid": pids == [old_svc]}
    finally:
        tree.stop()


# --- 3. the logger SIGKILLed 3 times mid-stream ---------------------------------------

TALKER = f"""#!/bin/sh
seq -f '%06g abcdefghij' 1 {TOTAL}
touch done
exec sleep 100000
"""


def logger_run(system):
    if system == "svtree":
        return f"#!/bin/sh\nexec {shlex.quote(str(VENV_BIN / 'multilog'))} ./main\n"
    if system == "daemontools":
        return "#!/bin/sh\nexec /usr/bin/multilog ./main\n"
    if system == "runit":
        return "#!/bin/sh\nexec /usr/bin/svlogd ./main\n"
    return "#!/bin/sh\nexec /usr/bin/s6-log ./main\n"


def log_files(d):
    try:
        return [n for n in os.listdir(d) if n == "current" or n.startswith("@")]
    except FileNotFoundError:
        return []


def logged_bytes(d):
    total = 0
    for n in log_files(d):
        try:
            total += os.stat(os.path.join(d, n)).st_size
        except FileNotFoundError:
            pass
    return total


def everything(d):
    """Every line in a log directory, oldest file first (retried if a rotation
    renames a file under us)."""
    for _ in range(50):
        try:
            names = sorted(n for n in log_files(d) if n.startswith("@"))
            data = b"".join((d / n).read_bytes() for n in names)
            if (d / "current").exists():
                data += (d / "current").read_bytes()
            return data.splitlines()
        except FileNotFoundError:
            time.sleep(0.01)
    raise BenchError(f"could not read {d}")


def wait_idle(d, quiet=1.0, timeout=20.0):
    """Until the log directory d has not grown for quiet seconds (timeout
    seconds at most)."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = logged_bytes(d)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def logger_kill(system):
    tree = Tree(system)
    talker = tree.scan / "talker"
    (talker / "log" / "main").mkdir(parents=True)
    write_script(talker / "run", TALKER)
    write_script(talker / "log" / "run", logger_run(system))
    main = talker / "log" / "main"
    name = LOGGER[system]
    kills = mid = 0
    try:
        tree.start()
        if not wait_for(lambda: running(tree, name), 10, 0.01):
            raise BenchError(f"{name} did not start within 10 s")
        for mark in KILL_AT:
            if not wait_for(lambda: logged_bytes(main) >= mark * WIDTH
                            or (talker / "done").exists(), 20, 0.001):
                raise BenchError(f"{mark} lines not filed within 20 s")
            pids = running(tree, name)
            if not pids:
                raise BenchError(f"no {name} to kill")
            if not (talker / "done").exists():
                mid += 1
            for pid in pids:
                kill(pid)
            kills += 1
            if not wait_for(lambda: [p for p in running(tree, name) if p not in pids], 10,
                            0.005):
                raise BenchError(f"{name} not restarted within 10 s")
        if not wait_for(lambda: (talker / "done").exists(), 30):
            raise BenchError("the talker did not finish within 30 s")
        wait_idle(main)
        lines = everything(main)
    finally:
        tree.stop()
    well = re.compile(rb"\d{6} abcdefghij")
    good = [int(l[:6]) for l in lines if well.fullmatch(l)]
    return {"lost": len(set(range(1, TOTAL + 1)) - set(good)),
            "repeated": len(good) - len(set(good)),
            "torn": len(lines) - len(good), "kills": kills, "mid": mid}


# --- report -----------------------------------------------------------------------------

def cell(r, fn):
    if isinstance(r, Exception):
        return "error"
    if r is None:
        return "skipped"
    return fn(r)


def render(results, systems, info, vers, when, took):
    rows = ["| System | supervisor SIGKILLed: service instances after restart (want 1) "
            "| scanner SIGKILLed and restarted: supervisors (want 1) | … service kept its pid "
            "| logger SIGKILLed 3x in 20,000 lines: lost | … repeated | … torn |",
            "|---|---:|---:|---|---:|---:|---:|"]
    details = []
    for s in systems:
        a = results[("supervise-kill", s)]
        b = results[("scanner-kill", s)]
        c = results[("logger-kill", s)]
        name = s if s == "svtree" else f"{s} {vers.get(s, '?')}"
        rows.append("| " + " | ".join([
            name,
            cell(a, lambda r: str(r["instances"]) + (f" ({r['note']})" if "note" in r else "")),
            cell(b, lambda r: str(r["supervisors"])),
            cell(b, lambda r: "yes" if r["kept pid"] else f"no ({r['instances']} running)"),
            cell(c, lambda r: str(r["lost"])),
            cell(c, lambda r: str(r["repeated"])),
            cell(c, lambda r: str(r["torn"])),
        ]) + " |")
        for key in ("supervise-kill", "scanner-kill", "logger-kill"):
            r = results[(key, s)]
            if isinstance(r, Exception):
                details.append(f"{s}, {key}: error: {r}")
            elif key == "logger-kill" and r and r["mid"] < 3:
                details.append(f"{s}, logger-kill: only {r['mid']} of {r['kills']} kills "
                               f"landed before the talker had written its last line")
    dup = [s for s in systems if isinstance(results[("supervise-kill", s)], dict)
           and results[("supervise-kill", s)]["instances"] > 1]
    summary = (f"Duplicates after a supervisor's SIGKILL: {', '.join(dup)}." if dup
               else "No system ran the service twice after a supervisor's SIGKILL.")
    return f"""{SECTION}

Written by `bench/faults.py` ({when:%Y-%m-%d %H:%M} UTC, {took:.0f} s; svtree
{info['revision']}, Linux {info['kernel']}, {info['nproc']} CPUs). One run of
each scenario per system, each under its own scanner (svtree's svscan,
daemontools' svscan, runsvdir, s6-svscan), in a temp dir of its own.

{chr(10).join(rows)}

{summary}

- **supervisor SIGKILLed**: one service, `exec sleep 100000` marked through
  its environment; its supervisor (supervise, runsv, s6-supervise) gets
  SIGKILL; once the scanner has started a new one (deadline {RESPAWN_WAIT:g} s: daemontools'
  svscan rescans every 5 s, s6-svscan restarts it after about 1 s) and
  1.5 s more, the live instances of the service are counted. A peer's old
  service is orphaned and its new supervisor starts a second one; svtree's
  supervise adopts the `./run` its predecessor left.
- **scanner SIGKILLed and restarted**: the same service; the scanner gets
  SIGKILL and another is started on the same directory; 3 s later, the
  supervisors of the service and whether the service still has its pid.
- **logger SIGKILLed 3 times**: a talker runs `seq -f '%06g abcdefghij' 1
  {TOTAL}` (as fast as it can; it blocks when the pipe is full), with each
  system's own logger as `log/run` writing to `./main` (`multilog ./main`,
  `svlogd ./main`, `s6-log ./main`); the logger gets SIGKILL (kill -9, not
  through the system's control tool) as {', '.join(f'{m:,}' for m in KILL_AT)} lines have been
  filed, and the supervisor restarts it. Once the log directory is idle
  for 1 s, every well-formed line in `current` and `@…` files is counted:
  lost = numbers never filed, repeated = numbers filed more than once, torn
  = lines that are not whole (the logger died holding part of a line).
{''.join(chr(10) + '- ' + d for d in details)}
"""


SCENARIOS = {"supervise-kill": supervise_kill, "scanner-kill": scanner_kill,
             "logger-kill": logger_kill}


def run_scenarios(systems, t0):
    """{(scenario, system): its outcome, the error it raised, or None where
    it was skipped for want of time}; every tree killed after, whatever
    happens."""
    results = {}
    try:
        for key, fn in SCENARIOS.items():
            for s in systems:
                if time.monotonic() - t0 > OVERALL:
                    say(f"{key} {s}: skipped (over {OVERALL:.0f} s)")
                    results[(key, s)] = None
                    continue
                say(f"{key} {s} ...")
                r = results[(key, s)] = guarded(fn, s)
                if not isinstance(r, Exception):
                    say(f"  {r}")
    finally:
        cleanup()
    return results


def main(argv=None):
    args = section_options(__doc__).parse_args(argv)
    prepare()
    when = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    peers = installed_peers("faults.py", PROGRAMS, SYSTEMS[1:])
    if peers is None:
        return 111
    systems = ["svtree"] + peers
    results = run_scenarios(systems, t0)
    took = time.monotonic() - t0
    info = machine()
    info["revision"] = svtree_revision()
    text = render(results, systems, info, versions(peers), when, took)
    publish(text, None if args.no_write else args.output, SECTION, BEFORE)
    return 0


if __name__ == "__main__":
    exit_with(main)
