"""The ``musicemb`` command: each subcommand is a thin driver of a core job generator.

Exit status: 0 on success (an import that skipped bad files still succeeds), 1 on error, 2 on usage,
130 when interrupted, 141 (silently) when the reader of its output went away.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from musicemb_core import cli_args as ca
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import MusicEmbError
from musicemb_core.common.progress import CancelToken, JobGen, Progress
from musicemb_core.resources import package_version

_SHOWN = ("loss", "acc", "mae", "val_loss", "val_acc", "val_mae")
_UNITS = {"scan": "file", "check": "file", "ingest": "file", "features": "file", "load": "track", "train": "step",
          "embed": "track", "landmarks": "track", "qbh-index": "track"}
_SAID = ("train", "scan", "check")  # stages whose message is shown whole (the others': a file's name)


STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
"""Signals that stop a command as Ctrl-C does: a terminal's Ctrl-C, ``kill``/a shutdown/``timeout``, a closed
terminal (each only where Python's default handles it: ``nohup`` and other ignored signals stay ignored)."""


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def _handling(signals: list[int], handler):
    """``handler`` for ``signals`` in the block, their previous handlers restored after it."""
    previous = {s: signal.getsignal(s) for s in signals}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _stop_signals_interrupt():
    """SIGTERM and SIGHUP raise :class:`KeyboardInterrupt`, as Ctrl-C does, so a command stopped by ``kill`` or a
    closed terminal says so, releases the library and keeps what it finished (they ended the process at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _handling([s for s in STOP_SIGNALS if s != signal.SIGINT and signal.getsignal(s) is signal.SIG_DFL],
                   _interrupt):
        yield


@contextlib.contextmanager
def _ctrl_c_cancels(cancel: CancelToken | None):
    """While a job runs, a first Ctrl-C (SIGINT), SIGTERM or SIGHUP sets ``cancel``: the job stops at its next
    check and keeps what it finished, as a cancel does; a second one interrupts at once. Signals that are not
    Python's default or :func:`_stop_signals_interrupt`'s (ignored, or another handler) are left alone, as is a
    job off the main thread."""
    if cancel is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_stop(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        with contextlib.suppress(OSError):
            os.write(2, b"\nmusicemb: stopping; what is finished is kept (Ctrl-C again stops at once, without storing it)\n")

    with _handling([s for s in STOP_SIGNALS if signal.getsignal(s) in (signal.default_int_handler, _interrupt)],
                   on_stop):
        yield


def _run(job: JobGen, *, quiet: bool = False, cancel: CancelToken | None = None):
    """Drive ``job`` with a progress bar on stderr; return its result. ``cancel``: the job's token, which a
    Ctrl-C sets (:func:`_ctrl_c_cancels`)."""
    with _ctrl_c_cancels(cancel):
        return _drive(job, quiet=quiet)


def _drive(job: JobGen, *, quiet: bool):
    from tqdm import tqdm

    bar = None
    try:
        while True:
            try:
                ev: Progress = next(job)
            except StopIteration as stop:
                return stop.value
            if quiet:
                continue
            if bar is None or bar.desc != ev.stage:
                if bar is not None:
                    bar.close()
                bar = tqdm(total=ev.total, desc=ev.stage, file=sys.stderr, unit=_UNITS.get(ev.stage, "it"), dynamic_ncols=True,
                           mininterval=0.5)
            if ev.total is not None and bar.total != ev.total:
                bar.total = ev.total
            bar.n = ev.done
            stats = ", ".join(f"{k} {v:.3f}" for k, v in ev.info.items() if k in _SHOWN and isinstance(v, float))
            label = ca.shown(ev.message if ev.stage in _SAID else Path(ev.message).name if ev.message else "")
            bar.set_postfix_str(f"{label} {stats}".strip(), refresh=False)
            if ev.info.get("epoch_end"):
                tqdm.write(f"epoch {ev.info['epoch']}: {stats}", file=sys.stderr)
            bar.refresh()
    finally:
        if bar is not None:
            bar.close()
        job.close()


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _print_report(report, *, as_json: bool, embedding: bool = False) -> None:
    """The import report; ``embedding``: vectors are computed next (``ingest --embed``), no hint to embed."""
    if as_json:
        _print_json(report.to_dict())
        return
    state = "cancelled" if report.cancelled else "done"
    print(f"import {state}: {report.added} added, {report.updated} updated, {report.moved} moved, "
          f"{report.unchanged} unchanged, {len(report.duplicates)} duplicates skipped, "
          f"{len(report.failed)} failed" + (f", {report.still_failed} still failing (unchanged)"
                                            if report.still_failed else ""))
    if report.relabelled:
        print(f"  {report.relabelled} known tracks relabelled")
    if report.reanalysed:
        print(f"  {report.reanalysed} known tracks analysed again (this release estimates tempo and key otherwise)")
    if report.retagged:
        print(f"  {report.retagged} known tracks' tags read again (this release reads more of them)")
    if report.recut:
        seg = report.segments
        print(f"  {_count(report.recut, 'track')} cut again (window {seg.window_s:g} s, hop {seg.hop_s:g} s)"
              + ("" if embedding else ": their new segments need `musicemb embed`"))
    for path, reason in report.failed:
        print(ca.shown(f"  failed: {path}: {reason}"))
    for path, warning in report.warnings:
        print(ca.shown(f"  warning: {path}: {warning}"))
    for path, of in report.duplicates:
        print(ca.shown(f"  duplicate: {path} (same content as {of})"))
    if report.removed:
        print(f"  {report.removed} tracks whose files are gone removed from the library")
    elif report.missing:
        print(f"  {len(report.missing)} tracks under these folders have no file any more (deleted or moved out): "
              f"--prune removes them; e.g. {report.missing[0]}")


def _print_summary(s: dict) -> None:
    h = s["duration_s"] / 3600
    print(f"library {s['path']}")
    print(f"  {s['tracks']} tracks, {s['segments']} segments, {h:.2f} h"
          + (f" ({s['window_s']} s windows every {s['hop_s']} s)" if s["window_s"] else ""))
    if s["labels"]:
        print("  labels: " + ", ".join(f"{k or '(none)'} {v}" for k, v in s["labels"].items()))
    print(f"  models: {', '.join(m['name'] for m in s['models']) or '(none yet)'}")
    if s["embeddings"]:
        print("  embeddings: " + ", ".join(f"{k} ({v} vectors)" if v >= 0 else f"{k} (damaged: run `musicemb embed`)"
                                           for k, v in s["embeddings"].items()))
    for f in s["failed"]:
        print(ca.shown(f"  failed: {f['path']}: {f['error']}"))
    for w in s["warnings"]:
        print(ca.shown(f"  warning: {w['path']}: {w['warning']}"))


def cmd_ingest(a: argparse.Namespace) -> int:
    from musicemb_core.data.ingest import iter_ingest, read_label_csv
    from musicemb_core.data.library import Library

    labels = "folders" if a.labels_from_folders else (read_label_csv(a.labels) if a.labels else None)
    missing = [p for p in a.paths if not Path(p).exists()]
    if missing:  # before the library folder is created
        raise MusicEmbError(f"{missing[0]}: no such file or folder")
    with Library(a.lib, create=True) as lib:
        current = lib.segment_config() or SegmentConfig()
        window = a.window or current.window_s  # a new window without --hop: hop = window; the same one keeps the hop
        seg = current.replace(window_s=window, hop_s=a.hop or (window if window != current.window_s else current.hop_s))
        max_dur = a.max_duration * 3600 if a.max_duration > 0 else None
        kw = {"labels": labels, "segments": seg, "max_duration_s": max_dur, "jobs": a.jobs, "analyse": a.analyse,
              "prune": a.prune}
        embedded = qbh = None
        cancel = CancelToken()
        if a.embed:  # both built-in spaces in the import's one decode
            from musicemb_core.workflows.ingest_embed import iter_ingest_embed

            both = _run(iter_ingest_embed(lib, a.paths, cancel=cancel, **kw), quiet=a.quiet, cancel=cancel)
            report, embedded = both.ingest, both.embed
            qbh = None if report.cancelled else _search_indexes(lib, embedded, quiet=a.quiet)
        else:
            report = _run(iter_ingest(lib, a.paths, cancel=cancel, **kw), quiet=a.quiet, cancel=cancel)
    if a.json and embedded is not None:
        from musicemb_core.stored_vectors import builtin_models

        _print_json(report.to_dict() | {"embed": {"models": list(builtin_models()), "computed": embedded.computed,
                                                  "kept": embedded.kept, "dropped": embedded.dropped,
                                                  "failed": [{"path": p, "error": e} for p, e in embedded.failed],
                                                  "cancelled": embedded.cancelled}})
        return 130 if report.cancelled or embedded.cancelled else 0
    _print_report(report, as_json=a.json, embedding=embedded is not None)
    if embedded is not None:
        _print_embed(embedded, qbh)
    return 130 if report.cancelled or (embedded is not None and embedded.cancelled) else 0


def cmd_info(a: argparse.Namespace) -> int:
    from musicemb_core.data.library import Library

    with Library(a.lib) as lib:
        s = lib.summary()
    _print_json(s) if a.json else _print_summary(s)
    return 0


def cmd_features(a: argparse.Namespace) -> int:
    from musicemb_core.common.tables import check_table_path, write_table
    from musicemb_core.data.ingest import find_audio
    from musicemb_core.features.descriptors import iter_describe

    check_table_path(a.out)
    files = find_audio(a.paths)
    if not files:
        raise MusicEmbError(f"no audio files in {', '.join(a.paths)}")
    cancel = CancelToken()  # Ctrl-C: the files described so far are written, and the exit status says it stopped
    rows, failed = _run(iter_describe(files, per=a.per, sr=a.sr, window_s=a.window, hop_s=a.hop or a.window,
                                      cancel=cancel), quiet=a.quiet, cancel=cancel)
    for path, reason in failed:
        print(ca.shown(f"failed: {path}: {reason}"), file=sys.stderr)
    if not rows:
        if cancel.cancelled:
            raise KeyboardInterrupt
        raise MusicEmbError(f"no descriptors computed: {len(failed)} of {len(files)} files failed")
    write_table(rows, a.out)
    done = len({r["path"] for r in rows}) if cancel.cancelled else len(files) - len(failed)
    print(f"{len(rows)} rows x {len(rows[0]) - 3} descriptors from {done} files -> {a.out}"
          + (f" (stopped: {len(files) - done - len(failed)} files not described)" if cancel.cancelled else ""))
    return 130 if cancel.cancelled else 0


def cmd_train(a: argparse.Namespace) -> int:
    from musicemb_core.common.names import model_key
    from musicemb_core.data.library import Library
    from musicemb_core.models import ModelConfig
    from musicemb_core.models import checkpoint as ckpt
    from musicemb_core.training.config import TrainConfig
    from musicemb_core.training.entry import iter_train

    options = dict(strategy=a.strategy, epochs=a.epochs, batch_size=a.batch_size, seed=a.seed,
                   steps_per_epoch=a.steps_per_epoch, patience=a.patience, from_model=a.from_model,
                   freeze_until=a.freeze_until, device=a.device,
                   **({"songs": a.songs} if a.songs is not None else {}))
    model = None
    _check_train_options(a)
    if not a.from_model or a.arch:
        model = ModelConfig(arch=a.arch or "resnet18", dim=a.dim or 128, width=a.width or 32)
    # the help of --name tells this default
    name = a.name or ("qbh" if a.strategy == "qbh"
                      else f"{a.strategy}-{model.arch if model else model_key(a.from_model)}")
    with Library(a.lib) as lib:
        saved = lib.root / "models" / name
        lr = a.lr or 1e-3
        if a.resume and a.strategy != "qbh" and (saved / ckpt.CONFIG).exists():
            # the saved run's shape and rate, but for the options given: iter_fit refuses those that differ from it
            info = ckpt.read_info(saved)
            given = {k: v for k, v in (("arch", a.arch), ("dim", a.dim), ("width", a.width)) if v}
            model = info.model.replace(**given) if given else None
            lr = a.lr or info.train.get("lr", lr)
        cancel = CancelToken()  # Ctrl-C cancels: the run keeps its last checkpoint and can be resumed
        result = _run(iter_train(lib, name=name, train=TrainConfig(lr=lr, **options), model=model, resume=a.resume,
                                 replace=a.replace, cancel=cancel), quiet=a.quiet, cancel=cancel)
    best = ", ".join(f"{k} {v:.4f}" for k, v in result.best.items() if isinstance(v, float))
    print(f"model {result.name!r} {result.status} after {result.epochs_done} epochs; best: {best}")
    print(f"  saved in {result.folder}")
    return 130 if result.status == "cancelled" else 0


def _check_train_options(a: argparse.Namespace) -> None:
    """Options that contradict each other or the strategy: usage errors, before the library is read."""
    if a.resume and a.replace:
        raise ca.UsageError("--resume continues the saved run, --replace trains it again from scratch: give one")
    if a.from_model and not a.arch and (a.dim or a.width):
        raise ca.UsageError(f"--{'dim' if a.dim else 'width'}: --from {a.from_model} keeps that model's shape (its "
                            "weights fix it); leave the option out")
    if a.strategy == "transfer" and not a.from_model:
        raise ca.UsageError("--strategy transfer fine-tunes a saved model: give --from MODEL")
    if a.width and a.arch in ("cnn2", "vgg"):  # (it was kept in the model's settings, and meant nothing)
        raise ca.UsageError(f"--width sets the resnet18's base width; --arch {a.arch} has its own: leave it out")
    if a.strategy != "qbh":
        if a.songs is not None:
            raise ca.UsageError("--songs is the number of melodies --strategy qbh renders; leave it out")
        return
    if a.resume:
        raise ca.UsageError("--resume: the qbh strategy cannot resume a run; train again")
    ignored = [o for o, v in (("--from", a.from_model), ("--arch", a.arch), ("--dim", a.dim), ("--width", a.width),
                              ("--freeze-until", a.freeze_until)) if v]
    if ignored:
        raise ca.UsageError(f"{ignored[0]}: the qbh strategy trains its own networks from scratch; leave it out")
    if a.device not in ("auto", "cpu"):
        raise ca.UsageError(f"--device {a.device}: the qbh strategy trains on the CPU (about half an hour); "
                            "use --device cpu")


def cmd_embed(a: argparse.Namespace) -> int:
    from musicemb_core.data.library import Library
    from musicemb_core.inference import iter_embed

    if a.actors and not a.ray:
        raise ca.UsageError("--actors is the number of Ray actors: give --ray ADDRESS too")
    cancel = None if a.ray else CancelToken()  # Ctrl-C cancels a local run; a Ray run keeps its finished shards
    with Library(a.lib) as lib:
        if a.ray:
            from musicemb_core.inference_ray import iter_embed_ray
            from musicemb_core.stored_vectors import DEFAULT_MODEL, SIMILARITY_MODEL

            job = iter_embed_ray(lib, model=a.model or DEFAULT_MODEL, address=a.ray, batch_size=a.batch_size,
                                 device=a.device, actors=a.actors)
            r = _run(job, quiet=a.quiet)
            if r.cancelled:
                _print_embed(r, None)
                print("  the library is unchanged; finished shards are kept: run the same command again to resume")
                return 130
            if a.model is None:  # the similarity space is finished over the whole library, which Ray does not do:
                _print_embed(r, None)  # it is embedded here (it was left out)
                cancel = CancelToken()
                r = _run(iter_embed(lib, model=SIMILARITY_MODEL, batch_size=a.batch_size, cancel=cancel),
                         quiet=a.quiet, cancel=cancel)
        else:
            r = _run(iter_embed(lib, model=a.model, batch_size=a.batch_size, device=a.device, cancel=cancel),
                     quiet=a.quiet, cancel=cancel)
        qbh = _search_indexes(lib, r, quiet=a.quiet) if a.model is None else None
    _print_embed(r, qbh)
    return 130 if r.cancelled else 0


def _search_indexes(lib, r, *, quiet: bool):
    """After embedding with the built-in models: the melody index and the landmarks
    (:func:`~musicemb_core.workflows.ingest_embed.iter_search_indexes`); the melody index folder if (re)built."""
    if r.cancelled:
        return None
    from musicemb_core.workflows.ingest_embed import iter_search_indexes

    qbh, error = _run(iter_search_indexes(lib), quiet=quiet)
    if error:  # the embeddings are kept; `hum` retries the index
        print(f"musicemb: warning: melody index for humming not built: {error}", file=sys.stderr)
    return qbh


def _print_embed(r, qbh) -> None:
    state = "cancelled" if r.cancelled else "done"
    print(f"embed {state} with {r.model!r}: {r.computed} segments embedded, {r.kept} kept, {r.dropped} dropped, "
          f"{len(r.failed)} tracks failed" + (f", {r.resumed} resumed from an earlier run"
                                              if getattr(r, "resumed", 0) else ""))
    if qbh is not None:
        print(f"melody index for humming -> {qbh}")
    for path, reason in r.failed:
        print(ca.shown(f"  failed: {path}: {reason}"))


def cmd_index(a: argparse.Namespace) -> int:
    from musicemb_core.common.errors import ConfigError, LibraryError
    from musicemb_core.data.library import Library
    from musicemb_core.search.library_index import current_index, index_path, iter_build_index
    from musicemb_core.stored_vectors import builtin_models, read_embeddings_meta

    cancel = CancelToken()  # Ctrl-C stops the index being built; those finished, and finished tracks' landmarks, are kept
    with Library(a.lib) as lib, _cancel_interrupts():
        models = [a.model] if a.model else [m for m in builtin_models() if read_embeddings_meta(lib, m) is not None]
        if not models:
            raise LibraryError(f"{lib.root}: no embeddings of the built-in models yet; run `musicemb embed`")
        for model in models:
            index = current_index(lib, model, a.kind)
            if index is not None:
                print(f"{model}: {index.kind_} index of {index.ntotal} vectors -> {index_path(lib, model)} (current: "
                      "not built again)")
                continue
            try:
                index = _run(iter_build_index(lib, model=model, kind=a.kind, cancel=cancel), quiet=a.quiet,
                             cancel=cancel)
            except ConfigError as e:  # a kind that cannot index these vectors: say which library and model
                raise ConfigError(f"{lib.root}: {model}: {e}") from None
            print(f"{model}: {index.kind_} index of {index.ntotal} vectors -> {index_path(lib, model)}")
        if a.landmarks:
            from musicemb_core.search.fingerprints import iter_fingerprint, landmark_folder  # scipy.ndimage

            marks = _run(iter_fingerprint(lib, cancel=cancel), quiet=a.quiet, cancel=cancel)
            print(f"{len(marks)} landmarks -> {landmark_folder(lib)}")
    return 0


@contextlib.contextmanager
def _cancel_interrupts():
    """A job of ``index``, ``search`` or ``identify`` cancelled by Ctrl-C ends as an interrupt (exit 130)."""
    from musicemb_core.common.errors import Cancelled

    try:
        yield
    except Cancelled:
        raise KeyboardInterrupt from None


def _open_searcher(lib, model: str, *, quiet: bool, landmarks: bool):
    """A :class:`~musicemb_core.search.knn.Searcher` of ``model`` on its index, built first (with progress; Ctrl-C
    stops) when there is none yet or the embeddings changed since. The model is loaded once, first: an unknown
    model, a bad config or damaged weights are said as the searcher says them, not as missing embeddings, nor
    after an index was built for their vectors. ``landmarks``: the query's landmarks are read too (identify)."""
    from musicemb_core.common.errors import LibraryError
    from musicemb_core.inference import library_embedder
    from musicemb_core.search.knn import Searcher
    from musicemb_core.search.library_index import iter_open_index

    embedder = library_embedder(lib, model)
    if not len(lib.segments()["id"]):
        raise LibraryError(f"{lib.root}: no segments embedded with {model!r}; import audio and run `musicemb embed`")
    cancel = CancelToken()
    with _cancel_interrupts():
        index = _run(iter_open_index(lib, model, cancel=cancel), quiet=quiet, cancel=cancel)
    return Searcher(lib, model=model, index=index, use_landmarks=landmarks, embedder=embedder)


def _queries(a: argparse.Namespace, action, *, none: str, landmarks: bool = False) -> int:
    """Run ``action(searcher, query_vectors)`` for each query file; print JSON or a readable list (``none``: the
    line under a query without results; ``landmarks``: the action uses the queries' landmarks)."""
    from musicemb_core.audio.validate import check_query_length
    from musicemb_core.common.errors import AudioError
    from musicemb_core.data.library import Library

    out, failed = [], 0
    with Library(a.lib) as lib:
        searcher = _open_searcher(lib, a.model, quiet=a.quiet, landmarks=landmarks)
        _warn_unsearched(searcher.tracks, searcher.model, searcher.unembedded, searcher.unmarked)
        for path in a.queries:
            try:
                check_query_length(path, ca.MAX_QUERY_S, "queries")
                results = action(searcher, searcher.embed_file(path))
            except AudioError as e:
                print(ca.error_line(e), file=sys.stderr)
                failed += 1
                continue
            out.append({"query": str(path), "results": results})
    if failed and not out:  # every query failed: said on stderr, no answer to print
        return 1
    if a.json:
        _print_json(out)
    else:
        for q in out:
            print(ca.shown(q["query"]))
            if not q["results"]:
                print(f"  {none}")
            for rank, r in enumerate(q["results"], 1):
                what = r.get("path") or r.get("label")
                extra = f"  [{r['label']}]" if r.get("path") and r.get("label") else ""
                if r.get("speed", 1.0) != 1.0:
                    extra += f"  (plays {100 * (r['speed'] - 1):+.0f} %)"
                print(ca.shown(f"  {rank:2d}. {r['score']:.3f}  {what}{extra}"))
    return 0


def _warn_unsearched(tracks: dict, model: str, unembedded: set[int], unmarked: set[int] = frozenset()) -> None:
    """Say on stderr which of the library's ``tracks`` a query cannot find (no vectors of ``model``), or finds by
    its vectors alone (no landmarks): answers that look whole."""
    def some(ids: set[int]) -> str:
        names = sorted(Path(tracks[t].path).name for t in ids if t in tracks)
        return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")

    gone = {t for t in unembedded if t in tracks and not os.path.exists(tracks[t].path)}  # embed cannot help
    if gone:
        print(ca.shown(f"musicemb: warning: {len(gone)} of {len(tracks)} tracks cannot be found: their files are "
                       f"gone since they were imported ({some(gone)}); import their new place"), file=sys.stderr)
    if (waiting := set(unembedded) - gone) and len(unembedded) < len(tracks):  # none embedded: the error says so
        print(ca.shown(f"musicemb: warning: {len(waiting)} of {len(tracks)} tracks have no vectors of {model!r} "
                       f"yet and cannot be found ({some(waiting)}); run `musicemb embed`"), file=sys.stderr)
    if unmarked := set(unmarked) - set(unembedded):
        print(ca.shown(f"musicemb: warning: {len(unmarked)} of {len(tracks)} tracks have no landmarks yet and are "
                       f"matched by their vectors alone ({some(unmarked)}); run `musicemb index`"), file=sys.stderr)


def cmd_identify(a: argparse.Namespace) -> int:
    return _queries(a, lambda s, q: s.identify(q, k=a.k, top=a.top or 10),
                    none="no match: no track scored above 0", landmarks=True)


def cmd_classify(a: argparse.Namespace) -> int:
    return _queries(a, lambda s, q: s.classify(q, k=a.k, top=a.top or 2),
                    none=f"no labelled neighbour: none of the {a.k} nearest segments of its sub-tracks is labelled "
                         "(ingest --labels or --labels-from-folders labels tracks)")


def cmd_search(a: argparse.Namespace) -> int:
    from musicemb_core.audio.validate import check_query_length
    from musicemb_core.data.library import Library

    check_query_length(a.query, ca.MAX_QUERY_S, "queries")
    with Library(a.lib) as lib:
        searcher = _open_searcher(lib, a.model, quiet=a.quiet, landmarks=False)
        _warn_unsearched(searcher.tracks, searcher.model, searcher.unembedded)
        windows = searcher.nearest(searcher.embed_file(a.query), k=a.k)
    if a.json:
        _print_json({"query": a.query, "windows": windows})
        return 0
    for w in windows:
        print(f"query at {w['query_start_s']:.1f} s:")
        for n in w["neighbours"]:
            print(ca.shown(f"  {n['score']:.3f}  {n['path']} @ {n['start_s']:.1f} s (segment {n['segment_id']})"))
    return 0


def cmd_similar(a: argparse.Namespace) -> int:
    from musicemb_core.data.library import Library
    from musicemb_core.search.similar import SimilarTracks

    kw = {"k": a.k, "versions": a.versions, "bpm_range": a.bpm_range, "key_compatible": a.key_compatible}
    out, failed = [], 0
    with Library(a.lib) as lib:
        space = SimilarTracks(lib, model=a.model)
        _warn_unsearched(space.tracks, a.model, set(space.tracks) - set(space.track_ids.tolist()))
        if a.together:  # one answer for all: a bad query stops it
            out = space.query(a.queries, together=True, **kw)
        else:
            for query in a.queries:  # a query that cannot be answered is one line; the others are answered
                try:
                    out += space.query([query], **kw)
                except MusicEmbError as e:  # no such file or track, silent, no tempo/key to filter by
                    print(ca.error_line(e), file=sys.stderr)
                    failed += 1
    if failed and not out:
        return 1
    if a.json:
        _print_json(out)
        return 0
    for q in out:
        print(ca.shown(f"{q['query']}: tracks like it in the {a.model!r} space"))
        if not q["results"]:
            filters = ([f"--bpm-range {a.bpm_range:g}"] if a.bpm_range is not None else []) + (
                ["--key-compatible"] if a.key_compatible else [])
            print(f"  no track passed the filters ({', '.join(filters)})" if filters else "  no other track in this space")
        for rank, r in enumerate(q["results"], 1):
            who = f"{r['artist']} - " if r["artist"] else ""
            label = f"  [{r['label']}]" if r["label"] else ""
            version = "  (another version: shares its audio)" if r.get("version") else ""
            print(ca.shown(f"  {rank:2d}. {r['score']:.3f}  {who}{r['title']}{label}{version}  ({r['path']})"))
    return 0


def cmd_hum(a: argparse.Namespace) -> int:
    from musicemb_core.audio.devices import record, trim_silence
    from musicemb_core.common.errors import AudioError
    from musicemb_core.data.library import Library
    from musicemb_core.search.qbh import HumSearcher

    if not a.queries and not a.record:
        raise ca.UsageError("give QUERY_AUDIO files or --record SECONDS")
    if a.device is not None and not a.record:
        raise ca.UsageError("--device is the microphone --record SECONDS records from; give --record too")
    queries, failed = _usable_hums(a.queries)
    if failed and not queries and not a.record:  # before the melody index is opened (or built)
        return 1
    with Library(a.lib) as lib:
        searcher = HumSearcher.open(lib, model=a.model)
        out = []
        if a.record:
            y, sr = record(a.record, device=a.device, on_start=lambda name: print(
                f"recording {a.record:g} s from {name}: hum now...", file=sys.stderr))
            y = trim_silence(y, sr)
            if len(y) == 0:
                raise MusicEmbError("the recording is silent: check the microphone and its level")
            out.append({"query": "(recording)", "results": searcher.query(y, sr, k=a.k, method=a.method)})
        for path in queries:  # a file that cannot be used is one line; the other queries are answered
            try:
                out.append({"query": str(path), "results": searcher.query_file(path, k=a.k, method=a.method)})
            except AudioError as e:
                print(ca.error_line(e), file=sys.stderr)
                failed += 1
    if failed and not out:
        return 1
    for q in out:  # a confident match: the best track's calibrated confidence reaches the model's threshold
        q["confident"] = searcher.is_confident(q["results"], a.method)
    if a.json:
        _print_json(out)
        return 0
    for q in out:
        heard = "" if q["results"] else "  (no pitched sound heard)"
        print(ca.shown(q["query"]) + (heard or ("" if q["confident"] else "  (no confident match: the tune may not "
                                                                          "be in the library; closest tracks below)")))
        for rank, r in enumerate(q["results"], 1):
            label = f"  [{r['label']}]" if r.get("label") else ""
            print(ca.shown(f"  {rank:2d}. {r['score']:.3f}  confidence {r['confidence']:.2f}  {r['path']} @ "
                         f"{r['start_s']:.1f} s{label}"))
    return 0


def _usable_hums(paths: list[str]) -> tuple[list[str], int]:
    """The hum files not refused from their header (longer than :data:`MAX_HUM_S`: one error line each, the
    others are answered) and how many were refused."""
    from musicemb_core.audio.validate import check_query_length
    from musicemb_core.common.errors import AudioError

    usable = []
    for path in paths:
        try:
            check_query_length(path, ca.MAX_HUM_S, "hums")
            usable.append(path)
        except AudioError as e:
            print(ca.error_line(e), file=sys.stderr)
    return usable, len(paths) - len(usable)


def cmd_map(a: argparse.Namespace) -> int:
    import numpy as np

    from musicemb_core.common.errors import LibraryError
    from musicemb_core.common.tables import check_table_path
    from musicemb_core.data import layout
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.maps import export_map, iter_map, load_map, map_path

    if a.out:
        check_table_path(a.out)
    with Library(a.lib) as lib:
        if not a.out and not layout.writable(lib):  # drawn for nothing (it said where it was, never written)
            raise LibraryError(f"{lib.root}: {layout.not_writable(lib.root)}: the map cannot be kept in the library; "
                               "give --out FILE")
        # umap and t-SNE in a child process: their fit says nothing for minutes; the parent ticks and stops it
        rows = _run(iter_map(lib, model=a.model, method=a.method, isolate=a.method != "pca"), quiet=a.quiet)
        gone = export_map(lib, rows, a.out) if a.out else 0
        cached = None if a.out else load_map(lib, a.model, a.method)
        kept = a.out or (cached is not None and np.array_equal(cached[:, 0], rows[:, 0])
                         and map_path(lib, a.model, a.method))
        if not kept:
            raise LibraryError(f"{lib.root}: the {a.method} map was drawn but not kept: the library was busy (another "
                               "program writing to it); draw it again, or give --out FILE")
        print(f"{a.method} map of {len(rows) - gone} segments -> {kept}")
    if gone:
        print(f"musicemb: warning: {_count(gone, 'segment')} of the map left out of {a.out}: no longer in the library "
              "(cut again or removed since the embed); run `musicemb embed`", file=sys.stderr)
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.evaluate import iter_evaluate

    with Library(a.lib) as lib:
        r = _run(iter_evaluate(lib, model=a.model, plots=a.plots, reid_n=a.reid, snippet_s=a.snippet,
                               cluster_ks=a.clusters), quiet=a.quiet)
    if a.json:
        _print_json(r)
        return 0
    print(f"model {r['model']!r}: {r['segments']} segments, {_count(r['tracks'], 'track')}, "
          f"labels {', '.join(r['labels']) or '(none)'}")
    for key in ("probe_logistic", "probe_svm"):
        if key in r:
            print(f"  {key}: accuracy {r[key]['accuracy']:.3f}, macro-F1 {r[key]['macro_f1']:.3f} "
                  f"({r[key]['folds']} folds by track)")
    if "knn_tracks" in r:
        print(f"  kNN vote per track: top-1 {r['knn_tracks']['top1']:.3f}, top-2 {r['knn_tracks']['top2']:.3f}")
    c = r["clustering"]
    how = "as asked" if len(c["ks"]) == 1 else "by silhouette"
    print(f"  k-means: k={c['k']} {how}" + (f", purity {c['purity']:.3f}" if c["purity"] is not None else ""))
    if "reid" in r and r["reid"]["n"]:
        print(f"  re-identification of {r['reid']['n']} random {r['reid']['snippet_s']:g} s snippets: "
              f"top-1 {r['reid']['top1']:.3f}, top-2 {r['reid']['top2']:.3f}")
    elif "reid" in r:
        print("  re-identification: no snippet could be read (every track drawn is unreadable now)")
    if "reid" in r:
        for path in r["reid"]["unreadable"]:
            print(ca.shown(f"musicemb: warning: re-identification left out {path}: it cannot be read now"), file=sys.stderr)
    if a.plots:
        print(f"  plots in {a.plots}")
    return 0


def _count(n: int, noun: str) -> str:
    """"1 track", "2 tracks"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_inspect(a: argparse.Namespace) -> int:
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.inspect import (
        KINDS,
        as_json,
        check_findings_path,
        export_findings,
        iter_inspect,
    )

    kinds = [k for item in a.kinds for k in item.split(",") if k] if a.kinds is not None else None  # label,outlier
    unknown = [k for k in kinds or () if k not in KINDS]
    if kinds == [] or unknown:  # a usage error: before the library is opened
        what = f"unknown finding kind {unknown[0]!r}" if unknown else "no finding kind named"
        raise ca.UsageError(f"--kinds: {what}; kinds: {', '.join(KINDS)}")
    if a.out:
        check_findings_path(a.out)
    with Library(a.lib) as lib:
        r = _run(iter_inspect(lib, model=a.model, kinds=kinds), quiet=a.quiet)
    if r.cancelled:
        print("musicemb: inspect cancelled; no findings stored", file=sys.stderr)
        return 130
    for s in r.skipped:
        print(f"musicemb: warning: skipped {s}", file=sys.stderr)
    for path, reason in r.failed:
        print(ca.shown(f"musicemb: warning: {path}: {reason}"), file=sys.stderr)
    rows = [as_json(f) for f in r.findings]
    if a.out:
        export_findings(rows, a.out)
    if a.json:
        _print_json({"findings": rows})
        return 0
    listed = [*r.kinds, *sorted({f["kind"] for f in rows} - set(r.kinds))]  # and those kept from an earlier run
    counts = {k: sum(f["kind"] == k for f in rows) for k in listed}
    print(f"{len(rows)} findings: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    for kind in listed:
        mine = [f for f in rows if f["kind"] == kind]
        for f in mine[:a.top]:
            print(ca.shown(f"  {kind:9s} {f['score']:6.2f}  {f['path']} @ {f['start_s']:.1f}-{f['end_s']:.1f} s: "
                         f"{f['reason']}"))
        if len(mine) > a.top:
            print(f"  {kind:9s} ... {len(mine) - a.top} more")
    if a.out:
        print(f"findings -> {a.out}")
    return 0


#: Qt platforms that show no window (``QT_QPA_PLATFORM=offscreen`` in a headless shell or CI).
_HEADLESS_QPA = {"offscreen", "minimal", "minimalegl"}


def _no_display() -> str | None:
    """Why the app's window could not be seen here, or None when it could: X11/Wayland systems need ``DISPLAY``
    or ``WAYLAND_DISPLAY`` (Windows and macOS always have a screen); ``QT_QPA_PLATFORM=offscreen`` draws none."""
    qpa = os.environ.get("QT_QPA_PLATFORM", "")
    if qpa.split(":")[0].strip().lower() in _HEADLESS_QPA:
        return f"QT_QPA_PLATFORM={qpa}"
    if sys.platform in ("win32", "darwin") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return "DISPLAY is not set"


def cmd_demo(a: argparse.Namespace) -> int:
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.demo import default_demo_path, demo_built, iter_build_demo

    root = Path(a.lib) if a.lib else default_demo_path()
    no_display = _no_display()
    # The app is started as its own process: core never imports the GUI package.
    gui = Path(sys.executable).with_name("musicemb-gui")  # the app bundle ships both executables side by side
    cmd = [str(gui)] if getattr(sys, "frozen", False) else [sys.executable, "-m", "musicemb_gui.app"]
    if no_display is None and not a.no_gui and not demo_built(root):
        print(f"building the demo library in {root}: the app shows the progress", file=sys.stderr)
        return subprocess.call([*cmd, "--demo", str(root)])  # the window at once, the build as a job
    report = _run(iter_build_demo(root), quiet=a.quiet)
    if report.failed:
        _print_report(report, as_json=False)
    with Library(root) as lib:
        _print_summary(lib.summary())
    if a.no_gui:
        return 0
    if no_display is not None:
        print(f"no display here ({no_display}): open the demo with `musicemb-gui` on a desktop, or run "
              "`xvfb-run musicemb demo`", file=sys.stderr)
        return 0
    return subprocess.call([*cmd, str(root)])


def build_parser() -> argparse.ArgumentParser:
    p = ca.UsageParser(prog="musicemb", description="Explore music and sound through audio embeddings.")
    p.add_argument("--version", action="version", version=f"musicemb {package_version()}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (accepted anywhere)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ca.IntermixedParser)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        sp.add_argument("--debug", action="store_true", help="show the traceback of an error")
        sp.set_defaults(func=func)
        return sp

    sp = add("ingest", cmd_ingest, "import audio files and folders into a library (created if absent)")
    sp.add_argument("lib", type=ca.path, help="library folder")
    sp.add_argument("paths", type=ca.path, nargs="+", metavar="PATH", help="audio files or folders (searched recursively)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--labels-from-folders", action="store_true", help="label each track by its folder's name")
    g.add_argument("--labels", type=ca.path, metavar="CSV", help="CSV of path,label (path: absolute, relative to the current or an imported folder, or a file name)")
    sp.add_argument("--window", type=ca.window_s, help="segment length in seconds, 0.1 to 600 (default: the "
                    "library's, else 3)")
    sp.add_argument("--hop", type=ca.hop_s, help="segment hop in seconds, 0.05 to 600 (default: the window)")
    sp.add_argument("--max-duration", type=ca.number(0, 1000), default=4.0, metavar="HOURS",
                    help="reject longer files (default 4 h; 0 = no limit)")
    sp.add_argument("-j", "--jobs", type=ca.integer(1, 256), help="parallel decoding processes (default: CPU count)")
    sp.add_argument("--json", action="store_true", help="print the import report as JSON")
    sp.add_argument("--no-analysis", dest="analyse", action="store_false",
                    help="skip the tempo and key analysis (a later import without this flag adds it)")
    sp.add_argument("--embed", action="store_true", help="embed with both built-in models in the same decode "
                    "(as `musicemb embed` after the import, faster)")
    sp.add_argument("--prune", action="store_true", help="remove the tracks under these folders whose files are gone "
                    "(with their labels, segment tags and findings); without it they are only listed")

    sp = add("info", cmd_info, "counts, failed files with reasons, models, maps")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("--json", action="store_true")

    sp = add("features", cmd_features, "handcrafted descriptor table (chroma, rms, spectral, zcr, MFCC)")
    sp.add_argument("paths", type=ca.path, nargs="+", metavar="PATH")
    sp.add_argument("--out", type=ca.path, required=True, metavar="TABLE", help="output .csv or .parquet")
    sp.add_argument("--per", choices=("track", "segment"), default="track",
                    help="one row per track (default) or per segment")
    sp.add_argument("--window", type=ca.window_s, default=3.0, help="segment length in seconds with --per segment "
                    "(default 3)")
    sp.add_argument("--hop", type=ca.hop_s, help="segment hop (default: the window)")
    sp.add_argument("--sr", type=ca.integer(1000, 192000, unit=" Hz"), default=22050,
                    help="analysis sample rate (default 22050)")

    sp = add("train", cmd_train, "train an encoder on the library's segments")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("--strategy", required=True, choices=("supervised", "transfer", "triplet", "autoencoder",
                                                          "contrastive", "qbh"),
                    help="qbh: a query-by-humming model trained from melody collections (epochs x 100 steps)")
    sp.add_argument("--arch", choices=("resnet18", "cnn2", "vgg"), help="encoder (default resnet18)")
    sp.add_argument("--dim", type=ca.integer(1, 8192), help="embedding size (default 128)")
    sp.add_argument("--width", type=ca.integer(1, 1024), help="resnet18 base width (64 = full ResNet18; default 32)")
    sp.add_argument("--epochs", type=ca.integer(1, 100_000), default=10, help="default 10")
    sp.add_argument("--batch-size", type=ca.integer(1, 65_536), default=32, help="default 32")
    sp.add_argument("--lr", type=ca.number(0, 10, lo_open=True),
                    help="learning rate (default 1e-3; --resume: the saved run's)")
    sp.add_argument("--steps-per-epoch", type=ca.positive, help="cap the steps per epoch")
    sp.add_argument("--patience", type=ca.count, default=5,
                    help="early stopping after N epochs without progress (default 5; 0 = off)")
    sp.add_argument("--seed", type=ca.integer(0, 2**63 - 1), default=0, help="default 0")
    sp.add_argument("--from", dest="from_model", metavar="MODEL", type=ca.model_ref,
                    help="start from a saved model (transfer): a name, or a model folder (read only)")
    sp.add_argument("--freeze-until", metavar="LAYER", help="freeze layers up to LAYER (transfer: all but fc)")
    sp.add_argument("--name", type=ca.model_name, help="model name (default STRATEGY-ARCH, e.g. contrastive-resnet18; "
                    "with --from MODEL and no --arch, STRATEGY-MODEL, e.g. transfer-mine, a model folder giving its "
                    "folder's name; qbh: qbh)")
    sp.add_argument("--resume", action="store_true", help="continue the run saved under --name")
    sp.add_argument("--replace", action="store_true", help="train again from scratch a model already saved under "
                    "--name (it is replaced once the new run saves its first epoch)")
    sp.add_argument("--songs", type=ca.count,
                    help="qbh: training-collection melodies rendered as songs (default 1000)")
    sp.add_argument("--device", type=ca.device, default="auto",
                    help="auto (default: CUDA if there is a GPU, else the CPU), cpu, cuda, cuda:N or mps")

    sp = add("embed", cmd_embed, "embed every segment of the library (only those not embedded yet)")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("--model", type=ca.model_ref, help="model name or model folder (read only) (default: both "
                    "built-in models, fingerprint `default` and `similarity`, in one decode pass)")
    sp.add_argument("--batch-size", type=ca.integer(1, 65_536), default=64, help="default 64")
    sp.add_argument("--device", type=ca.device, default="cpu",
                    help="cpu (default), cuda, cuda:N, mps or auto (with --ray: the device of each actor)")
    sp.add_argument("--ray", metavar="ADDRESS", help="distribute with Ray Data: local (a private local cluster), "
                    "auto (the cluster `ray start` runs here) or HOST:PORT; needs musicemb[cluster]")
    sp.add_argument("--actors", type=ca.integer(1, 4096), help="with --ray: encoder actors (default: one per GPU, or CPUs / 2)")

    sp = add("index", cmd_index, "build the FAISS index of a model's embeddings")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("--model", type=ca.model_ref, help="model name (default: both built-in models)")
    sp.add_argument("--kind", default="auto", choices=("auto", "flat", "hnsw", "ivfpq"),
                    help="auto (default): flat below 50k vectors, HNSW below 2M, IVF-PQ above")
    sp.add_argument("--no-landmarks", dest="landmarks", action="store_false",
                    help="skip the landmark fingerprints that confirm exact recordings in `identify`")

    for name, func, help_ in (("identify", cmd_identify, "ranked tracks per query (song re-identification)"),
                              ("classify", cmd_classify, "predicted label per query (kNN vote, top 2)")):
        sp = add(name, func, help_)
        sp.add_argument("lib", type=ca.path)
        sp.add_argument("queries", type=ca.path, nargs="+", metavar="QUERY_AUDIO")
        sp.add_argument("-k", type=ca.k_neighbours, default=10, help="neighbours per sub-track (default 10)")
        sp.add_argument("--top", type=ca.k_neighbours, help="results per query (identify 10, classify 2)")
        sp.add_argument("--model", type=ca.model_ref, default="default" if name == "identify" else "similarity",
                        help="identify: the fingerprint space `default`; classify: the `similarity` space")
        sp.add_argument("--json", action="store_true")

    sp = add("hum", cmd_hum, "ranked tracks per hummed query (query by humming)")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("queries", type=ca.path, nargs="*", metavar="QUERY_AUDIO")
    sp.add_argument("--record", type=ca.record_s, metavar="SECONDS",
                    help="record a hum from the microphone first (0.5 to 600 s)")
    sp.add_argument("--device", help="input device (index or name substring; default: the system's)")
    sp.add_argument("-k", type=ca.k_neighbours, default=10, help="results per query (default 10)")
    sp.add_argument("--method", default="rerank", choices=("rerank", "embedding", "melody"),
                    help="rerank (default): embedding search re-ranked by melody alignment; embedding: the "
                         "embedding only; melody: alignment against every track")
    sp.add_argument("--model", type=ca.model_ref, default="qbh-default",
                    help="query-by-humming model (default: the built-in qbh-default)")
    sp.add_argument("--json", action="store_true")

    sp = add("similar", cmd_similar, "ranked tracks like the query (the similarity space, track level)")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("queries", type=ca.path, nargs="+", metavar="QUERY",
                    help="a file of the library, a track id, or any audio file")
    sp.add_argument("-k", type=ca.k_neighbours, default=10, help="tracks per query (default 10)")
    sp.add_argument("--together", action="store_true", help="one answer for all queries: tracks like these")
    sp.add_argument("--bpm-range", type=ca.percent, metavar="PCT",
                    help="only tracks within PCT %% of the query's tempo (half/double time allowed)")
    sp.add_argument("--key-compatible", action="store_true",
                    help="only tracks whose key mixes with the query's (same, +-1 on the Camelot wheel, relative)")
    sp.add_argument("--no-versions", dest="versions", action="store_false",
                    help="rank by sound alone: do not look for versions sharing the query's audio (edits, "
                         "remasters), which come first otherwise (~0.2 s a query)")
    sp.add_argument("--model", type=ca.model_ref, default="similarity",
                    help="embedding space (default: the similarity model)")
    sp.add_argument("--json", action="store_true")

    sp = add("search", cmd_search, "nearest segments to each segment of the query")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("query", type=ca.path, metavar="QUERY_AUDIO")
    sp.add_argument("-k", type=ca.k_neighbours, default=10, help="neighbours per window of the query (default 10)")
    sp.add_argument("--model", type=ca.model_ref, default="similarity",
                    help="embedding space (default: the similarity model)")
    sp.add_argument("--json", action="store_true")

    sp = add("map", cmd_map, "2-D map of the embeddings (cached in the library)")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("--method", default="umap", choices=("umap", "tsne", "pca"), help="default umap")
    sp.add_argument("--model", type=ca.model_ref, default="similarity",
                    help="embedding space (default: the similarity model)")
    sp.add_argument("--out", type=ca.path, metavar="FILE", help="export .csv or .parquet: segment id, x, y, track, label")

    sp = add("evaluate", cmd_evaluate, "probes, kNN votes, clustering, re-identification, confusion matrix")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("--model", type=ca.model_ref, default="similarity",
                    help="embedding space (default: the similarity model)")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--plots", type=ca.path, metavar="DIR", help="write confusion.png/json, kmeans.png, training.png")
    sp.add_argument("--reid", type=ca.integer(0, 1_000_000), default=100,
                    help="random snippets for re-identification (default 100; 0 = skip)")
    sp.add_argument("--snippet", type=ca.number(0.1, 600, unit=" s"), default=3.0,
                    help="snippet length in seconds (default 3)")
    sp.add_argument("--clusters", type=ca.cluster_counts, default="2-10", metavar="K|A-B",
                    help="k-means with K clusters, or the k of A..B with the best silhouette (default 2-10)")

    sp = add("inspect", cmd_inspect, "mislabel candidates, faulty segments, outliers, near-duplicates")
    sp.add_argument("lib", type=ca.path)
    sp.add_argument("--model", type=ca.model_ref, default="similarity",
                    help="embeddings for label, outlier and duplicate findings (default: the similarity model)")
    sp.add_argument("--kinds", nargs="+", metavar="KIND",
                    help="only these kinds, spaced or comma-separated (default all): label outlier duplicate clipping "
                         "dropouts dc_offset hum crackle dead noise muffled")
    sp.add_argument("--json", action="store_true", help='print {"findings": [...]}')
    sp.add_argument("--out", type=ca.path, metavar="FILE", help="also write the findings to .csv, .parquet or .json")
    sp.add_argument("--top", type=ca.count, default=10,
                    help="findings shown per kind in the text listing (default 10)")

    from musicemb_core.cli_dj import add_parsers as add_dj_parsers

    add_dj_parsers(add)

    sp = add("demo", cmd_demo, "build the demo library if absent, print its summary and open the app")
    sp.add_argument("--lib", type=ca.path, help="where to build it (default: $MUSICEMB_HOME/demo or ~/.local/share/musicemb/demo)")
    sp.add_argument("--no-gui", action="store_true", help="only build and summarise; do not open the app")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every error ends as one line on stderr (exit 1; 2 for usage, 130 for Ctrl-C, SIGTERM or
    SIGHUP); the traceback of an unexpected one goes to the log named in that line, or to stderr with
    ``--debug``."""
    try:
        with _stop_signals_interrupt():
            return _main(argv)
    except KeyboardInterrupt:  # before the command ran (its options were being read)
        print("musicemb: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ca.open_closed_streams()  # started with stdout or stderr closed: what goes there goes nowhere, as asked
    if hasattr(sys.stdout, "reconfigure"):  # a file name that is not UTF-8 is printed as its own bytes, a
        sys.stdout.reconfigure(errors=ca.OUTPUT_ERRORS)  # character the terminal lacks as its escape
    if hasattr(sys.stderr, "reconfigure"):  # ... and in messages with escapes, as Python's stderr does
        sys.stderr.reconfigure(errors="backslashreplace")
    debug, argv = ca.take_debug(argv)
    debug = debug or os.environ.get("MUSICEMB_DEBUG", "") not in ("", "0")
    args = build_parser().parse_args(argv)
    lib = getattr(args, "lib", None)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ca.GuardedOutput(out), ca.Diagnostics(err)
    try:
        if lib is not None and Path(lib).exists() and not Path(lib).is_dir():
            raise MusicEmbError(f"{lib}: is a file, not a library folder")
        status = args.func(args)
        sys.stdout.flush()  # output that cannot be written fails here, not in the interpreter's last flush
        return status
    except (Exception, KeyboardInterrupt) as e:
        if isinstance(e, ca.UsageError):
            ca.usage_error(args.command, e)
        if isinstance(e, ca.OutputError):
            ca.drop_output(out)
            if e.pipe:  # the reader went away (`| head`): nothing to say
                return 141
        return ca.report(e, argv, lib=lib, debug=debug)
    finally:
        sys.stdout, sys.stderr = out, err


if __name__ == "__main__":
    sys.exit(main())
