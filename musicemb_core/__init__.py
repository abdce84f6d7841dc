"""musicemb core: audio -> embeddings -> search, maps and analysis. Never imports Qt."""

__version__ = "0.1.0"
