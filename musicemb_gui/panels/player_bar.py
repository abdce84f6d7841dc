"""Player bar under the map, one row: play/stop the current item (Space), what it is, the waveform of its track
with the played part shaded and a moving playhead, the volume. The view only; :mod:`playback_controller` drives
it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from musicemb_gui.widgets.plain_text import tooltip
from musicemb_gui.widgets.waveform_view import WaveformView

IDLE = "Click a point or double-click a track to listen; Space plays or stops it."


class PlayerBar(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.play = QPushButton("▶ Play")
        self.play.setToolTip("Play or stop the current segment or track (Space)")
        self.play.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space is the window's, never this button's
        self.play.setEnabled(False)
        self.title = QLabel(IDLE)
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.PlainText)  # a track's name
        self.title.setFixedWidth(190)
        self.volume = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=80)
        self.volume.setFixedWidth(100)
        self.volume_label = QLabel("80 %")
        self.volume_label.setMinimumWidth(40)
        self.volume.valueChanged.connect(lambda v: self.volume_label.setText(f"{v} %"))
        self.waveform = WaveformView(message="waveform of the track playing")
        self.waveform.setFixedHeight(48)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for w, stretch in ((self.play, 0), (self.title, 0), (self.waveform, 1), (QLabel("Volume"), 0),
                           (self.volume, 0), (self.volume_label, 0)):
            layout.addWidget(w, stretch)

    def show_title(self, name: str, detail: str) -> None:
        """A track's ``name`` on one line, elided ("…") where wider than the title's room, ``detail`` (the part
        playing) under it, both whole on hover: a long name wrapped over four lines in the bar's two, its start and
        the part playing cut off."""
        shown = self.title.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, self.title.width())
        self.title.setText(f"{shown}\n{detail}")
        self.title.setToolTip(tooltip(f"{name}\n{detail}"))

    def set_playing(self, playing: bool) -> None:
        self.play.setText("■ Stop" if playing else "▶ Play")

    def reset(self) -> None:
        """Nothing chosen: another library was opened."""
        self.set_playing(False)
        self.play.setEnabled(False)
        self.title.setText(IDLE)
        self.title.setToolTip("")
        self.waveform.clear()
