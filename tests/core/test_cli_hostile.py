"""Hostile input found by a hunt over every ``musicemb`` subcommand: file names holding newlines or characters the
terminal lacks, options that contradict each other or the strategy, plot names taken by folders. Each is one line
(exit 1, or 2 for usage) or an answer that keeps one line per entry; never a traceback or lost answers."""

from __future__ import annotations

import contextlib
import io
import sys

import pytest

from musicemb_core import cli
from musicemb_core import cli_args as ca
from tests.conftest import write_tone

NEWLINE = "new\nline.wav"


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> dict:
    """A library embedded with the built-in spaces (and its melody index) whose files are named with a newline and
    with characters outside Latin-1, labelled by folder."""
    root = tmp_path_factory.mktemp("hostile")
    music = root / "music"
    for i, name in enumerate(("a/" + NEWLINE, "a/ü 日本.wav", "b/x.wav", "b/y.wav")):
        write_tone(music / name, 220.0 + 110 * i, seconds=6.0, sr=16000, seed=i)
    lib = root / "lib"
    assert cli.main(["ingest", str(lib), str(music), "--labels-from-folders", "--window", "2", "--embed", "-q"]) == 0
    return {"root": root, "music": music, "lib": str(lib), "newline": str(music / "a" / NEWLINE)}


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("argv", [
    ["identify", "{lib}", "{newline}", "-k", "2", "--top", "2"],
    ["classify", "{lib}", "{newline}"],
    ["hum", "{lib}", "{newline}", "-k", "2"],
    ["similar", "{lib}", "{newline}", "-k", "2"],
    ["tracks", "{lib}"],
    ["set", "{lib}", "1", "3"],
], ids=lambda a: a[0])
def test_a_name_with_a_newline_stays_on_its_line_in_answers(odd, argv, capsys):
    """identify/classify/hum printed the query's name and the tracks' paths raw, tracks and set the titles: the
    second half of the name stood on a line of its own, like another entry."""
    capsys.readouterr()
    assert cli.main([w.format(**odd) for w in argv] + ["-q"]) == 0
    out = capsys.readouterr().out
    assert "new\\nline" in out
    assert not [line for line in out.splitlines() if line.startswith("line")], out


@pytest.mark.parametrize("command", ["identify", "hum", "similar"])
def test_a_failed_query_named_with_a_newline_is_one_line(odd, command, capsys):
    """The error line of one query among others was printed raw: two lines on stderr."""
    capsys.readouterr()
    missing = str(odd["root"] / "no\nfile.wav")
    assert cli.main([command, odd["lib"], missing, odd["newline"], "-q"]) == 0
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("musicemb: error: ") and "no file.wav" in err[0], err


def test_characters_the_output_cannot_encode_are_escaped(odd, monkeypatch, capsys):
    """On an ASCII or Latin-1 standard output (a terminal, a Windows console) `ü` in a title was an "unexpected
    UnicodeEncodeError" that lost every row."""
    capsys.readouterr()
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    assert cli.main(["tracks", odd["lib"], "-q"]) == 0
    sys.stdout.flush()
    rows = raw.getvalue().decode("ascii").splitlines()
    assert len(rows) == 5 and any("  \\xfc \\u65e5\\u672c  [a]" in r for r in rows), rows
    assert capsys.readouterr().err == "4 tracks\n"


def test_the_output_handler_keeps_a_file_names_own_bytes():
    """Bytes of a name that is not UTF-8 (surrogates) are written as themselves, as before; the rest escaped."""
    assert "a\udcffü€".encode("ascii", ca.OUTPUT_ERRORS) == b"a\xff\\xfc\\u20ac"
    assert "a\udcffü€".encode("latin-1", ca.OUTPUT_ERRORS) == b"a\xff\xfc\\u20ac"


CONFLICTS = [
    (["train", "LIB", "--strategy", "qbh", "--arch", "cnn2"], "--arch: the qbh strategy trains its own networks"),
    (["train", "LIB", "--strategy", "qbh", "--dim", "8"], "--dim: the qbh strategy trains its own networks"),
    (["train", "LIB", "--strategy", "qbh", "--freeze-until", "fc"], "--freeze-until: the qbh strategy"),
    (["train", "LIB", "--strategy", "qbh", "--from", "default"], "--from: the qbh strategy"),
    (["train", "LIB", "--strategy", "qbh", "--resume"], "--resume: the qbh strategy cannot resume a run"),
    (["train", "LIB", "--strategy", "qbh", "--device", "cuda"], "--device cuda: the qbh strategy trains on the CPU"),
    (["train", "LIB", "--strategy", "transfer"], "--strategy transfer fine-tunes a saved model: give --from MODEL"),
    (["train", "LIB", "--strategy", "supervised", "--from", "default", "--width", "8"],
     "--width: --from default keeps that model's shape"),
    (["embed", "LIB", "--actors", "2"], "--actors is the number of Ray actors: give --ray ADDRESS too"),
]


@pytest.mark.parametrize(("argv", "needle"), CONFLICTS, ids=[" ".join(a[2:]) for a, _ in CONFLICTS])
def test_options_that_contradict_the_strategy_are_usage_errors(argv, needle, tmp_path, capsys):
    """These exited 1 once the library was read (the qbh shape options and --actors without --ray were ignored
    without a word); a usage error is exit 2, naming the subcommand, before the library is read."""
    lib = tmp_path / "lib"
    with pytest.raises(SystemExit) as e:
        cli.main([str(lib) if w == "LIB" else w for w in argv] + ["-q"])
    assert e.value.code == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith(f"musicemb {argv[0]}: error: ") and needle in err[0], err
    assert not lib.exists()


def test_a_plot_name_taken_by_a_folder_is_said_before_the_evaluation(odd, tmp_path, capsys):
    """`kmeans.png` being a folder failed after the whole evaluation (an OSError pointing at the log), with
    confusion.png already written and the results lost."""
    plots = tmp_path / "plots"
    (plots / "kmeans.png").mkdir(parents=True)
    capsys.readouterr()
    assert cli.main(["evaluate", odd["lib"], "--plots", str(plots), "--reid", "0", "-q"]) == 1
    assert capsys.readouterr().err == (f"musicemb: error: {plots / 'kmeans.png'}: is a folder; the plot kmeans.png "
                                       "cannot be written there\n")
    assert sorted(p.name for p in plots.iterdir()) == ["kmeans.png"]


def test_an_output_linked_to_a_librarys_file_is_refused_and_the_library_kept(tmp_path, capsys):
    """``--out`` written through a link (kept on purpose: a table linked into a synced folder) replaced the
    library's catalogue with a CSV when the link pointed there: the library was gone, and the command said 0."""
    from tests.conftest import catalogued_tones

    lib = catalogued_tones(tmp_path / "lib", tmp_path / "music", [{"name": "a.wav"}, {"name": "b.wav"}])
    before = (lib / "library.sqlite").read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    for ext in ("csv", "m3u8", "xml", "json"):
        (out / f"t.{ext}").symlink_to(lib / "library.sqlite")
    runs = [["export", str(lib), "--out", str(out / "t.csv")], ["export", str(lib), "--out", str(out / "t.m3u8")],
            ["export", str(lib), "--out", str(out / "t.xml")], ["features", str(tmp_path / "music"), "--out",
                                                                 str(out / "t.csv")],
            ["inspect", str(lib), "--kinds", "clipping", "--out", str(out / "t.json")]]
    for args in runs:
        assert cli.main([*args, "-q"]) == 1, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"is the library {lib}'s catalogue (it links to {lib / 'library.sqlite'})" in err[0]
    assert (lib / "library.sqlite").read_bytes() == before
    for _ in range(2):  # the user's own file in the library's folder is written, and written again
        assert cli.main(["export", str(lib), "--out", str(lib / "crate.m3u8"), "-q"]) == 0
    assert (lib / "crate.m3u8").read_text().count(".wav") == 2
    capsys.readouterr()
    (lib / "index").mkdir(exist_ok=True)
    (lib / "index" / "default.faiss").write_bytes(b"vectors")
    (out / "v.csv").symlink_to(lib / "index" / "default.faiss")  # a file of its derived folders is refused too
    assert cli.main(["export", str(lib), "--out", str(out / "v.csv"), "-q"]) == 1
    assert f"is the library {lib}'s file index/default.faiss (it links to" in capsys.readouterr().err
    assert (lib / "index" / "default.faiss").read_bytes() == b"vectors"


def test_inspect_of_a_library_cut_again_since_its_embed_says_so(odd, tmp_path, capsys):
    """Cut again (another window) and not embedded since: inspect said label issues "need at least 2 labels on at
    least 2 tracks" and outliers "need at least 2 tracks" of a library of 4 labelled tracks; a kind named twice
    listed its findings twice."""
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(odd["lib"], lib)
    from musicemb_core.common.progress import drive
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.inspect import iter_inspect

    with Library(lib) as library:
        assert drive(iter_inspect(library, kinds=["dead", "clipping", "dead"])).kinds == ["dead", "clipping"]
    assert cli.main(["ingest", str(lib), str(odd["music"]), "--window", "3", "-q"]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", str(lib), "--kinds", "label,outlier,label", "-q"]) == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == ["musicemb: warning: skipped label/outlier: none of the segments embedded with "
                                        "'similarity' is in the library now (cut again since); run `musicemb embed` "
                                        "first"]


def test_another_programs_database_named_like_a_catalogue_is_left_as_it_is(tmp_path, capsys):
    """A folder holding another program's SQLite file named library.sqlite: `info` added our tables to it (and
    set its journal mode), or failed on a table name both use, changing the file either way."""
    import hashlib
    import sqlite3

    tone = write_tone(tmp_path / "a.wav", 440.0, seconds=2.0)
    for i, table in enumerate(("notes(x)", "tracks(id integer primary key, foo text)")):
        db = tmp_path / f"l{i}" / "library.sqlite"
        db.parent.mkdir()
        with contextlib.closing(sqlite3.connect(db)) as c:
            c.execute(f"create table {table}")
            c.commit()
        before = hashlib.sha256(db.read_bytes()).hexdigest()
        for args in (["info", str(db.parent)], ["ingest", str(db.parent), str(tone), "-q"]):
            assert cli.main(args) == 1
            name = table.split("(")[0]
            assert capsys.readouterr().err.strip() == (f"musicemb: error: {db}: not a musicemb catalogue (another "
                                                       f"program's database, with tables {name}); left as it is")
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
        assert sorted(p.name for p in db.parent.iterdir()) == ["library.sqlite"]
