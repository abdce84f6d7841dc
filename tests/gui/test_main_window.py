"""The main window opens a real library and shows its tracks and failures in a sortable, filterable table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings, Qt  # noqa: E402

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.main_window import MainWindow  # noqa: E402


@pytest.fixture
def library(tmp_path):
    audio = tmp_path / "audio"
    for label, secs in (("birds", 7.0), ("rain", 4.0)):
        (audio / label).mkdir(parents=True)
        rng = np.random.default_rng(len(label))
        sf.write(audio / label / f"{label}.wav", 0.1 * rng.standard_normal(int(8000 * secs)), 8000)
    (audio / "rain" / "broken.wav").write_bytes(b"RIFF....not audio")
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [audio], labels="folders", jobs=1))
    return tmp_path / "lib"


def test_open_library_fills_the_table(qtbot, library, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    assert win.open_library(library)
    panel = win.library_panel
    rows = {panel.proxy.index(r, 0).data(): [panel.proxy.index(r, c).data() for c in range(5)]
            for r in range(panel.proxy.rowCount())}
    win.jobs.wait(10000)
    assert len(rows) == 3
    birds = next(v for k, v in rows.items() if k.endswith("birds.wav"))
    assert birds[1:4] == ["0:07.0", "birds", "2"]  # 7 s -> windows at 0 and 3 (1 s tail dropped)
    broken = next(v for k, v in rows.items() if k.endswith("broken.wav"))
    assert broken[4].startswith("failed: not a readable audio file")
    assert "2 tracks" in win.statusBar().currentMessage()
    assert settings.value("last_library") == str(library.resolve())

    panel.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # by duration, numerically
    assert panel.proxy.index(0, 2).data() == "birds"
    panel.filter.setText("RAIN")
    assert panel.proxy.rowCount() == 2
    birds_row = next(r for r in range(3) if panel.model.index(r, 0).data() == "birds.wav")
    assert panel.model.index(birds_row, 0).data(Qt.ItemDataRole.ToolTipRole).endswith("/audio/birds/birds.wav")  # the name; the path on hover
    panel.filter.setText("audio/birds")  # a folder of the path, which the table does not show, still filters
    assert panel.proxy.rowCount() == 1 and panel.proxy.index(0, 0).data() == "birds.wav"


def test_new_library_creates_its_folder_or_says_why(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert win.create_library(tmp_path / "not" / "there" / "yet")
    assert (tmp_path / "not" / "there" / "yet" / "library.sqlite").is_file()
    assert win.session.lib_path == (tmp_path / "not" / "there" / "yet").resolve()
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warned.append(a[2]))
    (tmp_path / "a-file").write_text("x")
    assert not win.create_library(tmp_path / "a-file")
    assert warned and "a-file" in warned[0]


def test_demo_is_built_as_a_job_in_an_open_window(qtbot, tmp_path):
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    ended = []
    win.jobs.jobEnded.connect(ended.append)
    win.build_demo(tmp_path / "demo", n_per_style=1, duration_s=6.0)
    assert win.isVisible() and [j.name for j in win.jobs.jobs] == ["build the demo library"]
    assert "demo" in win.statusBar().currentMessage()
    qtbot.waitUntil(lambda: win.session.lib_path == (tmp_path / "demo").resolve(), timeout=120000)
    assert win.library_panel.proxy.rowCount() == 5  # one song per style, opened when the job ended
    from musicemb_core.search.qbh import qbh_index_current

    with Library(tmp_path / "demo") as lib:  # the first hum needs no index built: the demo built it
        assert qbh_index_current(lib) and (tmp_path / "demo" / "fingerprints").is_dir()


def test_import_embeds_both_spaces_in_the_import_job(qtbot, library, tmp_path):
    from musicemb_core.stored_vectors import builtin_models, load_embeddings

    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert win.open_library(library) and win.session.model in builtin_models()
    win.jobs.wait(10000)
    (tmp_path / "more").mkdir()
    sf.write(tmp_path / "more" / "wind.wav", 0.1 * np.random.default_rng(3).standard_normal(8000 * 6), 8000)
    win.import_paths([str(tmp_path / "more")])
    qtbot.waitUntil(lambda: "import done: 1 added" in win.statusBar().currentMessage(), timeout=120000)
    win.jobs.wait(60000)
    assert not any(j.name.startswith("embed") for j in win.jobs.jobs)  # no second pass over the audio
    with Library(library) as lib:
        for m in builtin_models():  # the new track's segments and those the library had without vectors
            assert np.array_equal(load_embeddings(lib, m).ids, lib.segments()["id"])


def test_an_import_says_which_tracks_lost_their_files(qtbot, library, tmp_path, monkeypatch):
    """A file deleted from an imported folder: the import done from the app says its track is kept and how to
    remove it (it named the command line's `musicemb ingest --prune`: the app could not remove it). Library ▸
    Remove missing tracks lists it and, confirmed, removes it; the files in place keep their tracks."""
    from PySide6.QtWidgets import QMessageBox

    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert win.open_library(library)
    win.jobs.wait(10000)
    (tmp_path / "audio" / "rain" / "rain.wav").unlink()
    win.import_paths([str(tmp_path / "audio")])
    qtbot.waitUntil(lambda: "import done" in win.statusBar().currentMessage(), timeout=120000)
    assert "1 tracks whose files are gone (kept; Library ▸ Remove missing tracks removes them)" in \
        win.statusBar().currentMessage()
    assert len(win.session.tracks) == 2
    asked = []
    monkeypatch.setattr(QMessageBox, "question", staticmethod(
        lambda _parent, _title, text, *a: asked.append(text) or QMessageBox.StandardButton.No))
    win.missing_tracks.ask()
    qtbot.waitUntil(lambda: bool(asked), timeout=10000)
    assert asked[0].startswith("1 of 2 tracks have files that are gone") and "rain.wav" in asked[0]
    win.jobs.wait(10000)
    assert len(win.session.tracks) == 2  # No: nothing removed
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a: QMessageBox.StandardButton.Yes))
    win.missing_tracks.ask()
    qtbot.waitUntil(lambda: "1 missing tracks removed" in win.statusBar().currentMessage(), timeout=30000)
    assert len(win.session.tracks) == 1 and all(Path(t.path).exists() for t in win.session.tracks.values())
    with Library(library) as lib:
        assert len(lib.tracks()) == 1 and Path(lib.tracks()[0].path).exists()
    win.missing_tracks.ask()
    qtbot.waitUntil(lambda: "every track's file is in place (1 tracks)" in win.statusBar().currentMessage(),
                    timeout=10000)
