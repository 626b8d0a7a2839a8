"""A tiny HTTP/1 server for one read-only resource (svtree metrics --listen).

One selector loop, no threads. Every connection gets `timeout` seconds from
its accept to send a request head (request line and headers) of at most
MAX_REQUEST bytes and to read the whole answer; then it is closed, whatever
it did. So an idle or slow client costs a file descriptor for that long and
never delays another's request. One answer per connection (Connection:
close), as http.server gave before. At most MAX_CLIENTS connections are
open at once; the next ones wait in the kernel's listen backlog, so a flood
of idle connections can delay a scrape by a timeout but cannot take every
fd. A client that hangs up or resets is dropped without a word: a scraper
giving up is no news.

    Server(host, port, answer, timeout)   the loop; answer(head) -> bytes
    answer(head, path, type, render)      GET/HEAD of one path (pure but render)
    end_of_head(data), response(...)      the protocol's two halves (pure)

Only svtree metrics --listen imports this module: socket and selectors cost
a few ms at start-up.
"""

import selectors
import socket
import time
from email.utils import formatdate

from .errors import describe

MAX_REQUEST = 8192
MAX_CLIENTS = 100
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           431: "Request Header Fields Too Large", 500: "Internal Server Error"}


def end_of_head(data: bytes) -> int | None:
    """Where a request head ends (after its blank line), or None if not yet.
    A bare LF ends lines too, as in hand-typed requests."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    return min(ends, default=None)


def answer(head: bytes, path: str, content_type: str, render) -> bytes:
    """The whole HTTP response to one request head: GET or HEAD of path
    (any query) is render()'s text, anything else an error."""
    line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return response(400, b"not an HTTP/1 request\n")
    method, target, _ = parts
    if method not in ("GET", "HEAD"):
        return response(405, f"GET {path}\n".encode(), extra="Allow: GET, HEAD\r\n")
    if target.split("?", 1)[0] != path:
        return response(404, f"try {path}\n".encode())
    try:
        body = render().encode()
    except Exception as e:    # the client hears of it; the server goes on serving
        return response(500, f"unable to read the services: {describe(e)}\n".encode())
    return response(200, body, content_type, head_only=method == "HEAD")


def response(code: int, body: bytes, content_type="text/plain; charset=utf-8", extra="",
             head_only=False) -> bytes:
    head = (f"HTTP/1.1 {code} {REASONS[code]}\r\nDate: {formatdate(usegmt=True)}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}"
            "Connection: close\r\n\r\n")
    return head.encode() + (b"" if head_only else body)


class Client:
    """One connection: what it sent so far, then what is left to send it."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.head = b""
        self.out = None          # a memoryview of the answer once the head is in


class Server:
    """Listens on host:port (port 0: a free one, in server_address) and
    answers each request head with answer(head), until serve_forever is
    interrupted (KeyboardInterrupt); then server_close."""

    def __init__(self, host: str, port: int, answer, timeout: float):
        self.answer = answer
        self.timeout = timeout
        self.listener = listener(host, port)
        self.server_address = self.listener.getsockname()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.accepting = True
        self.paused_until = 0.0
        self.clients = {}                # socket -> Client

    def serve_forever(self):
        while True:
            self.serve_once()

    def serve_once(self):
        for key, _ in self.selector.select(self.wait()):
            if key.fileobj is self.listener:
                self.accept()
            else:
                self.step(key.data)
        now = time.monotonic()
        for client in [c for c in self.clients.values() if c.deadline <= now]:
            self.close(client)
        self.listen_or_not(now)

    def wait(self) -> float | None:
        """Seconds until the next deadline (None: there is none)."""
        deadlines = [c.deadline for c in self.clients.values()]
        if not self.accepting and self.paused_until > time.monotonic():
            deadlines.append(self.paused_until)    # a pause over long ago is no deadline
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def accept(self):
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return                       # gone before we took it
        except OSError:
            # EMFILE, ENOBUFS...: the listener stays readable, so stop taking
            # connections for a second rather than spin on it
            self.paused_until = time.monotonic() + 1
            return
        sock.setblocking(False)          # accept() gives a blocking socket
        client = Client(sock, time.monotonic() + self.timeout)
        self.clients[sock] = client
        self.selector.register(sock, selectors.EVENT_READ, client)

    def step(self, client: Client):
        try:
            if client.out is None:
                self.read(client)
            else:
                self.write(client)
        except BlockingIOError:
            pass                         # not ready after all: the selector says when
        except OSError:
            self.close(client)           # ECONNRESET, EPIPE: it hung up, nothing to tell

    def read(self, client: Client):
        data = client.sock.recv(4096)
        if not data:
            self.close(client)           # hung up without asking
            return
        client.head += data
        end = end_of_head(client.head)
        if end is not None and end <= MAX_REQUEST:
            text = self.answer(client.head[:end])
        elif len(client.head) > MAX_REQUEST:
            text = response(431, f"at most {MAX_REQUEST} bytes of request head\n".encode())
        else:
            return
        # anything sent after the head is left unread: a GET has no body
        client.out = memoryview(text)
        self.selector.modify(client.sock, selectors.EVENT_WRITE, client)
        self.write(client)               # most answers fit the socket buffer at once

    def write(self, client: Client):
        client.out = client.out[client.sock.send(client.out):]
        if not client.out:
            self.close(client)

    def close(self, client: Client):
        self.selector.unregister(client.sock)
        del self.clients[client.sock]
        client.sock.close()

    def listen_or_not(self, now: float):
        """Take new connections only while there is room and no pause."""
        wanted = len(self.clients) < MAX_CLIENTS and now >= self.paused_until
        if wanted != self.accepting:
            if wanted:
                self.selector.register(self.listener, selectors.EVENT_READ)
            else:
                self.selector.unregister(self.listener)
            self.accepting = wanted

    def server_close(self):
        # no unregistering: the KeyboardInterrupt that brings us here may
        # have struck between self.clients and the selector
        for sock in self.clients:
            sock.close()
        self.selector.close()
        self.listener.close()


def listener(host: str, port: int) -> socket.socket:
    """A non-blocking listening socket. Not socket.create_server: for an IPv6
    address it sets IPV6_V6ONLY, and "::" would no longer take IPv4 too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # restart at once
        sock.bind((host, port))
        sock.listen(MAX_CLIENTS)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
