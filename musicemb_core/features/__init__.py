"""Features: log-mel in torch (matches librosa), handcrafted descriptors (librosa)."""

from musicemb_core.features.logmel import LogMel, log_mel, mel_filterbank, tiles

__all__ = ["LogMel", "log_mel", "mel_filterbank", "tiles"]
