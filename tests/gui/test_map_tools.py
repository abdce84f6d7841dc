"""Map tools on real widgets: search greys out what does not match, counts what does and filters the library table;
zoom-to-fit by button and key; finding colours never grey."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402

from musicemb_gui.main_window import MainWindow  # noqa: E402
from musicemb_gui.panels.dj_colours import FILTERED_OUT  # noqa: E402
from musicemb_gui.panels.map_controller import NONE_COLOUR, PALETTE  # noqa: E402
from musicemb_gui.panels.map_panel import EMPTY_MAP  # noqa: E402
from musicemb_gui.widgets.audio_player import AudioPlayer  # noqa: E402
from tests.gui.helpers import FakeBackend, tone_library  # noqa: E402


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return tone_library(tmp_path_factory.mktemp("tones"))


@pytest.fixture
def window(qtbot, tmp_path, tones):
    """The app on the tone library, its 6 segments put on a map by hand (no embedding needed)."""
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                     player=AudioPlayer(backend=FakeBackend()))
    qtbot.addWidget(win)
    win.resize(1280, 720)
    win.show()
    qtbot.waitExposed(win)
    assert win.map_panel.scatter.stack.empty and win.map_panel.scatter.stack.label.text() == EMPTY_MAP
    assert win.open_library(tones)
    ids = np.sort(win.session.segments["id"]).astype(np.int64)
    xy = np.random.default_rng(0).normal(0, 5, (len(ids), 2))
    win.map_controller._emit_map(np.c_[ids, xy], "pca")
    assert not win.map_panel.scatter.stack.empty
    win.xy = xy
    yield win
    win.jobs.cancel_all()
    win.jobs.wait(30000)


def _greyed(scatter) -> int:
    """Points drawn in the filtered-out grey."""
    return sum(len(item.data) for item in scatter.scatter_items
               if item.opts["brush"].color().name() == FILTERED_OUT)


def test_search_greys_out_non_matches_counts_matches_and_filters_the_table(qtbot, window):
    mp, table, lib_filter = window.map_panel, window.library_panel.proxy, window.library_panel.filter
    assert mp.match_count.text() == "" and _greyed(mp.scatter) == 0 and table.rowCount() == 2
    mp.search.setText("tone440")
    qtbot.waitUntil(lambda: mp.match_count.text() == "<b>3 of 6 segments match</b>")  # the library's filters settle first
    assert _greyed(mp.scatter) == 3 and len(mp.scatter._ids) == 6  # the other track's 3 segments, still there
    assert table.rowCount() == 1 and table.index(0, 0).data() == "tone440.wav" and lib_filter.text() == "tone440"
    lib_filter.setText("nothing like this")  # one filter, two boxes
    assert mp.search.text() == "nothing like this"
    qtbot.waitUntil(lambda: mp.match_count.text() == "<b>0 of 6 segments match</b>")
    assert _greyed(mp.scatter) == 6 and table.rowCount() == 0
    mp.search.clear()
    qtbot.waitUntil(lambda: mp.match_count.text() == "")
    assert _greyed(mp.scatter) == 0 and table.rowCount() == 2 and not lib_filter.text()


def _shows_all(scatter, xy) -> bool:
    (x0, x1), (y0, y1) = scatter.vb.viewRange()
    return bool((xy[:, 0] >= x0).all() and (xy[:, 0] <= x1).all() and (xy[:, 1] >= y0).all()
                and (xy[:, 1] <= y1).all())


def test_zoom_to_fit_by_button_and_by_key(qtbot, window):
    mp, xy = window.map_panel, window.xy
    mp.scatter.zoom_to((0.0, 0.5), (0.0, 0.5))
    assert not _shows_all(mp.scatter, xy)
    qtbot.mouseClick(mp.fit, Qt.MouseButton.LeftButton)
    assert _shows_all(mp.scatter, xy)
    mp.scatter.zoom_to((0.0, 0.5), (0.0, 0.5))
    mp.scatter.plot.setFocus()
    qtbot.keyClick(mp.scatter.plot.viewport(), Qt.Key.Key_F)
    assert _shows_all(mp.scatter, xy)


def test_no_category_colour_is_grey_like_no_finding(window):
    """Greys mean "none": "muffled", 8th of the kinds found, was drawn #7f7f7f beside "(no finding)" #9a9a9a."""
    chroma = [max(QColor(c).getRgb()[:3]) - min(QColor(c).getRgb()[:3]) for c in PALETTE]
    assert min(chroma) >= 30  # no grey (chroma 0), pastels included
    ids = window.map_controller.ids
    kinds = ["clipping", "dead", "hum", "muffled", "noise"]
    window.map_controller.finding_kinds = lambda ids, _tracks: np.array([*kinds, None], dtype=object)
    cats, palette, names = window.map_controller.colours("finding", ids)
    assert names == [*kinds, "(no finding)"] and palette[-1] == NONE_COLOUR
    assert cats.tolist() == [0, 1, 2, 3, 4, 5]
    assert len(set(palette)) == len(palette)
