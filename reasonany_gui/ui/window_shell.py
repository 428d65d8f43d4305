"""The main window's frame: the sidebar of steps with Merge and Open run…, the stacked screens with Back/Next,
and the status bar; plus the one-line menu-action helper.

Why apart from MainWindow: this is layout only (no state, no jobs), and MainWindow is easier to read as what
the app does when the frame's buttons are pressed.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

SIDEBAR_WIDTH = 210


class Shell:
    """Builds the frame into `window` (central widget and status bar) and keeps its controls as attributes."""

    def __init__(self, window: QMainWindow, screens: list[QWidget], titles: list[str]) -> None:
        self.stack = QStackedWidget()
        for screen in screens:
            self.stack.addWidget(screen)
        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        for i, title in enumerate(titles):
            item = QListWidgetItem(f"{i + 1}   {title}")
            item.setSizeHint(QSize(180, 40))
            self.nav.addItem(item)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.merge_button = QPushButton("Merge")
        self.merge_button.setObjectName("primary")
        self.merge_button.setToolTip("Measure, select and save the merged model with the current choices.")
        self.open_run_button = QPushButton("Open run…")
        self.open_run_button.setToolTip("Show the report and masks of an earlier output folder.")
        self.back_button = QPushButton("◂ Back")
        self.next_button = QPushButton("Next ▸")

        central = QWidget()
        hl = QHBoxLayout(central)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.setSpacing(0)
        hl.addWidget(self._sidebar())
        hl.addWidget(self._content(), 1)
        window.setCentralWidget(central)

        self.status_text = QLabel("Ready.")
        self.status_progress = QProgressBar()
        self.status_progress.setRange(0, 1000)
        self.status_progress.setFixedWidth(160)
        self.status_progress.setVisible(False)
        self.status_cancel = QToolButton()
        self.status_cancel.setText("Cancel")
        self.status_cancel.setVisible(False)
        window.statusBar().addWidget(self.status_text, 1)
        window.statusBar().addPermanentWidget(self.status_progress)
        window.statusBar().addPermanentWidget(self.status_cancel)
        self.nav.setCurrentRow(0)

    def _sidebar(self) -> QWidget:
        brand = QLabel("ReasonAny")
        brand.setObjectName("brand")
        tagline = QLabel("Reasoning + your domain,\nwithout training")
        tagline.setObjectName("tagline")
        side = QWidget()
        side.setObjectName("sidebar")
        sl = QVBoxLayout(side)
        sl.setContentsMargins(12, 16, 12, 16)
        sl.addWidget(brand)
        sl.addWidget(tagline)
        sl.addSpacing(12)
        sl.addWidget(self.nav, 1)
        sl.addWidget(self.merge_button)
        sl.addWidget(self.open_run_button)
        side.setFixedWidth(SIDEBAR_WIDTH)
        return side

    def _content(self) -> QWidget:
        footer = QHBoxLayout()
        footer.addWidget(self.back_button)
        footer.addStretch(1)
        footer.addWidget(self.next_button)
        content = QWidget()
        content.setObjectName("content")
        cl = QVBoxLayout(content)
        cl.setContentsMargins(20, 16, 20, 12)
        cl.addWidget(self.stack, 1)
        cl.addLayout(footer)
        return content


def add_action(
    menu: QMenu, text: str, slot: Callable[[], object], shortcut: QKeySequence.StandardKey | None = None, tip: str = ""
) -> QAction:
    """A menu entry that calls `slot` (owned by the menu, so it lives as long as the window)."""
    act = QAction(text, menu)
    if shortcut is not None:
        act.setShortcut(shortcut)
    if tip:
        act.setToolTip(tip)
    act.triggered.connect(lambda _checked=False: slot())
    menu.addAction(act)
    return act
