"""Full-file checks used by import: decode everything once, block by block, and reject unusable audio."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicemb_core.audio.decode import WAV_WIDTH, AudioInfo, check_block, info, stream, wav_data
from musicemb_core.common.errors import AudioError

# Extensions whose content libsndfile identifies; a mismatch is reported as a warning, not an error.
_WAV = ("WAV", "WAVEX", "RF64")  # a field recorder's 24-bit or multichannel WAV is WAVEX, one over 4 GB RF64
_EXPECTED_FORMAT = {".wav": _WAV, ".flac": ("FLAC",), ".ogg": ("OGG",), ".oga": ("OGG",), ".mp3": ("MP3",),
                    ".aif": ("AIFF",), ".aiff": ("AIFF",)}
SILENCE_DBFS = -90.0
_SILENT = 10 ** (SILENCE_DBFS / 20)


def is_silent(y: np.ndarray) -> bool:
    """Import's silence rule: the peak of ``y`` is at or below :data:`SILENCE_DBFS` (or there is no sample)."""
    return not len(y) or float(np.abs(y).max()) <= 10 ** (SILENCE_DBFS / 20)


def check_not_silent(y: np.ndarray, path: str | Path) -> None:
    """Import's silence rule for a query's samples ``y``: an :class:`AudioError` naming ``path`` when its peak is
    at or below :data:`SILENCE_DBFS` (nothing to compare); a quiet recording above it is a query like any other."""
    if is_silent(y):
        peak = float(np.abs(y).max()) if len(y) else 0.0
        level = "digital silence" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS"
        raise AudioError(path, f"silent ({level}, not above {SILENCE_DBFS:g} dBFS): nothing to compare")


@dataclass(frozen=True)
class AudioScan:
    """What a full decode found: header info, true length, peak level, and a warning if any."""

    info: AudioInfo
    frames: int
    peak: float
    warning: str = ""

    @property
    def duration_s(self) -> float:
        return self.frames / self.info.sample_rate


_RAW_STREAMS = ("AAC", "AC3", "EAC3", "DTS", "DTSHD", "AMR", "MLP", "TRUEHD", "LOAS")
"""FFmpeg formats of bare codec frames: no header holds their length, FFmpeg estimates it from the bitrate."""
_MP3_SYNC = re.compile(rb"\xff[\xe0-\xff]")


def _length_declared(head: AudioInfo, path: Path) -> bool:
    """Whether the header's length is one the file states, not an estimate from its size and bitrate (raw AAC
    or AC3 streams, an MP3 without a Xing, Info or VBRI frame: a VBR one starting quietly was estimated 8x too
    long, then refused as truncated)."""
    if head.format == "MP3":
        return _mp3_counts_frames(path)
    return head.format not in _RAW_STREAMS


def _mp3_counts_frames(path: Path) -> bool:
    """Whether an MP3's first frame (after its ID3v2 tags) is a Xing/Info frame giving the frame count, or VBRI."""
    with open(path, "rb") as f:
        data = f.read(10)
        while len(data) == 10 and data[:3] == b"ID3":  # a tag holding cover art can be megabytes long
            size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | data[9] & 0x7F
            f.seek(size + (10 if data[5] & 0x10 else 0), 1)
            data = f.read(10)
        data += f.read(1 << 16)
    for sync in _MP3_SYNC.finditer(data):
        h = data[sync.start():sync.start() + 4]
        if len(h) < 4 or h[1] & 0x06 == 0 or not _frame_header(h):
            continue  # not a frame header: reserved version or layer, bad bitrate or sample rate
        frame = data[sync.start() + 4:sync.start() + 50]
        at = max(frame.find(b"Xing"), frame.find(b"Info"))
        return frame.find(b"VBRI") >= 0 or at >= 0 and len(frame) >= at + 8 and bool(frame[at + 7] & 1)
    return False


_MAGIC = (b"RIFF", b"RF64", b"BW64", b"fLaC", b"OggS", b"ID3", b"FORM", b".snd", b"caff", b"wvpk", b"MAC ",
          b"\x1a\x45\xdf\xa3", b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", b"#!AMR")
"""How the audio containers import reads begin (WAV, FLAC, Ogg, MP3's ID3, AIFF, AU, CAF, WavPack, APE,
Matroska/WebM, ASF/WMA, AMR)."""


def looks_like_audio(path: str | Path) -> bool:
    """Whether the file's first bytes are those of an audio container or an MPEG audio frame (for files without
    an extension: a recorder's or a download's ``take1``); False for anything unreadable or not a regular file (a
    named pipe is opened without waiting for a writer: opening it waited for one forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            head = f.read(12)
    except OSError:
        return False
    return (head.startswith(_MAGIC) or head[4:8] == b"ftyp"  # MP4/M4A
            or len(head) >= 4 and _MP3_SYNC.match(head) is not None and head[1] & 0x06 != 0x06  # not layer I:
            and _frame_header(head[:4]))  # a UTF-16 text's byte-order mark reads as one


def _frame_header(h: bytes) -> bool:
    """Whether the 4 bytes ``h`` (starting with an MPEG sync) are a valid MPEG audio or ADTS frame header."""
    if h[1] & 0x06 == 0:  # layer 0: ADTS (AAC) when its version bits say so
        return h[1] & 0xF6 == 0xF0
    return not (h[1] & 0x18 == 0x08 or h[2] >> 4 == 15 or h[2] & 0x0C == 0x0C)


def _hms(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def scan(path: str | Path, *, max_duration_s: float | None = 4 * 3600.0,
         on_block: Callable[[np.ndarray], None] | None = None) -> AudioScan:
    """Decode the whole file once and check it is usable.

    ``on_block``, if given, receives each decoded float32 block (frames, channels) in order (import analyses
    tempo and key from them in the same pass).

    Raises :class:`AudioError` (naming the file and the reason) for unreadable, zero-length, truncated,
    too long, NaN/Inf-containing (or far beyond full scale) or silent files.
    """
    path = Path(path)
    head = info(path)
    if head.frames <= 0 and head.backend == "soundfile":
        raise AudioError(path, "no audio samples (empty stream)")
    declared = head.frames if _length_declared(head, path) else None
    if max_duration_s is not None and declared is not None and head.duration_s > max_duration_s:
        raise AudioError(path, f"too long: {_hms(head.duration_s)} exceeds the limit of "
                               f"{_hms(max_duration_s)} (raise it with --max-duration)")
    frames, peak = 0, 0.0
    level = None  # each channel's first sample, while every sample so far is within the silence threshold of it
    limit = None if max_duration_s is None else max_duration_s * head.sample_rate  # a header may not say
    for block in stream(path):
        block_peak = check_block(path, block, frames, head.sample_rate)
        frames += len(block)
        if limit is not None and frames > limit:
            raise AudioError(path, f"too long: more than the limit of {_hms(max_duration_s)} (raise it with "
                                   "--max-duration)")
        if on_block is not None:
            on_block(block)
        peak = max(peak, block_peak)
        if frames == len(block) > 0:
            level = block[0]
        if level is not None and float(np.abs(block - level).max()) > _SILENT:
            level = None  # not a constant level (DC): a file of sound knows it after its first block
    if frames == 0:
        raise AudioError(path, "no audio samples (empty stream)")
    if head.format in _WAV and head.subtype in WAV_WIDTH and (data := wav_data(path)):
        declared = data[1] // (WAV_WIDTH[head.subtype] * head.channels)  # libsndfile trusts the file's size instead
    if declared is not None and declared - frames > max(0.05 * head.sample_rate, 0.01 * declared):
        raise AudioError(path, f"truncated: header declares {declared / head.sample_rate:.2f} s but only "
                               f"{frames / head.sample_rate:.2f} s could be decoded")
    if peak <= _SILENT or level is not None:
        what = ("digital silence" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS" if peak <= _SILENT
                else f"a constant level (DC) at {20 * np.log10(peak):.0f} dBFS")
        raise AudioError(path, f"silent: {what} over {frames / head.sample_rate:.1f} s")
    expected = _EXPECTED_FORMAT.get(path.suffix.lower())
    warning = ""
    if expected and head.format.upper() not in expected:
        warning = f"extension {path.suffix} but the content is {head.format}; imported anyway"
    return AudioScan(head, frames, peak, warning)


def check_query_length(path: str | Path, limit_s: float, what: str) -> None:
    """Refuse a query file longer than ``limit_s`` before it is decoded whole (a 2-hour "hum" would take minutes
    and gigabytes): by its header where the header states the length; where it only estimates it (an MP3 without
    a Xing header starting quietly, a raw AAC stream: often several times too long), by decoding up to the limit.
    Unreadable files pass: decoding reports them."""
    try:
        head = info(path)
        seconds = head.duration_s
        if seconds > limit_s and not _length_declared(head, Path(path)):
            frames = 0
            for block in stream(path):
                frames += len(block)
                if frames > limit_s * head.sample_rate:
                    break
            seconds = frames / head.sample_rate
    except (AudioError, OSError):
        return
    if seconds > limit_s:
        raise AudioError(path, f"{seconds / 60:.1f} min long; {what} may be at most {limit_s / 60:g} min "
                               "(trim it first)")
