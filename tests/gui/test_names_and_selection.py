"""Tracks are named by their tags (artist – title, else the file name) wherever the app lists one, with the path on
hover; the library table's selection and the map's are one: rows ring their points, a lasso or click selects rows,
and neither echoes back."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("PySide6")
import mutagen.flac  # noqa: E402
from PySide6.QtCore import QItemSelectionModel, QSettings, Qt  # noqa: E402

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from musicemb_gui.main_window import MainWindow  # noqa: E402
from musicemb_gui.widgets.audio_player import AudioPlayer  # noqa: E402
from tests.conftest import write_tone  # noqa: E402
from tests.gui.helpers import FakeBackend, to_px  # noqa: E402

TAGS = {"alpha": {"artist": "Ann Artist", "title": "Alpha Song"}, "beta": {"title": "Beta Song"}, "gamma": {}}
NAMES = {"alpha": "Ann Artist – Alpha Song", "beta": "Beta Song", "gamma": "gamma.flac"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """alpha.flac (artist and title tags), beta.flac (title only), gamma.flac (none): 9 s tones, embedded."""
    root = tmp_path_factory.mktemp("names")
    for (stem, tags), freq in zip(TAGS.items(), (440, 550, 660), strict=True):
        path = write_tone(root / "audio" / f"{stem}.flac", freq, seconds=9.0, sr=16000, seed=freq)
        f = mutagen.flac.FLAC(path)
        for k, v in tags.items():
            f[k] = v
        f.save()
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], jobs=1))
        drive(iter_embed(lib))
    return root / "lib"


@pytest.fixture
def win(qtbot, built, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings, player=AudioPlayer(backend=FakeBackend()))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.map_panel.method.setCurrentText("PCA")  # no UMAP job: the map at once
    assert w.open_library(shutil.copytree(built, tmp_path / "lib"))
    qtbot.waitUntil(lambda: w.map_controller.shown == "pca", timeout=60000)
    yield w
    w.jobs.cancel_all()
    w.jobs.wait(30000)


def _stem(win, track_id: int) -> str:
    return win.session.tracks[track_id].path.rsplit("/", 1)[-1].split(".")[0]


def _segments(win, track_id: int) -> set[int]:
    s = win.session
    return {int(i) for i, t in zip(s.segments["id"], s.segments["track_id"], strict=True) if t == track_id}


def _column(table, col: int) -> list[str]:
    return [table.item(r, col).text() for r in range(table.rowCount())]


def test_tracks_are_named_by_their_tags_with_the_path_on_hover(qtbot, win):
    s, panel = win.session, win.library_panel
    by_stem = {_stem(win, t): t for t in s.tracks}
    assert {s.track_name(t): stem for stem, t in by_stem.items()} == {v: k for k, v in NAMES.items()}
    rows = {panel.proxy.index(r, 0).data(): panel.proxy.index(r, 0).data(Qt.ItemDataRole.ToolTipRole)
            for r in range(panel.proxy.rowCount())}
    sounds = {t: f"\nsounds like: {', '.join(n for n, _ in s.sounds[t])}" if s.sounds.get(t) else "" for t in s.tracks}
    assert all(sounds.values())  # every embedded track: what the tagger hears in it
    assert rows == {NAMES[stem]: (s.tracks[t].path if stem == "gamma" else f"{NAMES[stem]}\n{s.tracks[t].path}")
                    + sounds[t] for stem, t in by_stem.items()}  # the whole name (a narrow column elides it), the path
    panel.filter.setText("alpha.flac")  # the filter still finds a track by its file name
    assert panel.proxy.rowCount() == 1 and panel.proxy.index(0, 0).data() == NAMES["alpha"]
    panel.filter.clear()

    seg = min(_segments(win, by_stem["alpha"]))
    tip = win.map_controller.tooltip(seg)
    assert tip.startswith(NAMES["alpha"] + "\n") and tip.endswith(s.tracks[by_stem["alpha"]].path)

    mp = win.map_panel  # neighbours and "more like this" of gamma's segment: the two other tracks, by name
    mp.select_segment(min(_segments(win, by_stem["gamma"])))
    qtbot.waitUntil(lambda: mp.neighbours.rowCount() > 0 and mp.similar.rowCount() == 2, timeout=30000)
    assert set(_column(mp.neighbours, 2)) <= {NAMES["alpha"], NAMES["beta"]}
    assert mp.neighbours.item(0, 2).toolTip() in {s.tracks[by_stem[k]].path for k in ("alpha", "beta")}
    assert set(_column(mp.similar, 2)) == {NAMES["alpha"], NAMES["beta"]}
    assert mp.similar_title.text().endswith(NAMES["gamma"])
    rows = [{"track_id": by_stem[k], "path": s.tracks[by_stem[k]].path, "label": None, "score": sc, "version": v}
            for k, sc, v in (("alpha", 0.4, True), ("beta", 0.8, False))]
    mp._show_similar(by_stem["gamma"], rows)  # a version sharing gamma's audio comes first, marked
    assert _column(mp.similar, 2) == [f"♪ {NAMES['alpha']} (version)", NAMES["beta"]]
    assert "shares this track's audio" in mp.similar.item(0, 2).toolTip()
    assert mp.similar.item(1, 2).toolTip() == s.tracks[by_stem["beta"]].path
    assert mp.lists.currentIndex() == 0  # a click shows its nearest segments; the library's button, similar tracks
    win.more_like_track(by_stem["alpha"])
    assert mp.lists.currentIndex() == 1
    qtbot.waitUntil(lambda: win.player_bar.title.text().startswith(NAMES["gamma"] + "\n"), timeout=10000)

    win.hum._show([{"track_id": by_stem["beta"], "path": s.tracks[by_stem["beta"]].path, "label": None,
                    "score": 0.9, "segment_id": min(_segments(win, by_stem["beta"])), "start_s": 0.0}], 0.0,
                  SimpleNamespace(is_confident=lambda rows: True))  # the searcher that answered
    assert win.hum_panel.results.item(0, 2).text() == NAMES["beta"]

    with s.library() as lib:
        lib.replace_findings([{"kind": "clipping", "segment_id": None, "track_id": by_stem["alpha"], "start_s": 0.0,
                               "end_s": 9.0, "score": 1.0, "reason": "clipped"}], kinds=["clipping"])
    win.inspection.load()
    model = win.inspection_panel.model
    assert model.index(0, 3).data() == NAMES["alpha"]


def test_table_and_map_share_one_selection_without_echo(qtbot, win):
    s, panel, mp = win.session, win.library_panel, win.map_panel
    view = mp.scatter
    by_stem = {_stem(win, t): t for t in s.tracks}
    row = next(r for r in range(panel.proxy.rowCount()) if panel.track_id_at(r) == by_stem["beta"])
    panel.table.selectRow(row)  # the table -> rings on the map, ready to label
    assert set(view.ringed_ids.tolist()) == set(mp.selected_ids.tolist()) == _segments(win, by_stem["beta"])
    assert mp.label_sel.text() == f"Label {len(_segments(win, by_stem['beta']))} selected…"
    other = next(r for r in range(panel.proxy.rowCount()) if panel.track_id_at(r) == by_stem["gamma"])
    panel.table.selectionModel().select(panel.proxy.index(other, 0),
                                        QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    assert set(view.ringed_ids.tolist()) == _segments(win, by_stem["beta"]) | _segments(win, by_stem["gamma"])

    # a box around one point of alpha -> alpha's row is the table's selection; the map keeps its one point
    seg = min(_segments(win, by_stem["alpha"]))
    x, y = view._xy[np.flatnonzero(view._ids == seg)[0]]
    picked = view.select_rect(x - 1e-6, y - 1e-6, x + 1e-6, y + 1e-6)
    assert picked.tolist() == [seg]
    assert panel.selected_tracks() == [by_stem["alpha"]]
    assert view.ringed_ids.tolist() == mp.selected_ids.tolist() == [seg]  # not widened to the whole track

    # a click on a point of gamma -> gamma's row
    xy, ids = view._xy, view._ids
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    lone = next(i for i in np.argsort(-d.min(axis=1)) if int(ids[i]) in _segments(win, by_stem["gamma"]))
    with qtbot.waitSignal(view.pointClicked, timeout=5000):
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=to_px(view, *xy[lone]))
    assert panel.selected_tracks() == [by_stem["gamma"]]
    assert view.ringed_ids.tolist() == [int(ids[lone])]
