"""multilog's script language and patterns (pure): the man page's examples, the
matcher against a transcription of multilog's, how settings and actions
parse, and a Hypothesis property: any argument list parses into settings
within multilog's bounds and patterns that match any line."""

import os

import pytest
from hypothesis import given, settings, strategies as st

from svtree import logscript
from svtree.logscript import Dir


def reference_match(pattern: bytes, line: bytes) -> bool:
    """multilog's match(), transcribed from its documented behaviour:
    `*` skips to the first occurrence of the next pattern character, a final
    `*` matches the rest, anything else matches itself, no backtracking."""
    p, s = 0, 0
    line = line[:logscript.PATTERN_SPAN]
    while True:
        if p == len(pattern):
            return s == len(line)
        ch = pattern[p]
        p += 1
        if ch == ord("*"):
            if p == len(pattern):
                return True
            nxt = pattern[p]
            while True:
                if s == len(line):
                    return False
                if line[s] == nxt:
                    break
                s += 1
            continue
        if s == len(line) or line[s] != ch:
            return False
        s += 1


def m(pattern, line):
    return logscript.matches(logscript.compile_pattern(pattern), line)


def test_man_page_examples():
    assert m(b"named[*]: Cleaned cache *", b"named[123]: Cleaned cache of 1 RRset")
    assert not m(b"named[*]: Cleaned cache *", b"named[123]: Lame server")
    assert m(b"*", b"")
    assert m(b"a*", b"abc")
    assert not m(b"a", b"ab")
    assert m(b"*: x", b"daemon: x")
    assert not m(b"*: x", b"a: b: x")       # no backtracking: the first ':' is taken


def test_only_the_first_1000_bytes_count():
    assert m(b"*x", b"a" * 999 + b"x" + b"tail" * 10)
    assert not m(b"*x", b"a" * 1000 + b"x")


alphabet = st.sampled_from(b"ab*:x ")


@given(st.lists(alphabet, max_size=8).map(bytes), st.lists(alphabet, max_size=12).map(bytes))
def test_regex_agrees_with_multilogs_matcher(pattern, line):
    assert m(pattern, line) == reference_match(pattern, line)


def test_parse_settings_apply_to_later_directories():
    s = logscript.parse(["t", "s5000", "n3", "./a", "!gzip", "s1", "n1", "/b", "q", "t"])
    assert s.stamp == "t"
    assert s.dirs == [Dir("./a", 5000, 3, None), Dir("/b", 4096, 2, "gzip")]
    assert s.plain


def test_parse_selection_and_actions():
    s = logscript.parse(["-*", "+*error*", "e", "=status", "./main"])
    kinds = [a[0] for a in s.actions]
    assert kinds == ["select", "select", "alert", "status", "dir"]
    assert not s.plain and s.stamp is None
    assert logscript.parse(["s99999999", "./x"]).dirs[0].size == logscript.MAX_SIZE


# --- Hypothesis: any argument list ---------------------------------------------------

HEADS = ["", "t", "T", "+", "-", "e", "=", "s", "n", "!", ".", "./", "/"]
words = st.one_of(
    st.text(max_size=12),
    st.binary(max_size=12).map(os.fsdecode),                # what argv can really hold
    st.tuples(st.sampled_from(HEADS), st.text(max_size=8)).map("".join),
    st.tuples(st.sampled_from(["s", "n"]), st.integers(-10, 10**30)).map(lambda t: f"{t[0]}{t[1]}"),
    # digits of any script: str.isdigit() takes them, int() may not ("s²")
    st.tuples(st.sampled_from(["s", "n"]), st.text(st.characters(categories=["Nd", "No"]),
                                                   max_size=4)).map("".join))


@settings(max_examples=300, deadline=None)
@given(st.lists(words, max_size=8), st.binary(max_size=40))
def test_script_parser_never_raises(args, line):
    """Any argument list parses (multilog ignores what it does not know) into
    settings within multilog's bounds and patterns that match any line."""
    script = logscript.parse(args)
    for d in script.dirs:
        assert logscript.MIN_SIZE <= d.size <= logscript.MAX_SIZE
        assert d.num >= 2
    for action in script.actions:
        if action[0] == "select":
            assert logscript.matches(action[2], line) in (True, False)


@pytest.mark.parametrize("arg", ["s²", "n²", "s1²"])
def test_script_parser_with_a_digit_int_rejects(arg):
    """Only ASCII digits count, as in daemontools: "s²" is s with no number."""
    without = arg.rstrip("²")
    assert logscript.parse([arg, "./main"]).dirs == logscript.parse([without, "./main"]).dirs
