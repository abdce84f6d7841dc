"""The ``qbh`` strategy: train a query-by-humming model from melodies of the training collections.

Songs are rendered from training melodies (lead over a `render_song` accompaniment in a random style); for a few
windows of each song the same notes are hummed (`render_hum`: another key, tempo, voice, room and mic) and
tracked with the pitch tracker. Training then has two stages:

1. the melody extractor learns, frame by frame, which pitch class the lead of a song plays (cross-entropy; the
   rendered songs come with their score);
2. the hum and song sequence encoders learn contrastively (symmetric InfoNCE) that a hum and the song window
   it was hummed from belong together: the song side sees the extractor's chromagram, the hum side the
   tracker's contour as a chromagram.

Only collections allowed by :func:`musicemb_core.data.melodies.check_training` are read. With ``soundfonts`` and
``n_soundfont_songs``, as many more songs of the drawn melodies are rendered by FluidSynth with those General MIDI
soundfonts (:mod:`musicemb_core.data.soundfont_songs`: varied lead instruments, levels, accompaniments, reverb and
band limits); TimGM6mb, reserved for evaluation, is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from musicemb_core.common.config import Config
from musicemb_core.common.errors import Cancelled, ConfigError
from musicemb_core.common.names import check_model_name
from musicemb_core.common.paths import atomic_path, data_home
from musicemb_core.common.pools import stop_workers
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress
from musicemb_core.data import layout
from musicemb_core.data import melodies as mel
from musicemb_core.data import soundfont_songs as sfs
from musicemb_core.data.hum_synthesis import render_hum, render_melody_song
from musicemb_core.data.library import Library
from musicemb_core.features.pitch import pitch_contour
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.models.qbh import N_CHROMA, QBHConfig, QBHModel, contour_chromagram
from musicemb_core.training.config import FitResult, TrainConfig

HUM_FRAMES_FACTOR = 1.4  # hum crops are padded to this many song windows (slow hums last longer)


@dataclasses.dataclass(frozen=True)
class QBHTrainConfig(Config):
    """Data and optimisation of the ``qbh`` strategy."""

    collections: tuple[str, ...] = mel.TRAINING_COLLECTIONS
    n_songs: int = 1000
    n_generated: int = 100
    windows_per_song: int = 3
    song_s: float = 30.0
    extractor_steps: int = 2000
    extractor_batch: int = 12
    extractor_frames: int = 80
    encoder_steps: int = 1500
    encoder_batch: int = 96
    lr: float = 2e-3
    temperature: float = 0.07
    seed: int = 0
    jobs: int = 1
    threads: int = 1  # on shared, busy cores one thread was 5x faster than two (OpenMP barriers)
    soundfonts: tuple[str, ...] = ()
    n_soundfont_songs: int = 0
    soundfont_batch: int = 12  # songs per FluidSynth run (the soundfont loads once per run)
    n_poly_songs: int = 0  # more soundfont songs in the ``poly`` figures (close four-part chorales, crossing arpeggios)

    def __post_init__(self) -> None:
        object.__setattr__(self, "collections", tuple(self.collections))
        object.__setattr__(self, "soundfonts", tuple(str(f) for f in self.soundfonts))
        mel.check_training(self.collections)
        for f in self.soundfonts:
            sfs.check_soundfont(f)
        for name in ("n_soundfont_songs", "n_poly_songs"):
            if getattr(self, name) < 0 or (getattr(self, name) and not self.soundfonts):
                raise ConfigError(f"{name} {getattr(self, name)} needs >= 0 and soundfonts to render with")
        if self.soundfont_batch < 1:
            raise ConfigError(f"soundfont_batch must be >= 1, got {self.soundfont_batch!r}")
        for name in ("windows_per_song", "extractor_batch", "encoder_batch", "jobs", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if min(self.n_songs, self.n_generated) < 0 or \
                self.n_songs + self.n_generated * ("generated" in self.collections) < 2:
            raise ConfigError(f"needs at least 2 songs, got n_songs {self.n_songs}, n_generated {self.n_generated}")


@dataclasses.dataclass
class PairData:
    """Rendered training material: per song its salience (bins, frames) and lead pitch-class per frame (24 =
    none); per window its song, first chromagram frame and the hum's contour on the chromagram grid."""

    saliences: list[np.ndarray]
    targets: list[np.ndarray]
    window_song: np.ndarray
    window_start: np.ndarray
    hums: list[np.ndarray]
    styles: list[str]


def _frame_targets(timeline: np.ndarray, n: int, rate: float) -> np.ndarray:
    t = (np.arange(n) + 0.5) / rate
    out = np.full(n, N_CHROMA, np.int64)
    for on, dur, pitch, _ in timeline:
        out[(t >= on) & (t < on + dur)] = int(round(pitch)) % N_CHROMA
    return out


def render_item(melody: mel.Melody, *, seed: int, cfg: QBHConfig, n_windows: int, song_s: float) -> dict:
    """One song of ``melody`` with its salience and targets, and ``n_windows`` hums of windows of it."""
    y, timeline, style = render_melody_song(melody, seed=seed, sr=cfg.sr, max_s=song_s)
    return song_item(y, timeline, style, seed=seed, cfg=cfg, n_windows=n_windows)


def song_item(y: np.ndarray, timeline: np.ndarray, style: str, *, seed: int, cfg: QBHConfig, n_windows: int) -> dict:
    """Salience and per-frame targets of a rendered song (``timeline`` rows: onset s, duration s, MIDI pitch, ...)
    and ``n_windows`` hums of windows of it."""
    with torch.inference_mode():
        S = cfg.salience()(torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))).numpy()
    rate = cfg.sr / cfg.hop_length
    chroma_rate = rate / cfg.pool
    rng = np.random.default_rng([seed, 3])
    starts, hums = [], []
    onsets = timeline[:, 0]
    last = max(1, int(np.searchsorted(onsets, onsets[-1] - 0.6 * cfg.window_s)))
    for k in range(n_windows):
        t0 = float(onsets[rng.integers(0, last)])
        sel = timeline[(onsets >= t0) & (onsets < t0 + cfg.window_s - 0.2)]
        notes = np.stack([sel[:, 0] - t0, np.minimum(sel[:, 1], t0 + cfg.window_s - sel[:, 0]), sel[:, 2]], 1)
        hum = render_hum(notes, seed=seed * 16 + k, sr=cfg.sr)
        hums.append(pitch_contour(hum.y, hum.sr).frames(chroma_rate).astype(np.float16))
        starts.append(int(round(t0 * chroma_rate)))
    return {"S": S.astype(np.float16), "targets": _frame_targets(timeline, S.shape[1], rate).astype(np.int8),
            "starts": starts, "hums": hums, "style": style}


def render_soundfont_items(melodies: list[mel.Melody], seeds: list[int], *, soundfont: str, cfg: QBHConfig,
                           n_windows: int, song_s: float, split: str = "train") -> list[dict]:
    """Songs of ``melodies`` rendered in one FluidSynth run (:func:`sfs.render_songs`), as :func:`song_item`."""
    songs = sfs.render_songs(melodies, seeds, soundfont=soundfont, sr=cfg.sr, max_s=song_s, split=split)
    return [song_item(y, tl, arr.style, seed=seed, cfg=cfg, n_windows=n_windows)
            for (y, tl, arr), seed in zip(songs, seeds, strict=True)]


def _job(args):
    if args[0] == "soundfont":
        return render_soundfont_items(args[1], args[2], soundfont=args[3], cfg=args[4], n_windows=args[5],
                                      song_s=args[6], split=args[7])
    return [render_item(args[1], seed=args[2], cfg=args[3], n_windows=args[4], song_s=args[5])]


def _cache_file(cfg: QBHConfig, tc: QBHTrainConfig, part: str = "synth") -> Path:
    front = {k: v for k, v in cfg.to_dict().items() if k not in ("dim", "extractor_channels", "extractor_layers",
                                                                  "encoder_channels")}
    key = [front, tc.collections, tc.n_songs, tc.n_generated, tc.windows_per_song, tc.song_s, tc.seed, 1]
    if part == "soundfont":
        key += [[Path(f).name for f in tc.soundfonts], tc.n_soundfont_songs, tc.soundfont_batch, 1]
    if part == "poly":
        key += [[Path(f).name for f in tc.soundfonts], tc.n_poly_songs, tc.soundfont_batch, "poly", 1]
    digest = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=8).hexdigest()
    prefix = {"synth": "pairs", "soundfont": "pairs-sf"}.get(part, f"pairs-{part}")
    return data_home() / "cache" / "qbh" / f"{prefix}-{digest}.npz"


def training_melodies(tc: QBHTrainConfig) -> list[mel.Melody]:
    """The melodies ``tc`` renders: ``n_songs`` drawn from the corpus collections, then ``n_generated``."""
    corpus = [c for c in tc.collections if c != "generated"]
    pool = mel.load_collections(corpus, purpose="train", min_notes=12) if tc.n_songs else []
    rng = np.random.default_rng(tc.seed)
    chosen = [pool[i] for i in rng.choice(len(pool), min(tc.n_songs, len(pool)), replace=False)]
    if "generated" in tc.collections:
        chosen += mel.generated_melodies(tc.n_generated, random_state=tc.seed)
    return chosen


def _load_pairs(path: Path) -> PairData | None:
    """The rendered material cached at ``path``; None when it is damaged (rendered again)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            bounds, hb = z["bounds"], z["hum_bounds"]
            sal, tg, hums = z["S"], z["targets"], z["hums"]
            window_song, window_start, styles = z["window_song"], z["window_start"], z["styles"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # bytes overwritten: a bad CRC
        return None
    return PairData([sal[:, a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
                    [tg[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)], window_song, window_start,
                    [hums[a:b] for a, b in zip(hb[:-1], hb[1:], strict=True)], [str(s) for s in styles])


def _concat(parts: list[PairData]) -> PairData:
    offsets = np.cumsum([0] + [len(p.saliences) for p in parts[:-1]])
    return PairData([s for p in parts for s in p.saliences], [t for p in parts for t in p.targets],
                    np.concatenate([p.window_song + o for p, o in zip(parts, offsets, strict=True)]),
                    np.concatenate([p.window_start for p in parts]), [h for p in parts for h in p.hums],
                    [s for p in parts for s in p.styles])


def _soundfont_jobs(chosen: list[mel.Melody], tc: QBHTrainConfig, cfg: QBHConfig, n: int, first_seed: int,
                    pick: tuple[int, int], split: str) -> list[tuple]:
    """FluidSynth jobs of ``n`` songs of arrangement ``split``, ``tc.soundfont_batch`` a run, the soundfonts in
    turn: song ``k`` is melody ``(pick[0] k + pick[1]) mod len(chosen)`` with seed ``first_seed + k``."""
    out = []
    for b, a in enumerate(range(0, n, tc.soundfont_batch)):
        idx = range(a, min(a + tc.soundfont_batch, n))
        out.append(("soundfont", [chosen[(pick[0] * k + pick[1]) % len(chosen)] for k in idx],
                    [tc.seed * 1_000_003 + first_seed + k for k in idx], tc.soundfonts[b % len(tc.soundfonts)], cfg,
                    tc.windows_per_song, tc.song_s, split))
    return out


def iter_render_pairs(cfg: QBHConfig, tc: QBHTrainConfig, *, cancel: CancelToken | None = None,
                      cache: bool = True) -> JobGen[PairData]:
    """Render (or read from the cache) the training songs and hums of ``tc``: the in-project synthesiser's songs,
    then the soundfont songs, then the ``poly`` soundfont songs (each part cached on its own)."""
    cancel = cancel or CancelToken()
    chosen = training_melodies(tc)
    jobs = {"synth": [("synth", m, tc.seed * 1_000_003 + i, cfg, tc.windows_per_song, tc.song_s)
                      for i, m in enumerate(chosen)],
            "soundfont": _soundfont_jobs(chosen, tc, cfg, tc.n_soundfont_songs, 500_000, (1, 0), "train"),
            "poly": _soundfont_jobs(chosen, tc, cfg, tc.n_poly_songs, 800_000, (7, 3), "poly")}
    total = len(chosen) + tc.n_soundfont_songs + tc.n_poly_songs
    parts, done, clock = [], 0, EtaClock()
    for part, part_jobs in jobs.items():
        path = _cache_file(cfg, tc, part)
        if not part_jobs:
            continue
        cached = _load_pairs(path) if cache and path.exists() else None
        if cached is not None:
            parts.append(cached)
            done += len(cached.saliences)
            continue
        items = []
        pool = (ProcessPoolExecutor(tc.jobs, mp_context=multiprocessing.get_context("spawn"),  # torch's threads
                                    initializer=torch.set_num_threads, initargs=(tc.threads,))  # hang forks
                if tc.jobs > 1 else None)
        try:
            for got in pool.map(_job, part_jobs) if pool else map(_job, part_jobs):
                cancel.check()
                items += got
                done += len(got)
                yield Progress("render", done, total, f"songs and hums ({part})", clock.eta(done, total))
        except BaseException:  # cancelled (or failed): the songs still queued are not rendered
            if pool:
                stop_workers(pool)
            raise
        if pool:
            pool.shutdown()
        data = PairData([it["S"] for it in items], [it["targets"] for it in items],
                        np.repeat(np.arange(len(items)), tc.windows_per_song),
                        np.array([s for it in items for s in it["starts"]]), [h for it in items for h in it["hums"]],
                        [it["style"] for it in items])
        if cache:
            _save_pairs(path, data)
        parts.append(data)
    return _concat(parts)


def _save_pairs(path: Path, d: PairData) -> None:
    bounds = np.concatenate([[0], np.cumsum([s.shape[1] for s in d.saliences])])
    hb = np.concatenate([[0], np.cumsum([len(h) for h in d.hums])])
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, S=np.concatenate(d.saliences, axis=1), targets=np.concatenate(d.targets), bounds=bounds,
                 window_song=d.window_song, window_start=d.window_start, hums=np.concatenate(d.hums),
                 hum_bounds=hb, styles=np.array(d.styles))


def _extractor_batch(d: PairData, songs: np.ndarray, frames: int, pool: int, rng) -> tuple[torch.Tensor, ...]:
    S, T = [], []
    for s in songs:
        sal, tg = d.saliences[s], d.targets[s]
        a = int(rng.integers(0, max(1, sal.shape[1] - frames)))
        x = np.zeros((sal.shape[0], frames), np.float32)
        t = np.full(frames, N_CHROMA, np.int64)
        x[:, :min(frames, sal.shape[1] - a)] = sal[:, a:a + frames]
        t[:min(frames, len(tg) - a)] = tg[a:a + frames]
        S.append(x * rng.uniform(0.6, 1.0))
        T.append(t[pool // 2::pool][:frames // pool])
    return torch.from_numpy(np.stack(S)), torch.from_numpy(np.stack(T))


def _hum_batch(d: PairData, windows: np.ndarray, n_frames: int, rng) -> torch.Tensor:
    out = np.zeros((len(windows), N_CHROMA + 1, n_frames), np.float32)
    out[:, N_CHROMA] = 1.0
    for r, w in enumerate(windows):
        h = d.hums[w].astype(np.float64)
        keep = int(len(h) * rng.uniform(0.7, 1.0))
        a = int(rng.integers(0, len(h) - keep + 1))
        h = h[a:a + keep][:n_frames]
        off = int(rng.integers(0, n_frames - len(h) + 1))
        out[r, :, off:off + len(h)] = contour_chromagram(h)
    return torch.from_numpy(out)


def iter_train_qbh(folder: str | Path, *, cfg: QBHConfig | None = None, train: QBHTrainConfig | None = None,
                   cancel: CancelToken | None = None, cache: bool = True) -> JobGen[dict]:
    """Render the data, train both stages and save the model in ``folder``. Returns the saved info dict."""
    cfg, train = cfg or QBHConfig(), train or QBHTrainConfig()
    cancel = cancel or CancelToken()
    t_start = time.monotonic()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(train.threads)
    try:
        data = yield from iter_render_pairs(cfg, train, cancel=cancel, cache=cache)
        t_data = time.monotonic() - t_start
        torch.manual_seed(train.seed)
        model = QBHModel(cfg)
        rng = np.random.default_rng([train.seed, 1])
        n_songs = len(data.saliences)
        val_songs = np.arange(n_songs) % 10 == 0  # every tenth song is held out for validation metrics
        tr_songs = np.flatnonzero(~val_songs)
        ext = yield from _fit_extractor(model, data, tr_songs, np.flatnonzero(val_songs), train, rng, cancel)
        chroma = _song_chromagrams(model, data)
        enc = yield from _fit_encoders(model, data, chroma, val_songs, train, rng, cancel)
    finally:
        torch.set_num_threads(prev_threads)
    info = {"train": train.to_dict(), "metrics": {**ext, **enc}, "data": {
        "songs": n_songs, "windows": len(data.hums), "styles": sorted(set(data.styles)),
        "soundfont_songs": train.n_soundfont_songs, "poly_songs": train.n_poly_songs, "soundfonts": [Path(f).name for f in train.soundfonts],
        "collections": list(train.collections)}, "minutes": {"data": round(t_data / 60, 1),
                                                             "total": round((time.monotonic() - t_start) / 60, 1)}}
    model.save(folder, train={**info["train"], "data": info["data"], "minutes": info["minutes"]},
               metrics=info["metrics"])
    return info


def _fit_extractor(model, data, tr, va, train, rng, cancel) -> JobGen[dict]:
    ex, pool = model.extractor, model.cfg.pool
    opt = torch.optim.AdamW(ex.parameters(), lr=train.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, train.lr, total_steps=train.extractor_steps, pct_start=0.1)
    clock = EtaClock()
    for step in range(1, train.extractor_steps + 1):
        cancel.check()
        ex.train()
        S, T = _extractor_batch(data, rng.choice(tr, train.extractor_batch), train.extractor_frames, pool, rng)
        logits = ex(S)
        loss = F.cross_entropy(logits, T[:, :logits.shape[-1]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        yield Progress("train", step, train.extractor_steps, "melody extractor",
                       clock.eta(step, train.extractor_steps), {"loss": loss.item()})
    ex.eval()
    hits = total = 0
    with torch.no_grad():
        for s in va:
            out = ex(torch.from_numpy(data.saliences[s].astype(np.float32))[None])[0].argmax(0).numpy()
            t = data.targets[s][pool // 2::pool][:len(out)]
            voiced = t < N_CHROMA
            hits += int((out[voiced] == t[voiced]).sum())
            total += int(voiced.sum())
    return {"extractor_val_chroma_acc": round(hits / max(total, 1), 4)}


def _song_chromagrams(model: QBHModel, data: PairData) -> list[np.ndarray]:
    with torch.no_grad():
        return [model.extractor.chromagram(torch.from_numpy(s.astype(np.float32))[None])[0].numpy()
                for s in data.saliences]


def _fit_encoders(model, data, chroma, val_songs, train, rng, cancel) -> JobGen[dict]:
    cfg = model.cfg
    W = int(round(cfg.window_s * cfg.frame_rate))
    H = int(round(cfg.window_s * cfg.frame_rate * HUM_FRAMES_FACTOR))
    win_val = val_songs[data.window_song]
    tr, va = np.flatnonzero(~win_val), np.flatnonzero(win_val)
    params = [*model.song.parameters(), *model.hum.parameters()]
    opt = torch.optim.AdamW(params, lr=train.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, train.lr, total_steps=train.encoder_steps, pct_start=0.1)

    def song_batch(windows):
        out = np.zeros((len(windows), N_CHROMA + 1, W), np.float32)
        out[:, N_CHROMA] = 1.0
        for r, w in enumerate(windows):
            c = chroma[data.window_song[w]]
            a = int(np.clip(data.window_start[w] + rng.integers(-3, 4), 0, max(0, c.shape[1] - 1)))
            seg = c[:, a:a + W]
            out[r, :, :seg.shape[1]] = seg
        return torch.from_numpy(out)

    clock = EtaClock()
    for step in range(1, train.encoder_steps + 1):
        cancel.check()
        model.song.train()
        model.hum.train()
        batch = rng.choice(tr, min(train.encoder_batch, len(tr)), replace=False)
        zs, zh = model.song(song_batch(batch)), model.hum(_hum_batch(data, batch, H, rng))
        logits = zh @ zs.T / train.temperature
        target = torch.arange(len(batch))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc = float((logits.argmax(1) == target).float().mean())
        yield Progress("train", step, train.encoder_steps, "hum/song encoders",
                       clock.eta(step, train.encoder_steps), {"loss": loss.item(), "acc": acc})
    model.song.eval()
    model.hum.eval()
    if len(va) < 2:
        return {}
    with torch.no_grad():
        r = np.random.default_rng(0)
        zs, zh = model.song(song_batch(va)), model.hum(_hum_batch(data, va, H, r))
        ranks = (zh @ zs.T).argsort(dim=1, descending=True).numpy()
    pos = np.array([int(np.flatnonzero(row == i)[0]) for i, row in enumerate(ranks)])
    return {"encoder_val_windows": len(va), "encoder_val_top1": round(float(np.mean(pos == 0)), 4),
            "encoder_val_top10": round(float(np.mean(pos < 10)), 4)}


def qbh_train_config(train: TrainConfig, **changes) -> QBHTrainConfig:
    """The ``qbh`` knobs from the shared ``TrainConfig``: ``epochs`` x ``steps_per_epoch`` (default 100) encoder
    steps, 60 % as many extractor steps; ``songs``; batch size, learning rate and temperature carried over when
    not default; the seed."""
    per = train.steps_per_epoch or 100
    base, shared = QBHTrainConfig(), TrainConfig()

    def own(key: str, qbh_key: str):
        return getattr(train, key) if getattr(train, key) != getattr(shared, key) else getattr(base, qbh_key)
    return base.replace(encoder_steps=train.epochs * per, extractor_steps=max(1, int(0.6 * train.epochs * per)),
                        n_songs=train.songs, n_generated=max(2, train.songs // 10), lr=own("lr", "lr"),
                        temperature=own("temperature", "temperature"), seed=train.seed,
                        encoder_batch=own("batch_size", "encoder_batch"), **changes)


@layout.writes_library("train")
def iter_fit_qbh(lib: Library, *, name: str, train: TrainConfig,
                 cancel: CancelToken | None = None) -> JobGen[FitResult]:
    """``musicemb train LIB --strategy qbh``: train a QBH model into ``models/<name>`` of the library.

    The library is where the model goes; the training material comes from the training melody collections.
    """
    folder = lib.folder("models") / check_model_name(name)
    tc = qbh_train_config(train)
    run_id = lib.start_run(name, "qbh", {"train": train.to_dict(), "qbh": tc.to_dict()})
    try:
        info = yield from iter_train_qbh(folder, train=tc, cancel=cancel)
    except Cancelled:
        lib.update_run(run_id, "cancelled", [], finished=True)
        return FitResult(name, str(folder), "cancelled", 0)
    except BaseException:
        lib.update_run(run_id, "failed", [], finished=True)
        raise
    lib.update_run(run_id, "done", [info["metrics"]], finished=True)
    lib.register_model(name, "qbh", "qbh", QBHConfig().dim, ckpt.read_info(folder, encoder=False).to_dict())
    return FitResult(name, str(folder), "done", train.epochs, [info["metrics"]], info["metrics"])
