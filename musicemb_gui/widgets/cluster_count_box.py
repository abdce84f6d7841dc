"""How many k-means clusters to find: "auto" (the silhouette's choice) or a number."""

from __future__ import annotations

from PySide6.QtWidgets import QSpinBox

from musicemb_core.analysis.clustering import AUTO_KS


class ClusterCountBox(QSpinBox):
    """A spin box whose minimum reads "clusters: auto" (the k of :data:`AUTO_KS` with the best silhouette)."""

    def __init__(self, maximum: int, what: str = "How many k-means clusters"):
        super().__init__(minimum=1, maximum=maximum, value=1, prefix="clusters: ")
        self.setSpecialValueText("clusters: auto")
        self.setToolTip(f"{what} (auto: the k of {AUTO_KS.start}-{AUTO_KS.stop - 1} with the best silhouette)")
        self.setKeyboardTracking(False)  # typed digits count once the number is entered

    def ks(self) -> range | list[int]:
        """The k to try: the one set, or :data:`AUTO_KS`."""
        return AUTO_KS if self.value() == self.minimum() else [self.value()]
