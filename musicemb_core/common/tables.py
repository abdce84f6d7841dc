"""Writing row tables (list of dicts with the same keys) as CSV or Parquet, atomically."""

from __future__ import annotations

import csv
import re
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


#: What makes a spreadsheet run a cell as a formula: CSV we write holds such text after an apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def csv_cell(value):
    """``value`` as a CSV cell: None empty, numbers as they are, text a spreadsheet would run as a formula (or text
    looking so guarded) after an apostrophe, as spreadsheets mark text: "=1+2" as "'=1+2", "-3.5" kept
    (:func:`cell_text` reads it back)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.lstrip("'")[:1] in FORMULA_START and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def cell_text(cell: str) -> str:
    """A CSV cell as it was before :func:`csv_cell` guarded it ("'=1+2": "=1+2")."""
    return cell[1:] if cell[:1] == "'" and cell.lstrip("'")[:1] in FORMULA_START else cell


def write_table(rows: list[dict], path: str | Path, *, columns: list[str] | None = None) -> None:
    """Write ``rows`` to ``path``: ``.csv`` (UTF-8 without a byte-order mark, which R and Python's csv would read
    into the first column's name; cells as :func:`csv_cell`) or ``.parquet`` (pyarrow, values as they are) by
    extension. A file name that is not UTF-8
    is written as its own bytes in CSV, with ``\\x..`` escapes in Parquet (whose text must be UTF-8)."""
    path = check_table_path(path)
    columns = columns or (list(rows[0]) if rows else [])
    suffix = path.suffix.lower()
    with output_path(path, "table") as tmp:
        if suffix == ".csv":
            with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
                w = csv.DictWriter(f, fieldnames=columns)
                w.writeheader()
                w.writerows({c: csv_cell(r.get(c)) for c in columns} for r in rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({c: [_utf8(r[c]) for r in rows] for c in columns}), tmp)


def _utf8(value):
    """``value``, with a string's undecodable bytes (lone surrogates) as ``\\x..`` escapes."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value
