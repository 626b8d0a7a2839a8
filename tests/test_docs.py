"""Every program has a man page, and each page renders without a warning; the
README opens with `make run` and `make test`, and every make target it names exists."""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def page(name):
    found = sorted((ROOT / "man").glob(f"{name}.[1-8]"))
    return found[0] if found else None


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_program_has_a_page(name):
    assert page(name) is not None, f"man/{name}.N is missing"


@pytest.mark.skipif(not shutil.which("man"), reason="man (man-db) not installed")
@pytest.mark.parametrize("name", SCRIPTS)
def test_page_renders_without_warnings(name):
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80"}
    r = subprocess.run(["man", "--warnings", "-l", "-E", "UTF-8", str(page(name))],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert name in r.stdout


README = (ROOT / "README.md").read_text()


def test_readme_opens_with_make_run_and_make_test():
    """A fresh clone's first two commands, at the top."""
    block = re.search(r"```sh\n(.*?)```", README, re.DOTALL).group(1)
    assert [line.split()[:2] for line in block.splitlines()] == [["make", "run"],
                                                                 ["make", "test"]]


def test_every_make_target_the_readme_names_exists():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", README))
    assert named and named <= targets, named - targets
