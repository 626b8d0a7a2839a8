#!/usr/bin/env python3
"""Connections across restarts: svtree's `socket` file next to its peers.

    .venv/bin/python bench/sockets.py [--quick] [--only NAME[,NAME...]] [--output FILE]

One server, restarted 20 times under a steady client, on each system:

  with-socket      svtree, the service directory holding a `socket` file
                   (`tcp:127.0.0.1:PORT`): svscan holds the listening socket
                   and supervise hands it to every start of ./run as fd 3
                   (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES); restarted with
                   `svc -r`.
  without-socket   svtree, no `socket` file: the server binds the port
                   itself at every start; `svc -r`.
  daemontools      svscan and supervise; `svc -t` (supervise starts it again).
  runit            runsvdir and runsv; `sv restart`.
  s6               s6-svscan and s6-supervise; `s6-svc -r`.

The server is the same small Python program everywhere (tests/test_sockets.py's):
it uses fd 3 when LISTEN_PID is its pid, and binds the port itself (with
SO_REUSEADDR) otherwise, as a server must without socket activation; it
answers each connection with its pid and closes it. A TERM ends it.

The client, a process of its own, connects in a loop as fast as it can, one
connection at a time, and counts each connection as answered, refused
(ECONNREFUSED), reset (ECONNRESET), dropped (closed before the answer) or
timed out, and the time spent refusing (from a spell's first refused
connect to the next answer). Each restart is the system's own command, then
a wait until the client has had an answer from the new server, then a pause
of 1.2 s, so that no supervisor's one-start-a-second throttle is in the
figures. Per system and round, over the 20 restarts: connections tried,
refused, reset, dropped and timed out, the time refusing, the slowest
answer; medians over 3 rounds (1 with --quick), systems interleaved, each
svtree figure next to each peer's.

A NAME for --only is with-socket, without-socket (svtree's two; both if
neither is named) or a peer (daemontools, runit, s6). A run with --only
writes no BENCHMARKS.md unless --output is given; otherwise the section
`## Connections across restarts` is replaced (or added at the end).

Trees are bench/common.py's: a temp dir each, the scanner in a session of
its own, every process tagged through its environment and killed at the
end, whatever happens; this script is a child subreaper. Every wait has a
deadline. Standard library only.
"""

import os
import select
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (bench/common.py, shared by the benchmark scripts)
    VENV_BIN, BenchError, Figure, Run, Tree, bench_options, cleanup, exit_with, end_group, finish,
    fmt, installed_peers, kill, parsed, prepare, publish, rounds, say, spawn, spread, started)

SECTION = "## Connections across restarts"
VARIANTS = ("with-socket", "without-socket")       # svtree's, NAMEs for --only
PEERS = ("daemontools", "runit", "s6")
PROGRAMS = {
    "svtree": [str(VENV_BIN / p) for p in ("svscan", "svc")],
    "daemontools": ["/usr/bin/svscan", "/usr/bin/supervise", "/usr/bin/svc"],
    "runit": ["/usr/bin/runsvdir", "/usr/bin/runsv", "/usr/bin/sv"],
    "s6": ["/usr/bin/s6-svscan", "/usr/bin/s6-supervise", "/usr/bin/s6-svc"],
}


class System:
    """How one system runs the server: its tree, whether the service has a
    `socket` file, the command that restarts it (the service dir follows)."""

    def __init__(self, tree, held, restart):
        self.tree, self.held, self.restart = tree, held, restart

    def shown(self):
        return " ".join(Path(self.restart[0]).name if i == 0 else a
                        for i, a in enumerate(self.restart))


SYSTEMS = {
    "with-socket": System("svtree", True, [str(VENV_BIN / "svc"), "-r"]),
    "without-socket": System("svtree", False, [str(VENV_BIN / "svc"), "-r"]),
    "daemontools": System("daemontools", False, ["/usr/bin/svc", "-t"]),
    "runit": System("runit", False, ["/usr/bin/sv", "restart"]),
    "s6": System("s6", False, ["/usr/bin/s6-svc", "-r"]),
}
LABEL = {"with-socket": "svtree with socket", "without-socket": "svtree without socket"}
RESTARTS = 20
FATES = ("answered", "refused", "reset", "dropped", "timeouts")   # of a connection
ROUNDS, QUICK_ROUNDS = 3, 1
GAP = 1.2              # seconds after the new server answers: past every 1 s throttle
WAIT = 15.0            # longest wait for a start, an answer, a command

# The server, tests/test_sockets.py's too; it says on its stdout (the
# tree's log) which way it got its socket.
SERVER = r"""
import os, socket, sys
if os.environ.get("LISTEN_PID") == str(os.getpid()):
    assert os.environ["LISTEN_FDS"] == "1", os.environ["LISTEN_FDS"]
    print("given", os.environ["LISTEN_FDNAMES"], flush=True)
    s = socket.socket(fileno=3)
else:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(128)
    print("bound", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"%d\n" % os.getpid())
    c.close()
"""

# The client: one connection at a time, as fast as it can, until a TERM.
# It prints `pid PID T` when a new pid answers (T: its monotonic time),
# `refusing MS` when an answer ends a spell of refusals (MS: from the start
# of the first refused connect to that answer), and at the end
# `counts ANSWERED REFUSED RESET DROPPED TIMEOUTS SLOWEST_MS`.
CLIENT = r"""
import signal, socket, sys, time
stop = False
def done(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, done)
address = ("127.0.0.1", int(sys.argv[1]))
answered = refused = reset = dropped = timeouts = 0
slowest, last, refusing = 0.0, b"", None
def answer(c):
    data = b""
    while not data.endswith(b"\n"):
        more = c.recv(100)
        if not more:
            return b""
        data += more
    return data.strip()
while not stop:
    c = socket.socket()
    c.settimeout(5)
    t0 = time.monotonic()
    try:
        c.connect(address)
        pid = answer(c)
    except ConnectionRefusedError:
        refused += 1
        refusing = t0 if refusing is None else refusing
        continue
    except ConnectionResetError:
        reset += 1
        continue
    except TimeoutError:
        timeouts += 1
        continue
    except OSError:
        dropped += 1
        continue
    finally:
        c.close()
    if not pid:
        dropped += 1
        continue
    t1 = time.monotonic()
    answered += 1
    slowest = max(slowest, t1 - t0)
    if refusing is not None:
        print("refusing", (t1 - refusing) * 1000, flush=True)
        refusing = None
    if pid != last:
        last = pid
        print("pid", pid.decode(), t1, flush=True)
print("counts", answered, refused, reset, dropped, timeouts, slowest * 1000, flush=True)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port):
    """Whether a server answers on port (a connection of our own)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            return bool(c.recv(100))
    except OSError:
        return False


def listening(port, timeout=WAIT):
    """Once a server answers on port; BenchError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not answers(port):
        if time.monotonic() > deadline:
            raise BenchError(f"no server answered within {timeout:g} s")
        time.sleep(0.01)


# --- the client -----------------------------------------------------------------------

class Client:
    """The client process, and what it has said on its stdout."""

    def __init__(self, port):
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            self.pid = spawn([sys.executable, "-c", CLIENT, str(port)], stdout=w)
        finally:
            os.close(w)
        self.r = r
        self.partial = b""
        self.answers = []           # (monotonic time, server pid), a line per new pid
        self.refusing = []          # ms of each spell of refusals
        self.counts = None
        self.eof = False
        self.reaped = False

    def pump(self, timeout):
        """Wait up to timeout seconds for lines; record them."""
        if self.eof or not select.select([self.r], [], [], max(0.0, timeout))[0]:
            return
        data = os.read(self.r, 65536)
        self.eof = not data
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            words = line.decode().split()
            if words[:1] == ["pid"]:
                self.answers.append((float(words[2]), int(words[1])))
            elif words[:1] == ["refusing"]:
                self.refusing.append(float(words[1]))
            elif words[:1] == ["counts"]:
                self.counts = dict(zip((*FATES, "slowest"), map(float, words[1:])))

    def new_server(self, old, timeout=WAIT):
        """(time, pid) of the first answer from a server other than old."""
        deadline = time.monotonic() + timeout
        while not self.answers or self.answers[-1][1] == old:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                raise BenchError(f"no answer from a new server within {timeout:g} s")
            self.pump(min(left, 0.5))
        return self.answers[-1]

    def stop(self):
        """TERM it; its counts and its spells of refusals."""
        kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + WAIT
        while not self.eof and time.monotonic() < deadline:
            self.pump(deadline - time.monotonic())
        finish(self.pid, 5, "the client")
        self.reaped = True
        if self.counts is None:
            raise BenchError("the client gave no counts")
        return {**self.counts, "spells": self.refusing}

    def close(self):
        if not self.reaped:
            end_group(self.pid)
        os.close(self.r)


# --- one round of one system ---------------------------------------------------------

def server_tree(system, port):
    """A tree of the system's scanner with one service, srv, the server."""
    tree = Tree(system.tree)
    files = {"server.py": SERVER}
    if system.held:
        files["socket"] = f"tcp:127.0.0.1:{port}\n"
    service = tree.add("srv", f"exec {sys.executable} server.py {port}", files)
    if system.held:
        (service / "socket").chmod(0o644)       # root's alone, whatever the umask
    return tree


def restart(system, service, client, old):
    """One restart: the system's command, then the wait for the new server's
    first answer; (ms from the command's start to that answer, new pid)."""
    t0 = time.monotonic()
    pid = spawn([*system.restart, str(service)])
    _, code, _ = finish(pid, WAIT, system.restart[0])
    if code != 0:
        raise BenchError(f"{system.shown()} exited {code}")
    t1, new = client.new_server(old)
    return (t1 - t0) * 1000, new


def how_served(tree):
    """(starts told the socket, starts that bound it) in the tree's log."""
    try:
        lines = (tree.dir / "tree.log").read_text(errors="replace").splitlines()
    except OSError:
        return 0, 0
    return (sum(line.startswith("given ") for line in lines),
            sum(line == "bound" for line in lines))


def once(name):
    """20 restarts of the server under the client, on a fresh tree: the
    client's counts, the restart times, the starts and how each got its socket."""
    system = SYSTEMS[name]
    port = free_port()
    tree = server_tree(system, port)
    client = None
    try:
        started(tree, WAIT)
        listening(port)                     # the client's first connect is answered
        client = Client(port)
        _, pid = client.new_server(0)
        time.sleep(GAP)
        gaps = []
        for _ in range(RESTARTS):
            ms, pid = restart(system, tree.scan / "srv", client, pid)
            gaps.append(ms)
            time.sleep(GAP)
        counts = client.stop()
        tree.reporter.pump(0)
        given, bound = how_served(tree)
        return {**counts, "tried": sum(counts[k] for k in FATES),
                "gaps": gaps, "starts": len(tree.reporter.events), "given": given,
                "bound": bound}
    finally:
        if client:
            client.close()
        tree.stop()


# --- the figures ------------------------------------------------------------------------

def lost(r):
    return r["reset"] + r["dropped"] + r["timeouts"]


def refusing(r):
    """ms during which connections were refused, per restart (mean)."""
    return sum(r["spells"]) / RESTARTS


MEASURES = (   # (label in the comparison, unit, what it is of a round)
    (f"connections refused in {RESTARTS} restarts", "connections", lambda r: r["refused"]),
    ("time refusing connections, per restart", "ms", refusing),
    (f"connections reset, dropped or timed out in {RESTARTS} restarts", "connections", lost),
)
COLUMNS = (    # (heading in the table of systems, what it is of a round)
    ("Connections tried", lambda r: r["tried"]),
    ("Answered", lambda r: r["answered"]),
    ("Refused", lambda r: r["refused"]),
    ("Reset", lambda r: r["reset"]),
    ("Dropped", lambda r: r["dropped"]),
    ("Timed out", lambda r: r["timeouts"]),
    (f"Restarts that refused (of {RESTARTS})", lambda r: len(r["spells"])),
    ("Refusing, ms per restart", refusing),
    ("Slowest answer (ms)", lambda r: r["slowest"]),
    ("Restart to the new server's answer (ms)", lambda r: statistics.median(r["gaps"])),
)


def name_of(s):
    return LABEL.get(s, s)


def compare(run, got, errors, names):
    """Rows of each svtree variant's figures next to each peer's, medians
    over the rounds."""
    peers = [n for n in names if n in PEERS]
    for label, unit, fn in MEASURES:
        figs = {s: Figure(error=errors[s]) if s in errors else Figure.of([fn(r) for r in got[s]])
                for s in names}
        for variant in (n for n in names if n in VARIANTS):
            run.rep.compare(f"{label}, {name_of(variant)}", unit, figs, peers, ours=variant)


def whole(x):
    """A figure as fmt() has it, a whole number (a count) without decimals."""
    return str(int(x)) if float(x).is_integer() else fmt(x)


def served(results):
    """Each round's starts, socket given / bound: once if all rounds agree."""
    seen = [f"{r['starts']}: {r['given']} / {r['bound']}" for r in results]
    if len(set(seen)) == 1 and len(seen) > 1:
        return f"{seen[0]} (each of {len(seen)} rounds)"
    return ", ".join(seen)


def system_row(s, results):
    """A system's row: its command, the median of each column over its
    rounds, and each round's starts."""
    cells = [whole(statistics.median(fn(r) for r in results)) if results else "error"
             for _, fn in COLUMNS]
    return (f"| {name_of(s)} | `{SYSTEMS[s].shown()} DIR` | {' | '.join(cells)} "
            f"| {served(results)} |")


def system_table(got, names):
    head = ["System", "Restarted with", *(h for h, _ in COLUMNS),
            "Starts: socket given / bound by the server"]
    return "\n".join([f"| {' | '.join(head)} |",
                      "|---|---|" + "---:|" * len(COLUMNS) + "---|",
                      *(system_row(s, got[s]) for s in names)])


def details(run, got, errors, names):
    for s in names:
        if s in errors:
            run.rep.details.append(f"{name_of(s)}: error: {errors[s]}")
        if not got[s]:
            continue
        for label, unit, fn in MEASURES:
            run.rep.details.append(f"{name_of(s)}, {label}: "
                                   f"{spread([fn(r) for r in got[s]])} {unit}")
        gaps = [g for r in got[s] for g in r["gaps"]]
        run.rep.details.append(f"{name_of(s)}, restart to the new server's answer, every "
                               f"restart: {spread(gaps)} ms")


def measure(run, names):
    """Rounds of once() over names, interleaved; the report's rows and tables."""
    reps = QUICK_ROUNDS if run.quick else ROUNDS
    say(f"== {RESTARTS} restarts under a steady client, {reps} round(s): {', '.join(names)}")
    got, errors = rounds(names, reps, measure_one)
    compare(run, got, errors, names)
    run.rep.extra_tables.append(("Each system, medians over the rounds",
                                 system_table(got, names)))
    details(run, got, errors, names)
    return got


def measure_one(name):
    r = once(name)
    say(f"  {name_of(name)}: " + ", ".join(f"{h} {whole(fn(r))}" for h, fn in COLUMNS)
        + f"; starts {r['starts']} (given {r['given']}, bound {r['bound']})")
    return r


# --- the section ----------------------------------------------------------------------------

HOW = f"""\
- Each system runs one service, `srv`, in a tree of its own (bench/common.py's):
  `exec python3 server.py PORT`, the server of tests/test_sockets.py, which
  answers each connection with its pid and closes it; it takes the listening
  socket from fd 3 when LISTEN_PID is its pid, else binds the port itself
  (SO_REUSEADDR, backlog 128). Only `svtree with socket` has a `socket` file
  (`tcp:127.0.0.1:PORT`): svscan binds the port once and every start gets
  the socket. Elsewhere the old server's listening socket closes when it
  dies, and nothing listens until the new one has started Python and bound
  the port again.
- The client, a Python process of its own, is started once the server
  answers: a connection at a time (connect, read the answer up to its
  newline, close), as fast as it can, a 5 s timeout each, until the last
  restart is over. Refused: ECONNREFUSED. Reset: ECONNRESET (a listening
  socket that closes resets the connections queued on it). Dropped: closed
  before an answer: the server died of the TERM holding it, which a held
  socket cannot save (a server that finishes its connection before it
  exits loses none on a held socket: 0 of 58,204 in 10 restarts, by hand,
  where the same server without the socket file had 114 refused and 10
  reset). Timed out: no answer within 5 s. Time refusing: from the
  first refused connect of a spell to the next answer, summed over the
  round and divided by {RESTARTS}; it depends less than the count on how fast a
  refused connect is (here a refused connect takes ~0.05 ms on a quiet
  port, but ~10 ms on one that has just served thousands of connections).
  Slowest answer: the longest connect-to-answer of a round (on a held
  socket a connection made while no server runs waits in its queue).
- {RESTARTS} restarts per round, each the system's own command on the
  service directory, then a wait (up to {WAIT:g} s) until the client has had
  an answer from a new pid, then {GAP:g} s more: every supervisor here starts a
  service at most once a second, and the pause keeps that throttle out of
  the figures. `sv restart` waits for the service to be up before it exits;
  the other commands return at once. s6-supervise 2.11 starts ./run again
  about 1 s after it ended, however long it ran (as bench/run.py's restart
  after kill -9 finds), so nothing listens for that second. Restart to the
  new server's answer: from the command's start to the client's first
  answer from the new server (svtree's `svc` is a Python program).
- Rounds are interleaved across the systems; a fresh tree and port each.
  Each server start says on its output how it got its socket: the last
  column gives the starts of a round (1 + {RESTARTS} expected) and how many
  were given the socket / bound the port themselves.
- The client and the servers are Python programs sharing the machine's
  CPUs with the supervisors: a busy machine lengthens the time in which
  nothing listens, and so the refusals."""


def render(run, argv):
    extra = "".join(f"{title}:\n\n{table}\n\n" for title, table in run.rep.extra_tables)
    return f"""{SECTION}

A server restarted {RESTARTS} times under a client that connects in a loop: what the
client saw. svtree with a `socket` file (svscan holds the listening socket,
every start of ./run gets it as fd 3, sd_listen_fds() style), svtree
without one, and daemontools, runit and s6 restarting the same server,
which binds the port itself. Measured by `bench/sockets.py` (`make bench`
runs it last), all systems in the same run; the ratio is svtree's median
divided by the peer's.

{run.header("sockets.py", argv)}

{extra}svtree next to each peer:

{run.rep.table()}

### How

{HOW}

### Details

{run.rep.detail_list()}
"""


# --- main ---------------------------------------------------------------------------------

def parse_args(argv):
    p = bench_options(__doc__, VARIANTS, PEERS, f"{QUICK_ROUNDS} round instead of {ROUNDS}",
                      "the markdown file whose section to replace (default "
                      "BENCHMARKS.md; with --only, none unless given)")
    return parsed(p, argv, VARIANTS, PEERS)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    prepare()
    peers = installed_peers("sockets.py", PROGRAMS, args.peers)
    if peers is None:
        return 111
    run = Run(args.quick, peers)
    try:
        measure(run, [*args.benches, *peers])
    finally:
        cleanup()
    text = render(run, argv)
    print()
    publish(text, args.output, SECTION)
    return 0


if __name__ == "__main__":
    exit_with(main)
