"""Data: the library catalogue (SQLite), import, datasets, samplers, splits, synthesis."""
