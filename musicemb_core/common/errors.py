"""One exception tree rooted at :class:`MusicEmbError`; messages name the file or parameter at fault."""

from __future__ import annotations


class MusicEmbError(Exception):
    """Base of every error musicemb raises on purpose (bad input, bad usage); anything else is a bug."""


class AudioError(MusicEmbError):
    """An audio file cannot be used: unreadable, truncated, empty, silent, NaN-filled, too long."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(MusicEmbError):
    """A parameter or configuration value is invalid."""


class LibraryError(MusicEmbError):
    """The library folder or its catalogue is missing, locked, or from an unknown version."""


class Cancelled(MusicEmbError):
    """A long job stopped because its cancel flag was set."""
