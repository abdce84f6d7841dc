"""A form built from config dataclasses: one editor per field, chosen by the field's type and default."""

from __future__ import annotations

import dataclasses
import typing

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)


class NumberBox(QDoubleSpinBox):
    """A float field shown as written ("0.001", "3e-06", "0.75": fixed decimals showed "0.00100000", or rounded a
    fine-tuning learning rate of 3e-6 to 0.0), stepping a tenth of its value's own decimal."""

    def __init__(self, value: float):
        super().__init__(minimum=0.0, maximum=1e6, decimals=12)
        self.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        self.setValue(value)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 (Qt override)
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # noqa: D102 (Qt override)
        try:
            ok = self.minimum() <= float(text) <= self.maximum()
        except ValueError:
            ok = None  # "", "1e", "0." while typing
        state = QValidator.State
        return (state.Acceptable if ok else state.Intermediate if ok is None else state.Invalid), text, pos


class ConfigForm(QWidget):
    """Editors for the fields of ``cls`` (a frozen dataclass); ``values()`` returns them as a dict.

    ``choices`` maps a field name to its allowed values (a combo box); optional fields use a line edit where
    empty means None; ``hidden`` fields are left out (they keep their defaults); ``first`` fields come first,
    in that order, the others in the dataclass's order. ``texts`` maps a field name to (label, tooltip): the label
    in place of the field's name, the tooltip on both (naming the field, as errors do); else the name is shown.
    """

    def __init__(self, cls: type, *, choices: dict[str, list] | None = None, hidden: tuple[str, ...] = (),
                 defaults: dict | None = None, first: tuple[str, ...] = (),
                 texts: dict[str, tuple[str, str]] | None = None):
        super().__init__()
        self.cls = cls
        self.editors: dict[str, QWidget] = {}
        self.layout_ = layout = QFormLayout(self)
        hints = typing.get_type_hints(cls)
        defaults = defaults or {}
        rank = {name: i for i, name in enumerate(first)}
        for f in sorted(dataclasses.fields(cls), key=lambda f: rank.get(f.name, len(rank))):
            if f.name in hidden:
                continue
            value = defaults.get(f.name, f.default)
            editor = self._editor(f.name, hints[f.name], value, (choices or {}).get(f.name))
            self.editors[f.name] = editor
            layout.addRow(*self._row(f.name, editor, (texts or {}).get(f.name)))

    @staticmethod
    def _row(name: str, editor: QWidget, text: tuple[str, str] | None) -> tuple[QLabel, QWidget]:
        """The row's label and editor, both with the field's tooltip."""
        label = QLabel(text[0] if text else name.replace("_", " "))
        if text:
            for w in (label, editor):
                w.setToolTip(f"{name}: {text[1]}")
        label.setBuddy(editor)
        return label, editor

    @staticmethod
    def _editor(name: str, hint, value, choices) -> QWidget:
        if choices is not None:
            w = QComboBox()
            w.addItems([str(c) for c in choices])
            w.setCurrentText("" if value is None else str(value))
            w.setObjectName(name)
            return w
        optional = type(None) in typing.get_args(hint)
        base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
        if base is bool:
            w = QCheckBox()
            w.setChecked(bool(value))
        elif base is int and not optional:
            w = QSpinBox(minimum=0, maximum=10_000_000)
            w.setValue(int(value))
        elif base is float and not optional:
            w = NumberBox(float(value))
        else:
            w = QLineEdit("" if value is None else str(value))
            w.setPlaceholderText("(none)" if optional else "")
            w.setProperty("cast", base.__name__ if isinstance(base, type) else "str")
        w.setObjectName(name)
        return w

    def show_only(self, names: set[str]) -> None:
        """Show the rows of the fields in ``names`` and hide the others (hidden fields keep their values)."""
        for name, editor in self.editors.items():
            self.layout_.setRowVisible(editor, name in names)

    def values(self) -> dict:
        hints = typing.get_type_hints(self.cls)
        out = {}
        for name, w in self.editors.items():
            base = next((a for a in typing.get_args(hints[name]) if a is not type(None)), hints[name])
            if isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QSpinBox | QDoubleSpinBox):
                out[name] = w.value()
            else:
                text = w.currentText() if isinstance(w, QComboBox) else w.text().strip()
                try:
                    out[name] = None if text == "" else base(text) if base in (int, float) else text
                except ValueError:  # the field and what it wants, not Python's "invalid literal for int()"
                    raise ValueError(f"{name}: {text!r} is not a {'whole number' if base is int else 'number'}") \
                        from None
        return out

    def set_value(self, name: str, value) -> None:
        w = self.editors[name]
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QSpinBox | QDoubleSpinBox):
            w.setValue(value)
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        else:
            w.setText("" if value is None else str(value))
