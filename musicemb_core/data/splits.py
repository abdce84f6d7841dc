"""Train/validation splits by track: no segment of a validation track is ever trained on."""

from __future__ import annotations

import numpy as np

from musicemb_core.common.errors import ConfigError


def split_by_track(track_ids: np.ndarray, labels: np.ndarray | None = None, *, val_fraction: float = 0.2,
                   random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, val) over segments, splitting whole tracks.

    With ``labels`` (per segment, -1 = unlabelled) tracks are split per label (stratified), so each label with
    at least two tracks has at least one validation track. Deterministic for a given ``random_state``.
    """
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    track_ids = np.asarray(track_ids)
    rng = np.random.default_rng(random_state)
    uniq, first = np.unique(track_ids, return_index=True)
    track_label = np.asarray(labels)[first] if labels is not None else np.zeros(len(uniq), int)
    val_tracks: list[int] = []
    for lab in np.unique(track_label):
        group = uniq[track_label == lab]
        group = group[rng.permutation(len(group))]
        n_val = int(round(val_fraction * len(group)))
        if val_fraction > 0 and n_val == 0 and len(group) >= 2:
            n_val = 1
        val_tracks += group[:n_val].tolist()
    val = np.isin(track_ids, val_tracks)
    return ~val, val
