"""Features: log-mel in torch (``logmel``, matches librosa), handcrafted descriptors, landmarks, onsets, tempo/key
and Camelot codes, one module each (imported by name: ``tracks`` and ``export`` need no torch)."""
