"""Prometheus text exposition of a tree, and a tiny HTTP server for it.

The format (version 0.0.4, what node_exporter's textfile collector reads):
for each metric a `# HELP` and a `# TYPE` line, then one sample a service:

    # HELP svtree_up 1 if the service's ./run is running.
    # TYPE svtree_up gauge
    svtree_up{service="/service/db"} 1

Label values escape backslash, double quote and newline, as the format asks;
they must be UTF-8 and are shown on terminals, so the other control
characters and each byte of a name that is not UTF-8 (the byte 0xff, held by
Python as U+DCFF) are written as the text \\xNN (in the exposition,
service="caf\\\\xff"), as `svtree status` shows them. A value that is not
known (starts of a daemontools service, the exit code of a service that never
ran) is left out rather than guessed. Skipped services (NAME@HOST for another
host) are not exported; a service with no supervise shows svtree_supervised
0 and, as nothing keeps it running, svtree_up and svtree_ready 0.
"""

from .table import printable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _up(r):
    return int(r["process"] == "run")


def _ready(r):
    # without state.json (daemontools, runit) up is ready, as for svtree wait;
    # with one that cannot be read (state unknown), readiness is not known
    if r["state"] == "unknown":
        return 0
    return int(r["process"] == "run" and r["ready"] is not False)


def _last_exit(r):
    e = r["last_exit"]
    if not e:
        return None
    return 128 + e["signal"] if "signal" in e else e.get("code")


def _failed(r):
    return None if r["failed"] is None else int(r["failed"])


# name, type, help, value of a supervised record (None: leave the sample out)
METRICS = (
    ("svtree_up", "gauge", "1 if the service's ./run is running.", _up),
    ("svtree_ready", "gauge", "1 if ./run is running and ready (notification-fd, check, "
     "or after 1 s up without them).", _ready),
    ("svtree_starts_total", "counter", "How many times supervise has started ./run.",
     lambda r: r["starts"]),
    ("svtree_last_exit_code", "gauge", "How ./run last ended: its exit code, or 128 plus "
     "the number of the signal that killed it.", _last_exit),
    ("svtree_seconds_in_state", "gauge", "Seconds since the service entered the state "
     "svtree status shows.", lambda r: r["seconds"]),
    ("svtree_failed", "gauge", "1 if supervise gave up restarting the service "
     "(max-deaths, finish exit 125) until svc -u.", _failed),
    ("svtree_supervised", "gauge", "1 if a supervise process runs for the service.",
     lambda r: int(r["supervised"])),
)
UNSUPERVISED = {"svtree_up": 0, "svtree_ready": 0, "svtree_supervised": 0}


def escape(value: str) -> str:
    """A label value: the format's three escapes, then \\xNN for the rest."""
    value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return printable(value, backslash="\\\\")


def number(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return repr(round(value, 3))
    return str(value)


def exposition(records) -> str:
    """The text for a list of tree.Records (pure)."""
    records = [r for r in records if r["state"] != "skipped"]
    out = []
    for name, kind, text, value in METRICS:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        for r in records:
            v = value(r) if r["supervised"] else UNSUPERVISED.get(name)
            if v is not None:
                out.append(f'{name}{{service="{escape(r["service"])}"}} {number(v)}')
    return "\n".join(out) + "\n"


def parse_address(text: str) -> tuple[str, int]:
    """ADDR:PORT, [IPV6]:PORT or :PORT (every address). Raises ValueError."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"not ADDR:PORT: {text}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


# how long a client of the --listen server has to ask and to read the answer
TIMEOUT = 10.0


def server(host: str, port: int, render, timeout: float = TIMEOUT):
    """An httpd.Server answering GET /metrics with render()'s text.

    Port 0 picks a free port: server.server_address says which. httpd is
    imported here: its socket and selectors would cost every other svtree
    command several ms.
    """
    from . import httpd

    def answer(head):
        return httpd.answer(head, "/metrics", CONTENT_TYPE, render)
    return httpd.Server(host, port, answer, timeout)
