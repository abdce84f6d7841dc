"""What the README and the CLI contract promise, checked on the real ``musicemb`` commands where a run of every
documented example found the code doing otherwise."""

from __future__ import annotations

import csv
import subprocess
import types

import pytest

from musicemb_core import cli
from musicemb_core.data.ingest import IngestReport
from tests.core.test_cli_errors import tone

# -- demo: no display, no window ---------------------------------------------------------------------------------


@pytest.fixture
def demo_lib(tmp_path, monkeypatch):
    """A tiny library standing in for a built demo (the build itself is replaced: it takes minutes)."""
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))
    tone(tmp_path / "music" / "a.wav", 2.0)
    assert cli.main(["ingest", str(tmp_path / "lib"), str(tmp_path / "music"), "--no-analysis", "-q"]) == 0
    from musicemb_core.workflows import demo

    def built(root, **kw):
        return IngestReport()
        yield  # a generator, as the real build

    monkeypatch.setattr(demo, "iter_build_demo", built)
    monkeypatch.setattr(demo, "demo_built", lambda root: True)
    started = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, *a, **kw: started.append(cmd) or 0)
    return types.SimpleNamespace(lib=tmp_path / "lib", started=started)


@pytest.mark.parametrize("qpa", ["offscreen", "minimal"])
def test_demo_without_a_display_prints_the_summary_and_opens_no_window(demo_lib, monkeypatch, capsys, qpa):
    """README: without a display (no DISPLAY/WAYLAND_DISPLAY) `make demo` builds the library and prints its summary
    instead of opening the window. With QT_QPA_PLATFORM=offscreen (as test and CI shells set it) the app was
    started off screen: no window anyone could see, and the command never returned."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(cli.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", qpa)
    assert cli.main(["demo", "--lib", str(demo_lib.lib), "-q"]) == 0
    out, err = capsys.readouterr()
    assert demo_lib.started == []
    assert f"library {demo_lib.lib}" in out and "1 tracks" in out
    assert f"no display here (QT_QPA_PLATFORM={qpa})" in err


def test_demo_with_a_display_opens_the_app(demo_lib, monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert cli.main(["demo", "--lib", str(demo_lib.lib), "-q"]) == 0
    assert len(demo_lib.started) == 1 and demo_lib.started[0][-1] == str(demo_lib.lib)
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setattr(cli.sys, "platform", "linux")
    assert cli.main(["demo", "--lib", str(demo_lib.lib), "-q"]) == 0
    assert len(demo_lib.started) == 1
    assert "no display here (DISPLAY is not set)" in capsys.readouterr().err


# -- map --out: segments gone since the embed ----------------------------------------------------------------------


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))
    for i, f in enumerate((220.0, 330.0, 495.0)):
        tone(tmp_path / "music" / f"t{i}.wav", 3.0, freq=f)
    lib = str(tmp_path / "lib")
    assert cli.main(["ingest", lib, str(tmp_path / "music"), "--window", "1", "--no-analysis", "-q"]) == 0
    assert cli.main(["embed", lib, "--model", "default", "-q"]) == 0
    return tmp_path


def _map_out(root, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    status = cli.main(["map", str(root / "lib"), "--model", "default", "--method", "pca", "--out",
                       str(root / "map.csv"), "-q"])
    out, err = capsys.readouterr()
    return status, out, err


def test_map_export_leaves_out_the_segments_of_a_pruned_track(embedded, capsys):
    """README: a pruned track's vectors go at the next `embed`; searches skip them meanwhile. `map --out` was an
    "unexpected KeyError" until then."""
    (embedded / "music" / "t1.wav").unlink()
    assert cli.main(["ingest", str(embedded / "lib"), str(embedded / "music"), "--prune", "-q"]) == 0
    status, out, err = _map_out(embedded, capsys)
    assert status == 0, err
    assert "unexpected" not in err
    assert err.strip() == (f"musicemb: warning: 3 segments of the map left out of {embedded / 'map.csv'}: no longer "
                           "in the library (cut again or removed since the embed); run `musicemb embed`")
    with open(embedded / "map.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["track"] for r in rows} == {str(embedded / "music" / f"t{i}.wav") for i in (0, 2)}
    assert out.strip() == f"pca map of 6 segments -> {embedded / 'map.csv'}"


def test_map_export_of_a_library_cut_again_since_the_embed_is_one_line(embedded, capsys):
    """An import with another --window cuts every segment again; `map --out` was an "unexpected KeyError"."""
    assert cli.main(["ingest", str(embedded / "lib"), str(embedded / "music"), "--window", "1.5", "-q"]) == 0
    status, out, err = _map_out(embedded, capsys)
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "unexpected" not in err, err
    assert "none of the 9 segments of this map is in the library any more" in lines[0]
    assert "run `musicemb embed`" in lines[0]
    assert not (embedded / "map.csv").exists()
