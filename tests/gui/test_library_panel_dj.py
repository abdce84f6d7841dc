"""Library panel: BPM and key columns, sortable numerically and in Camelot-wheel order."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402

from musicemb_gui.panels.library_panel import COLUMNS, LibraryPanel  # noqa: E402


def test_bpm_and_key_columns_sort(qtbot):
    panel = LibraryPanel()
    qtbot.addWidget(panel)
    panel.set_rows([
        (1, "/m/a.wav", 10.0, "x", 3, "ok", 128.0, "8A  A minor"),
        (2, "/m/b.wav", 10.0, "x", 3, "ok", 95.5, "10B  D major"),
        (3, "/m/c.wav", 10.0, "x", 3, "ok", None, ""),
        (4, "/m/d.wav", 10.0, "x", 3, "ok"),  # rows without tempo/key still fit
    ])
    bpm, key = COLUMNS.index("BPM"), COLUMNS.index("Key")
    panel.table.sortByColumn(bpm, Qt.SortOrder.DescendingOrder)
    assert [panel.proxy.index(r, bpm).data() for r in range(4)][:2] == ["128.0", "95.5"]
    panel.table.sortByColumn(key, Qt.SortOrder.DescendingOrder)
    assert panel.proxy.index(0, key).data() == "10B  D major"
    assert panel.proxy.index(1, key).data() == "8A  A minor"
    panel.filter.setText("8A")
    assert panel.proxy.rowCount() == 1
