"""svtree's command line as a whole: help by section, every usage error one
line and exit 100, shell completion, and a manual that names every
subcommand.

Covered elsewhere: each command (test_svtree_status, test_wait, test_events,
test_metrics, test_svtree_logs, test_verbs).

Not tested here: completion for shells other than bash (click's own code).
"""

import os
import re
import subprocess
from pathlib import Path

from click.testing import CliRunner

from conftest import program, run
from svtree.cli.svtree import SECTIONS, svtree


def test_help_lists_the_commands_by_section():
    r = run("svtree", "--help")
    assert r.returncode == 0
    for title, names in SECTIONS:
        assert title + ":" in r.stdout
        for name in names:
            assert re.search(rf"^  {name} +\S", r.stdout, re.MULTILINE), name
    assert "start|stop|restart|once|kill" in r.stdout
    assert {name for _, names in SECTIONS for name in names} == set(svtree.commands)


def test_every_usage_error_is_one_line_and_100(tmp_path):
    for name in svtree.commands:
        r = run("svtree", name, "--bogus", tmp_path)
        assert r.returncode == 100, (name, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("svtree: fatal: "), r.stderr
        assert f"(svtree {name} --help)" in r.stderr
    for args in (["nonsense"], ["wait", "sideways", tmp_path], ["wait", "up"], ["start"],
                 ["stop", "-w", "-1", tmp_path], ["logs"], ["logs", "-n", "x", tmp_path]):
        r = run("svtree", *args)
        assert r.returncode == 100, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("svtree: fatal: "), r.stderr
        assert r.stdout == ""
    r = run("svtree", "start")
    assert r.stderr == "svtree: fatal: missing argument 'SERVICE...' (svtree start --help)\n"


def test_usage_errors_exit_100():
    assert run("svtree", "status", "--bogus").returncode == 100
    assert CliRunner().invoke(svtree, ["status", "--bogus"]).exit_code == 100
    assert CliRunner().invoke(svtree, ["nonsense"]).exit_code == 100
    assert CliRunner().invoke(svtree, ["--help"]).exit_code == 0


def test_shell_completion():
    env = {**os.environ, "_SVTREE_COMPLETE": "bash_source"}
    r = subprocess.run([program("svtree")], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "_svtree_completion" in r.stdout
    assert "complete -o nosort -F _svtree_completion svtree" in r.stdout

    def complete(*words):
        env = {**os.environ, "_SVTREE_COMPLETE": "bash_complete",
               "COMP_WORDS": " ".join(["svtree", *words]), "COMP_CWORD": str(len(words))}
        r = subprocess.run([program("svtree")], env=env, capture_output=True, text=True,
                           timeout=30)
        return r.stdout.splitlines()
    assert {"plain,status", "plain,wait", "plain,events", "plain,metrics", "plain,logs"} <= \
        set(complete(""))
    assert complete("wa") == ["plain,wait"]
    assert complete("wait", "") == [f"plain,{goal}" for goal in ("up", "ready", "down",
                                                                  "finished")]


def test_the_manual_names_every_subcommand():
    page = (Path(__file__).resolve().parent.parent / "man" / "svtree.1").read_text()
    for name in svtree.commands:
        assert f'.SS "svtree {name}' in page or f".SS svtree {name}" in page, name
