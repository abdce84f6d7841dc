"""Space in a list of playable rows plays the selected row, as the library table's Space does."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractItemView


class SpacePlays(QObject):
    """Space in ``view`` plays its one selected row through ``play(row)`` (the path of a double-click), unless
    ``key(row)``, the row's player key (a segment id or ``("track", id)``), is ``heard()``, what the window's
    player holds (or ``key`` is None: nothing to play): then the key goes on to the window's Space, which stops or
    replays it. A held Space plays once."""

    def __init__(self, view: QAbstractItemView, key: Callable[[int], Hashable | None],
                 play: Callable[[int], None], heard: Callable[[], Hashable | None]):
        super().__init__(view)
        self.view, self.key, self.play, self.heard = view, key, play, heard
        view.installEventFilter(self)

    def eventFilter(self, _watched, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        if event.key() != Qt.Key.Key_Space or event.modifiers() != Qt.KeyboardModifier.NoModifier:
            return False  # before the selection is read: every key of the list passes here
        rows = self.view.selectionModel().selectedRows()
        key = self.key(rows[0].row()) if len(rows) == 1 else None
        if key is None or key == self.heard():
            return False
        event.accept()  # the override: not the window's Space
        if event.type() == QEvent.Type.KeyPress and not event.isAutoRepeat():
            self.play(rows[0].row())
        return True
