"""A page that shows its content, or, while there is nothing to show, a sentence saying what to do instead."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget


class EmptyState(QStackedWidget):
    """``content`` when :meth:`set_empty` (False), else ``message`` centred in its place (no meaningless axes)."""

    def __init__(self, content: QWidget, message: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel(message)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.label.setMargin(12)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # messages name files and tracks: never HTML
        self.label.setStyleSheet("color: palette(placeholder-text); font-size: 13px;")
        self.content = content
        self.addWidget(self.label)
        self.addWidget(content)

    @property
    def empty(self) -> bool:
        return self.currentWidget() is self.label

    def set_empty(self, empty: bool, message: str | None = None) -> None:
        """Show the message (replaced by ``message`` if given) or the content."""
        if message is not None:
            self.label.setText(message)
        self.setCurrentWidget(self.label if empty else self.content)
