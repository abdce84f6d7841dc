"""Options may stand anywhere on the ``musicemb`` line, for every subcommand: before, between and after the
positionals (intermixed parsing); usage errors stay one line with exit status 2."""

from __future__ import annotations

import pytest

from musicemb_core import cli

#: subcommand -> (positionals, options); each option is a tuple of its words.
CASES: dict[str, tuple[list[str], list[tuple[str, ...]]]] = {
    "ingest": (["LIB", "a.wav", "b.wav"], [("--labels-from-folders",), ("--window", "2"), ("-j", "2"), ("--json",)]),
    "info": (["LIB"], [("--json",), ("-q",)]),
    "features": (["a.wav", "b.wav"], [("--out", "t.csv"), ("--per", "segment"), ("--window", "2")]),
    "train": (["LIB"], [("--strategy", "triplet"), ("--epochs", "3"), ("--name", "m1"), ("--resume",)]),
    "embed": (["LIB"], [("--model", "m1"), ("--batch-size", "8"), ("-q",)]),
    "index": (["LIB"], [("--model", "m1"), ("--kind", "flat"), ("--no-landmarks",)]),
    "identify": (["LIB", "a.wav", "b.wav"], [("--json",), ("-k", "5"), ("--top", "3")]),
    "classify": (["LIB", "a.wav", "b.wav"], [("--json",), ("-k", "5"), ("--model", "m1")]),
    "hum": (["LIB", "a.wav", "b.wav"], [("--json",), ("-k", "3"), ("--method", "melody")]),
    "similar": (["LIB", "a.wav", "b.wav"], [("--json",), ("-k", "4"), ("--together",)]),
    "search": (["LIB", "q.wav"], [("--json",), ("-k", "4")]),
    "map": (["LIB"], [("--method", "pca"), ("--out", "m.csv")]),
    "evaluate": (["LIB"], [("--json",), ("--reid", "5"), ("--snippet", "2"), ("--clusters", "2-6")]),
    "inspect": (["LIB"], [("--json",), ("--top", "3"), ("--out", "f.csv")]),
    "tracks": (["LIB"], [("--json",), ("--bpm", "120-130"), ("--key-compatible", "8A"), ("--label", "x")]),
    "export": (["LIB", "1", "2"], [("--out", "c.xml"), ("--bpm", "100-140"), ("--name", "crate")]),
    "set": (["LIB", "1", "2", "3"], [("--out", "s.m3u8"), ("--start", "2"), ("--json",)]),
    "demo": ([], [("--lib", "D"), ("--no-gui",)]),
}


def arrangements(positionals: list[str], options: list[tuple[str, ...]]) -> dict[str, list[str]]:
    """The same line with the options before, between (one after each positional) and after the positionals."""
    flat = [w for o in options for w in o]
    between: list[str] = []
    rest = list(options)
    for p in positionals:
        between.append(p)
        if rest:
            between.extend(rest.pop(0))
    between.extend(w for o in rest for w in o)
    return {"before": flat + positionals, "between": between, "after": positionals + flat,
            "split": [w for o in options[:len(options) // 2] for w in o] + positionals
            + [w for o in options[len(options) // 2:] for w in o]}


def parsed(argv: list[str]) -> dict:
    ns = vars(cli.build_parser().parse_args(argv))
    ns.pop("func")
    return ns


def test_every_subcommand_is_covered():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(CASES)


@pytest.mark.parametrize("command", sorted(CASES))
def test_options_anywhere(command):
    positionals, options = CASES[command]
    lines = arrangements(positionals, options)
    reference = parsed([command, *lines["after"]])
    for where, argv in lines.items():
        assert parsed([command, *argv]) == reference, where
    # every positional landed in the namespace (none was taken as an option's value)
    for p in positionals:
        assert p in {str(v) for v in reference.values()} | {w for v in reference.values() if isinstance(v, list)
                                                              for w in v}, p


def marked(positionals: list[str], options: list[tuple[str, ...]]) -> dict[str, list[str]]:
    """The same line with an end-of-options ``--`` before, between and after the positionals."""
    flat = [w for o in options for w in o]
    return {"before": [*flat, "--", *positionals], "between": [*flat, *positionals[:1], "--", *positionals[1:]],
            "after": [*positionals[:1], *flat, "--", *positionals[1:]], "end": [*positionals, *flat, "--"]}


def dashed(namespace: dict, word: str) -> dict:
    """``namespace`` with positional ``word`` spelled as ``-word``."""
    def swap(v):
        return [swap(w) for w in v] if isinstance(v, list) else f"-{v}" if v == word else v
    return {k: swap(v) for k, v in namespace.items()}


@pytest.mark.parametrize("command", sorted(CASES))
def test_double_dash_ends_the_options(command):
    """After ``--`` every word is a positional, even one that starts with ``-``; ``--`` itself is no argument."""
    positionals, options = CASES[command]
    reference = parsed([command, *positionals, *[w for o in options for w in o]])
    for where, argv in marked(positionals, options).items():
        assert parsed([command, *argv]) == reference, where
    if positionals:
        flat = [w for o in options for w in o]
        last = positionals[-1]
        assert parsed([command, *flat, "--", *positionals[:-1], f"-{last}"]) == dashed(reference, last)


def test_double_dash_lines_of_the_issue():
    """A query file named ``-a.wav``; an option's spelling after ``--`` is a file name, not the option."""
    a = parsed(["identify", "--json", "--", "LIB", "-a.wav"])
    assert (a["lib"], a["queries"], a["json"]) == ("LIB", ["-a.wav"], True)
    a = parsed(["hum", "LIB", "--", "--json", "-k"])
    assert (a["queries"], a["json"], a["k"]) == (["--json", "-k"], False, 10)
    a = parsed(["hum", "LIB", "a.wav", "--", "--", "-b.wav"])  # a second ``--`` is a file name
    assert a["queries"] == ["a.wav", "--", "-b.wav"]


def test_debug_after_double_dash_is_a_file_name(tmp_path, monkeypatch, capsys):
    """``main`` takes ``--debug`` out of the line only among the options: after ``--`` it is the library's name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MUSICEMB_DEBUG", raising=False)
    assert cli.main(["info", "--json", "--", "--debug"]) == 1
    assert f"{tmp_path / '--debug'}: not a musicemb library" in capsys.readouterr().err


def test_hum_options_between_the_library_and_its_queries():
    """The line of the issue: a positional list that may be empty, after an option."""
    a = parsed(["hum", "LIB", "--json", "a.wav", "b.wav"])
    assert (a["lib"], a["queries"], a["json"]) == ("LIB", ["a.wav", "b.wav"], True)
    a = parsed(["hum", "LIB", "--record", "5", "--json"])
    assert (a["queries"], a["record"]) == ([], 5.0)


@pytest.mark.parametrize(("argv", "needle"), [
    (["hum", "LIB", "-k", "0", "a.wav"], "argument -k: must be from 1 to 10000, got 0"),
    (["hum", "LIB", "a.wav", "--bogus"], "unrecognized arguments: --bogus"),
    (["identify", "LIB", "--json"], "the following arguments are required: QUERY_AUDIO"),
    (["features", "a.wav", "--per", "track"], "the following arguments are required: --out"),
    (["ingest", "--json", "LIB", "a.wav", "--labels", "x.csv", "--labels-from-folders"], "not allowed with"),
    (["train", "LIB", "--epochs", "x", "--strategy", "triplet"], "argument --epochs: an integer is needed"),
    (["identify", "--json", "--", "LIB"], "musicemb identify: error: the following arguments are required: "
                                          "QUERY_AUDIO"),
    (["info", "LIB", "--", "-x.wav"], "musicemb info: error: unrecognized arguments: -x.wav (see"),
    (["demo", "--", "--no-gui"], "musicemb demo: error: unrecognized arguments: --no-gui (see"),
    (["search", "LIB", "--", "--json", "q.wav"], "unrecognized arguments: q.wav"),
])
def test_usage_errors_stay_one_line(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(argv)
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and needle in err[0], err


def test_main_runs_a_command_with_options_between_positionals(tmp_path, capsys):
    """End to end through ``main``: ``info --json`` before the library folder."""
    assert cli.main(["info", "--json", str(tmp_path / "missing-lib")]) in (0, 1)
    assert "unrecognized" not in capsys.readouterr().err
