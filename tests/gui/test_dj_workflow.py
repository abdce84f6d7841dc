"""The DJ workflow in the app, on real widgets, a real catalogue and real embeddings: BPM and key filters with the
text filter (the same tracks as the core's filters), the map dimming what the filters leave out and coloured by
BPM or key, a set built from the selection (the core's order), exports of every list read back, and a library
switch that resets all of it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QItemSelectionModel, QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from musicemb_core.common.errors import MusicEmbError  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.features.camelot import parse_key  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from musicemb_core.workflows.dj import key_text, plan_set, track_rows  # noqa: E402
from musicemb_gui.main_window import MainWindow  # noqa: E402
from musicemb_gui.panels.dj_colours import FILTERED_OUT, bpm_colours, camelot_colour  # noqa: E402
from musicemb_gui.panels.track_table import PATH, SOUNDS, TRACK_ID  # noqa: E402
from musicemb_gui.widgets.audio_player import AudioPlayer  # noqa: E402
from tests.core.dj_audio import song, write  # noqa: E402
from tests.gui.helpers import FakeBackend  # noqa: E402

# (file, bpm, tonic MIDI, minor, key stored) — the stored tempo and key are set exactly after the import
SONGS = [("a_120_Am.wav", 120.0, 57, True, "A minor"), ("b_124_Em.wav", 124.0, 64, True, "E minor"),
         ("c_90_D.wav", 90.0, 62, False, "D major"), ("d_126_C.wav", 126.0, 60, False, "C major"),
         ("e_174_Fsm.wav", 174.0, 66, True, "F# minor"), ("f_quiet.wav", None, 57, True, None)]


@pytest.fixture(scope="module")
def dj_library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("djgui")
    for i, (name, bpm, tonic, minor, _key) in enumerate(SONGS):
        write(root / "music" / ("house" if i % 2 else "other") / name, song(bpm or 100.0, tonic, minor, seconds=7.0))
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "music"], labels="folders", jobs=1))
        drive(iter_embed(lib))
        for t in lib.tracks():
            _, bpm, _, _, key = next(s for s in SONGS if s[0] == Path(t.path).name)
            lib.set_analysis(t.id, bpm=bpm, bpm_confidence=0.9 if bpm else None, key=key,
                             key_confidence=0.9 if key else None,
                             analysis={} if bpm else {"bpm_reason": "too quiet", "key_reason": "too quiet"})
    return root / "lib"


@pytest.fixture
def window(qtbot, tmp_path, dj_library):
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                     player=AudioPlayer(backend=FakeBackend()))
    qtbot.addWidget(win)
    win.map_panel.method.setCurrentText("PCA")  # no UMAP job: the map is there at once
    win.show()
    qtbot.waitExposed(win)
    assert win.open_library(dj_library)
    qtbot.waitUntil(lambda: len(win.map_controller.ids) > 0, timeout=60000)
    yield win
    win.jobs.cancel_all()
    win.jobs.wait(30000)


def ids_by_name(window) -> dict[str, int]:
    return {Path(t.path).name: t.id for t in window.session.tracks.values()}


def point_colours(window) -> tuple[np.ndarray, list[str]]:
    """Each map point's track and drawn colour (the brush of the scatter item holding its category)."""
    sc, s = window.map_panel.scatter, window.session
    tracks = np.array([s.segments["track_id"][s.seg_row[int(i)]] for i in sc._ids])
    brushes = [item.opts["brush"].color().name() for item in sc.scatter_items]
    return tracks, [brushes[c] for c in sc._cat]


def select_rows(panel, track_ids) -> None:
    sel = panel.table.selectionModel()
    sel.clearSelection()
    for r in range(panel.proxy.rowCount()):
        if panel.track_id_at(r) in track_ids:
            sel.select(panel.proxy.index(r, 0), QItemSelectionModel.SelectionFlag.Select
                       | QItemSelectionModel.SelectionFlag.Rows)


def test_filters_match_the_core_and_dim_the_map(qtbot, window, dj_library):
    panel, bar, s = window.library_panel, window.library_panel.dj_filters, window.session
    names = ids_by_name(window)
    assert panel.proxy.rowCount() == len(SONGS) and s.track_filter is None
    bar.bpm_lo.setValue(118)
    bar.bpm_hi.setValue(127)
    bar.bpm_on.setChecked(True)
    with Library(dj_library) as lib:
        core = {r["track_id"] for r in track_rows(lib, bpm=(118.0, 127.0))}
        core_key = {r["track_id"] for r in track_rows(lib, bpm=(118.0, 127.0), key_compatible=parse_key("8A"))}
    assert set(panel.shown_tracks()) == core == {names["a_120_Am.wav"], names["b_124_Em.wav"], names["d_126_C.wav"]}
    bar.bpm_hi.setValue(200)  # E F# minor (11A) at 174 comes in ...
    assert names["e_174_Fsm.wav"] in panel.shown_tracks()
    bar.key.setCurrentIndex(bar.key.findData("8A"))  # ... and goes with the key: 8A mixes with 7A, 9A, 8B
    bar.bpm_hi.setValue(127)
    assert set(panel.shown_tracks()) == core_key == core
    panel.filter.setText("b_124")  # the text filter on top
    assert panel.proxy.rowCount() == 1
    qtbot.waitUntil(lambda: s.track_filter == {names["b_124_Em.wav"]}, timeout=5000)
    tracks, colours = point_colours(window)
    assert set(np.array(colours)[tracks != names["b_124_Em.wav"]]) == {FILTERED_OUT}
    assert FILTERED_OUT not in set(np.array(colours)[tracks == names["b_124_Em.wav"]])
    panel.filter.setText("")
    bar.reset()
    assert panel.proxy.rowCount() == len(SONGS)
    qtbot.waitUntil(lambda: s.track_filter is None, timeout=5000)
    assert FILTERED_OUT not in point_colours(window)[1]


def test_match_selected_takes_tempo_and_key(qtbot, window):
    panel, bar = window.library_panel, window.library_panel.dj_filters
    names = ids_by_name(window)
    select_rows(panel, {names["d_126_C.wav"]})
    assert bar.match.isEnabled()
    bar.match.click()
    assert bar.bpm_range() == (118.4, 133.6) and bar.key_code() == "8B"
    # C major mixes with 8B, 7B, 9B and A minor (8A); E minor (9A) does not
    assert set(panel.shown_tracks()) == {names["a_120_Am.wav"], names["d_126_C.wav"]}


def test_map_coloured_by_bpm_and_key(qtbot, window):
    mp, s = window.map_panel, window.session
    mp.colour.setCurrentText("BPM")
    tracks, colours = point_colours(window)
    bpms = [s.tracks[int(t)].bpm for t in tracks]
    cats, palette, names = bpm_colours(bpms)
    assert colours == [palette[c] for c in cats]
    assert names[:3] == ["80-100 BPM", "100-120 BPM", "120-140 BPM"] and names[-1] == "(no tempo)"
    by_track = dict(zip(tracks.tolist(), colours, strict=True))
    ids = ids_by_name(window)
    assert by_track[ids["a_120_Am.wav"]] == by_track[ids["d_126_C.wav"]] != by_track[ids["c_90_D.wav"]]
    legend = [label.text for _sample, label in mp.scatter.legend.items]
    assert legend == names
    mp.colour.setCurrentText("key")
    tracks, colours = point_colours(window)
    by_track = dict(zip(tracks.tolist(), colours, strict=True))
    assert by_track[ids["a_120_Am.wav"]] == camelot_colour("8A")
    assert by_track[ids["d_126_C.wav"]] == camelot_colour("8B") != camelot_colour("8A")
    assert by_track[ids["e_174_Fsm.wav"]] == camelot_colour("11A")
    assert by_track[ids["f_quiet.wav"]] == "#9a9a9a"


def test_build_set_from_selection_is_the_core_order_and_exports(qtbot, window, dj_library, tmp_path):
    panel, ctl = window.library_panel, window.library_controller
    names = ids_by_name(window)
    chosen = [names[n] for n in ("a_120_Am.wav", "b_124_Em.wav", "c_90_D.wav", "d_126_C.wav", "e_174_Fsm.wav")]
    with pytest.raises(MusicEmbError, match="nothing to export"):
        window.exports.export("set", tmp_path / "none.m3u8")
    select_rows(panel, set(chosen))
    panel.build_set.click()
    qtbot.waitUntil(lambda: ctl.set_dialog.isVisible() and ctl.set_dialog.table.rowCount() == 5, timeout=30000)
    with Library(dj_library) as lib:
        plan = plan_set(lib, [lib.track(t) for t in panel.selected_tracks()])  # the table's order, as given
    assert plan["similarity"] == "similarity"  # the embeddings were used
    assert ctl.set_dialog.track_ids() == [r["track_id"] for r in plan["tracks"]]
    table = ctl.set_dialog.table
    assert [table.item(r, 4).text() for r in range(5)] == ["start", *(f"{c:.3f}" for c in plan["steps"])]
    assert table.item(0, 2).text() == f"{plan['tracks'][0]['bpm']:.1f}"
    assert [table.item(r, 3).text() for r in range(5)] == [key_text(r) for r in plan["tracks"]]  # as the table
    assert f"{plan['cost']:.2f}" in ctl.set_dialog.summary.text()
    out = window.exports.export("set", tmp_path / "set.csv")
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["track_id"]) for r in rows] == ctl.set_dialog.track_ids()
    assert [r["transition_cost"] for r in rows] == ["", *map(str, plan["steps"])]
    assert [r["sounds_like"] for r in rows] == [r["sounds_like"] for r in plan["tracks"]]  # as the CLI's set
    assert sum(bool(r["sounds_like"]) for r in rows) >= 4
    m3u = window.exports.export("set", tmp_path / "set.m3u8").read_text(encoding="utf-8").splitlines()
    assert m3u[2::2] == [r["path"] for r in plan["tracks"]]


def test_every_list_exports(qtbot, window, dj_library, tmp_path, monkeypatch):
    from pyrekordbox import rbxml

    ex, mp, s = window.exports, window.map_panel, window.session
    names = ids_by_name(window)
    seg = int(window.map_controller.ids[0])
    mp.select_segment(seg)
    qtbot.waitUntil(lambda: bool(ex.neighbours) and bool(ex.similar), timeout=30000)
    rows = list(csv.DictReader(ex.export("neighbours", tmp_path / "n.csv").open(encoding="utf-8")))
    assert [int(r["segment_id"]) for r in rows] == [n["segment_id"] for n in ex.neighbours]
    assert [float(r["score"]) for r in rows] == [n["score"] for n in ex.neighbours]
    xml = rbxml.RekordboxXml(ex.export("similar", tmp_path / "similar.xml"))
    similar_paths = list(dict.fromkeys(s.tracks[n["track_id"]].path for n in ex.similar))
    assert ["/" + t["Location"] for t in xml.get_tracks()] == similar_paths
    assert xml.get_playlist("musicemb more like this").entries == len(similar_paths)
    with Library(dj_library) as lib:
        lib.replace_findings([{"kind": "clipping", "segment_id": None, "track_id": names[n], "start_s": 0.0,
                               "end_s": 3.0, "score": score, "reason": "clipped peaks"}
                              for n, score in (("c_90_D.wav", 0.7), ("a_120_Am.wav", 0.9))], kinds=["clipping"])
    window.inspection.load()
    rows = list(csv.DictReader(ex.export("findings", tmp_path / "f.csv").open(encoding="utf-8")))
    assert [(r["kind"], r["title"], r["score"]) for r in rows] == [("clipping", "a_120_Am", "0.9"),
                                                                 ("clipping", "c_90_D", "0.7")]
    window.inspection_panel.filter.setText("c_90")  # what the findings table shows, as it shows it
    rows = list(csv.DictReader(ex.export("findings", tmp_path / "f.csv").open(encoding="utf-8")))
    assert [(r["kind"], r["title"], r["reason"]) for r in rows] == [("clipping", "c_90_D", "clipped peaks")]
    window.inspection_panel.filter.setText("")
    mp._on_selection(window.map_controller.ids[:3])  # a lasso on the map
    assert ex.items("map") == [{"track_id": t} for t in window.library_controller.map_tracks()]
    # through the file dialog: a name without a suffix takes the chosen format's
    select_rows(window.library_panel, {names["a_120_Am.wav"], names["e_174_Fsm.wav"]})
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "crate"), "CSV table (*.csv)")))
    window.library_panel.export.click()
    rows = list(csv.DictReader((tmp_path / "crate.csv").open(encoding="utf-8")))
    assert [r["title"] for r in rows] == ["a_120_Am", "e_174_Fsm"] and rows[1]["camelot"] == "11A"
    assert "exported" in window.statusBar().currentMessage()
    menu = ex.menu()
    menu.aboutToShow.emit()
    enabled = {a.text().split(" (")[0]: a.isEnabled() for a in menu.actions()}
    assert enabled["Selected tracks"] and enabled["Findings shown"] and not enabled["Set"]


def test_opening_another_library_resets_the_dj_state(qtbot, window, tmp_path):
    panel, ctl, bar, s = window.library_panel, window.library_controller, window.library_panel.dj_filters, \
        window.session
    names = ids_by_name(window)
    bar.set_filter((100.0, 130.0), "8A")
    select_rows(panel, {names["a_120_Am.wav"], names["b_124_Em.wav"]})
    panel.build_set.click()
    qtbot.waitUntil(lambda: ctl.set_dialog.isVisible(), timeout=30000)
    qtbot.waitUntil(lambda: s.track_filter is not None, timeout=5000)
    window.map_panel.colour.setCurrentText("key")
    Library(tmp_path / "empty", create=True).close()
    assert window.open_library(tmp_path / "empty")
    qtbot.wait(300)
    assert not bar.active() and bar.bpm_range() is None and bar.key_code() is None
    assert s.track_filter is None and panel.proxy.allowed is None and panel.proxy.rowCount() == 0
    assert not ctl.set_dialog.isVisible() and ctl.set_dialog.table.rowCount() == 0 and ctl.plan is None
    assert all(not window.exports.items(src) for src in ("selection", "shown", "map", "neighbours", "similar",
                                                         "findings", "set"))
    for mode in ("BPM", "key"):  # an empty map coloured by either
        window.map_panel.colour.setCurrentText(mode)
    panel.build_set.click()
    assert "at least 2 tracks" in window.statusBar().currentMessage()


def test_bpm_filter_counts_half_and_double_time(qtbot, window):
    panel, bar = window.library_panel, window.library_panel.dj_filters
    names = ids_by_name(window)
    bar.set_filter((85.0, 92.0), None)  # 90 itself, and 174 at half time (87)
    assert bar.half_double.isChecked()
    assert set(panel.shown_tracks()) == {names["c_90_D.wav"], names["e_174_Fsm.wav"]}
    bar.half_double.setChecked(False)
    assert set(panel.shown_tracks()) == {names["c_90_D.wav"]}
    bar.half_double.setChecked(True)
    bar.set_filter((236.0, 250.0), None)  # 120 and 124 at double time (126 is 252); nothing at that tempo
    assert set(panel.shown_tracks()) == {names["a_120_Am.wav"], names["b_124_Em.wav"]}


def test_table_and_map_hover_show_tempo_and_key(window):
    panel, s = window.library_panel, window.session
    tid = ids_by_name(window)["a_120_Am.wav"]
    row = next(r for r in range(panel.model.rowCount()) if panel.model.index(r, 0).data(TRACK_ID) == tid)
    assert panel.model.index(row, 5).data() == "120.0" and panel.model.index(row, 6).data() == "8A  A minor"
    seg = int(next(i for i, r in s.seg_row.items() if s.segments["track_id"][r] == tid))
    assert "BPM 120.0   8A  A minor" in s.tooltip(seg)


def test_table_and_map_say_what_each_track_sounds_like(window, dj_library):
    """What each embedded track sounds like (the tagger's likeliest tags, as `musicemb tracks` gives them): in the
    track cell's hover text and the map's, and found by the text filter."""
    panel, s = window.library_panel, window.session
    with Library(dj_library) as lib:
        expected = {r["track_id"]: r["sounds_like"] for r in track_rows(lib)}
    items = {panel.model.index(r, 0).data(TRACK_ID): panel.model.index(r, 0) for r in range(panel.model.rowCount())}
    assert {t: it.data(SOUNDS) for t, it in items.items()} == expected
    assert sum(bool(v) for v in expected.values()) >= len(SONGS) - 1  # the quiet file may have none above 0.1
    tid, sounds = next((t, v) for t, v in expected.items() if v)
    assert f"sounds like: {sounds}" in items[tid].data(Qt.ItemDataRole.ToolTipRole)
    seg = int(next(i for i, r in s.seg_row.items() if s.segments["track_id"][r] == tid))
    assert f"sounds like: {sounds}" in s.tooltip(seg)
    word = sounds.split(", ")[0]
    panel.filter.setText(word)  # the text filter searches it too
    try:
        assert panel.proxy.rowCount() == sum(word in v or word in Path(items[t].data(PATH)).name.lower()
                                             for t, v in expected.items())
    finally:
        panel.filter.setText("")


def test_a_track_changed_elsewhere_shows_its_new_values_after_a_refresh(qtbot, window, dj_library):
    """Rows of tracks read again unchanged are kept at a refresh; a track analysed again or relabelled by another
    process (the CLI) shows what the catalogue says, also after a label edit in the window."""
    ctl, panel = window.library_controller, window.library_panel
    names = ids_by_name(window)
    tid, relabelled, other = names["c_90_D.wav"], names["b_124_Em.wav"], names["a_120_Am.wav"]
    kept = ctl.rows[other]
    original = window.session.tracks[relabelled].label
    window.session.set_label(relabelled, "edited here")
    with Library(dj_library) as lib:
        before = lib.track(tid)
        lib.set_analysis(tid, bpm=97.0, bpm_confidence=0.9, key=before.key, key_confidence=before.key_confidence,
                         analysis=before.analysis)
        lib.set_label(relabelled, original)  # the edit undone elsewhere
    try:
        window.session.refresh()
        at = {panel.track_id_at(r): r for r in range(panel.proxy.rowCount())}
        assert panel.proxy.index(at[tid], 5).data().startswith("97.0") and ctl.rows[tid]["bpm"] == 97.0
        assert ctl.rows[relabelled]["label"] == original
        assert (panel.proxy.index(at[relabelled], 2).data() or None) == original
        assert ctl.rows[other] is kept  # unchanged: not made again
    finally:
        with Library(dj_library) as lib:
            lib.set_analysis(tid, bpm=before.bpm, bpm_confidence=before.bpm_confidence, key=before.key,
                             key_confidence=before.key_confidence, analysis=before.analysis)
