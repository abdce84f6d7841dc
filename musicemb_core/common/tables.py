"""Writing row tables (list of dicts with the same keys) as CSV or Parquet, atomically."""

from __future__ import annotations

import csv
from pathlib import Path

from musicemb_core.common.errors import ConfigError
from musicemb_core.common.paths import check_output_folder, output_path


def check_table_path(path: str | Path) -> Path:
    """``path`` as a table to write: ``.csv`` or ``.parquet``, not a folder (checked before the work that fills it,
    and by :func:`write_table`)."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"{path}: unknown table format {path.suffix.lower()!r}; use .csv or .parquet")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; give the table a file name")
    check_output_folder(path, "table")
    return path


def write_table(rows: list[dict], path: str | Path, *, columns: list[str] | None = None) -> None:
    """Write ``rows`` to ``path``: ``.csv`` or ``.parquet`` (pyarrow) by extension. A file name that is not UTF-8
    is written as its own bytes in CSV, with ``\\x..`` escapes in Parquet (whose text must be UTF-8)."""
    path = check_table_path(path)
    columns = columns or (list(rows[0]) if rows else [])
    suffix = path.suffix.lower()
    with output_path(path, "table") as tmp:
        if suffix == ".csv":
            with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
                w = csv.DictWriter(f, fieldnames=columns)
                w.writeheader()
                w.writerows(rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({c: [_utf8(r[c]) for r in rows] for c in columns}), tmp)


def _utf8(value):
    """``value``, with a string's undecodable bytes (lone surrogates) as ``\\x..`` escapes."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value
