"""Shared ground: errors, configuration dataclasses, progress events, paths."""
