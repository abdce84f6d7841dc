"""Training strategies: what a batch is, which heads exist and what the loss is. The loop is in ``loop.py``.

Each strategy turns index batches over a :class:`SegmentSet` into a loss; features are computed on the fly
(waveform augmentation where the strategy needs it, then log-mel in torch).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from musicemb_core.common.errors import ConfigError
from musicemb_core.data import augment
from musicemb_core.data.datasets import SegmentSet
from musicemb_core.data.samplers import cap_per_class, shuffled_batches, triplets
from musicemb_core.features.logmel import LogMel
from musicemb_core.models import ClassifierHead, Decoder, ProjectionHead
from musicemb_core.training.config import TrainConfig


def zero_filtered_triplet_loss(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, *, margin: float) -> torch.Tensor:
    """Triplet margin loss averaged over the triplets whose loss is non-zero only (0 if there are none)."""
    losses = F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + margin)
    active = losses > 0
    return losses[active].mean() if active.any() else losses.sum() * 0.0


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR) loss of two batches of projections, matching row i of ``z1`` with row i of ``z2``."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = len(z1)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


class Strategy:
    """Base: holds the encoder, the log-mel front end and the heads; subclasses define batches and loss."""

    name = ""
    needs_labels = False

    def __init__(self, encoder: torch.nn.Module, logmel: LogMel, data: SegmentSet, cfg: TrainConfig):
        self.encoder, self.logmel, self.cfg = encoder, logmel, cfg
        self.n_classes = len(data.label_names)
        if self.needs_labels and (data.labels >= 0).sum() == 0:
            raise ConfigError(f"the {self.name} strategy needs labelled tracks; import with "
                              "--labels-from-folders or --labels CSV")
        present = np.unique(data.labels[data.labels >= 0])
        if self.needs_labels and len(present) < 2:  # one class: nothing to tell apart (and no SVM head to fit)
            raise ConfigError(f"the {self.name} strategy needs tracks of at least 2 labels; every labelled track "
                              f"is {data.label_names[present[0]]!r}")
        self.heads: dict[str, torch.nn.Module] = {}
        self.spec_aug = augment.SpecAugment(freq_width=8, time_width=20, n_masks=2) if cfg.spec_augment else None

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder, **self.heads}

    def features(self, audio: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """(B, samples) -> (B, 1, n_mels, frames) on the model's device; SpecAugment when ``rng`` is given."""
        S = self.logmel(torch.from_numpy(np.ascontiguousarray(audio)).to(self.device)).unsqueeze(1)
        if rng is not None and self.spec_aug is not None:
            S = self.spec_aug(S, rng)
        return S

    def check_train_set(self, data: SegmentSet) -> None:
        """A :class:`ConfigError` when ``data`` (the segments left to train on) cannot train this strategy."""
        present = np.unique(data.labels[data.labels >= 0])
        if self.needs_labels and len(present) < 2:  # the other labels' tracks are all validation tracks
            raise ConfigError(f"only the label {data.label_names[present[0]]!r} is left to train the {self.name} "
                              "strategy on (every track of the others is a validation track); lower val_fraction "
                              "or label more tracks")

    def pool(self, data: SegmentSet, rng: np.random.Generator) -> np.ndarray:
        """Indices of ``data`` this strategy trains on in one epoch."""
        return np.arange(len(data))

    def batches(self, data: SegmentSet, rng: np.random.Generator, *, drop_last: bool = True) -> Iterator[np.ndarray]:
        """Index batches of one epoch; ``drop_last`` (training) drops a last, smaller batch (unless it is the
        only one)."""
        idx = self.pool(data, rng)
        for b in shuffled_batches(len(idx), self.cfg.batch_size, rng, drop_last=drop_last):
            yield idx[b]

    def loss(self, data: SegmentSet, batch: np.ndarray, rng: np.random.Generator | None) -> tuple[torch.Tensor, dict]:
        """Loss of one batch and its metrics. ``rng`` None means evaluation: no augmentation."""
        raise NotImplementedError


class Supervised(Strategy):
    """Cross-entropy over labels, each class capped at ``max_per_class`` samples per epoch."""

    name, needs_labels = "supervised", True

    def __init__(self, encoder, logmel, data, cfg):
        super().__init__(encoder, logmel, data, cfg)
        self.heads["classifier"] = ClassifierHead(encoder.dim, self.n_classes)

    def pool(self, data, rng):
        return cap_per_class(data.labels, self.cfg.max_per_class, rng)

    def loss(self, data, batch, rng):
        y = torch.from_numpy(data.labels[batch]).to(self.device)
        logits = self.heads["classifier"](self.encoder(self.features(data.window(batch), rng)))
        return F.cross_entropy(logits, y), {"acc": float((logits.argmax(1) == y).float().mean())}


class Transfer(Supervised):
    """Supervised fine-tuning of a saved model with layers frozen up to ``freeze_until`` (default: all but fc)."""

    name = "transfer"


class Triplet(Strategy):
    """Tile2Vec: anchor and neighbour from the same track, opposite from another; zero-filtered margin loss."""

    name = "triplet"

    def check_train_set(self, data):
        if len(np.unique(data.track_ids)) < 2:  # no opposite from another track
            raise ConfigError(f"the triplet strategy needs at least 2 tracks to train on besides the validation "
                              f"tracks, found {len(np.unique(data.track_ids))}; lower val_fraction or import more "
                              "audio")

    def batches(self, data, rng, *, drop_last=True):
        """Batches of (anchor, neighbour, opposite) index rows, shape (b, 3), drawn afresh each epoch."""
        trip = triplets(data.track_ids, data.starts, rng, neighbour_s=self.cfg.neighbour_s)
        for b in shuffled_batches(len(trip), self.cfg.batch_size, rng, drop_last=drop_last):
            yield trip[b]

    def loss(self, data, batch, rng):
        z = self.encoder(self.features(data.window(batch.T.ravel()), rng))
        a, p, n = z.split(len(batch))
        loss = zero_filtered_triplet_loss(a, p, n, margin=self.cfg.margin)
        active = float((F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + self.cfg.margin) > 0).float().mean())
        return loss, {"active": active}


class Autoencoder(Strategy):
    """Reconstruct 64x64 log-mel tiles (min-max [0, 1]) from the embedding (MAE), plus an optional auxiliary
    classifier loss weighted by ``aux_weight`` when labels exist."""

    name = "autoencoder"

    def __init__(self, encoder, logmel, data, cfg):
        super().__init__(encoder, logmel, data, cfg)
        if logmel.cfg.normalise != "minmax":
            raise ConfigError("the autoencoder strategy needs features normalised to [0, 1] (normalise='minmax')"
                              + (f"; --from {cfg.from_model}'s are normalised {logmel.cfg.normalise!r}: start from an "
                                 "autoencoder model, or train from scratch (no --from)" if cfg.from_model else ""))
        frames = int(round(data.window_s * data.sr)) // logmel.cfg.hop_length + 1  # centred STFT frames
        if frames < cfg.tile_frames:  # the tiles would be shorter than the decoder's
            raise ConfigError(f"the autoencoder strategy cuts tiles of {cfg.tile_frames} frames; the library's "
                              f"{data.window_s:g} s segments have {frames}: lower tile_frames (a power of two) or "
                              "import with a longer --window")
        self.heads["decoder"] = Decoder(encoder.dim, (logmel.cfg.n_mels, cfg.tile_frames))
        self.aux = cfg.aux_weight > 0 and (data.labels >= 0).any()
        if self.aux:
            self.heads["classifier"] = ClassifierHead(encoder.dim, self.n_classes)

    def loss(self, data, batch, rng):
        S = self.logmel(torch.from_numpy(data.window(batch)).to(self.device))
        t = self.cfg.tile_frames
        r = rng or np.random.default_rng(0)
        offs = r.integers(0, max(1, S.shape[-1] - t + 1), size=len(batch))
        tiles = torch.stack([S[i, :, o:o + t] for i, o in enumerate(offs)]).unsqueeze(1)
        lo = tiles.amin(dim=(2, 3), keepdim=True)
        tiles = (tiles - lo) / (tiles.amax(dim=(2, 3), keepdim=True) - lo).clamp_min(1e-6)
        z = self.encoder(tiles)
        recon = F.l1_loss(self.heads["decoder"](z), tiles)
        loss, metrics = self.cfg.recon_weight * recon, {"mae": recon.item()}
        labels = torch.from_numpy(data.labels[batch]).to(self.device)
        if self.aux and (labels >= 0).any():
            logits = self.heads["classifier"](z)
            ce = F.cross_entropy(logits, labels, ignore_index=-1)
            loss = loss + self.cfg.aux_weight * ce
            known = labels >= 0
            metrics["acc"] = float((logits.argmax(1)[known] == labels[known]).float().mean())
        return loss, metrics


class Contrastive(Strategy):
    """Two augmented views of each segment (time shift within ``pad_s``, noise, EQ/low-pass, band-limit, reverb,
    gain, small speed change);
    NT-Xent over the projections. ``acc``: how often a view's nearest other view in the batch is its twin."""

    name = "contrastive"

    def __init__(self, encoder, logmel, data, cfg):
        super().__init__(encoder, logmel, data, cfg)
        self.heads["projection"] = ProjectionHead(encoder.dim)
        self.views = augment.default_views()

    def loss(self, data, batch, rng):
        r = rng or np.random.default_rng(12345)  # evaluation: fixed views, so validation losses compare
        views = []
        for _ in range(2):  # each view: shifted within the context, then degraded
            clips = data.window(batch, r.uniform(-data.pad_s, data.pad_s, len(batch)))
            views.append(np.stack([self.views(c, data.sr, r) for c in clips]))
        v1, v2 = views
        z1 = self.heads["projection"](self.encoder(self.features(v1, rng)))
        z2 = self.heads["projection"](self.encoder(self.features(v2, rng)))
        loss = nt_xent(z1, z2, temperature=self.cfg.temperature)
        with torch.no_grad():
            sim = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T
            acc = float((sim.argmax(1) == torch.arange(len(batch), device=sim.device)).float().mean())
        return loss, {"acc": acc}


STRATEGY_CLASSES: dict[str, type[Strategy]] = {
    c.name: c for c in (Supervised, Transfer, Triplet, Autoencoder, Contrastive)}
