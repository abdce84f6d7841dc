"""Edits in the app that cannot be stored: the catalogue's disk full (simulated: SQLite's own page limit on the
connections the window opens, which fails as a full disk does mid-change, "database or disk is full", SQLite
rolling the change back itself), or the catalogue locked by another process (a real one)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("PySide6")

from musicemb_core.data.library import Library  # noqa: E402
from tests.gui.helpers import tone_library  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, window  # noqa: E402, F401 (fixtures)
from tests.gui.test_labelling import _label  # noqa: E402


def test_a_label_edit_on_a_full_disk_is_one_line_and_not_shown_as_stored(qtbot, window, tmp_path, bugs,  # noqa: F811
                                                                        monkeypatch):
    """A bulk edit that grows the catalogue on a full disk: SQLite rolls the change back itself, the core's own
    rollback then fails ("cannot rollback - no transaction is active"), and that raw sqlite3 error reached the
    window as a "musicemb hit a bug" traceback. Now one line saying the catalogue cannot be written; the table
    shows the stored labels, and Undo names nothing."""
    lib = shutil.copytree(tone_library(tmp_path / "src"), tmp_path / "lib")
    assert window.open_library(lib)
    panel = window.library_panel
    row = next(r for r in range(panel.proxy.rowCount()) if panel.track_id_at(r) is not None)
    tid = panel.track_id_at(row)
    import musicemb_gui.session as session_module

    connect = session_module._connect

    def capped(*args, **kwargs):  # as a disk with no room left: no page more
        lib = connect(*args, **kwargs)
        lib.conn.execute(f"PRAGMA max_page_count={lib.conn.execute('PRAGMA page_count').fetchone()[0]}")
        return lib
    monkeypatch.setattr(session_module, "_connect", capped)
    label = "ambient " * 600  # needs a page more than the catalogue has
    assert panel.model.setData(panel.proxy.mapToSource(panel.proxy.index(row, 2)), label)
    qtbot.wait(50)
    assert window.statusBar().currentMessage() == (f"{lib}/library.sqlite: cannot write the catalogue (database or "
                                                   "disk is full)")
    qtbot.waitUntil(lambda: all(panel.model.index(r, 2).data() == "" for r in range(panel.model.rowCount())))
    assert window.session.tracks[tid].label is None and not window.session.edits.last_id
    monkeypatch.undo()
    with Library(lib) as stored:
        assert set(stored.labels().values()) == {None}


LOCK = textwrap.dedent("""
    import sqlite3, sys, time
    c = sqlite3.connect(sys.argv[1], isolation_level=None)
    c.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(60)
""")


def test_a_map_selection_labelled_while_another_process_writes_says_it_was_not(qtbot, window, tmp_path, bugs):  # noqa: F811
    """Label a lasso selection while another process holds the catalogue (a long re-cut, a sqlite3 shell): the
    status bar said "library busy" but the map's own line said "no label changed", as if the segments had that
    label already. Now the map's line says it was not labelled, and why."""
    lib = shutil.copytree(tone_library(tmp_path / "src"), tmp_path / "lib")
    assert window.open_library(lib)
    ids = [int(i) for i in window.session.segments["id"][:2]]
    holder = subprocess.Popen([sys.executable, "-c", LOCK, str(lib / "library.sqlite")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        _label(qtbot, window, np.array(ids), "intro", whole=False)
        said = window.statusBar().currentMessage()
        assert "library busy" in said
        assert window.map_panel.status.text() == f"not labelled: {said}"
    finally:
        holder.kill()
        holder.wait()
    assert window.session.edits.tags == {}
    _label(qtbot, window, np.array(ids), "intro", whole=False)  # the lock gone: stored
    assert window.session.edits.tags == dict.fromkeys(ids, "intro")
    assert window.map_panel.status.text() == "tag 2 segments 'intro' (Ctrl+Z undoes it)"
