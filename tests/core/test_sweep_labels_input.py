"""Labels CSVs that are not plain files: a pipe (``--labels <(grep house all.csv)``, ``/dev/stdin``) was refused
("underlying stream is not seekable"), a named pipe nobody writes to waited forever (Ctrl-C could not stop it)
and an endless source of NUL bytes (``/dev/zero``) was read into memory until the machine ran out of it."""

from __future__ import annotations

import os
import threading

import pytest

from musicemb_core.common.errors import ConfigError
from musicemb_core.data.ingest import read_label_csv

pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="pipes named by /dev/fd/N")


def test_labels_from_a_pipe_are_read():
    r, w = os.pipe()
    os.write(w, b"path,label\na.wav,house\nsub/b.wav,techno\n")
    os.close(w)
    try:
        assert read_label_csv(f"/dev/fd/{r}") == {"a.wav": "house", "sub/b.wav": "techno"}
    finally:
        os.close(r)


def test_an_endless_stream_of_nul_bytes_is_refused_from_its_first_block():
    r, w = os.pipe()

    def zeros():  # like /dev/zero, until the reader is gone
        try:
            while True:
                os.write(w, bytes(1 << 16))
        except OSError:
            os.close(w)

    writer = threading.Thread(target=zeros, daemon=True)
    writer.start()
    try:
        with pytest.raises(ConfigError, match=r"^/dev/fd/\d+: not a CSV: it holds NUL bytes$"):
            read_label_csv(f"/dev/fd/{r}")
    finally:
        os.close(r)
    writer.join()


def test_a_named_pipe_without_a_writer_reads_as_empty_instead_of_waiting(tmp_path):
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    outcome = []

    def read():
        try:
            read_label_csv(fifo)
        except ConfigError as e:
            outcome.append(str(e))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)  # a guard against the old wait, not a timing: the read takes milliseconds
    if reader.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the stuck reader go
        reader.join()
        pytest.fail("reading a named pipe without a writer waited for one")
    assert outcome == [f"{fifo}: no labels in the CSV (one line per file: path,label)"]
