"""svtree metrics: the Prometheus text exposition of a tree (metrics.py),
printed and served over HTTP, and the errors of --listen.

Covered elsewhere: the server with clients that misbehave
(test_metrics_server).

Not tested here: IPv6 --listen.
"""

import re
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import start_supervise as supervise
from conftest import Reader, program, run, states, wait_until
from svtree import metrics, tree


SAMPLE = re.compile(r'^(svtree_[a-z_]+)\{service="([^"\\]|\\.)*"\} -?[0-9.]+$')


def check_exposition(text):
    helped, typed = set(), set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            typed.add(line.split()[2])
            assert line.split()[3] in ("gauge", "counter")
        else:
            assert SAMPLE.match(line), line
    assert helped == typed >= {"svtree_up", "svtree_ready", "svtree_starts_total",
                               "svtree_last_exit_code", "svtree_seconds_in_state",
                               "svtree_failed"}


def test_metrics_text(mixed_tree):
    r = run("svtree", "metrics", mixed_tree)
    assert r.returncode == 0 and r.stderr == ""
    check_exposition(r.stdout)
    samples = dict(line.rsplit(" ", 1) for line in r.stdout.splitlines()
                   if not line.startswith("#"))

    def value(metric, name):
        return samples.get(f'{metric}{{service="{mixed_tree}/{name}"}}')
    assert value("svtree_up", "ready") == "1" and value("svtree_ready", "ready") == "1"
    assert value("svtree_up", "notready") == "1" and value("svtree_ready", "notready") == "0"
    assert value("svtree_up", "down") == "0" and value("svtree_starts_total", "down") == "0"
    assert value("svtree_failed", "failed") == "1" and value("svtree_failed", "ready") == "0"
    assert value("svtree_last_exit_code", "failed") == "2"
    assert value("svtree_last_exit_code", "ready") is None        # never exited
    assert value("svtree_up", "logged/log") == "1"
    assert 0 <= float(value("svtree_seconds_in_state", "down")) < 60
    lines = r.stdout.splitlines()
    assert lines.index("# TYPE svtree_starts_total counter") == \
        lines.index("# HELP svtree_starts_total How many times supervise has started ./run.") + 1


def test_metrics_escape_labels_and_leave_out_the_unknown():
    rec = {**tree.blank(tree.Entry(Path('we"ird\\name\nx'))), "normally_up": True,
           "error": "supervise not running"}
    skipped = {**tree.blank(tree.Entry(Path("other@elsewhere"))), "state": "skipped"}
    text = metrics.exposition([rec, skipped])
    check_exposition(text)
    assert 'svtree_up{service="we\\"ird\\\\name\\nx"} 0' in text
    assert 'svtree_supervised{service="we\\"ird\\\\name\\nx"} 0' in text
    assert "svtree_starts_total{" not in text and "elsewhere" not in text


def test_metrics_over_http(procs, service):
    sv = service()
    supervise(procs, sv)
    server = procs.start(program("svtree"), "metrics", "--listen", "127.0.0.1:0", sv)
    err = Reader(server.stderr)
    announced = wait_until(lambda: re.search(r"http://127\.0\.0\.1:(\d+)/metrics\n", err.text()))
    url = f"http://127.0.0.1:{announced.group(1)}"
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = response.read().decode()
    check_exposition(body)
    assert f'svtree_up{{service="{sv}"}} 1' in body
    run("svc", "-d", sv)                      # every scrape reads the tree afresh
    wait_until(lambda: states(sv) == {str(sv): "down"})
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        assert f'svtree_up{{service="{sv}"}} 0' in response.read().decode()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "/", timeout=10)
    assert e.value.code == 404
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0


def test_metrics_listen_errors():
    assert run("svtree", "metrics", "--listen", "nonsense").returncode == 100
    assert run("svtree", "metrics", "--listen", "127.0.0.1:99999").returncode == 100
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("svtree", "metrics", "--listen", f"127.0.0.1:{port}")
    assert r.returncode == 111 and r.stderr.startswith("svtree: fatal: unable to listen on ")
