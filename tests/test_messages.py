"""What the small daemontools-style programs say, and when they stay quiet.

Each case runs the real program (the venv's console script) in a scratch
directory, with a timeout, and compares the whole of stderr and the exit
code. Where svtree keeps daemontools' behaviour because scripts count on
it, a second test runs daemontools' own program beside ours (skipped if
it is not installed).

Every program is then given nonsense arguments (unknown options, empty
names, names with a newline, names far too long or not UTF-8): the
documented exit code, a short message naming the program, and no traceback.

Not tested here: the words of svstat's lines (test_cli, test_interop),
the chain loaders' other messages (test_kit).
"""

import importlib.metadata
import os
import subprocess

import pytest
from conftest import peer, program, run

VERSION = importlib.metadata.version("svtree")
SVC_WORDS = ("svc options: u up, d down, o once, x exit, p pause, c continue, h hup, "
             "a alarm, i interrupt, t term, k kill, q quit, 1 usr1, 2 usr2, "
             "r restart, P pause group, C continue group, K kill group")
PROGRAMS = ["svc", "svstat", "svok", "svscan", "multilog", "tai64n", "tai64nlocal",
            "envdir", "setuidgid", "envuidgid", "softlimit", "setlock", "pgrphack"]


def with_open_stdin(argv, **kw):
    """Run argv with stdin a pipe nobody closes: a program that reads it
    blocks until the timeout, and the test fails with TimeoutExpired."""
    r, w = os.pipe()
    try:
        return subprocess.run(argv, stdin=r, capture_output=True, text=True, timeout=20, **kw)
    finally:
        os.close(r)
        os.close(w)


@pytest.fixture
def fake_supervise(tmp_path):
    """A service directory whose supervise/control has a reader (this test),
    as if supervise ran; read() returns what was written to it."""
    sv = tmp_path / "sv"
    (sv / "supervise").mkdir(parents=True)
    os.mkfifo(sv / "supervise" / "control")
    fd = os.open(sv / "supervise" / "control", os.O_RDONLY | os.O_NONBLOCK)

    def read():
        try:
            return os.read(fd, 100)
        except BlockingIOError:
            return b""
    yield sv, read
    os.close(fd)


# --- --help and --version ------------------------------------------------------------

@pytest.mark.parametrize("prog", PROGRAMS)
def test_help_prints_usage_on_stdout_without_reading_stdin(prog, tmp_path):
    """--help: a usage on stdout, nothing on stderr, exit 0, stdin untouched."""
    r = with_open_stdin([program(prog), "--help"], cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith(f"usage: {prog} ")
    assert f"See {prog}(8)." in r.stdout
    assert all(len(line) <= 80 for line in r.stdout.splitlines())


@pytest.mark.parametrize("prog", ["tai64n", "tai64nlocal"])
def test_filters_take_h_for_help(prog):
    """-h too, for the two filters that otherwise wait for input on a terminal."""
    r = with_open_stdin([program(prog), "-h"])
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == with_open_stdin([program(prog), "--help"]).stdout


@pytest.mark.parametrize("prog", PROGRAMS)
def test_version(prog, tmp_path):
    r = with_open_stdin([program(prog), "--version"], cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{prog} (svtree) {VERSION}\n", "")


def test_multilog_help_only_as_the_whole_script(tmp_path):
    """Within a script --help is a deselecting pattern ("-help"), as in daemontools."""
    r = run("multilog", "--help", "./main", input="a\n-help\nb\n", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert (tmp_path / "main" / "current").read_text() == "a\nb\n"


def test_multilog_help_pattern_agrees_with_daemontools(tmp_path):
    multilog = peer("multilog")
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    data = "a\n-help\nb\n"
    run("multilog", "--help", "./main", input=data, cwd=tmp_path / "ours")
    subprocess.run([multilog, "--help", "./main"], input=data, text=True, timeout=20,
                   cwd=tmp_path / "theirs", check=True)
    assert (tmp_path / "ours" / "main" / "current").read_text() == \
        (tmp_path / "theirs" / "main" / "current").read_text()


def test_svstat_dir_named_help_after_dashes(tmp_path):
    r = run("svstat", "--", "--help", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "--help: unable to chdir: file does not exist\n")


# --- svc ---------------------------------------------------------------------------------

def test_svc_without_arguments_is_a_usage_error():
    r = run("svc")
    assert (r.returncode, r.stdout) == (100, "")
    assert r.stderr.splitlines() == ["svc: usage: svc [-udopchaitkqx12rPCK] dir...", SVC_WORDS]


@pytest.mark.parametrize("word", ["--up", "--down", "--bogus=1"])
def test_svc_long_option_is_named_and_nothing_is_sent(word, fake_supervise):
    sv, sent = fake_supervise
    r = run("svc", word, sv)
    assert r.returncode == 100
    assert r.stderr.splitlines() == [
        f"svc: illegal option {word}: options are single letters", SVC_WORDS]
    assert sent() == b""


def test_svc_unknown_letter_keeps_daemontools_words():
    r = run("svc", "-z", "/")
    assert r.returncode == 100
    assert r.stderr.splitlines() == ["svc: illegal option -- z", SVC_WORDS]


def test_svc_names_the_missing_control_fifo(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    r = run("svc", "-u", plain)
    assert (r.returncode, r.stdout) == (111, "")
    assert r.stderr == (f"svc: warning: unable to control {plain}: "
                        "supervise/control: file does not exist\n")
    (plain / "supervise").mkdir()
    assert run("svc", "-u", plain).stderr == r.stderr


def test_svc_other_reasons_unchanged(tmp_path, fake_supervise):
    missing = tmp_path / "missing"
    stale = tmp_path / "stale"
    (stale / "supervise").mkdir(parents=True)
    os.mkfifo(stale / "supervise" / "control")
    r = run("svc", "-u", missing, stale)
    assert r.returncode == 111
    assert r.stderr.splitlines() == [
        f"svc: warning: unable to chdir to {missing}: file does not exist",
        f"svc: warning: unable to control {stale}: supervise not running"]


def test_svc_letters_without_a_directory_warn_and_exit_0():
    r = run("svc", "-d")
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr == "svc: warning: no service directory given: nothing to control\n"
    assert run("svc", "--").stderr == r.stderr


def test_svc_directory_without_letters_warns_sends_nothing_exits_0(fake_supervise):
    sv, sent = fake_supervise
    r = run("svc", sv)
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr == ("svc: warning: no command letter given: nothing to send "
                        "(svc -u dir starts a service, svc -d dir stops it)\n")
    assert sent() == b""


def test_svc_directory_without_letters_still_checks_it(tmp_path):
    """As daemontools': the control fifo is opened, so a directory that
    cannot be controlled is reported (and exits 111, see svc(8))."""
    plain = tmp_path / "plain"
    plain.mkdir()
    r = run("svc", plain)
    assert r.returncode == 111
    assert r.stderr.splitlines()[1:] == [
        f"svc: warning: unable to control {plain}: supervise/control: file does not exist"]


def test_svc_kept_exit_0_cases_agree_with_daemontools(fake_supervise):
    """svc with letters and no directory, or a directory and no letters:
    daemontools exits 0 and sends nothing; so do we (warnings aside)."""
    svc = peer("svc")
    sv, sent = fake_supervise
    for args in (["-d"], [str(sv)]):
        theirs = subprocess.run([svc, *args], capture_output=True, text=True, timeout=20)
        assert sent() == b""
        ours = run("svc", *args)
        assert sent() == b""
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (0, "")


def test_svc_letters_still_sent_in_order(fake_supervise):
    sv, sent = fake_supervise
    r = run("svc", "-dx", "-u", sv)
    assert (r.returncode, r.stderr) == (0, "")
    assert sent() == b"dxu"


# --- svstat and svok ---------------------------------------------------------------------

def test_svstat_without_arguments_warns_and_exits_0():
    r = run("svstat")
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr == ("svstat: warning: no service directory given: nothing to show "
                        "(usage: svstat dir...)\n")


def test_svstat_without_arguments_agrees_with_daemontools():
    theirs = subprocess.run([peer("svstat")], capture_output=True, text=True, timeout=20)
    ours = run("svstat")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (0, "")


def test_svok_is_quiet_about_an_unsupervised_directory(tmp_path):
    """100 and no message: `svok dir || ...` in scripts depends on it."""
    r = run("svok", tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (100, "", "")


def test_svok_agrees_with_daemontools(tmp_path):
    svok = peer("svok")
    for args in ([str(tmp_path)], [str(tmp_path / "missing")], []):
        theirs = subprocess.run([svok, *args], capture_output=True, text=True, timeout=20)
        ours = run("svok", *args)
        assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)


# --- svscan --------------------------------------------------------------------------------

def test_svscan_usage_errors_unchanged(tmp_path):
    usage = "svscan: usage: svscan [-g seconds] [dir] [-- command [args...]]\n"
    for args in (["--bogus"], ["-x"], ["a", "b"], ["--"]):
        r = run("svscan", *args, cwd=tmp_path)
        assert (r.returncode, r.stderr) == (100, usage)


# --- multilog, tai64n, tai64nlocal ------------------------------------------------------------

def test_multilog_without_a_script(tmp_path):
    """As daemontools': the input is read to the end and dropped, exit 0; and
    a warning says so, once."""
    r = run("multilog", input="x\n" * 100_000, cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (
        0, "", "multilog: warning: no log directory, e or =file: input is read and discarded\n")
    assert list(tmp_path.iterdir()) == []


def test_multilog_without_a_script_agrees_with_daemontools(tmp_path):
    theirs = subprocess.run([peer("multilog")], input="x\n" * 100_000, capture_output=True,
                            text=True, cwd=tmp_path, timeout=20)
    assert (theirs.returncode, theirs.stdout, theirs.stderr) == (0, "", "")
    assert list(tmp_path.iterdir()) == []


def test_multilog_word_that_is_no_action(tmp_path):
    """`multilog t main` logs nothing, as in daemontools, but says why."""
    r = run("multilog", "t", "main", input="x\n", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", (
        "multilog: warning: ignoring main: not an action, and a log directory "
        "must start with . or / (./main?)\n"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("prog", ["tai64n", "tai64nlocal"])
def test_filters_ignore_other_arguments(prog):
    """As daemontools': arguments other than --help, -h, --version are ignored."""
    r = run(prog, "-Z", "file", input="x\n")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.endswith("x\n")


@pytest.mark.parametrize("prog", ["tai64n", "tai64nlocal"])
def test_filters_say_why_a_write_failed(prog):
    with open("/dev/full", "wb") as full:
        r = subprocess.run([program(prog)], input=b"x\n", stdout=full, stderr=subprocess.PIPE,
                           timeout=20)
    assert (r.returncode, r.stderr) == (
        111, f"{prog}: fatal: unable to write output: out of disk space\n".encode())


@pytest.mark.parametrize("prog", ["tai64n", "tai64nlocal"])
def test_filters_are_quiet_when_their_reader_goes(prog):
    """A closed pipe ends a pipeline: 111, no message (daemontools dies of SIGPIPE)."""
    r, w = os.pipe()
    os.close(r)
    try:
        out = subprocess.run([program(prog)], input=b"x\n", stdout=w, stderr=subprocess.PIPE,
                             timeout=20)
    finally:
        os.close(w)
    assert (out.returncode, out.stderr) == (111, b"")


@pytest.mark.parametrize("prog", ["tai64n", "tai64nlocal"])
def test_filters_failing_to_read(prog, tmp_path):
    """stdin open for writing only: read(2) fails with EBADF."""
    with open(tmp_path / "f", "wb") as f:
        r = subprocess.run([program(prog)], stdin=f, capture_output=True, timeout=20)
    assert r.returncode == 111
    assert r.stderr.startswith(f"{prog}: fatal: unable to read input: ".encode())


# --- the chain loaders --------------------------------------------------------------------------

def test_long_options_are_named(tmp_path):
    r = run("setlock", "--wait", tmp_path / "lock", "true")
    assert (r.returncode, r.stderr) == (100, (
        "setlock: illegal option --wait: options are single letters\n"
        "setlock: usage: setlock [ -nNxX ] file program [ arg ... ]\n"))
    r = run("softlimit", "--mem", "1", "true")
    assert r.returncode == 100
    assert r.stderr.splitlines()[0] == "softlimit: illegal option --mem: options are single letters"


# --- nonsense arguments to every program ---------------------------------------------

LONG = "x" * 5000
BAD = "\udcff\udcfe"             # the bytes ff fe: not UTF-8


def case(prog, args, code, bug=None):
    shown = " ".join(a if len(a) < 20 else a[:6] + "…" for a in args)
    marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
    return pytest.param(prog, args, code, marks=marks,
                        id=f"{prog} {shown}".strip().encode("unicode_escape").decode())


NONSENSE = [
    case("svscan", ["-Z"], 100), case("svscan", ["--bogus"], 100), case("svscan", ["-g"], 100),
    case("svscan", ["-g", "soon", "."], 100), case("svscan", ["-gnan", "."], 100),
    case("svscan", ["a", "b"], 100), case("svscan", ["--"], 100), case("svscan", [""], 111),
    case("svscan", ["a\nb"], 111), case("svscan", [LONG], 111),
    case("svscan", [BAD], 111),
    case("supervise", [], 100), case("supervise", ["-Z"], 100),
    case("supervise", ["a", "b"], 100), case("supervise", [""], 111),
    case("supervise", ["a\nb"], 111), case("supervise", [LONG], 111),
    case("supervise", [BAD], 111),
    case("svc", ["-Z", "d"], 100), case("svc", ["--bogus"], 100), case("svc", ["-u", ""], 111),
    case("svc", ["-u", "a\nb"], 111), case("svc", ["-u", LONG], 111),
    case("svc", ["-u", BAD], 111),
    case("svstat", ["-Z"], 0), case("svstat", [""], 0), case("svstat", [BAD], 0),
    case("svstat", [LONG], 0),
    case("svok", [], 100), case("svok", ["-Z"], 100), case("svok", [""], 111),
    case("svok", ["a\nb"], 111), case("svok", [BAD], 111), case("svok", [LONG], 111),
    case("multilog", [], 0), case("multilog", ["./a/b/c"], 111),
    case("multilog", ["/proc/nope/x"], 111), case("multilog", ["./" + LONG], 111),
    case("multilog", ["-Z", BAD, LONG, "=", "!", "s", "n0"], 0),
    case("multilog", ["s²", "./main"], 0),
    case("svtree", [], 100), case("svtree", ["-Z"], 100), case("svtree", ["logs"], 100),
    case("svtree", ["logs", "/nonexistent"], 100), case("svtree", ["logs", "-n", "x", "."], 100),
    case("svtree", [BAD], 100), case("svtree", ["logs", "."], 111),
    case("tai64n", ["-Z", BAD], 0), case("tai64nlocal", ["-Z", BAD], 0),
    case("setuidgid", [], 100), case("setuidgid", ["root"], 100),
    case("setuidgid", [BAD, "true"], 111), case("setuidgid", ["", "true"], 111),
    case("setuidgid", [LONG, "true"], 111),
    case("envuidgid", [], 100), case("envuidgid", ["x"], 100),
    case("envuidgid", [BAD, "true"], 111),
    case("envdir", [], 100), case("envdir", ["d"], 100), case("envdir", [BAD, "true"], 111),
    case("envdir", [LONG, "true"], 111),
    case("softlimit", [], 100), case("softlimit", ["-Z", "true"], 100),
    case("softlimit", ["-o"], 100), case("softlimit", ["-o", "x", "true"], 100),
    case("softlimit", ["-o", "²", "true"], 100), case("softlimit", ["-t", "9" * 30, "true"], 0),
    case("softlimit", [BAD], 111),
    case("setlock", [], 100), case("setlock", ["-Z", "f", "true"], 100),
    case("setlock", ["f"], 100), case("setlock", ["nodir/f", "true"], 111),
    case("setlock", [LONG, "true"], 111), case("setlock", ["f", BAD], 111),
    case("pgrphack", [], 100), case("pgrphack", [BAD], 111), case("pgrphack", [LONG], 111),
]


# daemontools prints an illegal option and the usage on two lines (kept for
# compatibility, see test_kit); every other message is one line
MESSAGE_LINES = {"svc": 2, "softlimit": 2, "setlock": 2}


@pytest.mark.parametrize("prog,args,code", NONSENSE)
def test_nonsense_arguments(prog, args, code, tmp_path):
    """The documented exit code, a short message naming the program, and no traceback."""
    r = subprocess.run([program(prog), *map(os.fsencode, args)], cwd=tmp_path,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    err = r.stderr.decode(errors="replace")
    assert "Traceback" not in err
    assert r.returncode == code, err
    if prog != "svstat":
        assert r.stdout == b""
    if code == 0:
        # multilog, as daemontools', ignores words that are no action; it says so
        assert all(line.startswith("multilog: warning: ") for line in err.splitlines()) \
            if prog == "multilog" else err == "", err
        return
    lines = err.splitlines()
    assert lines, "an error without a message"
    if prog == "svtree" and args == []:
        assert lines[0].startswith("Usage: svtree"), err     # no command: the help
        return
    assert lines[0].startswith(f"{prog}: "), err
    newlines = sum(a.count("\n") for a in args)         # a name with a newline is printed as is
    assert len(lines) <= MESSAGE_LINES.get(prog, 1) + newlines, err
