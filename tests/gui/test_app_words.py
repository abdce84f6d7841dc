"""Core messages in the app's words: the app said "run `musicemb embed`" (a command line) where its own
Library ▸ Embed does it."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from musicemb_gui.app_words import in_app_words  # noqa: E402
from tests.gui.helpers import tone_library  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, status, window  # noqa: E402, F401 (fixtures)


def test_cli_commands_become_the_apps_menu_items_but_a_holder_keeps_its_name():
    assert in_app_words("/l: no embeddings for model 'default'; run `musicemb embed`") == (
        "/l: no embeddings for model 'default'; run Library ▸ Embed")
    assert in_app_words("stale; run `musicemb embed --model mine`") == "stale; run Library ▸ Embed"
    assert in_app_words("the index is empty; build it with `musicemb index`") == (
        "the index is empty; build it with Library ▸ Embed")
    busy = "/l: library busy: `musicemb embed` (pid 12) since 12:03:04"
    assert in_app_words(busy) == busy


def test_inspect_without_embeddings_names_the_apps_embed(qtbot, window, tmp_path):  # noqa: F811
    """Inspect on a library imported but not embedded: the label, outlier and duplicate kinds are skipped, and the
    status bar says to run Library ▸ Embed, not the command line's `musicemb embed`."""
    assert window.open_library(tone_library(tmp_path))
    window.inspection_panel.run.click()
    qtbot.waitUntil(lambda: "inspection done" in status(window), timeout=60000)
    assert "skipped label/outlier/duplicate" in status(window)
    assert "Library ▸ Embed" in status(window) and "musicemb embed" not in status(window)
