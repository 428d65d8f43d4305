"""The Re-tune card: method, shares, strengths and scope applied to the scores already measured (seconds)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QWidget,
)

from reasonany_gui.engine.settings.config import MergeConfig

from ..setting_widgets import changed_signal, setting_value, setting_widget, show_setting
from ..texts import FOLLOW_HELP, FOLLOW_LABEL, LABELS, TOOLTIPS, setting_words
from ..widgets import Card, StrengthLink, strengths_follow_shares

#: the settings on the Re-tune card (config.Setting.retune_card): applied to the measured scores in seconds
RETUNE_FIELDS = MergeConfig.fields_where(retune_card=True)
HINT = "Uses the importance scores already measured: seconds, not a new run."
#: where each sits in the card's grid (row, column): method and scope, then shares above strengths
PLACES = {
    "method": (0, 0),
    "scope": (0, 2),
    "reasoning_ratio": (1, 0),
    "domain_ratio": (1, 2),
    "reasoning_scale": (2, 0),
    "domain_scale": (2, 2),
}


class RetuneCard(Card):
    """Method, shares, strengths and scope, applied to the cached scores with one click (compact rows).

    The method is here because "Find a good setting" may recommend Task Arithmetic, TIES or DARE: the card must
    show what the masks and a saved version use, and let the user go back to ReasonAny."""

    retune_requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.boxes: dict[str, QWidget] = {}
        title = QLabel("Re-tune")
        title.setObjectName("sectionTitle")
        title.setToolTip("Uses the importance scores already measured: takes seconds, not a new run.")
        self.hint = QLabel(HINT)
        self.hint.setObjectName("muted")
        self.hint.setWordWrap(True)
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.toggled.connect(self.set_expanded)
        head = QHBoxLayout()
        head.addWidget(title)
        head.addWidget(self.hint, 1)
        head.addWidget(self.toggle)
        self.fields = QWidget()
        grid = QGridLayout(self.fields)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(4)
        extra_rows = iter(range(3, 3 + len(RETUNE_FIELDS)))
        for name in RETUNE_FIELDS:
            box = setting_widget(name)
            label = QLabel(LABELS[name])
            label.setToolTip(TOOLTIPS[name])
            row, col = PLACES.get(name) or (next(extra_rows), 0)  # a new card setting gets a row of its own
            grid.addWidget(label, row, col)
            grid.addWidget(box, row, col + 1)
            self.boxes[name] = box
        for col in (1, 3):
            grid.setColumnStretch(col, 1)
        self.follow = QCheckBox(FOLLOW_LABEL)
        self.follow.setToolTip(FOLLOW_HELP)
        grid.addWidget(self.follow, grid.rowCount(), 0, 1, 4)
        self.link = StrengthLink(
            self.follow,
            [
                (self.boxes["reasoning_ratio"], self.boxes["reasoning_scale"]),
                (self.boxes["domain_ratio"], self.boxes["domain_scale"]),
            ],
            self,
        )
        self.apply_button = QPushButton("Update masks")
        self.apply_button.setObjectName("primary")
        self.apply_button.setToolTip(
            "Re-select the weights with these values from the scores already measured (seconds, no new measurement)."
        )
        self.apply_button.clicked.connect(lambda: self.retune_requested.emit(self.values()))
        head.addWidget(self.apply_button)
        self.body.addLayout(head)
        self.body.addWidget(self.fields)
        for box in self.boxes.values():
            changed_signal(box).connect(self._update_hint)
        self.set_expanded(False)

    def set_expanded(self, expanded: bool) -> None:
        """Show the fields, or only the setting in one line. Why folded by default: at 1024 × 700 the open card
        pushed the mask maps below the fold (issue 23); the line says what the masks use, "Change" opens it."""
        if self.toggle.isChecked() != expanded:
            self.toggle.setChecked(expanded)  # calls back here
            return
        self.fields.setVisible(expanded)
        self.toggle.setText("Hide" if expanded else "Change…")
        self.toggle.setArrowType(Qt.ArrowType.UpArrow if expanded else Qt.ArrowType.DownArrow)
        self._update_hint()

    def _update_hint(self, *_args: object) -> None:
        self.hint.setText(self.setting_line() if self.fields.isHidden() else HINT)

    def setting_line(self) -> str:
        """The card's setting in one line, in the app's words: method, shares, strengths, scope."""
        return setting_words(self.values())

    def load(self, config: MergeConfig) -> None:
        self.follow.setChecked(False)
        for name, box in self.boxes.items():
            show_setting(name, box, getattr(config, name))
        self.follow.setChecked(strengths_follow_shares(self.values()))
        self._update_hint()

    def values(self) -> dict[str, Any]:
        return {name: setting_value(name, box) for name, box in self.boxes.items()}
