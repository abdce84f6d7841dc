"""Player bar under the map: play/stop the current item (Space), what it is, volume, and the waveform of its
track with the played part shaded and a moving playhead. The view only; :mod:`playback_controller` drives it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from musicemb_gui.widgets.waveform_view import WaveformView

IDLE = "Nothing to play yet: click a point on the map or double-click a track, then Space plays or stops it."


class PlayerBar(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.play = QPushButton("▶ Play")
        self.play.setToolTip("Play or stop the current segment or track (Space)")
        self.play.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space is the window's, never this button's
        self.play.setEnabled(False)
        self.title = QLabel(IDLE)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.volume = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=80)
        self.volume.setFixedWidth(120)
        self.volume.setToolTip("Volume")
        self.volume_label = QLabel("80 %")
        self.volume_label.setMinimumWidth(40)
        self.volume.valueChanged.connect(lambda v: self.volume_label.setText(f"{v} %"))
        self.waveform = WaveformView(message="The waveform of the track being played appears here.")
        self.waveform.setFixedHeight(70)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.play)
        top.addWidget(self.title, 1)
        top.addWidget(QLabel("🔊"))
        top.addWidget(self.volume)
        top.addWidget(self.volume_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(top)
        layout.addWidget(self.waveform)

    def set_playing(self, playing: bool) -> None:
        self.play.setText("■ Stop" if playing else "▶ Play")

    def reset(self) -> None:
        """Nothing chosen: another library was opened."""
        self.set_playing(False)
        self.play.setEnabled(False)
        self.title.setText(IDLE)
        self.waveform.clear()
