"""Training panel: a form built from the training and model configs, Start runs ``iter_train`` as a job, live
loss/accuracy curves, Cancel keeps the last checkpoint, and when done: embed the library with the new model."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from musicemb_core.common.errors import MusicEmbError
from musicemb_core.models.config import ModelConfig
from musicemb_core.models.registry import encoder_names
from musicemb_core.training.config import STRATEGIES, TrainConfig
from musicemb_gui.panels.config_form import ConfigForm
from musicemb_gui.session import Session
from musicemb_gui.widgets.curve_view import CurveView

# Fields read by one strategy only (the others apply to every strategy): the form shows the chosen one's.
STRATEGY_FIELDS = {
    "supervised": {"max_per_class"},
    "transfer": {"max_per_class", "svm_head"},
    "triplet": {"margin", "neighbour_s"},
    "autoencoder": {"tile_frames", "recon_weight", "aux_weight"},
    "contrastive": {"temperature", "shift_s"},
    "qbh": {"temperature", "songs"},
}
SPECIFIC = set().union(*STRATEGY_FIELDS.values())
# What each field is (label, tooltip): bare field names ("lr", "shift s", "dim") said neither meaning nor unit.
TRAIN_TEXTS = {
    "strategy": ("strategy", "how the model learns: supervised (from labels), transfer (a saved model adapted), "
                             "triplet (nearby seconds of a track alike), autoencoder (rebuilding the spectrogram), "
                             "contrastive (two altered copies of a segment alike), qbh (query by humming)"),
    "epochs": ("epochs", "passes over the training data (qbh: 100 steps each)"),
    "batch_size": ("batch size", "segments per training step"),
    "lr": ("learning rate", "the optimiser's step size; lower it if the loss jumps about"),
    "weight_decay": ("weight decay", "pull of the weights towards 0 (regularisation)"),
    "val_fraction": ("val fraction", "share of the tracks held out to score each epoch (0 to under 1)"),
    "patience": ("patience (epochs)", "stop after this many epochs without progress; 0: never stop early"),
    "seed": ("seed", "random seed: the same seed and settings, the same run"),
    "steps_per_epoch": ("steps per epoch", "a cap on the steps of an epoch; empty: one pass over the data"),
    "max_per_class": ("max per label", "at most this many segments of each label per epoch"),
    "from_model": ("from model", "a saved model to start from (transfer needs one); empty: a new model"),
    "freeze_until": ("freeze until", "a layer: it and those before it are not trained (transfer: all but fc)"),
    "svm_head": ("SVM head", "transfer: fit a linear SVM on the frozen embeddings at the end"),
    "margin": ("margin", "triplet loss margin: how much nearer the neighbour must be than the other track"),
    "neighbour_s": ("neighbour (s)", "a segment's neighbour starts within this many seconds of it, same track"),
    "temperature": ("temperature", "softmax temperature of the loss: lower is stricter"),
    "shift_s": ("shift (s)", "the two views of a segment are shifted in time by up to this many seconds"),
    "tile_frames": ("tile (frames)", "spectrogram frames per tile, a power of two (100 frames: 1 s)"),
    "recon_weight": ("recon weight", "weight of the spectrogram reconstruction loss"),
    "aux_weight": ("label weight", "weight of the label classifier loss on labelled segments (0: none)"),
    "spec_augment": ("SpecAugment", "mask random frequency bands and time spans of the inputs while training"),
    "songs": ("songs", "melodies of the training collections rendered as songs"),
    "device": ("device", "where to train: auto (a GPU when there is one), cpu or cuda"),
}
MODEL_TEXTS = {
    "arch": ("architecture", "the encoder network: resnet18, cnn2 (small, fast) or vgg"),
    "dim": ("embedding size", "numbers in each embedding"),
    "width": ("width", "resnet18: base channels (64: a full ResNet18); smaller trains faster"),
    "dropout": ("dropout", "dropout probability before the last layer, 0 to under 1"),
}
# The command line's bounds: a width of 10 million failed in torch's allocator (a traceback), a dim of millions
# made vectors of megabytes each.
MAXIMA = {"epochs": 100_000, "batch_size": 65_536, "width": 1024, "dim": 8192}


def finished_text(result, planned: int | None, replacing: bool = False) -> str:
    """"mine: cancelled after 1 of 20 epochs (loss 1.604, val loss 1.585)": the figures named as the curves are;
    ``replacing`` a saved model, a run that ended before its first epoch says that model is kept."""
    done = result.epochs_done
    of = f"{done} of {planned}" if planned and result.status != "done" else f"{done}"
    best = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in result.best.items() if isinstance(v, float))
    return (f"{result.name}: {result.status} after {of} epoch{'s' * ((planned or done) != 1)}"
            + (f" ({best})" if best else "") + ("; the model saved before is kept" if replacing and not done else ""))


class TrainingPanel(QWidget):
    def __init__(self, session: Session):
        super().__init__()
        self.session = session
        self.job = None
        self.trained: str | None = None
        self.read_only = ""  # why the open library cannot be written ("": it can): no training, no embedding
        self._embeddable = False  # the model just trained may embed the library (Embed is on where it is writable)
        self.may_embed: Callable[[str], bool] = lambda name: True  # the window asks before a partly trained one
        self._generation, self._strategy = session.generation, ""  # the library and strategy of the current run
        self._planned: int | None = None  # its epochs asked for
        self._replacing = False  # it replaces a saved model (kept until the run's first epoch is saved)
        session.libraryOpened.connect(self._library_opened)
        self.train_form = ConfigForm(TrainConfig, choices={"strategy": list(STRATEGIES),
                                                           "device": ["auto", "cpu", "cuda"]},
                                     defaults={"epochs": 5, "strategy": "contrastive"},
                                     first=("strategy", *sorted(SPECIFIC)),  # its own fields under the strategy
                                     texts=TRAIN_TEXTS)
        self.model_form = ConfigForm(ModelConfig, choices={"arch": [n for n in encoder_names() if n != "simstats"]},
                                     hidden=("in_channels", "vgg_rgb", "weights"), defaults={"width": 16},
                                     texts=MODEL_TEXTS)
        for form in (self.train_form, self.model_form):
            for name in MAXIMA.keys() & form.editors.keys():
                form.editors[name].setMaximum(MAXIMA[name])
        self.name = QLineEdit("my-model")
        self.start = QPushButton("Start training")
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.embed = QPushButton("Embed the library with this model")
        self.embed.setEnabled(False)
        self.state = QLabel("")
        self.state.setTextFormat(Qt.TextFormat.PlainText)  # names models, errors name files
        self.curves = CurveView(empty_text="Choose a strategy and press Start training: the loss and accuracy "
                                           "curves appear here as the model learns.")
        strategy = self.train_form.editors["strategy"]
        strategy.currentTextChanged.connect(self._strategy_chosen)
        self._strategy_chosen(strategy.currentText())
        forms = QWidget()  # two columns, the strategy first: more fields in sight in a short dock
        fl = QHBoxLayout(forms)
        for title, form in (("Training", self.train_form), ("Model", self.model_form)):
            column = QVBoxLayout()
            column.addWidget(QLabel(f"<b>{title}</b>"))
            column.addWidget(form)
            column.addStretch(1)
            fl.addLayout(column)
        scroll = QScrollArea()
        scroll.setWidget(forms)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(560)
        buttons = QHBoxLayout()
        for w in (QLabel("Name:"), self.name, self.start, self.cancel, self.embed):
            buttons.addWidget(w)
        right = QVBoxLayout()
        right.addLayout(buttons)
        right.addWidget(self.state)
        right.addWidget(self.curves, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addLayout(right, 1)
        self.start.clicked.connect(self.start_training)
        self.cancel.clicked.connect(self._cancel)
        self.embed.clicked.connect(self.embed_library)

    def _strategy_chosen(self, strategy: str) -> None:
        self.train_form.show_only(set(self.train_form.editors) - SPECIFIC | STRATEGY_FIELDS.get(strategy, set()))

    def start_training(self) -> None:
        try:
            train = TrainConfig.from_dict(self.train_form.values())
            model = None if train.from_model else ModelConfig.from_dict(self.model_form.values())
        except (MusicEmbError, TypeError, ValueError) as e:
            self.state.setText(f"⚠ {e}")
            return
        if self.session.lib_path is None:
            self.state.setText("⚠ open a library first")
            return
        name = self.name.text().strip() or "my-model"
        replace = (self.session.lib_path / "models" / name / "config.json").exists()
        if replace and not self.confirm_replace(name):
            self.state.setText(f"{name} kept: choose another name to train a new model")
            return
        self._generation, self._strategy = self.session.generation, train.strategy
        self._planned, self._replacing = train.epochs, replace

        def work(lib, token):
            from musicemb_core.training.entry import iter_train

            return (yield from iter_train(lib, name=name, train=train, model=model, replace=replace, cancel=token))
        self.curves.clear("Waiting for the first training steps…")
        self.job = self.session.library_job(f"train {name} ({train.strategy})", work, writes=True)
        self.job.progress.connect(self._progress)
        self.job.finished.connect(self._finished)
        self.job.failed.connect(self._failed)
        self.job.cancelled.connect(self._failed)
        self.job.ended.connect(lambda _job: self._trained_again(name))
        self.start.setEnabled(False)
        self.cancel.setEnabled(True)
        self._set_embeddable(False)
        self.state.setText(f"training {name}…")

    def confirm_replace(self, name: str) -> bool:
        """Whether to train the library's model ``name`` again from scratch (asked: it replaces the one saved)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Replace the model?",
                          f"The library already has a model named {name!r}. Training replaces it from scratch once "
                          "the new run saves its first epoch (its embeddings then need embedding again).",
                          QMessageBox.StandardButton.Cancel, self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # the name as written
        replace = box.addButton("Replace it", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is replace

    def _progress(self, ev) -> None:
        if not self.session.is_current(self._generation):  # a run of the library open before goes on
            return
        if ev.stage != "train" or not ("step" in ev.info or ev.info.get("epoch_end")):  # qbh: rendering, ...
            self.state.setText(f"{ev.message or ev.stage}: {ev.done}/{ev.total or '?'}")
            return
        info = ev.info
        if "step" in info:
            self.curves.add_point("train loss", ev.done, info["loss"])
            if "acc" in info:
                self.curves.add_point("train acc", ev.done, info["acc"])
            self.state.setText(f"epoch {info['epoch']}, step {info['step']}: loss {info['loss']:.4f}")
        if info.get("epoch_end"):
            for key, series in (("val_loss", "val loss"), ("val_acc", "val acc")):
                if info.get(key) is not None:
                    self.curves.add_point(series, ev.done, info[key])

    def _library_opened(self) -> None:
        """Another library: its models are not this one's (a run still going ends without offering to embed, its
        curves and state are no longer shown)."""
        self.trained = None
        self._set_embeddable(False)
        self.curves.clear()
        self.state.setText("the run in the library open before goes on (Cancel stops it)" if self.cancel.isEnabled()
                           else "")

    def _finished(self, result) -> None:
        if not self._idle():
            return
        self.trained = result.name
        self.state.setText(finished_text(result, self._planned, self._replacing))
        self._set_embeddable(self._strategy != "qbh")  # a QBH model embeds hums, not segments

    def _failed(self, *args) -> None:
        """Failed (message, traceback), or cancelled (no arguments) before training began: a cancel within the
        training loop ends as a result (its checkpoint kept)."""
        if self._idle():
            self.state.setText(f"⚠ training stopped: {args[0]}" if args and args[0] else
                               "training cancelled before its first step: nothing was trained")
            if self.curves.stack.empty:  # it said "Waiting for the first training steps…" for ever
                self.curves.clear("No training step ran.")

    def _trained_again(self, name: str) -> None:
        """A run of the model in use ended (done, failed or cancelled, its checkpoint saved): the vectors shown were
        made by its old weights (the session says so and shows them no more)."""
        if name == self.session.model and self.session.is_current(self._generation):
            self.session.reload_embeddings()

    def _idle(self) -> bool:
        """Start may be pressed again; whether the run that ended was the open library's (else its state goes)."""
        self.start.setEnabled(not self.read_only)
        self.cancel.setEnabled(False)
        if self.session.is_current(self._generation):
            return True
        self.state.setText("")
        return False

    def set_read_only(self, note: str) -> None:
        """``note``: why the open library cannot be written ("": it can). Meanwhile Start training and Embed are
        off, saying why; a run going on may still be cancelled."""
        self.read_only = note
        self.start.setEnabled(not note and not self.cancel.isEnabled())  # Cancel is on while a run goes on
        self._set_embeddable(self._embeddable)
        for b in (self.start, self.embed):
            b.setToolTip(note)

    def _set_embeddable(self, on: bool) -> None:
        self._embeddable = on
        self.embed.setEnabled(on and not self.read_only)

    def _cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def embed_library(self) -> None:
        """Embed every segment with the model just trained (a partly trained one if confirmed), then switch the
        map to it."""
        name = self.trained
        if not self.may_embed(name):
            return

        def work(lib, token):
            from musicemb_core.inference import iter_embed

            return (yield from iter_embed(lib, model=name, cancel=token))
        self.session.library_job(f"embed with {name}", work, on_done=self._embedded, writes=True)

    def _embedded(self, _report) -> None:
        try:
            self.session.set_model(self.trained)
        except MusicEmbError as e:  # the library gone or its catalogue busy since the embed
            self.state.setText(f"library embedded with {self.trained}; not shown: {e}")
            return
        self.state.setText(f"library embedded with {self.trained}; the map shows it")
