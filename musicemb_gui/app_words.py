"""Core messages in the app's words: the CLI commands they suggest become the app's menu items."""

from __future__ import annotations

import re

_EMBED = re.compile(r"\b(run|need|needs|rebuild it with|build it with) `musicemb (embed|index)[^`]*`")


def in_app_words(message: str) -> str:
    """``message`` with "run `musicemb embed`" (or `index`, which the app's embed job also rebuilds) said as
    "run Library ▸ Embed"; a program named as the library's holder ("library busy: `musicemb embed` ...") stays."""
    return _EMBED.sub(lambda m: f"{m.group(1)} Library ▸ Embed", message)
