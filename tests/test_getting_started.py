"""What a new user does first works as the README says.

`make install` puts a self-contained svtree under a prefix (its own venv, the
programs, the man pages) that runs once the checkout is gone, and `make
uninstall` takes exactly that away; a TERM to `make run` brings svscan and
every service down; the README's tour runs without root, line by line, as
written.

Not tested here: `make install` into the real /usr/local (the prefix is a
temporary directory), and `make install` without PyPI or a wheel cache (the
test skips when pip cannot fetch the dependencies).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, descendants, pid_alive, status_pid, wait_until

PROGRAMS = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
PAGES = sorted(p.name for p in (ROOT / "man").glob("*.[1-8]"))
# what a new user's shell has, without the development venv
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"

needs_make = pytest.mark.skipif(not shutil.which("make"), reason="make not installed")


def make(directory, *args, timeout=60, **kw):
    return subprocess.run(["make", "--no-print-directory", "-C", str(directory), *args],
                          capture_output=True, text=True, timeout=timeout, **kw)


def copy_checkout(dest: Path, *names):
    """The named files and directories of the checkout, as a fresh clone has them."""
    dest.mkdir(parents=True)
    for name in names:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", "supervise"))
        else:
            shutil.copy2(ROOT / name, dest / name)     # mtimes too: make compares them


def processes_in(directory: Path, *but):
    """PIDs of processes (but those) whose working directory is in directory:
    every service (supervise and run scripts work in their service directory),
    including one restarted after a list of the tree was taken."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in but:
            try:
                cwd = os.readlink(f"/proc/{name}/cwd")
            except OSError:
                continue
            if (cwd + "/").startswith(f"{directory}/") and pid_alive(int(name)):
                found.append(int(name))
    return found


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def settle(predicate, timeout, why):
    """wait_until, failing with why(): what is wrong once the time is up."""
    try:
        return wait_until(predicate, timeout=timeout, interval=0.02)
    except AssertionError:
        raise AssertionError(why()) from None


def gone(pids, directory, *but):
    """Nothing of pids is alive, and nothing (but those) works in directory any more."""
    return not [p for p in pids if pid_alive(p)] and not processes_in(directory, *but)


# --- make install / make uninstall -------------------------------------------------------

# pip's words for "could not fetch": the test then skips instead of failing
OFFLINE = re.compile(r"No matching distribution|Could not find a version|NewConnectionError"
                     r"|Network is unreachable|Temporary failure in name resolution")


@needs_make
def test_install_is_self_contained_and_uninstall_removes_it(tmp_path):
    """make install, staged with DESTDIR and then moved into place as a
    package would be, runs with the checkout gone: svtree --help, a real tree
    run by the installed svscan, `man svtree` through MANPATH; make uninstall
    then leaves no file behind."""
    src, stage, prefix = tmp_path / "src", tmp_path / "stage", tmp_path / "prefix"
    copy_checkout(src, "Makefile", "pyproject.toml", "README.md", "svtree", "man")
    r = make(src, "install", f"DESTDIR={stage}", f"PREFIX={prefix}", timeout=300)
    if r.returncode != 0 and OFFLINE.search(r.stdout + r.stderr):
        pytest.skip("pip cannot fetch svtree's dependencies (no PyPI, no wheel cache)")
    assert r.returncode == 0, r.stdout + r.stderr
    (stage / prefix.relative_to("/")).rename(prefix)
    shutil.rmtree(stage)
    away = src.rename(tmp_path / "away")            # the checkout is gone

    lib = prefix / "lib" / "svtree"
    assert sorted(os.listdir(prefix / "bin")) == PROGRAMS
    for name in PROGRAMS:
        link = prefix / "bin" / name
        assert os.readlink(link) == str(lib / "bin" / name)
        # #!python, or for a long path pip's /bin/sh trampoline that execs it
        head = "".join(link.read_text().splitlines(keepends=True)[:3])
        # (python3, or python as newer pips write it: either is the venv's)
        pythons = [f"{lib}/bin/{name}" for name in ("python3", "python")]
        assert head.startswith(tuple(form for p in pythons for form in (
            f"#!{p}\n", f"#!/bin/sh\n'''exec' {p} "))), head
    python = Path(os.path.realpath(lib / "bin" / "python3"))
    assert not python.is_relative_to(ROOT) and not python.is_relative_to(tmp_path), python
    staged = str(stage).encode()
    assert not [f for f in lib.rglob("*") if f.is_file() and not f.is_symlink()
                and staged in f.read_bytes()], "files still name the DESTDIR"

    env = {"PATH": f"{prefix}/bin:{SYSTEM_PATH}", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}
    r = subprocess.run(["svtree", "--help"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=30)
    assert r.returncode == 0 and "Usage: svtree" in r.stdout, r.stdout + r.stderr
    run_a_tree(prefix / "bin", tmp_path / "tree", env)

    if shutil.which("man"):
        manenv = {**env, "MANPATH": f"{prefix}/share/man", "MANWIDTH": "80"}
        r = subprocess.run(["man", "-w", "svtree"], capture_output=True, text=True,
                           env=manenv, timeout=30)
        assert r.stdout.strip() == f"{prefix}/share/man/man1/svtree.1", r.stderr
        r = subprocess.run(["man", "svtree"], capture_output=True, text=True, env=manenv,
                           timeout=60)
        assert r.returncode == 0 and "svtree" in r.stdout and r.stderr == "", r.stderr
    for page in PAGES:
        assert (prefix / "share" / "man" / f"man{page[-1]}" / page).is_file()

    src = away.rename(tmp_path / "src")
    r = make(src, "uninstall", f"PREFIX={prefix}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [str(p) for p in prefix.rglob("*") if not p.is_dir()] == []
    assert not lib.exists()


def run_a_tree(bin_dir: Path, top: Path, env):
    """The installed svscan runs one service; the installed svstat sees it up;
    a TERM brings both down."""
    (top / "hello").mkdir(parents=True)
    run = top / "hello" / "run"
    run.write_text("#!/bin/sh\nexec sleep 1000\n")
    run.chmod(0o755)
    svscan = subprocess.Popen([bin_dir / "svscan", top], env=env, cwd=top.parent,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_until(lambda: status_pid(top / "hello"), timeout=15)
        r = subprocess.run([bin_dir / "svstat", top / "hello"], capture_output=True,
                           text=True, env=env, timeout=30)
        assert re.match(rf"{top}/hello: up \(pid \d+\)", r.stdout), r.stdout + r.stderr
        tree = descendants(svscan.pid)
        svscan.terminate()
        settle(lambda: gone([svscan.pid, *tree], top), 20,
               lambda: f"the installed svscan left {processes_in(top)} running")
    finally:
        kill_pids(processes_in(top))
        svscan.kill()
        svscan.wait()


# --- make run -----------------------------------------------------------------------------

@needs_make
def test_term_to_make_run_brings_the_tree_down(tmp_path):
    """A TERM to make's PID alone ends svscan, every supervise and every
    service it started: svscan is make's own child, not a shell's."""
    clone = tmp_path / "clone"
    copy_checkout(clone, "Makefile", "pyproject.toml", "service.example")
    (clone / "svtree").symlink_to(ROOT / "svtree")
    venv = Path(sys.executable).parent.parent
    stamp = venv / ".installed"
    out = tmp_path / "make.out"
    # the venv running these tests serves; -o: never (re)install it from the copy
    with open(out, "wb") as f:
        make_proc = subprocess.Popen(
            ["make", "--no-print-directory", "-C", clone, f"VENV={venv}", "-o", stamp, "run"],
            stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    scan = clone / "scratch" / "service"
    tree = []
    try:
        settle(lambda: all(status_pid(d) for d in
                           (scan / "clock", scan / "clock" / "log", scan / "web")),
               30, lambda: f"the examples did not come up: {out.read_text()}")
        tree = descendants(make_proc.pid)
        children = [command(p) for p in tree if parent(p) == make_proc.pid]
        os.kill(make_proc.pid, signal.SIGTERM)
        make_proc.wait(timeout=20)
        settle(lambda: gone(tree, clone), 20,
               lambda: f"left running: {[command(p) for p in tree if pid_alive(p)]}, "
                       f"{processes_in(clone)} (make's children: {children})")
        assert children == ["svscan"]
    finally:
        kill_pids([p for p in tree if pid_alive(p)] + processes_in(clone))
        try:
            os.killpg(make_proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        make_proc.wait()


def parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def command(pid):
    """The program a process runs, as ps -o comm shows it (a script's name
    for our programs: the kernel takes it from the #! file)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


# --- the README's tour ----------------------------------------------------------------------

TOUR_DIR = "/tmp/svtree-tour"


def tour_lines():
    """The commands of the README's tour, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## A short tour"):]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def expected_output(line):
    """The output a tour line's comment shows, as a pattern (any number where
    the README has one), or None when the comment is no output: an example
    output starts with the command's last argument, as svstat's does."""
    m = re.match(r"(.*?)\s+#\s(.*)$", line)
    if not m:
        return None
    command_part, comment = m.groups()
    last = command_part.split()[-1]
    if not comment.startswith(last + ":"):
        return None
    return "".join(r"\d+" if part.isdigit() else re.escape(part)
                   for part in re.split(r"(\d+)", comment))


class Shell:
    """One bash reading lines as a user types them: cd, & and $! carry over
    from line to line. Each line's output and exit code go to files."""

    def __init__(self, argv, workdir: Path, env):
        self.workdir, self.count = workdir, 0
        self.proc = subprocess.Popen([*argv, "bash", "--norc", "--noprofile"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=workdir, env=env,
                                     text=True, start_new_session=True)

    def run(self, line, timeout=30):
        self.count += 1
        out, rc = self.workdir / f"out.{self.count}", self.workdir / f"rc.{self.count}"
        self.proc.stdin.write(f"{{ {line}\n}} >{out} 2>&1 </dev/null; echo $? >{rc}.new; "
                              f"mv {rc}.new {rc}\n")
        self.proc.stdin.flush()
        wait_until(rc.exists, timeout=timeout, message=f"{line!r} did not finish")
        return int(rc.read_text()), out.read_text()

    def expect(self, line, pattern, timeout=15):
        """Run line until its output matches pattern (svscan notices a new
        service within milliseconds, not at once)."""
        last = []

        def matches():
            last[:] = self.run(line)
            return re.fullmatch(pattern, last[1].strip())
        settle(matches, timeout, lambda: f"{line!r} never printed {pattern!r}: {last}")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def tour_user(request):
    """(argv prefix, PATH, owner of the tour's directory) to run the tour as a
    user who is not root: nobody through setpriv with the staged programs when
    we are root, else ourselves with this venv's programs."""
    if os.geteuid() != 0:
        return [], f"{Path(sys.executable).parent}:{SYSTEM_PATH}", None
    staged = request.getfixturevalue("staged_programs")
    return (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
            f"{staged.bin}:{SYSTEM_PATH}", (65534, 65534))


def test_readme_tour_runs_without_root_as_written(tour_user):
    """Every line of the tour succeeds as a user who is not root, each
    svstat shows what its comment says (polled: svscan notices a service
    within milliseconds, not at once), and the closing kill brings hello and
    svscan down."""
    argv, path, owner = tour_user
    # not in tmp_path, which nobody cannot enter when it is root's
    base = Path(tempfile.mkdtemp(prefix="svtree-tour-test-"))
    try:
        os.chmod(base, 0o755)
        if owner:
            os.chown(base, *owner)
        tour = base / "tour"
        env = {"PATH": path, "HOME": str(base), "LC_ALL": "C.UTF-8"}
        shell = Shell(argv, base, env)
        tree = []
        try:
            for line in tour_lines():
                line = line.replace(TOUR_DIR, str(tour))
                if line.startswith("kill "):
                    tree = descendants(shell.proc.pid)
                    assert "svscan" in [command(p) for p in tree]
                pattern = expected_output(line)
                if pattern is None:
                    rc, out = shell.run(line)
                    assert rc == 0, f"{line!r} exited {rc}: {out}"
                else:
                    shell.expect(line, pattern)
            assert tree, "the tour does not end with a kill"
            settle(lambda: gone(tree, tour, shell.proc.pid), 20,
                   lambda: f"left running: {[command(p) for p in tree if pid_alive(p)]}")
            shell.close()
        finally:
            kill_pids(descendants(shell.proc.pid) + processes_in(tour))
            shell.proc.kill()
            shell.proc.wait()
    finally:
        shutil.rmtree(base)
