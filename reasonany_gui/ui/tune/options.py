"""The search's options (how many candidates, an optional checks file), on Results and on Settings."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QWidget,
)

DEFAULT_BUDGET = 24
MAX_BUDGET = 500

BUDGET_TIP = (
    "How many candidate merges to measure. Each costs one merge in memory and a few forward passes "
    "over held-out rows (no new gradients); 24 is a good start, more refines the best one further."
)
CHECKS_TIP = (
    "Optional: a JSON file of check questions with the answer the reply must contain, and prompts the "
    'model should refuse or answer, e.g. {"reasoning": [{"prompt": "…", "answer": "42"}], '
    '"refuse": [{"prompt": "…"}], "help": [{"prompt": "…"}]}. Without it, the checks are '
    "held-out rows of your calibration data."
)


class TuneOptions(QWidget):
    """The search's options: how many candidates, and an optional checks file (on Results and on Settings)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.budget = QSpinBox()
        self.budget.setRange(1, MAX_BUDGET)
        self.budget.setValue(DEFAULT_BUDGET)
        self.budget.setToolTip(BUDGET_TIP)
        self.checks = QLineEdit()
        self.checks.setPlaceholderText("none: held-out rows of your calibration data")
        self.checks.setToolTip(CHECKS_TIP)
        self.choose = QPushButton("Choose…")
        self.choose.setToolTip(CHECKS_TIP)
        self.choose.clicked.connect(self._choose)
        self.clear = QToolButton()
        self.clear.setText("Clear")
        self.clear.setToolTip("Use no checks file.")
        self.clear.clicked.connect(lambda: self.checks.setText(""))
        budget_label = QLabel("Candidates to try")
        budget_label.setToolTip(BUDGET_TIP)
        checks_label = QLabel("Checks file (optional)")
        checks_label.setToolTip(CHECKS_TIP)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(4)
        grid.addWidget(budget_label, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.budget)
        row.addStretch(1)
        grid.addLayout(row, 0, 1, 1, 3)
        grid.addWidget(checks_label, 1, 0)
        grid.addWidget(self.checks, 1, 1)
        grid.addWidget(self.choose, 1, 2)
        grid.addWidget(self.clear, 1, 3)
        grid.setColumnStretch(1, 1)
        self.budget.valueChanged.connect(lambda *_: self.changed.emit())
        self.checks.textChanged.connect(lambda *_: self.changed.emit())

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a checks file", self.checks.text(), "Checks (*.json);;All files (*)"
        )
        if path:
            self.checks.setText(path)

    def values(self) -> dict[str, Any]:
        """{"budget": int, "checks": path or None} (the tune job's options)."""
        text = self.checks.text().strip()
        return {"budget": int(self.budget.value()), "checks": text or None}

    def set_values(self, budget: int, checks: str | None) -> None:
        """Show values without echoing `changed` (the window keeps the two copies in step)."""
        for w in (self.budget, self.checks):
            w.blockSignals(True)
        try:
            self.budget.setValue(max(1, min(int(budget), MAX_BUDGET)))
            self.checks.setText(checks or "")
        finally:
            for w in (self.budget, self.checks):
                w.blockSignals(False)
