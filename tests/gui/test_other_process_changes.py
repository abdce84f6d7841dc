"""Findings and tracks changed by another program (`musicemb inspect` or `musicemb ingest --embed` from a cron
job, real processes) while the window shows the library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from tests.conftest import write_tone  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, window  # noqa: E402, F401 (fixtures)


@pytest.fixture
def lib_path(tmp_path) -> Path:
    """A tone and a clipped tone, imported; stored: one clipping finding on the tone (an older inspection's)."""
    write_tone(tmp_path / "audio" / "tone440.wav", 440, seconds=9.0, sr=16000)
    t = np.arange(9 * 16000) / 16000
    sf.write(tmp_path / "audio" / "clipped.wav", np.clip(3 * np.sin(2 * np.pi * 300 * t), -1, 1).astype(np.float32),
             16000)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "audio"], jobs=1))
        tone = next(t.id for t in lib.tracks() if t.path.endswith("tone440.wav"))
        lib.replace_findings([{"kind": "clipping", "segment_id": None, "track_id": tone, "start_s": 0.0,
                               "end_s": 9.0, "score": 1.0, "reason": "clipped"}], kinds=["clipping"])
    return tmp_path / "lib"


@pytest.mark.parametrize("action", ["accept", "relabel"])
def test_a_finding_replaced_by_another_inspection_is_not_the_one_changed(qtbot, window, lib_path, bugs,  # noqa: F811
                                                                         action):
    """The id of the finding on the screen was given to another finding by the other program's inspection:
    Accept accepted that other finding and Relabel relabelled its track (another file), silently. Now the edit
    is refused in one line and the findings are read again."""
    assert window.open_library(lib_path)
    tracks = {Path(t.path).name: t.id for t in window.session.tracks.values()}
    panel = window.inspection_panel
    [shown] = window.inspection.rows
    r = subprocess.run([sys.executable, "-m", "musicemb_core.cli", "inspect", str(lib_path), "--kinds", "clipping",
                        "-q"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with Library(lib_path) as lib:
        now = {f["id"]: f for f in lib.findings()}
    assert now[shown["id"]]["track_id"] == tracks["clipped.wav"]  # the id names the clipped file's finding now
    panel.table.selectRow(0)
    if action == "accept":
        panel.accept.click()
    else:
        panel.new_label.setText("calm")
        panel.relabel.click()
    assert window.statusBar().currentMessage() == (
        f"{lib_path}: the clipping finding on tone440.wav is not in the library any more; another program changed "
        "the library since the window read it (an import cut its tracks again, removed some, or an inspection "
        "replaced the findings): it is read again")
    with Library(lib_path) as lib:
        assert {f["id"]: f["status"] for f in lib.findings()} == {i: "open" for i in now}
        assert lib.labels() == {tracks["tone440.wav"]: None, tracks["clipped.wav"]: None}
        assert lib.conn.execute("SELECT count(*) FROM edits").fetchone() == (0,)
    qtbot.waitUntil(lambda: {r["id"] for r in window.inspection.rows} == set(now))  # the findings as they are now
    assert {r["track_id"] for r in window.inspection.rows} == {tracks["clipped.wav"]}
    assert [r["status"] for r in window.inspection.rows] == ["open"] * len(now)


def test_findings_of_tracks_another_program_imported_show_those_tracks(qtbot, window, tmp_path, bugs):  # noqa: F811
    """A cron job imports (and embeds) a new file; Inspect in the window then finds clipping in it: the findings
    named it "track 3", selecting one raised KeyError in the window (no spectrogram) and Play said "cannot play:
    KeyError: 7". Now the library is read again: the new track is in the table, its findings are named and play."""
    from tests.conftest import embedded_tones

    lib_path = embedded_tones(tmp_path, freqs=(440, 660))
    assert window.open_library(lib_path)
    t = np.arange(9 * 16000) / 16000
    (tmp_path / "new").mkdir()
    sf.write(tmp_path / "new" / "clipped.wav", np.clip(3 * np.sin(2 * np.pi * 300 * t), -1, 1).astype(np.float32),
             16000)
    r = subprocess.run([sys.executable, "-m", "musicemb_core.cli", "ingest", str(lib_path), str(tmp_path / "new"),
                        "--embed", "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    panel = window.inspection_panel
    panel.run.click()
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("inspection done"), timeout=60000)
    clipped = {f["id"] for f in window.inspection.rows if f["kind"] == "clipping"}
    assert clipped and {f["name"] for f in window.inspection.rows} == {"clipped.wav"}
    assert len(window.session.tracks) == 3 and window.library_panel.model.rowCount() == 3
    row = next(i for i, f in enumerate(panel.shown()) if f["id"] in clipped)
    panel.table.selectRow(row)
    spectrograms = (panel.spectrogram, window.map_panel.spectrogram)
    qtbot.waitUntil(lambda: not any(v.stack.empty for v in spectrograms), timeout=20000)
    panel.play.click()
    qtbot.waitUntil(lambda: len(window.backend.calls) == 1, timeout=10000)
    assert "KeyError" not in window.statusBar().currentMessage()


def test_vectors_of_tracks_another_program_imported_show_those_tracks(qtbot, window, tmp_path, bugs):  # noqa: F811
    """A cron job imports and embeds a new file; Library ▸ Embed in the window (nothing left to embed) then said
    "3 embedded segments are no longer in the library (their files changed): Library ▸ Embed brings the
    embeddings up to date", again at every Embed, and the new track was in neither the table nor the map. Now the
    library is read again: the track is listed and its points are drawn."""
    from tests.conftest import embedded_tones

    lib_path = embedded_tones(tmp_path, freqs=(440, 660))
    assert window.open_library(lib_path)
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 6, timeout=30000)
    write_tone(tmp_path / "new" / "tone990.wav", 990, seconds=9.0, sr=16000, seed=7)
    r = subprocess.run([sys.executable, "-m", "musicemb_core.cli", "ingest", str(lib_path), str(tmp_path / "new"),
                        "--embed", "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    window.embed_library()
    assert window.jobs.wait(60000)
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 9, timeout=30000)
    assert not [m for m in said if "no longer in the library" in m]
    assert len(window.session.tracks) == 3 and window.library_panel.model.rowCount() == 3
    assert len(window.session.embedding_ids) == 9
