"""Audio files without an extension (a recorder's ``take1``, a download saved without one) are imported when
their first bytes are an audio container's; other extensionless files (notes, scripts) are passed over, not
failed."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from musicemb_core.audio.validate import looks_like_audio
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import find_audio, iter_ingest
from musicemb_core.data.library import Library
from tests.conftest import sine, write_av


def test_extensionless_audio_files_are_imported_and_other_files_passed_over(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    def y(i):
        return sine(330.0 + 110 * i, sr=16000, seconds=4.0, amp=0.3).astype(np.float32)

    for i, fmt in enumerate(("WAV", "FLAC", "MP3", "AIFF"), 1):
        sf.write(str(music / f"take{i}"), y(i), 16000, format=fmt)
    write_av(music / "take5", y(5), 16000, codec="aac", fmt="mp4")
    (music / "NOTES").write_text("recorded at the pond, 5 am\n")
    (music / "empty").write_bytes(b"")
    (music / "take6.wav").write_bytes(sf.SoundFile.__name__.encode())  # an extension still means "try it"
    with Library(tmp_path / "lib", create=True) as lib:
        report = drive(iter_ingest(lib, [music], jobs=1))
        imported = sorted(t.path.rsplit("/", 1)[1] for t in lib.tracks())
    assert imported == ["take1", "take2", "take3", "take4", "take5"]
    assert [f.rsplit("/", 1)[1] for f, _ in report.failed] == ["take6.wav"]


def test_the_sniff_knows_containers_and_frames_and_refuses_text(tmp_path):
    cases = {"riff": b"RIFF\x00\x00\x00\x00WAVEfmt ", "m4a": b"\x00\x00\x00\x1cftypM4A ", "id3": b"ID3\x04\x00\x00",
             "mp3": b"\xff\xfb\x90\x64\x00\x00", "adts": b"\xff\xf1\x50\x80\x00\x1f", "text": b"hello world\n",
             "ff-text": b"\xff\xfe" + "utf-16 notes".encode("utf-16-le"), "short": b"\xff"}
    for name, head in cases.items():
        (tmp_path / name).write_bytes(head)
    found = {name for name in cases if looks_like_audio(tmp_path / name)}
    assert found == {"riff", "m4a", "id3", "mp3", "adts"}
    assert not looks_like_audio(tmp_path / "missing")


def test_a_named_pipe_without_an_extension_is_passed_over_at_once(tmp_path):
    """Sniffing a named pipe's first bytes opened it and waited for a writer forever: `musicemb ingest` (and
    `features`) of a folder holding one hung in its scan, past a Ctrl-C."""
    import os
    import threading

    music = tmp_path / "music"
    music.mkdir()
    sf.write(str(music / "tone.wav"), sine(440.0, sr=16000, seconds=4.0, amp=0.3).astype(np.float32), 16000)
    os.mkfifo(music / "take1")
    found = []
    scan = threading.Thread(target=lambda: found.append(find_audio([music])), daemon=True)
    scan.start()
    scan.join(20)
    try:
        assert not scan.is_alive(), "the scan waits on the pipe"
        assert found == [[music / "tone.wav"]] and not looks_like_audio(music / "take1")
    finally:
        if scan.is_alive():  # let the waiting open return
            os.close(os.open(music / "take1", os.O_WRONLY | os.O_NONBLOCK))
