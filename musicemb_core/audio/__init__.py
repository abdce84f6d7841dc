"""Audio I/O: decoding any common format, resampling, segmenting; devices live in ``devices`` (lazy)."""

from musicemb_core.audio.decode import AudioInfo, info, load, stream
from musicemb_core.audio.resample import resample, to_mono

__all__ = ["AudioInfo", "info", "load", "stream", "resample", "to_mono"]
