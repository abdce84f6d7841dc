"""Before a selection is labelled: what it touches ("relabel 16 tracks / 247 segments; 15 tracks only partly
selected"), the label, and whether whole tracks are labelled or only the selected segments are tagged."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from musicemb_core.data.edits import LabelPreview


class LabelDialog(QDialog):
    def __init__(self, preview: LabelPreview, labels: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Label the selection")
        p = preview
        summary = QLabel(f"<b>{p.describe()[0].upper() + p.describe()[1:]}</b>")
        self.label = QLineEdit(placeholderText="label (empty: remove it)")
        completer = QCompleter(sorted(labels, key=str.casefold), self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)  # "rock" offers "Rock", not a new label
        completer.setFilterMode(Qt.MatchFlag.MatchContains)  # "house" offers "Deep House"
        self.label.setCompleter(completer)
        self.whole = QRadioButton(f"Whole tracks: label all {p.track_segments:,} segments of the {p.tracks:,} "
                                  f"track{'s' * (p.tracks != 1)}")
        self.segments = QRadioButton(f"Only the {p.segments:,} selected segments: tag them; their tracks keep "
                                     "their labels")
        group = QButtonGroup(self)
        for b in (self.whole, self.segments):
            group.addButton(b)
        (self.segments if p.partial_tracks else self.whole).setChecked(True)
        note = QLabel("Edit ▸ Undo (Ctrl+Z) takes it back, also after a restart.")
        note.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Label")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for w in (summary, self.label, self.whole, self.segments, note, buttons):
            layout.addWidget(w)

    def choice(self) -> tuple[str, bool]:
        """The label (stripped) and whether whole tracks are labelled."""
        return self.label.text().strip(), self.whole.isChecked()
