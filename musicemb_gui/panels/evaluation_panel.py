"""Evaluation panel: runs ``iter_evaluate`` as a job; metrics, the confusion matrix, the k-means silhouette
curve and the cluster composition."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from musicemb_gui.session import Session
from musicemb_gui.widgets.cluster_count_box import ClusterCountBox
from musicemb_gui.widgets.confusion_view import ConfusionView
from musicemb_gui.widgets.empty_state import EmptyState

EMPTY_METRICS = ("Run evaluation to score the model chosen on the map's toolbar: label probes, kNN votes per track, "
                 "k-means clusters and re-identification of short snippets appear here.")

EMPTY_METRICS_HTML = f"<p style='color: gray'>{EMPTY_METRICS}</p>"


def metrics_html(r: dict) -> str:
    """The evaluation's headline numbers as a small HTML table."""
    rows = [("model", r["model"]), ("segments / tracks", f"{r['segments']:,} / {r['tracks']:,}")]
    for key, name in (("probe_logistic", "logistic probe"), ("probe_svm", "linear SVM probe")):
        if key in r:
            rows.append((name, f"accuracy {r[key]['accuracy']:.3f}, macro-F1 {r[key]['macro_f1']:.3f} "
                               f"({r[key]['folds']} folds by track)"))
    if "knn_tracks" in r:
        rows.append(("kNN vote per track", f"top-1 {r['knn_tracks']['top1']:.3f}, top-2 {r['knn_tracks']['top2']:.3f}"))
    c = r["clustering"]
    purity = "" if c["purity"] is None else f", purity {c['purity']:.3f}"  # 0.0 is a figure too
    asked = len(c.get("ks") or ()) == 1  # one k tried: the one asked for (results without ks: by silhouette)
    rows.append(("k-means", f"k = {c['k']}{'' if asked else ' by silhouette'}{purity}"))
    if "reid" in r:
        rows.append((f"re-identification ({r['reid']['snippet_s']:g} s snippets)",
                     f"top-1 {r['reid']['top1']:.3f}, top-2 {r['reid']['top2']:.3f} over {r['reid']['n']}"
                     if r["reid"]["n"] else "no snippet could be read (the tracks' files are gone or damaged)"))
    return "<table cellpadding=3>" + "".join(f"<tr><td><b>{a}</b></td><td>{html.escape(str(b))}</td></tr>"
                                             for a, b in rows) + "</table>"


class EvaluationPanel(QWidget):
    def __init__(self, session: Session):
        super().__init__()
        self.session = session
        self.result: dict | None = None
        self.job = None  # the evaluation job, while it runs
        self.run = QPushButton("Run evaluation")
        self.reid = QSpinBox(minimum=0, maximum=2000, value=50, prefix="re-ID snippets: ")
        self.clusters = ClusterCountBox(200)
        self.state = QLabel("")
        self.state.setTextFormat(Qt.TextFormat.PlainText)  # errors name files
        self.metrics = QTextBrowser()
        self.metrics.setHtml(EMPTY_METRICS_HTML)  # wrapped, unlike a placeholder (cut off at the box's width)
        self.confusion = ConfusionView(empty_text="Run evaluation on a library with labels: the confusion matrix "
                                                  "shows which labels the model mixes up.")
        self.silhouette = pg.PlotWidget(title="k-means: silhouette by k")
        self.silhouette.setLabel("bottom", "k")
        self.silhouette.setLabel("left", "silhouette (cosine)")
        self.silhouette.getAxis("left").enableAutoSIPrefix(False)
        self.composition = QTableWidget(0, 3)
        self.composition.setHorizontalHeaderLabels(["cluster", "size", "labels"])
        self.composition.horizontalHeader().setStretchLastSection(True)
        self.composition.verticalHeader().hide()
        self.composition.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)  # results: a double-click
        self.composition.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)  # edited them
        top = QHBoxLayout()
        for w in (self.run, self.reid, self.clusters, self.state):
            top.addWidget(w)
        top.addStretch(1)
        clusters = QSplitter(Qt.Orientation.Vertical)
        self.silhouette_box = EmptyState(self.silhouette, "Run evaluation: how well the segments fall into "
                                                          "clusters, for each number of clusters, appears here.")
        clusters.addWidget(self.silhouette_box)
        clusters.addWidget(self.composition)
        clusters.setSizes([180, 120])
        split = QSplitter(Qt.Orientation.Horizontal)
        for w in (self.metrics, clusters, self.confusion):
            split.addWidget(w)
        split.setSizes([380, 380, 520])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self.run.clicked.connect(self.start)
        session.libraryOpened.connect(self.clear)
        session.modelChanged.connect(self.clear)  # the figures were of another model

    def clear(self) -> None:
        """Show nothing: another library or model was chosen (an evaluation still running is of the old one: it is
        cancelled, and Run is free for the new one)."""
        if self.job is not None:
            self.job.cancel()
        self.result = None
        self.state.setText("")
        self.metrics.setHtml(EMPTY_METRICS_HTML)
        self.confusion.clear()
        self.silhouette.clear()
        self.silhouette_box.set_empty(True)
        self.composition.setRowCount(0)

    def start(self) -> None:
        if self.session.lib_path is None:
            self.state.setText("⚠ open a library first")
            return
        if self.job is not None:
            self.session.message.emit(f"{self.job.name} is still running (see Jobs)")
            return
        model, n, ks = self.session.model, self.reid.value(), self.clusters.ks()

        def work(lib, token):
            from musicemb_core.workflows.evaluate import iter_evaluate

            return (yield from iter_evaluate(lib, model=model, reid_n=n, cluster_ks=ks, cancel=token))
        def done(r: dict) -> None:  # not after a cancel, nor once another model is chosen (the panel was cleared)
            if job.state == "done" and model == self.session.model:
                self.show_result(r)
        job = self.job = self.session.library_job(f"evaluate {model}", work, on_done=done,
                                                  on_failed=lambda msg: self.state.setText(f"⚠ {msg}"))
        generation = self.session.generation
        job.cancelled.connect(lambda: self.session.is_current(generation, model)
                              and self.state.setText("evaluation cancelled"))
        self.run.setEnabled(False)
        job.ended.connect(self._ended)
        self.state.setText(f"evaluating {model}…")

    def _ended(self, _job) -> None:
        self.job = None
        self.run.setEnabled(True)

    def show_result(self, r: dict) -> None:
        self.result = r
        self.state.setText("")
        self.metrics.setHtml(metrics_html(r))
        if "confusion" in r:
            self.confusion.set_matrix(np.array(r["confusion"]["matrix"]), r["confusion"]["labels"],
                                      title="logistic probe, out of fold")
        else:
            self.confusion.clear()
            self.confusion.stack.set_empty(True, "No confusion matrix: label some tracks (Library table or map "
                                                 "selection), then evaluate again.")
        c = r["clustering"]
        self.silhouette.clear()
        self.silhouette_box.set_empty(False)
        self.silhouette.plot(c["ks"], c["silhouette"], pen=pg.mkPen("#1f77b4", width=2), symbol="o",
                             symbolBrush="#1f77b4")
        self.silhouette.addItem(pg.InfiniteLine(c["k"], angle=90, pen=pg.mkPen("#888", style=Qt.PenStyle.DashLine)))
        self.composition.setRowCount(len(c["composition"]))
        for i, row in enumerate(c["composition"]):
            labels = ", ".join(f"{k} {v}" for k, v in sorted(row["labels"].items(), key=lambda kv: -kv[1]))
            for j, v in enumerate((row["cluster"], row["size"], labels)):
                self.composition.setItem(i, j, QTableWidgetItem(str(v)))
