"""The library table as a DJ with many tracks uses it: a label edited or the table filled again with the same
tracks keeps the selection, the scroll and the sort the user chose; sorting and filtering are the model's own."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

from musicemb_gui.panels.library_panel import LibraryPanel  # noqa: E402
from musicemb_gui.panels.track_table import LABEL, PATH, TRACK_ID  # noqa: E402


def rows(n: int, labels=None) -> list[tuple]:
    labels = labels or {}
    return [(i, f"/music/crate/t{i:03d}.mp3", 100.0 + i, labels.get(i, "house" if i % 2 else "techno"), 10 + i % 7,
             "ok", 120.0 + i % 9, f"{1 + i % 12}A  A minor") for i in range(1, n + 1)]


def shown(panel: LibraryPanel, col: int = 0) -> list:
    return [panel.proxy.index(r, col).data() for r in range(panel.proxy.rowCount())]


@pytest.fixture
def panel(qtbot):
    p = LibraryPanel()
    qtbot.addWidget(p)
    p.resize(900, 400)
    p.show()
    return p


def test_filling_again_with_the_same_tracks_keeps_selection_sort_and_scroll(panel, qtbot):
    panel.set_rows(rows(300))
    panel.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # longest first
    assert shown(panel, 1)[:2] == ["6:40", "6:39"]
    panel.select_tracks([5, 150])
    panel.table.scrollTo(panel.proxy.index(150, 0))
    scroll = panel.table.verticalScrollBar().value()
    assert scroll > 0
    sent: list = []
    panel.tracksSelected.connect(sent.append)
    panel.set_rows(rows(300, labels={5: "disco"}))  # a label changed elsewhere: the same tracks
    assert sorted(panel.selected_tracks()) == [5, 150] and sent == []
    assert shown(panel, 1)[:2] == ["6:40", "6:39"]  # still the user's sort, not back to names
    assert panel.table.verticalScrollBar().value() == scroll
    assert panel.proxy.index(shown(panel, 1).index("1:45"), LABEL).data() == "disco"
    panel.set_rows(rows(301))  # another track: filled anew, still in the user's order
    assert shown(panel, 1)[0] == "6:41"


def test_sorting_is_by_value_and_stable_and_keeps_the_selection(panel):
    panel.set_rows(rows(40))
    panel.select_tracks([7])
    panel.table.sortByColumn(5, Qt.SortOrder.AscendingOrder)  # BPM, numerically
    bpms = [float(b) for b in shown(panel, 5)]
    assert bpms == sorted(bpms)
    ties = [panel.track_id_at(r) for r in range(panel.proxy.rowCount()) if shown(panel, 5)[r] == "120.0"]
    assert ties == sorted(ties)  # equal tempos stay in the order they had (by name)
    assert panel.selected_tracks() == [7]
    assert panel.track_id_at(panel._selected_rows()[0]) == 7
    panel.table.sortByColumn(6, Qt.SortOrder.AscendingOrder)  # key: along the wheel, 2A after 1A, not after 12A
    codes = [k.split()[0] for k in shown(panel, 6)]
    assert codes.index("2A") < codes.index("10A")


def test_label_edits_update_the_row_in_place_resort_and_refilter(panel, qtbot):
    panel.set_rows(rows(30))
    panel.table.sortByColumn(LABEL, Qt.SortOrder.AscendingOrder)
    panel.select_tracks([3])
    panel.set_labels({3: "ambient"})
    assert shown(panel, LABEL)[0] == "ambient" and panel.track_id_at(0) == 3
    assert panel.selected_tracks() == [3]
    panel.filter.setText("ambient")
    assert [panel.track_id_at(r) for r in range(panel.proxy.rowCount())] == [3]
    panel.set_labels({3: None, 4: "ambient"})
    assert [panel.track_id_at(r) for r in range(panel.proxy.rowCount())] == [4]


def test_an_edit_in_the_table_is_signalled_once_and_only_for_tracks(panel, qtbot):
    panel.set_rows([*rows(3), (None, "/music/broken.mp3", None, "", None, "failed: not audio")])
    edited: list = []
    panel.labelEdited.connect(lambda *a: edited.append(a))
    model = panel.model
    by_id = {model.index(r, 0).data(TRACK_ID): r for r in range(model.rowCount())}
    assert model.setData(model.index(by_id[2], LABEL), "  dub ")
    assert not model.setData(model.index(by_id[2], LABEL), "  dub ")  # unchanged: no second signal
    assert not model.setData(model.index(by_id[None], LABEL), "x")  # a failed file has no label
    assert not model.setData(model.index(by_id[2], 1), "99")  # only labels are editable
    assert edited == [(2, "dub")]
    assert model.index(by_id[None], 0).data(PATH) == "/music/broken.mp3"
    panel.set_rows(rows(3))  # filling does not signal edits
    assert edited == [(2, "dub")]


def test_a_row_filled_again_unchanged_is_not_made_again_and_an_edited_one_shows_the_fill(panel):
    """Rows of the same texts are kept (making 20,000 took 0.3 s at every refresh); a row whose label was edited
    in place no longer shows what it was made of, so a refill with the old texts shows them again."""
    model = panel.model
    panel.set_rows(rows(5))
    first = list(model._rows)
    panel.set_rows(rows(5, labels={3: "disco"}))
    assert [r is f for r, f in zip(model._rows, first, strict=True)] == [True, True, False, True, True]
    panel.set_labels({2: "dub"})  # edited in the table: the catalogue says dub now
    assert panel.proxy.index(1, LABEL).data() == "dub"
    panel.set_rows(rows(5))  # the edit undone elsewhere: the catalogue says techno again
    assert [panel.proxy.index(r, LABEL).data() for r in range(5)] == ["house", "techno", "house", "techno", "house"]


def test_selecting_many_tracks_makes_one_range_per_run_of_rows(panel):
    """One range per row (20,000 for a map's select-all) made every resize and selection ask Qt to walk them all:
    2.1 s with 20,000 rows selected; runs of rows are one range each."""
    panel.set_rows(rows(300))
    panel.select_tracks(range(1, 301))
    assert panel.table.selectionModel().selection().count() == 1 and len(panel.selected_tracks()) == 300
    panel.select_tracks([*range(10, 20), 40, *range(100, 151)])
    assert panel.table.selectionModel().selection().count() == 3 and len(panel.selected_tracks()) == 62


def test_lengths_read_as_players_show_them():
    from musicemb_gui.panels.track_table import length_text

    assert [length_text(s) for s in (None, 0.3, 9.96, 10.0, 243.4, 599.6, 3725.0)] == [
        "", "0:00.3", "0:10", "0:10", "4:03", "10:00", "1:02:05"]


def test_filling_again_keeps_the_columns_widths_and_only_grows_the_text_ones(panel, qtbot):
    """The library read again (after an import) fitted every column to its rows again: a width the user dragged
    was lost, and at 20,000 tracks it froze the window 0.3 s. Now only the label and status columns grow to fit;
    another library's rows fit every column again."""
    from musicemb_gui.panels.track_table import COLUMNS, STATUS

    head = panel.table.horizontalHeader()
    length = COLUMNS.index("Length")
    panel.set_rows(rows(50))
    fitted = head.sectionSize(length)
    head.resizeSection(length, fitted + 40)  # the user widens Length and narrows Label
    head.resizeSection(LABEL, 30)
    panel.set_rows(rows(51))
    assert head.sectionSize(length) == fitted + 40
    label_fit = head.sectionSize(LABEL)
    assert label_fit > 30  # a text column is never left narrower than its rows
    longer = rows(52, labels={52: "a label much longer than any other in this crate"})
    longer.append((None, "/music/crate/broken.mp3", None, "", None, "failed: not an audio file (no decoder)"))
    status_before = head.sectionSize(STATUS)
    panel.set_rows(longer)
    assert head.sectionSize(LABEL) > label_fit and head.sectionSize(STATUS) > status_before
    assert head.sectionSize(length) == fitted + 40
    panel.new_library()  # another library: every column fitted to its rows
    panel.set_rows(rows(50))
    assert head.sectionSize(length) == fitted
