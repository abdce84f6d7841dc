"""Display widgets: the spectrogram's axes are real seconds and mel-band hertz, its live window is a ring that keeps
the newest columns in order, curves keep their points, the confusion view writes the counts; all of them draw."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
from PySide6.QtCore import QPointF, Qt  # noqa: E402

from musicemb_gui.widgets.confusion_view import ConfusionView  # noqa: E402
from musicemb_gui.widgets.curve_view import CurveView  # noqa: E402
from musicemb_gui.widgets.spectrogram_view import (  # noqa: E402
    SpectrogramView,
    hz_to_mel,
    mel_band_centres,
    mel_to_hz,
)

SR, HOP = 16000, 160
GENRES = ["ambient", "chiptune", "folk", "rock", "techno"]


def view_rect(item):
    """The item's extent in its ViewBox's (data) coordinates."""
    return item.mapRectToParent(item.boundingRect())


def y_ticks(view: SpectrogramView) -> dict[str, float]:
    return {label: pos for pos, label in view.plot.getAxis("left")._tickLevels[0]}


def test_mel_scales_match_their_definitions():
    assert hz_to_mel(1000.0) == pytest.approx(15.0)  # Slaney: linear 200/3 Hz per mel up to 1 kHz
    assert hz_to_mel(6400.0) == pytest.approx(15.0 + 27.0)  # then 27 mels per factor 6.4
    assert hz_to_mel(700.0, htk=True) == pytest.approx(2595.0 * np.log10(2.0))
    f = np.array([0.0, 60.0, 999.0, 1000.0, 4321.0, 11025.0])
    for htk in (False, True):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, htk=htk), htk=htk), f, atol=1e-6)
        c = mel_band_centres(40, 30.0, 8000.0, htk=htk)
        assert c.shape == (40,) and 30.0 < c[0] < c[-1] < 8000.0 and np.all(np.diff(c) > 0)


@pytest.mark.parametrize("htk", [False, True])
def test_spectrogram_image_levels_and_axes(qtbot, htk):
    view = SpectrogramView()
    qtbot.addWidget(view)
    S = np.random.default_rng(0).uniform(-80, 0, (64, 250)).astype(np.float32)
    view.set_spectrogram(S, sr=SR, hop_length=HOP, fmin=0, fmax=8000, htk=htk, title="clip")

    np.testing.assert_array_equal(view.data(), S)
    assert tuple(view.image.levels) == pytest.approx((S.min(), S.max()))
    assert view.colorbar.levels() == pytest.approx((S.min(), S.max()))
    assert view.colorbar.getAxis("left").labelText == "dB"
    rect = view_rect(view.image)
    assert (rect.left(), rect.right()) == pytest.approx((0.0, 250 * HOP / SR))  # real seconds
    assert (rect.top(), rect.bottom()) == pytest.approx((0.0, 64.0))  # one unit per mel row, row 0 (low) at 0

    centres = mel_band_centres(64, 0, 8000, htk=htk)
    ticks = y_ticks(view)
    assert {"100", "500", "1k", "2k", "4k"} <= set(ticks)
    for label, hz in (("1k", 1000), ("4k", 4000), ("500", 500)):
        assert ticks[label] == pytest.approx(np.argmin(np.abs(centres - hz)) + 0.5)
    assert list(ticks.values()) == sorted(ticks.values())  # low frequencies at the bottom


def test_spectrogram_fixed_levels_unit_and_validation(qtbot):
    view = SpectrogramView()
    qtbot.addWidget(view)
    S = np.random.default_rng(1).standard_normal((32, 40))
    view.set_spectrogram(S, sr=22050, hop_length=512, fmin=20, fmax=11025, unit="normalised", levels=(-3, 3))
    assert tuple(view.image.levels) == (-3, 3)
    assert view.colorbar.getAxis("left").labelText == "normalised"
    assert view_rect(view.image).right() == pytest.approx(40 * 512 / 22050)
    with pytest.raises(ValueError):
        view.set_spectrogram(S[0], sr=SR, hop_length=HOP, fmin=0, fmax=8000)
    view.clear()
    assert view.data().size == 0


def test_append_columns_keeps_the_last_max_frames_in_order(qtbot):
    view = SpectrogramView(max_frames=50)
    qtbot.addWidget(view)
    with pytest.raises(RuntimeError):
        view.append_columns(np.zeros((16, 1)))
    view.start_live(16, sr=SR, hop_length=HOP, fmin=0, fmax=8000)
    rect = view_rect(view.image)
    assert (rect.left(), rect.right()) == pytest.approx((-50 * HOP / SR, 0.0))  # newest column at t = 0
    rng = np.random.default_rng(2)
    seen = np.full((16, 50), np.nan, dtype=np.float32)  # what a numpy reference shows: NaN until filled
    for k in [1, 7, 13, 3, 50, 2, 49, 120, 5, *rng.integers(1, 15, 40)]:
        cols = rng.standard_normal((16, k)).astype(np.float32)
        view.append_columns(cols)
        seen = np.concatenate([seen, cols], axis=1)[:, -50:]
        np.testing.assert_array_equal(view.data(), seen)
    assert view.colorbar.levels() == pytest.approx((np.nanmin(seen), np.nanmax(seen)), abs=2.0)
    with pytest.raises(ValueError):
        view.append_columns(np.zeros((8, 3)))


def test_live_updates_are_cheap(qtbot):
    view = SpectrogramView(max_frames=500)
    qtbot.addWidget(view)
    view.resize(800, 300)
    view.show()
    view.start_live(64, sr=SR, hop_length=HOP, fmin=0, fmax=8000, levels=(-80, 0))
    cols = np.random.default_rng(3).uniform(-80, 0, (64, 4)).astype(np.float32)
    t0 = time.thread_time()  # this thread's CPU time (offscreen Qt draws here): other programs' load not counted
    for _ in range(100):
        view.append_columns(cols)
        view.plot_widget.viewport().repaint()  # render each update, as a 25/s timer would
    assert (time.thread_time() - t0) / 100 < 0.02  # well under the 40 ms a 25/s refresh allows


def test_curves_receive_points(qtbot):
    view = CurveView(x_label="step")
    qtbot.addWidget(view)
    xs = np.arange(200.0)
    for x in xs:
        view.add_point("train loss", x, 1 / (1 + x))
        if x % 50 == 0:
            view.add_point("val acc", x, x / 200)
    x, y = view.series_data("train loss")
    np.testing.assert_array_equal(x, xs)
    np.testing.assert_allclose(y, 1 / (1 + xs))
    np.testing.assert_array_equal(view.series_data("val acc")[1], [0, 0.25, 0.5, 0.75])
    assert [c.name() for c in view.plots["loss"].listDataItems()] == ["train loss"]
    assert [c.name() for c in view.plots["metric"].listDataItems()] == ["val acc"]
    view.add_series("val loss", panel="metric")
    assert len(view.plots["metric"].listDataItems()) == 2
    view.set_x_label("epoch")
    assert view.plots["metric"].getAxis("bottom").labelText == "epoch"
    with pytest.raises(ValueError):
        view.add_series("x", panel="middle")
    view.clear()
    assert not view.plots["loss"].listDataItems()
    assert len(view.series_data("train loss")[0]) == 0


def test_confusion_counts_fractions_and_readout(qtbot):
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(500, 450)
    view.show()
    cm = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    view.set_matrix(cm, ["a", "b", "c"], title="probe")
    assert [[view.cell_text(i, j) for j in range(3)] for i in range(3)] == cm.astype(str).tolist()
    np.testing.assert_allclose(view.image.image, [[0.8, 0.2, 0], [0.25, 0.75, 0], [0, 0, 0]])
    assert view.colorbar.levels() == (0.0, 1.0)
    assert view.hover_text(0, 1) == "true a -> predicted b: 2 (20.0 %)"
    assert view.counts.dark[2] and not view.counts.dark[0]  # white on the dark cell, black on the bright one

    view.plot.scene().sigMouseMoved.emit(view.plot.vb.mapViewToScene(QPointF(0.5, 1.5)))  # true b, predicted a
    assert view.readout.text() == "true b -> predicted a: 1 (25.0 %)"
    assert view.plot_widget.toolTip() == view.readout.text()

    view.set_matrix(cm, ["a", "b", "c"], normalise_rows=False)
    assert view.colorbar.levels() == (0.0, 8.0)
    with pytest.raises(ValueError):
        view.set_matrix(cm, ["a", "b"])


def test_a_hundred_labels_make_no_item_per_cell_and_counts_show_only_where_they_fit(qtbot):
    """100 labels made 10,000 TextItems: 12 s to show the matrix and 10 s to clear it (another library or model),
    the counts overlapping in 5-pixel cells. Odd label text is shown as written in the readout."""
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(500, 450)
    view.show()
    items = len(view.plot.items)
    labels = [f"<b>{i}</b> & co" for i in range(100)]
    view.set_matrix(np.arange(10_000).reshape(100, 100), labels)
    assert len(view.plot.items) == items and view.cell_text(99, 98) == "9998"
    assert not view.counts_written()  # 5-pixel cells: no count is written
    view.plot.scene().sigMouseMoved.emit(view.plot.vb.mapViewToScene(QPointF(1.5, 0.5)))
    assert view.readout.text() == "true <b>0</b> & co -> predicted <b>1</b> & co: 1 (0.0 %)"
    assert view.readout.textFormat() == Qt.TextFormat.PlainText
    view.set_matrix(np.eye(2, dtype=int), ["a", "b"])
    assert view.counts_written()
    view.clear()
    assert len(view.plot.items) == items


def test_crowded_class_names_are_thinned_so_they_do_not_overlap(qtbot):
    """60 labels in a small panel wrote their names over each other on both axes; every step-th is named now, all
    of them where a line fits in a cell."""
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.show()
    for n, whole in ((60, False), (8, True)):
        view.set_matrix(np.eye(n, dtype=int), [f"style {i}" for i in range(n)])
        qtbot.wait(50)
        for axis in ("left", "bottom"):
            ticks = view.plot.getAxis(axis)._tickLevels[0]
            assert (len(ticks) == n) == whole, (n, axis, len(ticks))
            gaps = set(np.diff([t for t, _ in ticks]).tolist())
            assert ticks[0][0] == 0.5 and len(gaps) == 1 and (gaps == {1.0}) == whole  # evenly spaced


def test_long_class_names_are_rotated_on_the_bottom_axis(qtbot):
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    qtbot.waitExposed(view)
    view.set_matrix(np.eye(5, dtype=int), GENRES)
    assert not view.plot.getAxis("bottom").rotated
    view.resize(220, 500)  # the same names in narrow cells read upwards
    qtbot.waitUntil(lambda: view.plot.getAxis("bottom").rotated)
    view.resize(700, 500)
    qtbot.waitUntil(lambda: not view.plot.getAxis("bottom").rotated)
    long = [f"{a} {b}" for a in ("electronic", "acoustic", "orchestral") for b in ("ambience", "drums", "voice")]
    view.set_matrix(np.eye(9, dtype=int), long)
    assert view.plot.getAxis("bottom").rotated


def _filled(name: str):
    rng = np.random.default_rng(4)
    if name == "spectrogram":
        w = SpectrogramView()
        w.set_spectrogram(rng.uniform(-80, 0, (64, 300)), sr=SR, hop_length=HOP, fmin=0, fmax=8000)
    elif name == "live":
        w = SpectrogramView(max_frames=200)
        w.start_live(64, sr=SR, hop_length=HOP, fmin=0, fmax=8000)
        w.append_columns(rng.uniform(-80, 0, (64, 120)))
    elif name == "curves":
        w = CurveView()
        for x in range(100):
            w.add_point("train loss", x, np.exp(-x / 30) + 0.05 * rng.random())
            w.add_point("train acc", x, 1 - np.exp(-x / 30))
    else:
        w = ConfusionView()
        w.set_matrix(rng.integers(0, 20, (5, 5)) + np.diag([40] * 5), GENRES)
    return w


@pytest.mark.parametrize("name", ["spectrogram", "live", "curves", "confusion"])
def test_widgets_render_something(qtbot, name):
    widget = _filled(name)
    qtbot.addWidget(widget)
    widget.resize(700, 400)
    widget.show()
    qtbot.waitExposed(widget)
    image = widget.grab().toImage()
    assert not image.isNull()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 9) for y in range(0, image.height(), 9)}
    assert len(colours) > 20
