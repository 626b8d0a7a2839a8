"""svtree metrics --listen with clients that misbehave: real server processes,
real sockets.

The server answers every client at once (one selector loop), gives each
--timeout seconds to ask and read, closes it after that, reads at most
httpd.MAX_REQUEST bytes of request, and says nothing on stderr when a client
hangs up or resets. The well-behaved path (200, 404, Content-Type, a fresh
read at each scrape, SIGTERM) is in test_metrics.

Not tested: more than httpd.MAX_CLIENTS connections at once (the next ones
wait in the listen backlog); accept failing with EMFILE (the server pauses
taking connections for a second); IPv6.
"""

import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import program
from svtree import httpd, metrics


def start_server(procs, tree, *options):
    """A `svtree metrics --listen 127.0.0.1:0` process and its port, read
    from the address it announces on stderr."""
    proc = procs.start(program("svtree"), "metrics", "--listen", "127.0.0.1:0", *options,
                       tree)
    ready, _, _ = select.select([proc.stderr], [], [], 10)
    assert ready, "no address announced within 10 s"
    line = proc.stderr.readline().decode()
    announced = re.fullmatch(r"svtree: serving http://127\.0\.0\.1:(\d+)/metrics\n", line)
    assert announced, line
    return proc, int(announced.group(1))


@pytest.fixture
def tree(service):
    """A scan directory with one service nobody supervises: metrics all the same."""
    sv = service("web")
    return sv.parent


def scrape(port, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
        assert r.status == 200
        return r.read().decode()


def connect(port, receive_buffer=None):
    """A client socket; its reads and writes fail after 10 s (the deadline)."""
    sock = socket.socket()
    sock.settimeout(10)
    if receive_buffer:          # before connect: it sets the window offered
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    return sock


def still_open(sock):
    """True if the server has neither closed nor reset sock, nor sent anything."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.settimeout(10)
    return False


def stop(proc):
    """SIGTERM, exit 0, and what it wrote on stderr after its address."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=10)
    err = proc.stderr.read().decode()
    assert code == 0, err
    return err


def test_idle_clients_do_not_block_a_scrape(procs, tree):
    """Clients that connect and send nothing, or half a request, stay
    connected while another client scrapes at once."""
    server, port = start_server(procs, tree)
    idle = [connect(port) for _ in range(5)]
    half = connect(port)
    half.sendall(b"GET /metr")
    scrape(port)                                 # warm: the first render imports more
    began = time.monotonic()
    body = scrape(port, timeout=5)
    took = time.monotonic() - began
    assert f'svtree_supervised{{service="{tree}/web"}} 0' in body
    assert took < 2, f"a scrape took {took:.3f} s next to idle clients"
    assert all(still_open(s) for s in [*idle, half])
    for s in [*idle, half]:
        s.close()
    assert stop(server) == ""


def test_idle_and_slow_clients_are_closed_after_the_timeout(procs, tree):
    server, port = start_server(procs, tree, "--timeout", "0.5")
    began = time.monotonic()
    idle = connect(port)
    slow = connect(port)
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")          # never the blank line
    assert idle.recv(1) == b""                   # blocks until closed (10 s deadline)
    assert slow.recv(1) == b""
    assert time.monotonic() - began >= 0.5
    scrape(port)                                 # the server carries on
    idle.close()
    slow.close()
    assert stop(server) == ""


def reset(sock):
    """Close sock with an RST instead of a FIN (SO_LINGER, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_clients_that_reset_or_hang_up_leave_no_trace_on_stderr(procs, tree, service):
    """Reset before asking, after half a request, after a whole request
    without reading the answer (a big one, so the server's writes fail),
    and a plain hang-up: the server says nothing and goes on serving."""
    for i in range(300):                         # an answer bigger than the socket buffers
        service(f"s{i:03}", parent=tree)
    server, port = start_server(procs, tree)
    reset(connect(port))
    half = connect(port)
    half.sendall(b"GET /metrics HTTP/1.1\r\n")
    reset(half)
    for _ in range(3):
        asked = connect(port, receive_buffer=4096)
        asked.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        select.select([asked], [], [], 10)       # the answer has begun
        reset(asked)
    gone = connect(port)
    gone.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    gone.close()
    assert "svtree_up" in scrape(port)
    err = stop(server)
    assert "Traceback" not in err and err == ""


def ask(port, request: bytes) -> bytes:
    """Send request, read until the server closes (10 s deadline)."""
    with connect(port) as sock:
        sock.sendall(request)
        out = b""
        while data := sock.recv(65536):
            out += data
        return out


def test_a_request_head_is_bounded(procs, tree):
    server, port = start_server(procs, tree)
    big = b"GET /metrics HTTP/1.1\r\n" + b"X-Filler: " + b"x" * httpd.MAX_REQUEST
    assert ask(port, big).startswith(b"HTTP/1.1 431 ")
    assert ask(port, b"GET /metrics HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 OK\r\n")
    assert stop(server) == ""


def test_interrupted_with_clients_connected(procs, tree):
    """Ctrl-C ends the server at once, idle clients or not, exit 0, quietly."""
    server, port = start_server(procs, tree)
    idle = connect(port)
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=5) == 0
    assert not still_open(idle)       # closed; reset if still in the listen backlog
    idle.close()
    assert server.stderr.read().decode() == ""


def test_other_commands_do_not_load_the_server():
    """socket, selectors and httpd cost every svtree command at start-up:
    only --listen imports them."""
    code = ("import sys, svtree.cli.svtree; print(sorted(m for m in ('socket', 'selectors', "
            "'http.server', 'svtree.httpd') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=30)
    assert (r.returncode, r.stdout) == (0, "[]\n"), r.stderr


# --- the answers, without a server --------------------------------------------------

def render():
    return "svtree_up 1\n"


def answer(head, render):
    return httpd.answer(head, "/metrics", metrics.CONTENT_TYPE, render)


@pytest.mark.parametrize("head,status", [
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200),
    (b"GET /metrics?x=1 HTTP/1.0\n\n", 200),
    (b"GET / HTTP/1.1\r\n\r\n", 404),
    (b"POST /metrics HTTP/1.1\r\n\r\n", 405),
    (b"GET /metrics\r\n\r\n", 400),
    (b"\xff\xfe garbage\r\n\r\n", 400),
    (b"GET /metrics SPDY/3\r\n\r\n", 400),
])
def test_answer_status(head, status):
    out = answer(head, render)
    assert out.startswith(f"HTTP/1.1 {status} {httpd.REASONS[status]}\r\n".encode())
    head_part, _, body = out.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}\r\n".encode() in head_part + b"\r\n"
    assert b"Connection: close\r\n" in head_part + b"\r\n"


def test_answer_to_head_has_no_body():
    out = answer(b"HEAD /metrics HTTP/1.1\r\n\r\n", render)
    assert out.endswith(b"Content-Length: 12\r\nConnection: close\r\n\r\n")


def test_a_render_that_fails_is_a_500():
    def broken():
        raise PermissionError(13, "Permission denied", "/service/x")
    out = answer(b"GET /metrics HTTP/1.1\r\n\r\n", broken)
    assert out.startswith(b"HTTP/1.1 500 ")
    assert out.endswith(b"\r\n\r\nunable to read the services: access denied\n")


def test_end_of_head():
    assert httpd.end_of_head(b"GET / HTTP/1.1\r\nHost: x\r\n") is None
    assert httpd.end_of_head(b"GET / HTTP/1.1\r\n\r\nmore") == 18
    assert httpd.end_of_head(b"GET / HTTP/1.0\n\n") == 16
