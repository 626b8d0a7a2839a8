#!/usr/bin/env python3
"""svscan as PID 1 of an OCI container under runc, next to tini.

    .venv/bin/python bench/container.py [--rounds N] [--output FILE]

What `docker stop` does, without Docker: `runc kill ID TERM` to the
container's PID 1, then the wait for its end. Two inits run the same
service, a shell loop that prints a line every 20 ms and, on TERM, prints a
final line and exits 0:

  svscan   `svscan -g 7 SCANDIR`, the service with a logger
           (`log/run`: `exec multilog t ./main`), as a service tree would.
  tini     `tini -- sh -c 'exec ./run > out'` in the service's directory,
           the reference init for a single child.

For each, N rounds (5 by default, interleaved) of: a fresh container, the
first line printed, `runc kill ID TERM`, then the time until PID 1 exits
(through a pidfd on its host pid) and until `runc run` exits (runc has
reaped PID 1 and deleted the container: what a runtime reports), both from
the moment `runc kill` is started, so the runc kill's own start-up (the same
for both) is in each figure; and whether the final line reached the log or
the file. Prints the section `## svscan as PID 1 under runc` (and replaces it
in FILE with --output; BENCHMARKS.md is not written otherwise). Skips, with
a line on standard error and exit 0, unless run as root with runc, tini and
unshare, and runc can run a container here.

The bundle (also used by tests/test_container.py): config.json is `runc
spec`'s, edited (see Bundle), and its root is a directory onto which the
host's / is bind-mounted. That mount is made only inside a mount namespace
of the `runc run` process's own (`unshare --mount`, private), then made a
slave: the host never sees it, nothing mounted in the container propagates
back, and there is nothing to unmount whatever happens, since the namespace
goes with its last process. Every process started runs in a session of its
own and is killed at the end, every container is `runc delete -f`'d, every
wait has a deadline. Standard library only.
"""

import argparse
import copy
import datetime
import functools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (bench/common.py, shared by the benchmark scripts)
    VENV_BIN, BenchError, exit_with, fmt, kill_group, machine, pidfd_wait, prepare, ratio,
    reap_orphans, say, svtree_revision, versions, publish, write_script)

SECTION = "## svscan as PID 1 under runc"
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROUNDS = 5
PERIOD = 0.02                  # the talker's line period, seconds
GRACE = 7.0                    # svscan's default, written out
WAIT = 20.0                    # longest wait for anything

# The talker: a line every PERIOD; on TERM a final line that says how many
# came before it, so a log can be checked for completeness on its own.
TALKER = """#!/bin/sh
i=0
trap 'echo "{name}: last line after $i"; exit 0' TERM
while :; do i=$((i+1)); echo "{name}: line $i"; sleep {period}; done
"""


# --- the bundle ---------------------------------------------------------------------

class Unusable(Exception):
    """runc cannot run a container on this machine; the message says why."""


def runc_path():
    return shutil.which("runc", path=os.environ.get("PATH", "") + ":" + SBIN_PATH)


def missing():
    """Why containers cannot even be tried here ("" if they can)."""
    if os.geteuid() != 0:
        return "runc containers need root"
    for program in ("runc", "unshare", "mount"):
        if not shutil.which(program, path=os.environ.get("PATH", "") + ":" + SBIN_PATH):
            return f"{program} not installed"
    return ""


class Bundle:
    """An OCI bundle in directory top, and the containers started from it.

    config.json is `runc spec`'s (its capabilities, rlimits, masked paths,
    devices, noNewPrivileges), with these changes:
      - no network namespace: nothing to set up, the host's network;
      - /sys a read-only rbind of the host's instead of a fresh sysfs, which
        only the owner of a network namespace may mount (EBUSY otherwise);
      - a writable root: services write supervise/ and logs in the scan
        directory, which is the same path on the host;
      - terminal false, and the process's args, cwd and PATH.
    top/state is runc's --root, so the containers of one bundle are seen by
    no other runc user. pivot is False for `runc run --no-pivot`, needed
    where pivot_root(2) fails (a root on an initramfs); probe() finds out.
    """

    def __init__(self, top: Path, pivot=True):
        self.top = Path(top)
        self.rootfs = self.top / "rootfs"
        self.state = self.top / "state"
        self.pivot = pivot
        self.containers = []
        for d in (self.rootfs, self.state):
            d.mkdir(parents=True, exist_ok=True)
        (self.top / "config.json").unlink(missing_ok=True)       # runc spec keeps an old one
        spec = subprocess.run([runc_path(), "spec", "--bundle", str(self.top)],
                              capture_output=True, text=True, timeout=WAIT)
        if spec.returncode != 0:
            raise Unusable(f"runc spec failed: {last_line(spec.stderr)}")
        self.spec = json.loads((self.top / "config.json").read_text())

    def config(self, args, cwd="/"):
        c = copy.deepcopy(self.spec)
        c["process"].update(terminal=False, args=[str(a) for a in args], cwd=str(cwd),
                            env=[f"PATH={SBIN_PATH}"])
        c["root"] = {"path": str(self.rootfs), "readonly": False}
        c["mounts"] = [m for m in c["mounts"]
                       if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        c["mounts"] += [
            {"destination": "/sys", "type": "bind", "source": "/sys",
             "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}]
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"]
                                    if n["type"] != "network"]
        return c

    def start(self, args, cwd="/"):
        """A Container running args as its PID 1 (`runc run` in the foreground)."""
        (self.top / "config.json").write_text(json.dumps(self.config(args, cwd), indent=1))
        container = Container(self)
        self.containers.append(container)
        return container

    def runc(self, *args, timeout=WAIT):
        return subprocess.run([runc_path(), "--root", str(self.state), *map(str, args)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def close(self):
        for container in self.containers:
            container.delete()
        self.containers.clear()


# rootfs gets the host's / in the new (private) mount namespace, made a slave
# so that nothing mounted below it from here on goes back; then exec runc
MOUNT_AND_RUN = 'mount --rbind / "$1" && mount --make-rslave "$1" && shift && exec "$@"'


class Container:
    """One foreground `runc run` in a session of its own, its output in a file."""

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self.id = f"svtree-{os.getpid()}-{secrets.token_hex(4)}"
        self.output = bundle.top / f"{self.id}.out"
        self.deleted = False
        run = [runc_path(), "--root", str(bundle.state), "run",
               *([] if bundle.pivot else ["--no-pivot"]), "--bundle", str(bundle.top), self.id]
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--",
                 "/bin/sh", "-c", MOUNT_AND_RUN, "sh", str(bundle.rootfs), *run],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)

    def pid(self):
        """The host pid of the container's PID 1 once it runs; 0 before."""
        state = self.bundle.runc("state", self.id)
        if state.returncode != 0:
            return 0
        info = json.loads(state.stdout)
        return info["pid"] if info.get("status") == "running" else 0

    def running(self, timeout=WAIT):
        """PID 1's host pid, once it runs the container's program; raises
        Unusable if `runc run` ends first or timeout passes."""
        deadline = time.monotonic() + timeout
        pid = 0
        while time.monotonic() < deadline:
            pid = pid or self.pid()
            if pid and not runc_init(pid):
                return pid
            if self.proc.poll() is not None:
                raise Unusable(f"runc run exited {self.proc.returncode}: "
                               f"{last_line(self.text())}")
            time.sleep(0.005)
        raise Unusable(f"container {self.id} not running after {timeout:g} s")

    def kill(self, signame="TERM"):
        """`runc kill ID SIGNAME`, as docker stop sends it."""
        done = self.bundle.runc("kill", self.id, signame)
        if done.returncode != 0:
            raise Unusable(f"runc kill failed: {last_line(done.stderr)}")

    def wait(self, timeout=WAIT):
        """runc run's exit code (PID 1's), or None after timeout seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def text(self):
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def delete(self):
        """Gone whatever its state: runc delete -f (which KILLs PID 1 and so
        the whole PID namespace), then runc run's session."""
        if self.deleted:
            return
        self.deleted = True
        try:
            self.bundle.runc("delete", "-f", self.id)
        except subprocess.TimeoutExpired:
            pass
        kill_group(self.proc.pid)
        self.wait(5)


def runc_init(pid):
    """True while pid is still `runc init`: runc state says "running" as soon
    as runc start has opened the exec fifo, before runc init's execve."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return args[1:2] == [b"init"] and args[0].endswith(b"runc")


def last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no message"


def probe(top: Path):
    """A Bundle in top, once `true` has run in a container from it; raises
    Unusable with runc's words when that fails. pivot_root(2) failing (a
    root on an initramfs) is worked around with --no-pivot."""
    why = missing()
    if why:
        raise Unusable(why)
    for pivot in (True, False):
        bundle = Bundle(top, pivot=pivot)
        try:
            container = bundle.start(["/bin/true"])
            code = container.wait()
            why = last_line(container.text())
        finally:
            bundle.close()
        if code == 0:
            return bundle
        if code is None:
            raise Unusable(f"runc run of /bin/true still running after {WAIT:g} s")
        if "pivot_root" not in why:
            break
    raise Unusable(f"runc run of /bin/true exited {code}: {why}")


# --- the service, and the two inits -------------------------------------------------

def talker(directory: Path, name="talker", logged=True, period=PERIOD):
    """A service directory whose run is TALKER; with a multilog logger
    writing to log/main if logged."""
    write_script(directory / "run", TALKER.format(name=name, period=period))
    if logged:
        write_script(directory / "log" / "run",
                     f"#!/bin/sh\nexec {VENV_BIN / 'multilog'} t ./main\n")
    return directory


def svscan_args(scandir: Path, grace=GRACE):
    return [VENV_BIN / "svscan", "-g", f"{grace:g}", scandir]


def tini_args():
    """tini as PID 1, running ./run of the cwd with its output to ./out."""
    return [shutil.which("tini") or "/usr/bin/tini", "--", "/bin/sh", "-c", "exec ./run > out"]


def logged_lines(directory: Path):
    """The lines in a multilog directory's current file, without their labels."""
    try:
        text = (directory / "current").read_text()
    except FileNotFoundError:
        return []
    return [line.split(" ", 1)[1] for line in text.splitlines()]


def file_lines(path: Path):
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def complete(lines, name="talker"):
    """True if lines are exactly what a talker prints up to its TERM."""
    if not lines or not lines[-1].startswith(f"{name}: last line after "):
        return False
    n = int(lines[-1].rsplit(" ", 1)[1])
    return lines == [f"{name}: line {k}" for k in range(1, n + 1)] + [lines[-1]]


# --- the benchmark ------------------------------------------------------------------

def term_once(bundle, workdir: Path, init):
    """(ms to PID 1's exit, ms to runc run's exit, exit code, final line kept)."""
    service = talker(workdir / "talker", logged=init == "svscan")
    if init == "svscan":
        container = bundle.start(svscan_args(workdir), cwd="/")
        printed = functools.partial(logged_lines, service / "log" / "main")
    else:
        container = bundle.start(tini_args(), cwd=service)
        printed = functools.partial(file_lines, service / "out")
    try:
        pid1 = container.running()
        deadline = time.monotonic() + WAIT
        while not printed():                         # its trap is set
            if time.monotonic() > deadline:
                raise BenchError(f"{init}: no line after {WAIT:g} s")
            time.sleep(0.005)
        t0 = time.monotonic()
        container.kill("TERM")
        t_pid1 = pidfd_wait(pid1, WAIT)
        t_runc = pidfd_wait(container.proc.pid, WAIT)
        code = container.wait(5)
        if t_pid1 is None or t_runc is None:
            raise BenchError(f"{init}: still running {WAIT:g} s after TERM")
        return ((t_pid1 - t0) * 1000, (t_runc - t0) * 1000, code, complete(printed()))
    finally:
        container.delete()


def measure(bundle, lab: Path, rounds):
    got = {"svscan": [], "tini": []}
    for r in range(rounds):                          # interleaved
        for init, samples in got.items():
            workdir = lab / f"{init}-{r}"
            workdir.mkdir()
            samples.append(term_once(bundle, workdir, init))
            say(f"  {init} round {r + 1}: {samples[-1]}")
    return got


def render(got, when, took, rounds, runtime):
    info = machine()
    med = {init: [statistics.median(s[k] for s in samples) for k in (0, 1)]
           for init, samples in got.items()}

    def row(label, fn, ratio=None):
        cells = [fn(init) for init in ("svscan", "tini")]
        return f"| {label} | {cells[0]} | {cells[1]} | {ratio or ''} |"

    def median_range(init, k):
        s = sorted(x[k] for x in got[init])
        return f"{fmt(statistics.median(s))} ({fmt(s[0])}..{fmt(s[-1])})"
    lines = [SECTION, "",
             "`runc kill ID TERM` (what `docker stop` sends) to a container whose PID 1",
             "is svscan or tini, running the same service: a shell loop that prints a",
             f"line every {PERIOD * 1000:g} ms and, on TERM, a final line, then exits 0 (under",
             "svscan with a multilog logger, under tini into a file). Measured by",
             "`bench/container.py` in one run, rounds interleaved.", "",
             f"- Date: {when:%Y-%m-%d %H:%M} UTC (run took {took:.0f} s)",
             f"- Command: `.venv/bin/python bench/container.py --rounds {rounds}`",
             f"- svtree: {svtree_revision()}",
             f"- Machine: {info['nproc']} CPUs (nproc), {info['cpu']}, Linux {info['kernel']}",
             f"- Runtime: {runtime['runc']}; tini {runtime['tini']}", "",
             "| Measure | svscan | tini | svscan/tini |", "|---|---:|---:|---:|",
             row(f"runc kill TERM to PID 1's exit (ms, median of {rounds}; min..max)",
                 lambda i: median_range(i, 0), ratio(med["svscan"][0], med["tini"][0])),
             row(f"runc kill TERM to runc run's exit (ms, median of {rounds}; min..max)",
                 lambda i: median_range(i, 1), ratio(med["svscan"][1], med["tini"][1])),
             row("exit codes", lambda i: " ".join(sorted({str(s[2]) for s in got[i]}))),
             row("rounds with every line, the final one included, kept",
                 lambda i: f"{sum(s[3] for s in got[i])}/{len(got[i])}"),
             "", "Times start when `runc kill` is started, so its own start-up (some ms, the",
             "same for both) is in both columns. PID 1's exit is seen through a pidfd on its",
             "host pid; runc run exits once it has reaped PID 1 and deleted the container.",
             "svscan's figure includes taking down the service's supervise, then its",
             "logger draining the pipe and exiting, then their supervise processes.", ""]
    return "\n".join(lines)


def runtime_versions():
    try:
        runc = subprocess.run([runc_path(), "--version"], capture_output=True, text=True,
                              timeout=WAIT).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        runc = "runc ?"
    return {"runc": runc, "tini": versions(["tini"])["tini"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=ROUNDS)
    p.add_argument("--output", help="replace the section in this markdown file")
    args = p.parse_args(argv)
    why = missing() or ("" if shutil.which("tini") else "tini not installed")
    if why:
        say(f"container.py: skipped: {why}")
        return 0
    if not os.access(VENV_BIN / "svscan", os.X_OK):
        say("container.py: fatal: svscan missing: run make first")
        return 111
    prepare()
    lab = Path(tempfile.mkdtemp(prefix="svbench-container-"))
    when = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    bundle = None
    try:
        try:
            bundle = probe(lab / "bundle")
        except Unusable as e:
            say(f"container.py: skipped: runc cannot run a container here: {e}")
            return 0
        got = measure(bundle, lab, args.rounds)
    except (BenchError, Unusable) as e:
        say(f"container.py: fatal: {e}")
        return 111
    finally:
        if bundle:
            bundle.close()
        reap_orphans()
        shutil.rmtree(lab, ignore_errors=True)
    text = render(got, when, time.monotonic() - t0, args.rounds, runtime_versions())
    publish(text, args.output, SECTION)
    return 0


if __name__ == "__main__":
    exit_with(main)
