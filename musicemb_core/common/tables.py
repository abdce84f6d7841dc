"""Writing row tables (list of dicts with the same keys) as CSV or Parquet, atomically."""

from __future__ import annotations

import csv
from pathlib import Path

from musicemb_core.common.errors import ConfigError
from musicemb_core.common.paths import atomic_path


def write_table(rows: list[dict], path: str | Path, *, columns: list[str] | None = None) -> None:
    """Write ``rows`` to ``path``: ``.csv`` or ``.parquet`` (pyarrow) by extension."""
    path = Path(path)
    columns = columns or (list(rows[0]) if rows else [])
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"{path}: unknown table format {suffix!r}; use .csv or .parquet")
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=columns)
                w.writeheader()
                w.writerows(rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({c: [r[c] for r in rows] for c in columns}), tmp)
