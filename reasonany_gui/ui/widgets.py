"""Small building blocks shared by the screens: page header, card frame, status banner, the wheel guard,
and layouts that adapt to the window width (splitter, columns, scrolling page)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QResizeEvent, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QTabBar,
    QVBoxLayout,
    QWidget,
)


def text_label(text: str, style: str, wrap: bool = True) -> QLabel:
    """A label styled by the style sheet's object name (muted, summary, sectionTitle…), wrapped by default."""
    label = QLabel(text)
    label.setObjectName(style)
    label.setWordWrap(wrap)
    return label


def page_header(title: str, text: str) -> QWidget:
    """A screen's title and one paragraph saying what to do on it."""
    w = QWidget()
    lay = QVBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 8)
    lay.addWidget(text_label(title, "pageTitle", wrap=False))
    lay.addWidget(text_label(text, "muted"))
    return w


def page_layout(page: QWidget, title: str, text: str) -> QVBoxLayout:
    """A screen's vertical layout, opened by its header (every step screen starts this way)."""
    lay = QVBoxLayout(page)
    lay.addWidget(page_header(title, text))
    return lay


class Card(QFrame):
    """A white rounded box with an optional title (styled in style.qss as #card)."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(14, 12, 14, 12)
        self.body.setSpacing(6)
        if title:
            label = QLabel(title)
            label.setObjectName("sectionTitle")
            self.body.addWidget(label)


class Banner(QLabel):
    """A coloured message line: kind is ok | warn | error | info (styled by the `kind` property)."""

    def __init__(self, text: str = "", kind: str = "info", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setObjectName("banner")
        self.setWordWrap(True)
        self.set_message(text, kind)

    def set_message(self, text: str, kind: str = "info") -> None:
        self.setText(text)
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.setVisible(bool(text))

    @property
    def kind(self) -> str:
        return str(self.property("kind"))


# ---------------------------------------------------------------------- wheel guard
#: widgets whose value the wheel would change: spin boxes, combo boxes (a choice may open a file dialog), tab bars
VALUE_WIDGETS = (QAbstractSpinBox, QComboBox, QTabBar)


class _WheelGuard(QObject):
    """One filter on the whole application: the wheel never changes a value, it scrolls the page.

    Why app-wide and regardless of focus: a user scrolling a long screen passes over fields they clicked a moment
    ago; letting a focused field take the wheel changed "Max tokens" 256 -> 8 without a sign (issue 23). A value
    changes only by typing, the arrows or the keyboard. Over a spin box, combo box or tab bar (or a part of one,
    such as a spin box's text field) the wheel goes to the nearest enclosing area that can scroll that way,
    sent explicitly since Qt does not propagate a wheel event a filter took; with none, it is dropped. An open
    combo box list is a scroll area of its own and scrolls as usual. Every value widget, including those of
    dialogs made later, is given click/tab focus when it is polished, so the wheel never focuses it either.
    """

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        kind = event.type()
        if kind == QEvent.Type.Polish and isinstance(obj, VALUE_WIDGETS):
            obj.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            return False
        if kind != QEvent.Type.Wheel or not isinstance(obj, QWidget) or not isinstance(event, QWheelEvent):
            return False
        if _value_widget_of(obj) is None:
            return False
        area = _scrollable_area(obj, vertical=abs(event.angleDelta().y()) >= abs(event.angleDelta().x()))
        if area is not None:
            QApplication.sendEvent(area.viewport(), event)
        return True


def _value_widget_of(widget: QWidget) -> QWidget | None:
    """The value widget `widget` is (or is part of), unless a scroll area (an open combo list) comes first."""
    w: QWidget | None = widget
    while w is not None:
        if isinstance(w, VALUE_WIDGETS):
            return w
        if isinstance(w, QAbstractScrollArea) or w.isWindow():
            return None
        w = w.parentWidget()
    return None


def _scrollable_area(widget: QWidget, vertical: bool) -> QAbstractScrollArea | None:
    """The nearest scroll area around `widget` whose scroll bar in that direction can move."""
    w = widget.parentWidget()
    while w is not None:
        if isinstance(w, QAbstractScrollArea):
            bar = w.verticalScrollBar() if vertical else w.horizontalScrollBar()
            if bar.maximum() > bar.minimum():
                return w
        w = w.parentWidget()
    return None


_GUARD: _WheelGuard | None = None


def guard_wheel() -> None:
    """Install the wheel guard on the application once (idempotent), and give the value widgets that already
    exist click/tab focus (later ones get it when polished)."""
    global _GUARD
    app = QApplication.instance()
    if app is None:
        raise RuntimeError("guard_wheel needs a QApplication")
    if _GUARD is None:
        _GUARD = _WheelGuard(app)
        app.installEventFilter(_GUARD)
    for w in QApplication.allWidgets():
        if isinstance(w, VALUE_WIDGETS):
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


# ---------------------------------------------------------------------- layouts that adapt to the width
class AdaptiveSplitter(QSplitter):
    """A splitter that puts its panes side by side when wide and one above the other when narrow.

    Why: at 1024 px two panes side by side squeeze plots and tables to strips; stacked, each keeps a usable
    size and the page scrolls."""

    def __init__(self, breakpoint: int, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.breakpoint = breakpoint
        self.setChildrenCollapsible(False)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        wanted = Qt.Orientation.Horizontal if event.size().width() >= self.breakpoint else Qt.Orientation.Vertical
        if wanted != self.orientation():
            self.setOrientation(wanted)
        super().resizeEvent(event)


class Columns(QWidget):
    """Cards in two columns when there is room, in one column when not (items keep their order).

    add(widget, span=2) makes a widget take a whole row in the two-column arrangement."""

    def __init__(self, breakpoint: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.breakpoint = breakpoint
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(12)
        self.grid.setVerticalSpacing(12)
        self._items: list[tuple[QWidget, int]] = []
        self._columns = 0

    def add(self, widget: QWidget, span: int = 1) -> None:
        self._items.append((widget, span))
        self._place(self._columns or 2)

    def _place(self, columns: int) -> None:
        for w, _ in self._items:
            self.grid.removeWidget(w)
        row = col = 0
        for w, span in self._items:
            span = min(span, columns)
            if col + span > columns:
                row, col = row + 1, 0
            self.grid.addWidget(w, row, col, 1, span)
            col += span
            if col >= columns:
                row, col = row + 1, 0
        for c in range(2):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)
        self.grid.setRowStretch(row + 1, 1)
        self._columns = columns

    @property
    def columns(self) -> int:
        return self._columns

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        columns = 2 if event.size().width() >= self.breakpoint else 1
        if columns != self._columns:
            self._place(columns)
        super().resizeEvent(event)


def scroll_page(page: QWidget) -> QScrollArea:
    """A screen inside a vertical scroll area: on a small window it scrolls instead of squeezing its widgets
    into each other. The page keeps its full width (no sideways scrolling unless it truly cannot fit)."""
    area = QScrollArea()
    area.setObjectName("pageScroll")
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(page)
    return area


# ---------------------------------------------------------------------- strength follows share
MAX_STRENGTH = 10.0  # MergeConfig's upper bound for a scale


def strength_for_share(percent: float) -> float:
    """1/share, rounded to the spin boxes' two decimals and kept within MergeConfig's range."""
    return round(min(MAX_STRENGTH, 100.0 / max(float(percent), 1e-6)), 2)


def strengths_follow_shares(values: dict[str, Any]) -> bool:
    """True when both strengths already equal 1/share (the demo's setting): the link starts ticked."""
    try:
        return all(
            abs(float(values[f"{r}_scale"]) - strength_for_share(100.0 * float(values[f"{r}_ratio"]))) < 0.006
            for r in ("reasoning", "domain")
        )
    except (KeyError, TypeError, ValueError):
        return False


def _spin(box: QWidget) -> QDoubleSpinBox:
    """A share or strength setting's widget: a decimal spin box (setting_widgets makes one for every float)."""
    assert isinstance(box, QDoubleSpinBox), box
    return box


class StrengthLink(QObject):
    """A check box that keeps each expert's strength at 1/share while it is ticked (the strength boxes are then
    greyed out). pairs: [(share box in %, strength box), ...]."""

    def __init__(
        self, check: QCheckBox, pairs: Iterable[tuple[QWidget, QWidget]], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.check = check
        self.pairs = [(_spin(share), _spin(strength)) for share, strength in pairs]
        check.toggled.connect(self.sync)
        for share, _strength in self.pairs:
            share.valueChanged.connect(lambda *_: self.sync())

    def sync(self, *_args: object) -> None:
        on = self.check.isChecked()
        for share, strength in self.pairs:
            strength.setEnabled(not on)
            if on:
                value = strength_for_share(share.value())
                if abs(strength.value() - value) > 1e-9:
                    strength.setValue(value)
