"""Full-file checks used by import: decode everything once, block by block, and reject unusable audio."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicemb_core.audio.decode import AudioInfo, info, stream
from musicemb_core.common.errors import AudioError

# Extensions whose content libsndfile identifies; a mismatch is reported as a warning, not an error.
_WAV = ("WAV", "WAVEX", "RF64")  # a field recorder's 24-bit or multichannel WAV is WAVEX, one over 4 GB RF64
_EXPECTED_FORMAT = {".wav": _WAV, ".flac": ("FLAC",), ".ogg": ("OGG",), ".oga": ("OGG",), ".mp3": ("MP3",),
                    ".aif": ("AIFF",), ".aiff": ("AIFF",)}
SILENCE_DBFS = -90.0


def check_not_silent(y: np.ndarray, path: str | Path) -> None:
    """Import's silence rule for a query's samples ``y``: an :class:`AudioError` naming ``path`` when its peak is
    at or below :data:`SILENCE_DBFS` (nothing to compare); a quiet recording above it is a query like any other."""
    peak = float(np.abs(y).max()) if len(y) else 0.0
    if peak <= 10 ** (SILENCE_DBFS / 20):
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


def _wav_declared_frames(path: Path, block_align: int) -> int | None:
    """Frames declared by a RIFF/WAVE 'data' chunk header, or by an RF64 file's 'ds64' chunk (libsndfile silently
    trusts the file size instead)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return None
        size64 = 0xFFFFFFFF
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                size = size64 if size == 0xFFFFFFFF else size
                return None if size in (0, 0xFFFFFFFF) else size // block_align
            if cid == b"ds64" and size >= 16:  # RIFF size, then data size (64-bit)
                size64 = struct.unpack("<8xQ", f.read(16))[0]
                f.seek(-16, 1)
            f.seek(size + (size & 1), 1)


def _hms(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def scan(path: str | Path, *, max_duration_s: float | None = 4 * 3600.0,
         on_block: Callable[[np.ndarray], None] | None = None) -> AudioScan:
    """Decode the whole file once and check it is usable.

    ``on_block``, if given, receives each decoded float32 block (frames, channels) in order (import analyses
    tempo and key from them in the same pass).

    Raises :class:`AudioError` (naming the file and the reason) for unreadable, zero-length, truncated,
    too long, NaN/Inf-containing or silent files.
    """
    path = Path(path)
    head = info(path)
    if head.frames <= 0 and head.backend == "soundfile":
        raise AudioError(path, "no audio samples (empty stream)")
    if max_duration_s is not None and head.duration_s > max_duration_s:
        raise AudioError(path, f"too long: {_hms(head.duration_s)} exceeds the limit of "
                               f"{_hms(max_duration_s)} (raise it with --max-duration)")
    frames, peak = 0, 0.0
    limit = None if max_duration_s is None else max_duration_s * head.sample_rate  # a header may not say
    for block in stream(path):
        if not np.isfinite(block).all():
            bad = int((~np.isfinite(block)).any(axis=1).argmax()) + frames
            raise AudioError(path, f"contains NaN/Inf samples (first at {bad / head.sample_rate:.2f} s)")
        frames += len(block)
        if limit is not None and frames > limit:
            raise AudioError(path, f"too long: more than the limit of {_hms(max_duration_s)} (raise it with "
                                   "--max-duration)")
        if on_block is not None:
            on_block(block)
        peak = max(peak, float(np.abs(block).max()))
    if frames == 0:
        raise AudioError(path, "no audio samples (empty stream)")
    declared = head.frames
    if head.format in _WAV:
        width = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
        if head.subtype in width:
            declared = _wav_declared_frames(path, width[head.subtype] * head.channels) or declared
    missing = declared - frames
    if missing > max(0.05 * head.sample_rate, 0.01 * declared):
        raise AudioError(path, f"truncated: header declares {declared / head.sample_rate:.2f} s but only "
                               f"{frames / head.sample_rate:.2f} s could be decoded")
    if peak <= 10 ** (SILENCE_DBFS / 20):
        level = "digital silence" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS"
        raise AudioError(path, f"silent: {level} over {frames / head.sample_rate:.1f} s")
    expected = _EXPECTED_FORMAT.get(path.suffix.lower())
    warning = ""
    if expected and head.format.upper() not in expected:
        warning = f"extension {path.suffix} but the content is {head.format}; imported anyway"
    return AudioScan(head, frames, peak, warning)
