"""Reviewing findings from the keyboard, in the shown window on a real library: A accepts, D dismisses, O reopens
the selected findings in the focused table, through the same edits as the buttons (one Undo each); an accept or
dismiss goes on to the next open finding in the table's order, playing it if the one reviewed was listened to;
R or L types the label (Enter relabels and goes on, Esc goes back); letters typed in a text box review nothing;
a read-only library reviews nothing. Every test fails on an exception raised in a Qt slot."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from musicemb_core.data import edits  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.panels.inspection_panel import KEYS_HINT  # noqa: E402
from tests.gui.helpers import tone_library  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, window  # noqa: E402, F401 (fixtures)
from tests.gui.test_readonly_actions import locked  # noqa: E402, F401 (fixture)

NAMES = ("label", "o1", "o2", "o3", "o4")  # most severe first: the table's order until the user sorts


@pytest.fixture
def lib_path(tmp_path) -> Path:
    """Two 9 s tones (3 segments each), tone440.wav labelled 'drone'; a label finding on it (suggested 'hum'),
    scored 0.9, and outliers o1..o4 scored 0.8..0.5 (o2 dismissed already)."""
    lib_path = tone_library(tmp_path)
    with Library(lib_path) as lib:
        tracks = {Path(t.path).name: t.id for t in lib.tracks()}
        low, high = tracks["tone440.wav"], tracks["tone660.wav"]
        edits.relabel_tracks(lib, [low], "drone")
        seg = lib.segments()
        of = {t: [int(s) for s in seg["id"][seg["track_id"] == t]] for t in (low, high)}
        lib.replace_findings([{"kind": "label", "segment_id": None, "track_id": low, "start_s": 0.0, "end_s": 9.0,
                               "score": 0.9, "reason": "label looks wrong: 'drone', probably 'hum'",
                               "details": {"given": "drone", "suggested": "hum", "example_segment_id": of[low][0]}}],
                             kinds=["label"])
        outliers = [(high, 0, 0.8), (high, 1, 0.7), (high, 2, 0.6), (low, 1, 0.5)]  # track, segment, score
        lib.replace_findings([{"kind": "outlier", "segment_id": of[t][i], "track_id": t, "start_s": 3.0 * i,
                               "end_s": 3.0 * i + 3, "score": score, "reason": f"outlier {score}"}
                              for t, i, score in outliers], kinds=["outlier"])
        ids = _ids(lib)
        lib.set_finding_status(ids["o2"], "dismissed")
    return lib_path


def _ids(lib: Library) -> dict[str, int]:
    """Finding ids by name (see NAMES), from their scores."""
    return {NAMES[round(10 * (0.9 - f["score"]))]: f["id"] for f in lib.findings()}


def _stored(lib_path: Path) -> dict[str, str]:
    """Each finding's status in the library, by name."""
    with Library(lib_path) as lib:
        names = {i: n for n, i in _ids(lib).items()}
        return {names[f["id"]]: f["status"] for f in lib.findings()}


def _open(qtbot, win, lib_path: Path) -> dict[str, int]:
    assert win.open_library(lib_path)
    win.docks["Inspection"].raise_()
    with Library(lib_path) as lib:
        return _ids(lib)


def _focus(qtbot, panel, finding_id: int) -> None:
    """Select the finding's row and focus the table, as a click on it would."""
    panel.table.selectRow(next(r for r, f in enumerate(panel.shown()) if f["id"] == finding_id))
    panel.table.setFocus()
    qtbot.waitUntil(panel.table.hasFocus)


def _selected(panel) -> list[int]:
    return [f["id"] for f in panel.selected()]


def _key(panel, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(panel.window().focusWidget(), key, modifier)


def test_a_d_and_o_review_and_go_on_to_the_next_open_finding(qtbot, window, lib_path, bugs):  # noqa: F811
    """Each review needed the mouse: select, click Accept or Dismiss, select the next one. Now A and D in the
    table store the review (one Undo each, like the buttons) and select the next open finding below (the
    dismissed o2 skipped, then round to the top); Up and Down go on from there; O reopens and stays."""
    ids = _open(qtbot, window, lib_path)
    panel = window.inspection_panel
    assert panel.hint.text() == KEYS_HINT and panel.hint.isVisible() and "Esc" in panel.hint.toolTip()
    assert [panel.accept.toolTip()[-3:], panel.dismiss.toolTip()[-3:], panel.reopen.toolTip()[-3:]] == \
        ["(A)", "(D)", "(O)"]
    _focus(qtbot, panel, ids["label"])
    _key(panel, Qt.Key.Key_A)
    assert _stored(lib_path) == {"label": "accepted", "o1": "open", "o2": "dismissed", "o3": "open", "o4": "open"}
    assert _selected(panel) == [ids["o1"]] and panel.table.hasFocus()
    _key(panel, Qt.Key.Key_D)
    assert _stored(lib_path)["o1"] == "dismissed" and _selected(panel) == [ids["o3"]]
    _key(panel, Qt.Key.Key_Down)
    assert _selected(panel) == [ids["o4"]]
    _key(panel, Qt.Key.Key_A)  # the last row: the first open one above it is next
    assert _stored(lib_path)["o4"] == "accepted" and _selected(panel) == [ids["o3"]]
    _key(panel, Qt.Key.Key_Up)
    _key(panel, Qt.Key.Key_Up)
    assert _selected(panel) == [ids["o1"]]
    _key(panel, Qt.Key.Key_O)
    assert _stored(lib_path)["o1"] == "open" and _selected(panel) == [ids["o1"]]
    assert window.undo_action.text() == "&Undo reopen the outlier finding on tone660.wav"
    window.session.edits.undo()
    assert _stored(lib_path)["o1"] == "dismissed"
    assert window.backend.calls == []  # nothing was listened to: the next finding is selected, not played


def test_the_next_finding_follows_sort_and_filter_and_ctrl_a_selects_all(qtbot, window, lib_path, bugs):  # noqa: F811
    """Open only, sorted by score ascending: D on the first row hides it; the next open finding in that order
    is selected. Ctrl+A selects every row (no review); A then accepts them all."""
    ids = _open(qtbot, window, lib_path)
    panel = window.inspection_panel
    panel.open_only.setChecked(True)
    panel.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    assert [f["id"] for f in panel.shown()] == [ids[n] for n in ("o4", "o3", "o1", "label")]
    _focus(qtbot, panel, ids["o3"])
    _key(panel, Qt.Key.Key_D)
    assert [f["id"] for f in panel.shown()] == [ids[n] for n in ("o4", "o1", "label")]
    assert _selected(panel) == [ids["o1"]]
    _key(panel, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert len(_selected(panel)) == 3 and _stored(lib_path)["o4"] == "open"
    _key(panel, Qt.Key.Key_A)
    assert _stored(lib_path) == {"label": "accepted", "o1": "accepted", "o2": "dismissed", "o3": "dismissed",
                                 "o4": "accepted"}
    assert window.undo_action.text() == "&Undo accept 3 findings"  # one edit
    window.session.edits.undo()
    assert list(_stored(lib_path).values()).count("open") == 3


def test_after_listening_the_next_finding_plays_and_space_plays_it(qtbot, window, lib_path, bugs):  # noqa: F811
    """Space in the table replayed whatever was heard last (a map point), not the finding selected. Now Space
    plays the selected finding, then plays or stops it as everywhere; once the finding reviewed was heard, A
    or D plays the next one too; one reviewed unheard only selects the next."""
    ids = _open(qtbot, window, lib_path)
    panel, playback, player = window.inspection_panel, window.playback, window.player
    seg = {f["id"]: f["segment_id"] for f in window.inspection.rows}
    _focus(qtbot, panel, ids["o1"])
    _key(panel, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: playback.current == seg[ids["o1"]] and player.playing, timeout=10000)
    _key(panel, Qt.Key.Key_A)
    assert _selected(panel) == [ids["o3"]]
    qtbot.waitUntil(lambda: playback.current == seg[ids["o3"]], timeout=10000)
    assert len(window.backend.calls) == 2
    _key(panel, Qt.Key.Key_Space)  # the one heard: the window's Space stops it
    assert not player.playing and len(window.backend.calls) == 2
    _key(panel, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(window.backend.calls) == 3 and player.playing, timeout=10000)
    _key(panel, Qt.Key.Key_Down)  # o4 selected, not heard: Space plays it
    _key(panel, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: playback.current == seg[ids["o4"]], timeout=10000)
    _key(panel, Qt.Key.Key_Up)
    _key(panel, Qt.Key.Key_D)  # o3 was not the one heard last: o4 is selected, nothing more plays
    assert _stored(lib_path)["o3"] == "dismissed" and _selected(panel) == [ids["o4"]]
    qtbot.wait(200)
    assert len(window.backend.calls) == 4


def test_r_types_the_suggested_label_enter_relabels_esc_goes_back(qtbot, window, lib_path, bugs):  # noqa: F811
    ids = _open(qtbot, window, lib_path)
    panel = window.inspection_panel
    track = next(f["track_id"] for f in window.inspection.rows if f["id"] == ids["label"])
    _focus(qtbot, panel, ids["label"])
    panel.new_label.setText("typed by mouse, left")
    _key(panel, Qt.Key.Key_R)
    assert panel.new_label.hasFocus() and panel.new_label.text() == "hum" and panel.new_label.selectedText() == "hum"
    QTest.keyClicks(panel.new_label, "dado")  # letters typed here review nothing
    assert panel.new_label.text() == "dado" and _stored(lib_path)["label"] == "open"
    _key(panel, Qt.Key.Key_Escape)
    assert panel.table.hasFocus() and panel.new_label.text() == "hum" and _selected(panel) == [ids["label"]]
    _key(panel, Qt.Key.Key_L)
    QTest.keyClicks(panel.new_label, "buzz")
    _key(panel, Qt.Key.Key_Return)
    assert window.session.tracks[track].label == "buzz" and _stored(lib_path)["label"] == "accepted"
    assert panel.table.hasFocus() and _selected(panel) == [ids["o1"]]
    window.session.edits.undo()  # the label and the acceptance: one edit
    assert window.session.tracks[track].label == "drone" and _stored(lib_path)["label"] == "open"


def test_letters_typed_in_the_filter_box_review_nothing(qtbot, window, lib_path, bugs):  # noqa: F811
    ids = _open(qtbot, window, lib_path)
    panel = window.inspection_panel
    _focus(qtbot, panel, ids["o1"])
    panel.filter.setFocus()
    qtbot.waitUntil(panel.filter.hasFocus)
    QTest.keyClicks(panel.filter, "oda")
    assert panel.filter.text() == "oda"
    assert _stored(lib_path) == {"label": "open", "o1": "open", "o2": "dismissed", "o3": "open", "o4": "open"}


def test_a_read_only_library_reviews_nothing_by_key(qtbot, window, lib_path, locked, bugs):  # noqa: F811
    """The greyed buttons stay greyed and their keys do nothing; R does not start typing a label; Space plays."""
    locked.add(str(lib_path))
    ids = _open(qtbot, window, lib_path)
    panel = window.inspection_panel
    _focus(qtbot, panel, ids["o2"])  # dismissed: O would reopen it in a writable library
    assert not any(b.isEnabled() for b in (panel.accept, panel.dismiss, panel.reopen, panel.relabel))
    for key in (Qt.Key.Key_A, Qt.Key.Key_D, Qt.Key.Key_O, Qt.Key.Key_R):
        _key(panel, key)
    assert panel.table.hasFocus() and _selected(panel) == [ids["o2"]]
    assert _stored(lib_path) == {"label": "open", "o1": "open", "o2": "dismissed", "o3": "open", "o4": "open"}
    _key(panel, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(window.backend.calls) == 1, timeout=10000)


def test_a_key_on_a_finding_another_program_replaced_is_refused_and_stays(qtbot, window, lib_path, bugs):  # noqa: F811
    """Another program's inspection gave the selected finding's id to another finding: A goes through the same
    identity check as the button (refused, said in one line, nothing stored) and does not move on."""
    ids = _open(qtbot, window, lib_path)
    panel = window.inspection_panel
    _focus(qtbot, panel, ids["o1"])
    with Library(lib_path) as lib:  # the same outliers, each on another segment
        rows = lib.findings(kinds=["outlier"])
        lib.replace_findings([{**f, "segment_id": None, "start_s": 0.0, "end_s": 9.0} for f in rows],
                             kinds=["outlier"])
        assert ids["o1"] in {f["id"] for f in lib.findings()}
        edits_before = lib.conn.execute("SELECT count(*) FROM edits").fetchone()
    _key(panel, Qt.Key.Key_A)
    assert "is not in the library any more" in window.statusBar().currentMessage()
    with Library(lib_path) as lib:
        assert lib.conn.execute("SELECT count(*) FROM edits").fetchone() == edits_before
        assert "accepted" not in {f["status"] for f in lib.findings()}
    assert _selected(panel) == [ids["o1"]]


def test_space_plays_a_finding_of_an_id_heard_in_another_library(qtbot, window, lib_path, tmp_path, bugs):  # noqa: F811
    """Finding ids start at 1 in every library: the finding heard in the library open before must not make Space
    on a finding of the next one (the same id) the window's Space, which has nothing to play after the switch."""
    import shutil

    ids = _open(qtbot, window, lib_path)
    panel = window.inspection_panel
    _focus(qtbot, panel, ids["o1"])
    _key(panel, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(window.backend.calls) == 1, timeout=10000)
    other = shutil.copytree(lib_path, tmp_path / "copy")
    assert _open(qtbot, window, other) == ids
    _focus(qtbot, panel, ids["o1"])
    _key(panel, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(window.backend.calls) == 2, timeout=10000)
    assert window.playback.current == next(f["segment_id"] for f in window.inspection.rows if f["id"] == ids["o1"])
