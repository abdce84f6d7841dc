"""Sequences of actions a daily user stumbles into: another library opened while a sound still decodes, lists
clicked after another program removed their tracks. Every test fails on an exception raised in a Qt slot or a
job failing with a traceback (``bugs``)."""

# ruff: noqa: F811 (the fixtures imported from test_gui_sweep are the tests' arguments)
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui import workers  # noqa: E402
from tests.conftest import dominant_freq, write_tone  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, embedded, inspected, library_copy, window  # noqa: E402, F401 (fixtures)


def _tones(root: Path, freqs) -> Path:
    """``root/lib``: 9 s tones of ``freqs`` (named by their frequency), imported, not embedded."""
    for i, freq in enumerate(freqs):
        write_tone(root / "audio" / f"tone{freq}.wav", freq, seconds=9.0, sr=16000, seed=i)
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], jobs=1))
    return root / "lib"


@pytest.fixture
def two_libraries(tmp_path) -> tuple[Path, Path]:
    """Two libraries whose segment 1 sounds different (their ids both start at 1)."""
    return _tones(tmp_path / "a", (440, 660)), _tones(tmp_path / "b", (1000, 1500))


@pytest.fixture
def held_decodes(window, monkeypatch) -> list[threading.Event]:
    """Segment decodes held until the test sets their event (one appended per decode, once it has decoded)."""
    held: list[threading.Event] = []
    real = window.session.segment_audio

    def decode(seg_id):
        audio, gate = real(seg_id), threading.Event()
        held.append(gate)
        gate.wait(30)
        return audio
    monkeypatch.setattr(window.session, "segment_audio", decode)
    return held


def _played_freq(win) -> float:
    data, sr = win.backend.calls[-1]
    return dominant_freq(np.asarray(data).reshape(len(data), -1)[:, 0], sr)


def _segment_freq(win, seg_id: int) -> float:
    return float(Path(win.session.segment(seg_id)["path"]).stem.removeprefix("tone"))


def test_a_decode_of_the_library_open_before_never_plays_for_the_next(qtbot, window, two_libraries, held_decodes,
                                                                      bugs):
    """Click a point, open another library before its sound has decoded, click the point of the same id there:
    the first decode, ending first, played the old library's audio for the new library's point."""
    first, second = two_libraries
    assert window.open_library(first)
    window.play_segment(1)
    qtbot.waitUntil(lambda: len(held_decodes) == 1)  # the old library's segment 1, decoded
    assert window.open_library(second)
    window.play_segment(1)
    qtbot.waitUntil(lambda: len(held_decodes) == 2)
    held_decodes[0].set()
    qtbot.waitUntil(lambda: len(workers._pending) == 1)  # the first decode was delivered
    assert window.backend.calls == []
    held_decodes[1].set()
    qtbot.waitUntil(lambda: len(window.backend.calls) == 1)
    assert _played_freq(window) == pytest.approx(_segment_freq(window, 1), abs=5) == 1000
    qtbot.wait(100)
    assert len(window.backend.calls) == 1


def test_audio_decoded_ahead_for_the_library_open_before_is_not_kept_for_the_next(qtbot, window, two_libraries,
                                                                                  held_decodes, bugs):
    """Hover a point (its audio decoded ahead of a click), open another library before it has decoded, then click
    the point of the same id there: the old library's audio was cached under that id and played for it."""
    first, second = two_libraries
    assert window.open_library(first)
    window.map_controller.prefetch(1)
    qtbot.waitUntil(lambda: len(held_decodes) == 1)
    assert window.open_library(second)
    held_decodes[0].set()
    qtbot.waitUntil(lambda: not workers._pending)
    assert 1 not in window.map_controller.audio
    window.play_segment(1)
    qtbot.waitUntil(lambda: len(held_decodes) == 2)
    held_decodes[1].set()
    qtbot.waitUntil(lambda: len(window.backend.calls) == 1)
    assert _played_freq(window) == pytest.approx(1000, abs=5)


def test_lists_clicked_after_another_program_removed_their_tracks(qtbot, window, library_copy, bugs):
    """"More like this", the neighbours and a set list tracks; another program removes them (``ingest --prune``)
    and the library is read again (Reload): clicking a "more like this" or set row raised KeyError in the slot,
    a neighbour row said "cannot play: KeyError: 11". Now each says in one line that it is no longer there."""
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    assert window.open_library(library_copy)
    qtbot.waitUntil(lambda: len(window.map_controller.ids) > 0, timeout=30000)
    panel, s = window.map_panel, window.session
    panel.select_segment(int(s.segments["id"][0]))
    qtbot.waitUntil(lambda: panel.neighbours.rowCount() > 0 and panel.similar.rowCount() == 3,
                    timeout=30000)
    window.library_controller.build_set(list(s.tracks))
    qtbot.waitUntil(lambda: window.library_controller.plan is not None, timeout=30000)
    kept, played = int(s.segments["track_id"][0]), len(window.backend.calls)  # the segment clicked
    with Library(library_copy) as lib:
        lib.remove_tracks([t for t in s.tracks if t != kept])
    window.reload_library()
    assert list(s.tracks) == [kept]
    similar = panel._similar_at(0)
    panel._similar_clicked(0, 0)
    assert said[-1] == f"cannot play: track {similar} is no longer in the library (removed since it was listed)"
    gone = next(i for i in window.library_controller.set_dialog.track_ids() if i != kept)
    window.library_controller.set_dialog._play(window.library_controller.set_dialog.track_ids().index(gone))
    assert said[-1] == f"cannot play: track {gone} is no longer in the library (removed since it was listed)"
    rows = [panel._neighbour_at(r) for r in range(panel.neighbours.rowCount())]
    gone_row = next(r for r, seg in enumerate(rows) if seg not in s.seg_row)
    panel._neighbour_clicked(gone_row, 0)
    assert said[-1] == f"cannot play: segment {rows[gone_row]} is no longer in the library (its track was removed)"
    assert window.playback.pending is None
    qtbot.wait(100)
    assert len(window.backend.calls) == played


@pytest.fixture
def held_maps(monkeypatch) -> threading.Event:
    """Map jobs held (honouring Cancel) until the test sets the event."""
    import musicemb_gui.panels.map_controller as mc

    real, go = mc.iter_map, threading.Event()

    def held(*a, cancel, **k):
        while not go.wait(0.05):
            cancel.check()
        return (yield from real(*a, cancel=cancel, **k))
    monkeypatch.setattr(mc, "iter_map", held)
    yield go
    go.set()


def test_methods_picked_in_turn_leave_one_map_job_each(qtbot, window, embedded, library_copy, held_maps, bugs):
    """Pick UMAP, t-SNE, PCA, UMAP, t-SNE while the map is computed: every pick started a map job (and a PCA one
    each time), ten jobs running one after another, each UMAP or t-SNE minutes in a child process, before the map
    picked last was drawn. Now the maps no longer wanted are cancelled, and another library cancels them all."""
    assert window.open_library(embedded)
    picks = ("UMAP", "t-SNE", "PCA", "UMAP", "t-SNE")
    for method in picks:
        window.map_panel.method.setCurrentText(method)
    started: list = []
    window.jobs.jobAdded.connect(started.append)
    window.map_controller.request_map("tsne")  # asked again (the embeddings read again): the job under way goes on
    assert started == []
    qtbot.waitUntil(lambda: len(window.jobs.jobs) == 2)
    assert sorted(j.name for j in window.jobs.jobs) == ["PCA map", "TSNE map"]
    old = list(window.jobs.jobs)
    assert window.open_library(library_copy)
    assert all(j.token.cancelled for j in old)
    qtbot.waitUntil(lambda: sorted(j.name for j in window.jobs.jobs) == ["PCA map", "TSNE map"]
                    and not set(window.jobs.jobs) & set(old), timeout=10000)
    held_maps.set()
    qtbot.waitUntil(lambda: window.map_controller.shown == "tsne", timeout=60000)
    assert len(window.map_controller.ids) == 12


def test_another_library_opened_while_an_inspection_runs_may_be_inspected(qtbot, window, inspected, library_copy,
                                                                          tmp_path, monkeypatch, bugs):
    """Inspect a library, open another before it ends: the new library's panel said "Inspecting…" with Run off, and
    Run said "inspect with similarity is still running", until the old library's inspection ended. Now that one
    goes on (its findings stored in its library) and the new library is inspected after it."""
    import shutil

    import musicemb_core.workflows.inspect as inspect_mod

    real, go = inspect_mod.iter_inspect, threading.Event()

    def held(lib, **kw):
        run = real(lib, **kw)
        yield next(run)
        go.wait(30)
        return (yield from run)
    monkeypatch.setattr(inspect_mod, "iter_inspect", held)
    first = Path(shutil.copytree(inspected.parent, tmp_path / "inspected")) / "lib"
    with Library(first) as lib:
        lib.replace_findings([], kinds=["clipping", "outlier"])
    assert window.open_library(first)
    window.inspection.run()
    qtbot.waitUntil(lambda: any(j.last is not None for j in window.jobs.jobs), timeout=30000)
    assert window.open_library(library_copy)
    panel = window.inspection_panel
    assert panel.run.isEnabled() and panel.run.text() == "Run inspection"
    window.inspection.run()
    assert [j.name for j in window.jobs.jobs if j.writes] == ["inspect with similarity"] * 2
    assert not panel.run.isEnabled()
    go.set()
    assert window.jobs.wait(60000)
    qtbot.waitUntil(lambda: panel.run.isEnabled())
    assert window.statusBar().currentMessage().startswith("inspection done: 0 findings")
    with Library(first) as lib:
        assert {f["kind"] for f in lib.findings()} >= {"clipping"}  # the first library's run was stored


def test_a_long_label_in_the_map_legend_is_cut_not_drawn_over_the_map(qtbot):
    """A label of a few hundred characters (a pasted playlist name) ran across the whole map in its legend."""
    from musicemb_gui.widgets.scatter_view import ScatterView

    view = ScatterView()
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    long = "Deep House – Melodic Techno afterhours selection " * 6
    xy = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)
    view.set_points(xy, np.arange(30), np.arange(30) % 2, ["#1f77b4", "#ff7f0e"], [long, "techno"])
    cut, short = (label.text for _sample, label in view.legend.items)
    assert short == "techno" and cut.endswith("…") and len(cut) <= 40 and long.startswith(cut[:-1])
    assert view.legend.boundingRect().width() < view.vb.width() / 2


@pytest.mark.parametrize("whole", [True, False], ids=["whole tracks", "segments"])
def test_a_label_dialog_accepted_after_its_tracks_were_removed_labels_the_rest(qtbot, window, library_copy, whole,
                                                                              bugs):
    """Select the whole map, open "Label selection…", meanwhile a track is removed and the library read again
    (another program's prune, then Reload): labelling whole tracks raised KeyError in the slot, tagging the
    segments stored nothing ("no segment with id 10"). Now the tracks still there are labelled."""
    assert window.open_library(library_copy)
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 12, timeout=30000)
    panel, s = window.map_panel, window.session
    panel.show_selection(window.map_controller.ids)
    panel._label_selection()
    gone = max(s.tracks)
    with Library(library_copy) as lib:
        lib.remove_tracks([gone])
    window.reload_library()
    panel.label_dialog.label.setText("techno")
    (panel.label_dialog.whole if whole else panel.label_dialog.segments).setChecked(True)
    panel.label_dialog.accept()
    with Library(library_copy) as lib:
        labels, tags = lib.labels(), dict(lib.conn.execute("SELECT segment_id, label FROM segment_labels"))
    if whole:
        assert labels == {t: "techno" for t in s.tracks} and gone not in labels
        assert panel.status.text().startswith("label 3 tracks 'techno'")
    else:
        assert sorted(tags) == sorted(s.seg_row) and set(tags.values()) == {"techno"}
        assert panel.status.text().startswith("tag 9 segments 'techno'")


def test_embed_asked_again_while_it_is_queued_or_runs_is_not_queued_twice(qtbot, window, tmp_path):  # noqa: F811
    """Library ▸ Embed pressed twice queued two embed jobs, the second finding nothing left to embed; now the
    second press says the first is queued or running. Once it ended, Embed runs again."""
    from tests.gui.helpers import tone_library

    assert window.open_library(tone_library(tmp_path))
    names = lambda: [j.name for j in window.jobs.jobs if j.name.startswith("embed with")]  # noqa: E731
    window.embed_library()
    window.embed_library()
    assert len(names()) == 1
    assert "is already" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not names(), timeout=120000)  # ended: the manager lists running and queued jobs
    window.embed_library()
    assert len(names()) == 1
