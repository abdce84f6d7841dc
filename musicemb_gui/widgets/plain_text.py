"""Text shown as written: Qt renders a label or a tooltip that looks like HTML ("<b>x</b>.mp3" in bold, "a<b" cut
at the "<"), and names of files, tracks and labels are the user's."""

from __future__ import annotations

import html

from PySide6.QtGui import Qt  # QtGui.Qt holds mightBeRichText, the test QToolTip makes


def tooltip(text: str) -> str:
    """``text`` as a tooltip that shows it as written (line breaks kept): escaped in a paragraph when Qt would
    take it for rich text."""
    if not Qt.mightBeRichText(text):
        return text
    return "<p style='white-space:pre'>" + html.escape(text).replace("\n", "<br>") + "</p>"
