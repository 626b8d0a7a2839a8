"""Every program has a man page, every page in man/ (svtree-service.5 too) renders
without a warning, and the pages they name that are svtree's exist; the README opens
with `make run` and `make test`, and every make target it names exists."""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
# every page, as the Makefile's man and install-man targets find them
PAGES = sorted((ROOT / "man").glob("*.[1-8]"))


def page(name):
    found = sorted((ROOT / "man").glob(f"{name}.[1-8]"))
    return found[0] if found else None


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_program_has_a_page(name):
    assert page(name) is not None, f"man/{name}.N is missing"


@pytest.mark.skipif(not shutil.which("man"), reason="man (man-db) not installed")
@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_page_renders_without_warnings(path):
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80"}
    r = subprocess.run(["man", "--warnings", "-l", "-E", "UTF-8", str(path)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert path.stem in r.stdout


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_named_that_are_ours_exist(path):
    """A reference such as .BR svtree\\-service (5) or .BR supervise (8) to one of
    svtree's programs or to an svtree-* page has its file in man/."""
    ours = set(SCRIPTS)
    named = re.findall(r"^\.BR ([a-z0-9\\-]+) \(([1-8])\)", path.read_text(), re.MULTILINE)
    missing = [f"{name}({section})" for name, section in
               ((n.replace("\\-", "-"), s) for n, s in named)
               if (name in ours or name.startswith("svtree-"))
               and not (ROOT / "man" / f"{name}.{section}").exists()]
    assert not missing, missing


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
