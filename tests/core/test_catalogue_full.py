"""A catalogue that cannot grow (a full disk) mid-change: one LibraryError naming the catalogue, the change not
stored, the library usable once there is room again."""

from __future__ import annotations

import pytest

from musicemb_core.common.errors import LibraryError
from musicemb_core.data.library import DB_NAME, Library


def test_a_change_on_a_full_disk_is_one_line_and_not_stored(tmp_path):
    """SQLite rolls a change back itself when the disk fills; the core's own ROLLBACK then failed ('cannot rollback
    - no transaction is active') and that raw sqlite3 error reached the CLI and the app as a traceback."""
    with Library(tmp_path / "lib", create=True) as lib:
        lib.set_meta("note", "kept")
        pages = lib.conn.execute("PRAGMA page_count").fetchone()[0]
        lib.conn.execute(f"PRAGMA max_page_count = {pages}")  # no page more: as a full disk
        with pytest.raises(LibraryError) as e:
            lib.set_meta("note", "x" * 200_000)
        assert str(e.value) == f"{tmp_path / 'lib' / DB_NAME}: cannot write the catalogue (database or disk is full)"
        assert not lib.conn.in_transaction
        lib.conn.execute("PRAGMA max_page_count = 1073741823")
        assert lib.get_meta("note") == "kept"
        lib.set_meta("note", "stored")
    with Library(tmp_path / "lib") as lib:
        assert lib.get_meta("note") == "stored"
