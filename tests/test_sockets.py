"""A service's socket file: listening sockets svscan holds across restarts,
handed to ./run as systemd's sd_listen_fds() expects (LISTEN_FDS,
LISTEN_PID, LISTEN_FDNAMES), so that restarting a server refuses no
connection. The server here is a small Python one, as an existing
socket-activated server would be: it uses fd 3 when LISTEN_PID names it,
and binds the port itself otherwise."""

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, program, run, wait_until, write_script

def bench_server():
    """bench/sockets.py's server (one home for it: the bench restarts the
    same one next to the peers)."""
    spec = importlib.util.spec_from_file_location("svtree_bench_sockets",
                                                  ROOT / "bench" / "sockets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SERVER


SERVER = bench_server()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server(scandir, port, with_socket):
    d = scandir / "srv"
    d.mkdir()
    (d / "server.py").write_text(SERVER)
    write_script(d / "run", f"#!/bin/sh\nexec {sys.executable} server.py {port} "
                            "> out 2>&1\n")
    if with_socket:
        (d / "socket").write_text(f"tcp:127.0.0.1:{port} name=http\n")
    return d


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            return int(c.recv(100) or 0)
    except OSError:
        return 0


class Client(threading.Thread):
    """Connects in a loop, counting answers, refusals and connections
    dropped unanswered."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.answered, self.refused, self.dropped = port, 0, 0, 0
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
                    c.recv(100)
                self.answered += 1
            except ConnectionRefusedError:
                self.refused += 1
                time.sleep(0.001)
            except ConnectionResetError:
                self.dropped += 1


def restarts(scandir, port, count=20):
    """count restarts (svc -r), each once the new server answers; the
    client's (answered, refused, dropped)."""
    d = scandir / "srv"
    client = Client(port)
    client.start()
    try:
        for _ in range(count):
            before = answers(port)
            assert run("svc", "-r", d).returncode == 0
            wait_until(lambda: answers(port) not in (0, before), timeout=20)
    finally:
        client.stop = True
        client.join(10)
    return client.answered, client.refused, client.dropped


def serving(procs, scandir, with_socket):
    """(port, service dir) of the test server under a running svscan, once it answers."""
    port = free_port()
    d = server(scandir, port, with_socket=with_socket)
    procs.start(program("svscan"), scandir, stderr=subprocess.DEVNULL)
    wait_until(lambda: answers(port))
    return port, d


def test_a_held_socket_refuses_no_connection_across_20_restarts(procs, scandir):
    port, d = serving(procs, scandir, with_socket=True)
    assert "given http" in (d / "out").read_text()
    answered, refused, dropped = restarts(scandir, port)
    assert (refused, dropped) == (0, 0) and answered > 20, (answered, refused, dropped)


def test_without_the_socket_file_restarts_refuse_connections(procs, scandir):
    port, d = serving(procs, scandir, with_socket=False)
    assert "bound" in (d / "out").read_text()
    answered, refused, dropped = restarts(scandir, port, count=5)
    assert refused > 0, (answered, refused, dropped)       # what the socket file is for


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")
def test_a_socket_file_another_user_wrote_is_refused(procs, scandir):
    port = free_port()
    d = server(scandir, port, with_socket=True)
    os.chown(d / "socket", 65534, 65534)
    proc = procs.start(program("svscan"), scandir, stderr=subprocess.PIPE)
    wait_until(lambda: answers(port))               # it binds the port itself
    assert "bound" in (d / "out").read_text()
    proc.terminate()
    err = proc.communicate(timeout=20)[1].decode()
    assert "svscan: warning: unable to use srv/socket: not a file of uid 0 in a " \
           "directory only it can write (root binds what it says); no sockets" in err, err
