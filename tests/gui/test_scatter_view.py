"""ScatterView: per-category items with shared brushes, hit-testing, selection, level of detail, overlays."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
from matplotlib.path import Path  # noqa: E402
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from musicemb_gui.widgets import scatter_view  # noqa: E402
from musicemb_gui.widgets.scatter_view import ScatterView  # noqa: E402
from tests.gui.helpers import to_px  # noqa: E402

PALETTE = ["#e41a1c", "#377eb8", "#4daf4a"]
NAMES = ["rock", "jazz", "birds"]


@pytest.fixture
def view(qtbot):
    v = ScatterView()
    qtbot.addWidget(v)
    v.resize(600, 600)
    v.show()
    qtbot.waitExposed(v)
    return v


@pytest.fixture
def grid(view):
    """20 x 20 points on integer coordinates (about 28 px apart), ids 1000 + row index, categories i % 3."""
    gx, gy = np.meshgrid(np.arange(20), np.arange(20))
    xy = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    ids = 1000 + np.arange(len(xy), dtype=np.int64)
    view.set_points(xy, ids, np.arange(len(xy)) % 3, PALETTE, NAMES)
    return xy, ids


def send_mouse(view: ScatterView, kind: QEvent.Type, pos: QPoint, buttons, modifiers) -> None:
    vp = view.plot.viewport()
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    ev = QMouseEvent(kind, QPointF(pos), QPointF(vp.mapToGlobal(pos)), button, buttons, modifiers)
    QApplication.sendEvent(vp, ev)


def drag(qtbot, view: ScatterView, points: list[tuple[float, float]], modifiers) -> None:
    """Left-drag through ``points`` holding ``modifiers`` (paced for pyqtgraph's rate limit)."""
    left = Qt.MouseButton.LeftButton
    send_mouse(view, QEvent.Type.MouseButtonPress, to_px(view, *points[0]), left, modifiers)
    for p in points[1:]:
        qtbot.wait(15)
        send_mouse(view, QEvent.Type.MouseMove, to_px(view, *p), left, modifiers)
    end = to_px(view, *points[-1])
    send_mouse(view, QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton, modifiers)


def test_one_scatter_item_per_category_with_shared_brush(view, grid):
    xy, _ = grid
    assert len(view.scatter_items) == 3
    counts = np.bincount(np.arange(len(xy)) % 3)
    for item, count, colour in zip(view.scatter_items, counts, PALETTE, strict=True):
        assert len(item.data) == count
        assert all(b is None for b in item.data["brush"])  # no per-point brushes
        assert item.opts["brush"].color().name() == colour and item.opts["pxMode"]
    assert [label.text for _, label in view.legend.items] == NAMES
    view.set_legend_visible(False)
    assert not view.legend.isVisible()

    items = list(view.scatter_items)
    view.set_categories(np.arange(len(xy)) % 3, PALETTE[::-1], NAMES)  # same groups: brushes only
    assert view.scatter_items == items and items[0].opts["brush"].color().name() == PALETTE[2]

    view.set_categories(np.arange(len(xy)) % 2, PALETTE[:2], ["a", "b"])
    assert [len(it.data) for it in view.scatter_items] == [200, 200]
    assert [label.text for _, label in view.legend.items] == ["a", "b"]


def test_bad_inputs_raise_value_errors_naming_the_parameter(view):
    xy = np.zeros((5, 2), np.float32)
    with pytest.raises(ValueError, match="ids"):
        view.set_points(xy, np.arange(4), np.zeros(5, int), PALETTE)
    with pytest.raises(ValueError, match="categories"):
        view.set_points(xy, np.arange(5), np.full(5, 3), PALETTE)
    view.set_points(xy, np.arange(5), np.zeros(5, int), PALETTE)
    with pytest.raises(ValueError, match="mask"):
        view.set_visible_mask(np.ones(4, bool))
    assert "musicemb_core" not in inspect.getsource(scatter_view)  # widgets take arrays, not core types


def test_click_emits_the_point_and_highlights_it(qtbot, view, grid):
    xy, ids = grid
    got = []
    view.pointClicked.connect(got.append)
    k = 7 * 20 + 12
    qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=to_px(view, *xy[k]))
    assert got == [ids[k]]
    np.testing.assert_allclose(np.c_[view.ring_item.getData()], xy[[k]])
    qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=to_px(view, 3.5, 3.5))
    assert got == [ids[k]]  # empty space: nothing


def test_hover_emits_the_id_and_shows_the_tooltip_while_hovered(qtbot, view, grid):
    xy, ids = grid
    view.tooltip_fn = lambda i: f"segment {i}"
    got = []
    view.hovered.connect(got.append)
    k = 5 * 20 + 9
    qtbot.mouseMove(view.plot.viewport(), to_px(view, *xy[k]))
    qtbot.waitUntil(lambda: got == [ids[k]])
    assert view.hover_label.isVisible() and view.hover_label.toPlainText() == f"segment {ids[k]}"
    assert (view.hover_label.pos().x(), view.hover_label.pos().y()) == pytest.approx(tuple(xy[k]))
    qtbot.wait(2500)  # a tooltip would have gone by now; the label stays while the cursor does
    assert view.hover_label.isVisible()
    qtbot.mouseMove(view.plot.viewport(), to_px(view, 4.5, 4.5))
    qtbot.waitUntil(lambda: got == [ids[k], -1])
    assert not view.hover_label.isVisible()


def test_box_selection_api_matches_a_numpy_mask(qtbot, view):
    rng = np.random.default_rng(1)
    xy = rng.normal(0, 1, (5000, 2)).astype(np.float32)
    ids = rng.permutation(10**6)[:5000].astype(np.int64)
    view.set_points(xy, ids, rng.integers(0, 3, 5000), PALETTE)
    with qtbot.waitSignal(view.selectionChanged) as sig:
        got = view.select_rect(0.5, -1.0, -0.3, 0.2)  # corners in any order
    inside = (xy[:, 0] >= -0.3) & (xy[:, 0] <= 0.5) & (xy[:, 1] >= -1.0) & (xy[:, 1] <= 0.2)
    assert np.array_equal(np.sort(got), np.sort(ids[inside])) and inside.sum() > 100
    assert np.array_equal(sig.args[0], got)
    assert len(view.ring_item.data) == inside.sum()


def test_lasso_selection_api_matches_matplotlib_path(view):
    rng = np.random.default_rng(2)
    xy = rng.uniform(-1, 1, (8000, 2)).astype(np.float32)
    ids = np.arange(8000, dtype=np.int64) * 3
    view.set_points(xy, ids, rng.integers(0, 3, 8000), PALETTE)
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    star = np.c_[np.cos(t), np.sin(t)] * np.where(np.arange(40) % 2, 0.3, 0.8)[:, None]
    got = view.select_polygon(star)
    expected = ids[Path(star).contains_points(xy)]
    assert np.array_equal(np.sort(got), np.sort(expected)) and len(expected) > 300


def test_shift_drag_selects_a_box_and_ctrl_drag_a_lasso(qtbot, view, grid):
    xy, ids = grid
    got = []
    view.selectionChanged.connect(got.append)
    drag(qtbot, view, [(2.5, 3.5), (5, 6), (8.5, 9.5)], Qt.KeyboardModifier.ShiftModifier)
    box = (xy[:, 0] > 2.5) & (xy[:, 0] < 8.5) & (xy[:, 1] > 3.5) & (xy[:, 1] < 9.5)
    assert len(got) == 1 and np.array_equal(np.sort(got[0]), ids[box])

    triangle = [(0.5, 0.2), (10.5, 0.2), (10.5, 10.2), (0.5, 0.2)]  # no point on an edge
    drag(qtbot, view, triangle, Qt.KeyboardModifier.ControlModifier)
    expected = ids[Path(np.array(triangle)).contains_points(xy)]
    assert len(got) == 2 and np.array_equal(np.sort(got[1]), np.sort(expected)) and len(expected) == 45


def test_select_mode_makes_a_plain_drag_select(qtbot, view, grid):
    xy, ids = grid
    got = []
    view.selectionChanged.connect(got.append)
    with pytest.raises(ValueError, match="select mode"):
        view.set_select_mode("circle")
    view.set_select_mode("box")
    drag(qtbot, view, [(0.5, 0.5), (2.5, 1.5)], Qt.KeyboardModifier.NoModifier)
    assert len(got) == 1 and set(got[0]) == {ids[21], ids[22]}
    view.set_select_mode("none")
    before = view.vb.viewRange()
    drag(qtbot, view, [(0.5, 0.5), (2.5, 1.5)], Qt.KeyboardModifier.NoModifier)
    assert len(got) == 1 and view.vb.viewRange() != before  # plain drag pans


def test_level_of_detail_switches_between_density_and_points(qtbot, view):
    rng = np.random.default_rng(3)
    n = 20_000
    xy = rng.uniform(0, 100, (n, 2)).astype(np.float32)
    view.lod_threshold = 1000
    cat = (xy[:, 0] > 50).astype(int) + (rng.random(n) < 0.05)  # left mostly 0, right mostly 1
    view.set_points(xy, np.arange(n), cat, PALETTE)
    assert view.image_item.isVisible()
    assert not any(item.isVisible() for item in view.scatter_items)
    image = view.image_item.image
    assert image.ndim == 3 and image.shape[2] == 4 and image.shape[1] >= 200  # about screen resolution
    (x0, x1), (y0, y1) = view.vb.viewRange()
    hist = np.histogram2d(xy[:, 1], xy[:, 0], bins=image.shape[:2], range=[[y0, y1], [x0, x1]])[0]
    assert np.mean((hist > 0) != (image[..., 3] > 0)) < 0.01  # row 0 = lowest y, log scale keeps every bin
    w = image.shape[1]
    for part, colour in ((image[:, : w // 3], PALETTE[0]), (image[:, -w // 3:], PALETTE[1])):
        rgb = part[part[..., 3] > 0][:, :3]
        assert (rgb == np.frombuffer(bytes.fromhex(colour[1:]), np.uint8)).all(1).mean() > 0.85  # majority

    view.zoom_to((40, 50), (40, 50))
    qtbot.waitUntil(lambda: not view.image_item.isVisible())
    assert all(item.isVisible() for item in view.scatter_items)
    (x0, x1), (y0, y1) = view.vb.viewRange()
    def n_in_view(p):
        return int(((p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)).sum())

    loaded = np.concatenate([np.c_[item.getData()] for item in view.scatter_items])
    assert 0 < n_in_view(xy) == n_in_view(loaded) <= view.lod_threshold  # the view plus a margin is loaded
    assert len(loaded) <= 2 * view.lod_threshold

    view.zoom_to((0, 100), (0, 100))
    qtbot.waitUntil(view.image_item.isVisible)


def test_visible_mask_hides_points_from_drawing_and_hit_tests(qtbot, view, grid):
    xy, ids = grid
    mask = np.ones(len(xy), bool)
    mask[::2] = False
    view.set_visible_mask(mask)
    assert sum(len(item.data) for item in view.scatter_items) == mask.sum()
    got = []
    view.pointClicked.connect(got.append)
    qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=to_px(view, *xy[40]))
    assert got == []
    assert view.point_at(*xy[41], 8) == ids[41]
    assert set(view.select_rect(-1, -1, 3.5, 0.5)) == {ids[1], ids[3]}
    view.set_visible_mask(None)
    assert view.point_at(*xy[40], 8) == ids[40]


def test_show_links_draws_k_segments(view, grid):
    xy, ids = grid
    view.show_links(ids[0], ids[[1, 20, 21, 199]])
    x, y = view.link_item.getData()
    assert len(x) == 8 and view.link_item.opts["connect"] == "pairs"
    np.testing.assert_allclose(np.c_[x, y][0::2], np.repeat(xy[[0]], 4, 0))
    np.testing.assert_allclose(np.c_[x, y][1::2], xy[[1, 20, 21, 199]])
    view.clear_links()
    assert len(view.link_item.getData()[0]) == 0


def test_center_on_pans_and_keeps_zoom(view, grid):
    xy, ids = grid
    view.zoom_to((0, 4), (0, 4))
    (x0, x1), (y0, y1) = view.vb.viewRange()
    view.center_on(ids[15 * 20 + 17])
    (a0, a1), (b0, b1) = view.vb.viewRange()
    assert (a0 + a1) / 2 == pytest.approx(17) and (b0 + b1) / 2 == pytest.approx(15)
    assert a1 - a0 == pytest.approx(x1 - x0) and b1 - b0 == pytest.approx(y1 - y0)


def test_fast_paint_draws_like_pyqtgraph(qtbot):
    """One fragment per occupied pixel renders the same picture as ScatterPlotItem.paint (one per point)."""
    import pyqtgraph as pg
    from PySide6.QtGui import QImage

    from musicemb_gui.widgets.scatter_items import SharedStyleScatter

    rng = np.random.default_rng(4)
    xy = rng.normal(0, 1, (20_000, 2))

    def render(cls) -> np.ndarray:
        plot = pg.PlotWidget()
        qtbot.addWidget(plot)
        plot.resize(400, 300)
        plot.show()
        for part, colour in zip(np.array_split(xy, 3), PALETTE, strict=True):
            item = cls(pxMode=True, size=4, pen=None, brush=pg.mkBrush(colour), antialias=False)
            item.setData(x=part[:, 0], y=part[:, 1])
            plot.addItem(item)
        plot.setRange(xRange=(-2, 2), yRange=(-1.5, 1.5), padding=0)
        QApplication.processEvents()
        img = plot.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
        return np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), -1, 4)[..., :3].astype(int)

    ours, reference = render(SharedStyleScatter), render(pg.ScatterPlotItem)
    assert (reference.sum(-1) > 0).mean() > 0.2
    assert (np.abs(ours - reference).max(-1) > 8).mean() < 0.02


def test_the_whole_map_stays_in_view_through_resizes_until_the_user_zooms(qtbot, view):
    xy = np.array([[0, 0], [10, 1], [5, 8]], np.float32)
    view.set_points(xy, np.arange(3), np.zeros(3, int), PALETTE)

    def all_in_view() -> bool:
        (x0, x1), (y0, y1) = view.vb.viewRange()
        return bool(((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).all())
    for size in ((900, 200), (200, 900)):
        view.resize(*size)
        qtbot.waitUntil(all_in_view)
    view.zoom_to((4, 6), (7, 9))
    view.resize(600, 600)
    qtbot.wait(50)
    assert not all_in_view()


def test_points_without_a_position_are_neither_drawn_nor_hit(qtbot, view):
    """A map with a NaN coordinate (UMAP leaves disconnected points at NaN) raised ValueError from the KD-tree,
    and the map was not drawn at all."""
    xy = np.array([[0, 0], [np.nan, 1], [10, 1], [5, np.inf], [5, 8]], np.float32)
    view.set_points(xy, np.arange(5), np.zeros(5, int), PALETTE)
    assert np.isfinite(view.vb.viewRange()).all() and not view.stack.empty
    assert sum(len(item.data) for item in view.scatter_items) == 3
    assert view.point_at(10, 1, 8) == 2
    assert list(view.select_rect(-100, -100, 100, 100)) == [0, 2, 4]
    view.highlight([1, 2])
    assert list(view.ringed_ids) == [2]
    view.set_points(xy[[1, 3]], np.arange(2), np.zeros(2, int), PALETTE)
    assert view.stack.empty


def test_a_selection_above_the_lod_threshold_rings_at_most_that_many_points_in_view(qtbot, view):
    """Box-selecting a map of 1.6M points made 1.6M ring records (a freeze of 3.5 s); the rings drawn are now
    those in view, thinned to ``lod_threshold``, while every selected id is kept."""
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 100, (5000, 2)).astype(np.float32)
    view.lod_threshold = 400
    view.set_points(xy, np.arange(5000), np.zeros(5000, int), PALETTE)
    assert len(view.select_rect(-1, -1, 101, 101)) == 5000 == len(view.ringed_ids)
    assert 0 < len(view.ring_item.data) <= 400
    view.zoom_to((10, 30), (10, 30))  # about 200 selected points in view: every one ringed

    def rings_in_view() -> bool:
        inside = ((xy >= 10) & (xy <= 30)).all(1).sum()
        ringed = np.c_[view.ring_item.getData()]
        return len(ringed) == inside and ((ringed >= 10) & (ringed <= 30)).all()
    qtbot.waitUntil(rings_in_view)


def test_reserved_records_are_those_pyqtgraph_makes_without_its_slow_allocation(qtbot, monkeypatch):
    """``reserve`` went through ``addPoints``, whose ``np.empty`` of object fields took 2.7 s for 1.6M records
    (each recolouring of a large map reserved that many)."""
    import pyqtgraph as pg

    from musicemb_gui.widgets.scatter_items import SharedStyleScatter

    reference = pg.ScatterPlotItem()
    reference.setData(x=np.zeros(3), y=np.zeros(3))
    item = SharedStyleScatter(pxMode=True, size=4, pen=None, brush=pg.mkBrush("r"))
    monkeypatch.setattr(pg.ScatterPlotItem, "addPoints", lambda *a, **k: pytest.fail("reserved through addPoints"))
    item.reserve(3)
    assert len(item.data) == 0 and len(item._buffer) == 3
    for field in reference.data.dtype.names:
        if field != "sourceRect":
            assert item._buffer[field].tolist() == reference.data[field].tolist(), field
    item.set_xy(np.arange(3.0), np.ones(3))
    assert np.c_[item.getData()].tolist() == [[0, 1], [1, 1], [2, 1]]
