"""The public Python API called as a notebook would call it, with odd but plausible input: a correct result or a
one-line ConfigError naming the argument, never a silent wrong answer or a library's cryptic crash."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core.audio.segment import cut as knn_cut
from musicemb_core.common.errors import ConfigError
from tests.conftest import embedded_tones, sine, write_tone

SR = 16000


def tone(seconds: float = 8.0) -> np.ndarray:
    """A 440 Hz tone gated at 2 Hz (a beat), float32 mono."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)


def mono_functions():
    from musicemb_core.features.descriptors import describe
    from musicemb_core.features.landmarks import landmarks
    from musicemb_core.features.pitch import pitch_contour
    from musicemb_core.features.tempo_key import analyse

    return {"describe": describe, "landmarks": landmarks, "analyse": analyse, "pitch_contour": pitch_contour}


# --- audio arrays -----------------------------------------------------------------------------------------------

def test_soundfile_layout_is_refused_not_read_as_thousands_of_channels():
    from musicemb_core.audio.resample import resample, to_mono

    stereo = sine(channels=2)  # (16000, 2), as soundfile.read gives it
    for f in (to_mono, lambda y: resample(y, SR, 8000)):
        with pytest.raises(ConfigError, match=r"y: shape \(16000, 2\) is \(samples, channels\).*y\.T"):
            f(stereo)  # before: to_mono gave 2 samples, resample 16000 channels of one sample
    assert np.allclose(to_mono(stereo.T), stereo.mean(axis=1))
    assert resample(stereo.T, SR, 8000).shape == (2, 8000)


@pytest.mark.parametrize("name", ["describe", "landmarks", "analyse", "pitch_contour"])
def test_mono_functions_refuse_stereo_and_integer_samples(name):
    f = mono_functions()[name]
    y = tone(2.0)
    with pytest.raises(ConfigError, match=r"y: shape \(2, 32000\) is not mono.*to_mono\(y\)"):
        f(np.stack([y, y]), SR)  # before: analyse said "too short (0.0 s)", describe asked for 2 GB
    with pytest.raises(ConfigError, match=r"y: shape \(32000, 2\) is not mono.*to_mono\(y\.T\)"):
        f(np.stack([y, y], axis=1), SR)
    with pytest.raises(ConfigError, match=r"y: int16 samples; give float audio in \[-1, 1\] \(int16: y / 32768\)"):
        f((y * 32767).astype(np.int16), SR)  # before: read at 32767 x full scale
    with pytest.raises(ConfigError, match=r"y: NaN/Inf samples \(first at sample 7\)"):
        f(np.where(np.arange(len(y)) == 7, np.nan, y), SR)
    with pytest.raises(ConfigError, match="y: a 0-d array"):
        f(np.float32(0.5), SR)


def test_one_channel_as_a_row_is_mono():
    from musicemb_core.features.tempo_key import analyse

    y = tone()
    assert analyse(y[None, :], SR) == analyse(y, SR) == analyse(y[:, None], SR)  # before: "too short" for (1, n)
    assert analyse(y, SR).bpm == pytest.approx(120, rel=0.02)


def test_describe_refuses_a_sample_rate_of_zero():
    from musicemb_core.features.descriptors import describe

    with pytest.raises(ConfigError, match="sr must be > 0, got 0"):
        describe(tone(1.0), 0)  # before: ZeroDivisionError


def test_log_mel_refuses_integer_and_soundfile_layout():
    from musicemb_core.features.logmel import log_mel

    y = tone(1.0)
    with pytest.raises(ConfigError, match="int16 samples"):
        log_mel((y * 32767).astype(np.int16))  # before: +90 dB, as if full scale were 32767
    with pytest.raises(ConfigError, match=r"\(samples, channels\)"):
        log_mel(np.stack([y, y], axis=1))  # before: 16,000 spectrograms of 2 samples each
    with pytest.raises(ConfigError, match="NaN/Inf"):
        log_mel(np.where(np.arange(len(y)) == 3, np.inf, y))  # before: a NaN spectrogram
    assert log_mel(np.stack([y, y])).shape[0] == 2  # (channels, samples): one each


def test_tiles_refuse_a_size_or_hop_below_one():
    from musicemb_core.features.logmel import tiles

    S = np.ones((4, 100), np.float32)
    for kw in ({"size": 0}, {"hop": 0}, {"hop": -1}):
        with pytest.raises(ConfigError, match="tiles: size and hop must be whole numbers >= 1"):
            tiles(S, **kw)  # before: a range() error, hop 0 silently the size, "need at least one array"
    assert tiles(S, size=np.int64(50), hop=25).shape == (3, 4, 50)


def test_pitch_contour_of_denormal_or_empty_audio():
    from musicemb_core.features.pitch import pitch_contour

    quiet = pitch_contour(np.full(SR, 1e-40, np.float32), SR)  # before: ValueError, overflowed to inf
    assert len(quiet.midi) > 0 and np.isnan(quiet.midi).all()
    assert len(pitch_contour(np.zeros(0, np.float32), SR).midi) == 0  # before: "audio must not be empty"


def test_fault_measures_refuse_the_soundfile_layout():
    from musicemb_core.analysis.faults import measure

    y = sine(channels=2)
    with pytest.raises(ConfigError, match=r"\(samples, channels\)"):
        measure(y, SR)  # before: 16,000 channels of 2 samples, found "dead"
    assert measure(y.T, SR)["n"] == len(y)
    as_float = measure(y.T, float(SR))  # before: a TypeError deep in the spectrum
    assert as_float["sr"] == SR and as_float["rms_db"] == measure(y.T, SR)["rms_db"]


def test_streaming_log_mel_refuses_interleaving_stereo():
    from musicemb_core.features.streaming import StreamingLogMel

    y = tone(1.0)
    with pytest.raises(ConfigError, match=r"block: shape \(16000, 2\) is not mono"):
        StreamingLogMel().push(np.stack([y, y], axis=1))  # before: interleaved into 2 s of mono
    a, b = StreamingLogMel(), StreamingLogMel()
    assert np.array_equal(a.push(y[:, None]), b.push(y))  # one channel as a column is mono


def test_load_refuses_a_negative_offset_instead_of_calling_the_file_corrupt(tmp_path):
    from musicemb_core.audio.decode import load
    from tests.conftest import write_tone

    path = write_tone(tmp_path / "a tone é.wav", 440.0, seconds=1.0)
    with pytest.raises(ConfigError, match="offset must be >= 0 seconds, got -1"):
        load(path, offset=-1)  # before: "decoding failed part-way (truncated or corrupt)"
    assert len(load(path, offset=0.5)[0]) == 4000


def test_describe_files_takes_one_path_alone(tmp_path):
    from musicemb_core.common.progress import drive
    from musicemb_core.features.descriptors import iter_describe
    from tests.conftest import write_tone

    path = write_tone(tmp_path / "tone.wav", 440.0, seconds=1.0)
    rows, failed = drive(iter_describe(str(path)))  # before: each character a file, all "not found"
    assert [r["path"] for r in rows] == [str(path)] and failed == []


def test_keys_as_text_or_pairs():
    from musicemb_core.features.camelot import camelot, compatible, key_name

    assert compatible("8A", "Am") and compatible("Am", (0, "major")) and not compatible("8A", "3B")  # before: TypeError
    assert camelot("F#m") == camelot((6, "minor")) == "11A" and key_name([9, "minor"]) == "A minor"
    with pytest.raises(ConfigError, match=r"not a key: \(0, 'dorian'\)"):
        camelot((0, "dorian"))  # before: "5A", a minor key


# --- search -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    from musicemb_core.data.library import Library

    with pytest.MonkeyPatch.context() as mp:  # the autouse home is per test; this fixture runs before it
        mp.setenv("MUSICEMB_HOME", str(tmp_path_factory.mktemp("home")))
        with Library(embedded_tones(tmp_path_factory.mktemp("misuse"))) as library:
            yield library


def test_searcher_arguments(lib):
    from musicemb_core.search.knn import Searcher

    s = Searcher(lib, use_landmarks=False)
    y = sine(440.0, seconds=5.0)
    with pytest.raises(ConfigError, match=r"y: shape \(80000, 2\) is not mono"):
        s.embed_audio(np.stack([y, y], axis=1))  # before: numpy broadcast error
    with pytest.raises(ConfigError, match="y: NaN/Inf samples"):
        s.embed_audio(np.where(np.arange(len(y)) == 5, np.nan, y))  # before: NaN vectors, lower scores
    with pytest.raises(ConfigError, match="hop_s must be > 0 seconds, got 0"):
        s.embed_audio(y, hop_s=0)  # before: ZeroDivisionError
    q = s.embed_audio(y)
    for call in (s.identify, s.nearest, s.classify):
        for k in (0, -1, 2.5):
            with pytest.raises(ConfigError, match=f"k must be a whole number >= 1, got {k}"):
                call(q, k=k)  # before: faiss AssertionError with no message, or a TypeError
    with pytest.raises(ConfigError, match="top must be a whole number >= 0, got -1"):
        s.identify(q, top=-1)  # before: every track but the last
    assert s.identify(q, k=np.int64(3))[0]["path"].endswith("tone440.wav")
    for sr in (float("nan"), float("inf"), 1e308, 1e-3, "16000"):
        with pytest.raises(ConfigError, match="sr: a sample rate is a number of Hz from 1 to 10,000,000"):
            s.embed_audio(y, sr=sr)  # before: soxr spun forever on NaN, ran out of memory on 0.001


def test_a_quiet_query_in_memory_is_found_as_its_file_is(lib, tmp_path):
    """Peak -62 dBFS (above import's silence, below the sub-tracks' -60 dBFS): the file was found, the same
    samples given in memory found nothing."""
    import soundfile as sf

    from musicemb_core.search.knn import Searcher

    s = Searcher(lib, use_landmarks=False)
    y = sine(440.0, seconds=5.0)
    quiet = (y / np.abs(y).max() * 10 ** (-62 / 20)).astype(np.float32)
    sf.write(tmp_path / "quiet.wav", quiet, SR, subtype="FLOAT")
    by_file = s.identify(s.embed_file(tmp_path / "quiet.wav"))
    in_memory = s.identify(s.embed_audio(quiet, sr=SR))
    assert in_memory and in_memory[0]["path"].endswith("tone440.wav")
    assert [r["path"] for r in in_memory] == [r["path"] for r in by_file]
    assert s.identify(s.embed_audio(np.zeros(5 * SR, np.float32))) == []  # silence: nothing to compare


def test_a_long_query_is_cut_a_batch_at_a_time(lib, monkeypatch):
    import musicemb_core.search.knn as knn

    s = knn.Searcher(lib, use_landmarks=False)
    y = np.tile(sine(440.0, seconds=1.0), 40)  # 40 s: 75 windows of 3 s every 0.5 s
    whole = s.embed_audio(y)
    sizes = []
    monkeypatch.setattr(knn, "cut", lambda y, sr, at, **kw: sizes.append(len(at)) or knn_cut(y, sr, at, **kw))
    q = s.embed_audio(y)
    assert sizes == [64, 11]  # before: all 75 at once (an hour's query: 1.4 GB of windows)
    assert np.array_equal(q.vectors, whole.vectors) and np.array_equal(q.active, whole.active) and len(q.starts) == 75


def test_similar_tracks_arguments(lib):
    from musicemb_core.search.similar import SimilarTracks

    space = SimilarTracks(lib)
    path = lib.tracks()[0].path
    assert space.query(path, k=2) == space.query([path], k=2)  # before: each character a query ("/": a folder)
    with pytest.raises(ConfigError, match="together needs at least one query"):
        space.query([], together=True)  # before: IndexError
    v = space.vectors[0]
    with pytest.raises(ConfigError, match=r"vector: a track vector of 'similarity' is \(\d+,\) finite values, got "
                                          r"shape \(5,\)"):
        space.similar_to(v[:5])  # before: faiss AssertionError
    with pytest.raises(ConfigError, match="with NaN/Inf"):
        space.similar_to(np.full_like(v, np.nan))  # before: [] as if nothing were similar
    with pytest.raises(ConfigError, match="k must be a whole number >= 0, got -1"):
        space.similar_to(v, k=-1)
    assert space.similar_to(v, k=0) == []
    tid = lib.tracks()[0].id
    assert space.query(np.int64(tid), k=2) == space.query(tid, k=2)  # before: 'numpy.int64' is not iterable
    for bad in (-5, float("nan"), "5"):
        with pytest.raises(ConfigError, match="bpm_range is a percentage >= 0"):
            space.query(tid, bpm_range=bad)  # before: [] for -5, no filter for NaN, a TypeError for "5"


def test_hum_query_arguments(lib):
    from musicemb_core.search.qbh import HumSearcher

    hum = HumSearcher.open(lib)
    y = sine(220.0, seconds=3.0)
    for k in (0, 2.5):
        with pytest.raises(ConfigError, match=f"k must be a whole number >= 1, got {k}"):
            hum.query(y, SR, k=k)  # before: [] for 0, a TypeError for 2.5
    with pytest.raises(ConfigError, match=r"y: shape \(48000, 2\) is not mono"):
        hum.query(np.stack([y, y], axis=1), SR)
    for sr in (float("nan"), None):
        with pytest.raises(ConfigError, match="sr: a sample rate is a number of Hz"):
            hum.query(y, sr)  # before: "cannot convert float NaN to integer", a TypeError for None
    with pytest.raises(ConfigError, match="method must be one of rerank, embedding, melody, got 'x'"):
        hum.is_confident([], method="x")  # before: KeyError: 'x'


# --- analysis ---------------------------------------------------------------------------------------------------

def blobs(n_tracks: int = 8, per: int = 5):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(n_tracks) % 2, per)
    X = rng.standard_normal((n_tracks * per, 8)).astype(np.float32) + 3 * labels[:, None]
    return X, labels, np.repeat(np.arange(n_tracks), per)


def test_probe_and_knn_votes_check_their_arrays():
    from musicemb_core.analysis.evaluation import knn_track_votes
    from musicemb_core.analysis.probes import probe_scores
    from musicemb_core.analysis.track_vectors import style_scores

    X, labels, groups = blobs()
    assert probe_scores(X.tolist(), labels.tolist(), groups.tolist())["accuracy"] == 1.0  # before: TypeError
    assert knn_track_votes(X.tolist(), labels.tolist(), groups.tolist())["top1"] == 1.0
    for f in (probe_scores, knn_track_votes):
        with pytest.raises(ConfigError, match=r"labels must have one entry per row of X \(40\), got shape \(30,\)"):
            f(X, labels[:30], groups[:30])  # before: scored on the first 30 rows of X
        with pytest.raises(ConfigError, match="labels must be whole numbers.*np.unique"):
            f(X, np.array(["rock", "jazz"])[labels], groups)
        with pytest.raises(ConfigError, match=r"X: NaN/Inf in 1 of 40 rows \(first: row 3\)"):
            f(np.where(np.arange(40)[:, None] == 3, np.nan, X), labels, groups)
    with pytest.raises(ConfigError, match="k must be a whole number >= 1, got -1"):
        knn_track_votes(X, labels, groups, k=-1)  # before: votes of all neighbours but the last
    with pytest.raises(ConfigError, match="k must be a whole number >= 1, got 0"):
        style_scores(X, labels, k=0)  # before: p_at_k NaN
    with pytest.raises(ConfigError, match="n_splits must be a whole number >= 2, got 1"):
        probe_scores(X, labels, groups, n_splits=1)  # before: "needs at least 2 labels"


def test_kmeans_and_label_issues_refuse_nan_vectors():
    from musicemb_core.analysis.clustering import kmeans_select
    from musicemb_core.analysis.inspection import label_issues, track_outliers

    X, labels, groups = blobs()
    X[5, 2] = np.nan
    with pytest.raises(ConfigError, match=r"X: NaN/Inf in 1 of 40 rows \(first: row 5\)"):
        kmeans_select(X)  # before: sklearn's paragraph about HistGradientBoosting
    with pytest.raises(ConfigError, match="row 5"):
        label_issues(X, labels, groups)  # before: a result from a NaN row's neighbours
    with pytest.raises(ConfigError, match="row 5"):
        track_outliers(X, groups)  # before: no outlier flagged, the NaN row's track's distances all NaN
    with pytest.raises(ConfigError, match="X must be a 2-d array of numbers"):
        kmeans_select(X[:, 0])


def test_set_order_checks_start_and_costs():
    from musicemb_core.analysis.set_order import order_set, transition_costs

    n = 20  # above EXACT_UP_TO: greedy paths, compiled
    V = np.random.default_rng(0).standard_normal((n, 4))
    C = transition_costs(V / np.linalg.norm(V, axis=1, keepdims=True), [120.0] * n, [None] * n)
    assert sorted(order_set(C, start=n - 1)["order"]) == list(range(n))
    with pytest.raises(ConfigError, match="start must be a whole number >= 0, got -1"):
        order_set(C, start=-1)  # before: an order holding -1 and missing the last track
    with pytest.raises(ConfigError, match=f"start must be a track index below {n}, got {n}"):
        order_set(C, start=n)
    with pytest.raises(ConfigError, match=r"C must be a square matrix.*\(5, 5\) with NaN"):
        order_set(transition_costs(np.full((5, 4), np.nan), [120.0] * 5, [None] * 5))  # before: an order
    with pytest.raises(ConfigError, match="got 3 vectors, 1 bpms, 3 keys"):
        transition_costs(np.ones((3, 4)), [120.0], [None] * 3)  # before: numpy broadcast error


def test_projector_arguments():
    from musicemb_core.analysis.projection import Projector

    X, _, _ = blobs()
    with pytest.raises(ConfigError, match="fit the map before placing new points on it"):
        Projector("pca").transform(X)  # before: AttributeError
    with pytest.raises(ConfigError, match="n_components must be a whole number >= 1, got 0"):
        Projector("pca", n_components=0)  # before: a map of 0 columns
    with pytest.raises(ConfigError, match=r"X: NaN/Inf in 1 of 40 rows"):
        Projector("pca").fit(np.where(np.arange(40)[:, None] == 3, np.inf, X))
    umap = Projector("umap", n_neighbors=5).fit(X)
    with pytest.raises(ConfigError, match="X has 4 dims, the map was fitted on 8"):
        umap.transform(X[:, :4])  # before: placed anyway, silently


def test_query_audio_at_another_rate_is_resampled_when_its_rate_is_given(lib):
    """A notebook's ``librosa.load`` gives 22,050 Hz: ``sr=`` resamples it to the model's rate (without it, the
    audio would be read as the model's rate, a 440 Hz tone as 319 Hz)."""
    from musicemb_core.audio.resample import resample
    from musicemb_core.search.knn import Searcher
    from musicemb_core.search.similar import SimilarTracks

    s, space = Searcher(lib, use_landmarks=False), SimilarTracks(lib)
    rate = s.embedder.sr
    y = sine(440.0, sr=22050, seconds=5.0).astype(np.float32)
    at_model_rate = resample(y, 22050, rate)
    assert np.allclose(s.embed_audio(y, sr=22050).vectors, s.embed_audio(at_model_rate).vectors, atol=1e-6)
    assert s.identify(s.embed_audio(y, sr=22050))[0]["path"].endswith("tone440.wav")
    assert np.allclose(space.audio_vector(y, sr=22050), space.audio_vector(at_model_rate), atol=1e-6)
    assert np.allclose(space.audio_vector(at_model_rate, sr=rate), space.audio_vector(at_model_rate))


def test_inspect_takes_one_kind_alone(tmp_path):
    """``iter_inspect(lib, kinds="clipping")`` split the name into letters ("unknown finding kind 'c'")."""
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.inspect import iter_inspect

    write_tone(tmp_path / "music" / "a.wav", 440.0, seconds=6.0)
    with Library(tmp_path / "lib", create=True) as library:
        drive(iter_ingest(library, [tmp_path / "music"], jobs=1, analyse=False))
        report = drive(iter_inspect(library, kinds="clipping"))
    assert report.kinds == ["clipping"]


def test_ingest_takes_one_path_alone_and_refuses_an_unknown_labels_word(tmp_path):
    """A path alone was read as its letters (a str) or refused with a TypeError (a Path); ``labels="folder"``
    (for "folders") labelled nothing without a word."""
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library

    write_tone(tmp_path / "music" / "rock" / "a.wav", 440.0, seconds=6.0)
    write_tone(tmp_path / "music" / "jazz" / "b.wav", 550.0, seconds=6.0)
    with Library(tmp_path / "lib", create=True) as library:
        with pytest.raises(ConfigError, match="labels must be None, \"folders\" or a .* got 'folder'"):
            drive(iter_ingest(library, [tmp_path / "music"], labels="folder", jobs=1, analyse=False))
        assert library.tracks() == []
        drive(iter_ingest(library, str(tmp_path / "music" / "rock"), labels="folders", jobs=1, analyse=False))
        drive(iter_ingest(library, tmp_path / "music" / "jazz" / "b.wav", labels="folders", jobs=1, analyse=False))
        assert sorted((t.path.rsplit("/", 1)[1], t.label) for t in library.tracks()) == [("a.wav", "rock"),
                                                                                          ("b.wav", "jazz")]


def test_a_labels_row_with_a_folder_beats_a_bare_file_name(tmp_path):
    """Rows "a/x.wav,lab2" and "x.wav,lab1": a/x.wav took lab1, the bare name's, without a word."""
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library

    write_tone(tmp_path / "music" / "a" / "x.wav", 440.0, seconds=6.0)
    write_tone(tmp_path / "music" / "b" / "x.wav", 550.0, seconds=6.0, seed=1)
    with Library(tmp_path / "lib", create=True) as library:
        drive(iter_ingest(library, [tmp_path / "music"], labels={"a/x.wav": "lab2", "x.wav": "lab1"}, jobs=1,
                          analyse=False))
        got = {t.path.rsplit("/", 2)[1]: t.label for t in library.tracks()}
    assert got == {"a": "lab2", "b": "lab1"}


def test_map_chunks_and_fit_size_are_checked_before_anything_is_kept(lib):
    """``chunk=-1`` kept a map whose unplaced rows were uninitialised memory (and the cache served it again);
    ``chunk=0`` was a ZeroDivisionError."""
    from musicemb_core.common.progress import drive
    from musicemb_core.workflows.maps import iter_map

    for kw, msg in (({"chunk": -1}, "chunk must be a whole number >= 1, got -1"),
                    ({"chunk": 0}, "chunk must be a whole number >= 1, got 0"),
                    ({"max_fit": 0}, "max_fit must be a whole number >= 3, got 0")):
        with pytest.raises(ConfigError, match=msg):
            drive(iter_map(lib, method="pca", **kw))


def test_train_config_refuses_values_of_the_wrong_type():
    """``epochs=1.5`` was accepted, and training failed with a TypeError after the library was read."""
    from musicemb_core.training.config import TrainConfig

    with pytest.raises(ConfigError, match="epochs must be an integer, got 1.5"):
        TrainConfig(epochs=1.5)
    with pytest.raises(ConfigError, match="lr must be a finite number, got '0.1'"):
        TrainConfig(lr="0.1")
    assert TrainConfig(epochs=np.int64(3)).epochs == 3


def test_inspect_thresholds_and_import_limit_are_checked(tmp_path):
    """``thresholds={"nope": 1}`` was ignored and ``{"clipping": nan}`` found nothing; ``max_duration_s=-1`` failed
    every file as "longer than the limit of -0.0 min"."""
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library
    from musicemb_core.workflows.inspect import iter_inspect

    write_tone(tmp_path / "music" / "a.wav", 440.0, seconds=6.0)
    with Library(tmp_path / "lib", create=True) as library:
        for bad in (-1, 0, float("nan"), "60"):
            with pytest.raises(ConfigError, match="max_duration_s must be a number of seconds > 0"):
                drive(iter_ingest(library, [tmp_path / "music"], jobs=1, analyse=False, max_duration_s=bad))
        assert library.tracks() == [] and library.failures() == []
        drive(iter_ingest(library, [tmp_path / "music"], jobs=1, analyse=False))
        with pytest.raises(ConfigError, match="thresholds: unknown fault kind 'nope'; kinds: clipping, dropouts"):
            drive(iter_inspect(library, kinds="clipping", thresholds={"nope": 1}))
        with pytest.raises(ConfigError, match="thresholds: clipping must be a finite number, got nan"):
            drive(iter_inspect(library, kinds="clipping", thresholds={"clipping": float("nan")}))
        assert drive(iter_inspect(library, kinds="clipping", thresholds={"clipping": 0.5})).kinds == ["clipping"]
