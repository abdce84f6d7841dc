"""The set dialog shows tempo as the library table does: a tempo from the file's tag only was shown as a bare
number, as if it were our estimate."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.workflows.dj import plan_set  # noqa: E402
from tests.gui.helpers import tone_library  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, window  # noqa: E402, F401 (fixtures)


def test_a_tag_only_tempo_is_marked_in_the_set(qtbot, window, tmp_path):  # noqa: F811
    lib_dir = tone_library(tmp_path)
    with Library(lib_dir) as lib:
        for t in lib.tracks():
            lib.set_analysis(t.id, bpm=None if t.path.endswith("tone440.wav") else 126.0, bpm_confidence=None, key=None,
                             key_confidence=None, analysis={})
            lib.set_tags([(t.id, {"bpm": "127"})])
    assert window.open_library(lib_dir)
    with Library(lib_dir) as lib:
        plan = plan_set(lib, lib.tracks())
    window.library_controller._show_set(plan)
    table = window.library_controller.set_dialog.table
    assert sorted(table.item(r, 2).text() for r in range(table.rowCount())) == ["126.0 (tag 127)", "tag 127"]
