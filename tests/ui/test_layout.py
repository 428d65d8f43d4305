"""Every screen at a small (1024 x 700) and a large (1920 x 1080) window: no text cut off, nothing on top of
anything else, no sideways scrolling. And the mouse wheel never edits a value field it merely passes over.

Why a geometric check rather than screenshots: it fails on the exact widget that breaks, on any machine,
and needs no reference pictures. The checks:
- a single-line label or button whose text is wider than the widget (fontMetrics().horizontalAdvance);
- a word-wrapped label shorter than the height its text needs at its width (heightForWidth);
- a widget smaller than its layout's minimum (the page squeezed instead of scrolling);
- two visible sibling widgets that overlap;
- a page wider than its scroll area (sideways scrolling).
"""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QTextDocument, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QLabel,
    QPushButton,
    QScrollBar,
    QSplitterHandle,
    QStyle,
    QStyleOptionComboBox,
    QTabBar,
    QToolButton,
    QWidget,
)

SIZES = ((1024, 700), (1280, 720), (1920, 1080))
PAGES = ("models", "data", "settings", "save", "run", "results")
TOLERANCE = 2  # px of rounding between font metrics and layout


def plain(text: str) -> str:
    if re.search(r"<[a-zA-Z/][^>]*>", text):
        doc = QTextDocument()
        doc.setHtml(text)
        return doc.toPlainText()
    return text


def shown(w: QWidget, root: QWidget) -> bool:
    return w.isVisibleTo(root) and w.width() > 0 and w.height() > 0


def inside_item_view(w: QWidget) -> bool:
    """Widgets owned by scroll areas' machinery (viewports, editors) are laid out by them, not by layouts."""
    p = w.parentWidget()
    while p is not None:
        if isinstance(p, QAbstractScrollArea) and p.objectName() != "pageScroll" and w is not p:
            return True
        p = p.parentWidget()
    return False


def text_problems(root: QWidget) -> list[str]:
    out = []
    for w in root.findChildren(QWidget):
        if not shown(w, root) or inside_item_view(w):
            continue
        fm = w.fontMetrics()
        if isinstance(w, QLabel) and w.text() and w.pixmap().isNull():
            text = plain(w.text())
            if w.wordWrap():
                need = w.heightForWidth(w.width())
                if need > w.height() + TOLERANCE:
                    out.append(f"wrapped label cut at the bottom ({w.height()} < {need} px): {text[:60]!r}")
                continue
            room = w.contentsRect().width() - 2 * w.margin() - max(w.indent(), 0)
            widest = max(fm.horizontalAdvance(line) for line in text.splitlines() or [""])
            if widest > room + TOLERANCE:
                out.append(f"label cut ({widest} > {room} px): {text[:60]!r}")
        elif isinstance(w, (QPushButton, QToolButton, QCheckBox)) and w.text():
            text = w.text().replace("&", "")
            extra = 20 if isinstance(w, QCheckBox) else 8  # the tick box, or the least padding a button has
            if fm.horizontalAdvance(text) + extra > w.width() + TOLERANCE:
                out.append(f"button text cut ({fm.horizontalAdvance(text) + extra} > {w.width()} px): {text!r}")
        elif isinstance(w, QAbstractSpinBox):
            text = w.text()
            edit = w.lineEdit() if hasattr(w, "lineEdit") else None
            room = edit.width() if edit is not None else w.width()
            if fm.horizontalAdvance(text) > room + TOLERANCE:
                out.append(f"value cut ({fm.horizontalAdvance(text)} > {room} px): {text!r}")
        elif isinstance(w, QComboBox) and not w.isEditable() and w.count():
            # any choice may be the one shown ("Task Arithmetic (comparison" was cut, issue 23)
            room = (
                w.style()
                .subControlRect(
                    QStyle.ComplexControl.CC_ComboBox, combo_option(w), QStyle.SubControl.SC_ComboBoxEditField, w
                )
                .width()
            )
            widest = max(range(w.count()), key=lambda i: fm.horizontalAdvance(w.itemText(i)))
            if fm.horizontalAdvance(w.itemText(widest)) > room + TOLERANCE:
                out.append(
                    f"choice cut ({fm.horizontalAdvance(w.itemText(widest))} > {room} px): {w.itemText(widest)!r}"
                )
    return out


def combo_option(w: QComboBox) -> QStyleOptionComboBox:
    option = QStyleOptionComboBox()
    option.initFrom(w)
    option.editable = w.isEditable()
    return option


def squeeze_and_overlap_problems(root: QWidget) -> list[str]:
    out = []
    for parent in [root] + root.findChildren(QWidget):
        if (
            not shown(parent, root)
            or inside_item_view(parent)
            or isinstance(parent, (QComboBox, QAbstractSpinBox, QTabBar))
        ):
            continue
        layout = parent.layout()
        kids = [
            c
            for c in parent.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
            if shown(c, root) and not c.isWindow() and not isinstance(c, (QScrollBar, QSplitterHandle))
        ]
        if layout is not None:
            for c in kids:
                item = layout.itemAt(layout.indexOf(c)) if layout.indexOf(c) >= 0 else None
                if item is None:
                    continue
                need = item.minimumSize()
                if c.width() + TOLERANCE < need.width() or c.height() + TOLERANCE < need.height():
                    out.append(
                        f"{type(c).__name__} {c.objectName()!r} in {type(parent).__name__} squeezed to "
                        f"{c.width()}x{c.height()} (needs {need.width()}x{need.height()})"
                    )
        for i, a in enumerate(kids):
            for b in kids[i + 1 :]:
                both = a.geometry().intersected(b.geometry())
                if both.width() > TOLERANCE and both.height() > TOLERANCE:
                    out.append(
                        f"{type(a).__name__} {_name(a)} overlaps {type(b).__name__} {_name(b)} "
                        f"in {type(parent).__name__}"
                    )
    return out


def _name(w: QWidget) -> str:
    text = w.text() if hasattr(w, "text") and callable(w.text) else ""
    return repr(w.objectName() or re.sub(r"\s+", " ", plain(str(text)))[:30])


def page_problems(w, key: str) -> list[str]:
    page = w.pages[key]
    area = w.stack.currentWidget()
    out = [f"{key}: {p}" for p in text_problems(w) + squeeze_and_overlap_problems(w)]
    if area.horizontalScrollBar().isVisible() or page.width() > area.viewport().width() + TOLERANCE:
        out.append(
            f"{key}: the page needs {page.minimumSizeHint().width()} px and scrolls sideways "
            f"(room: {area.viewport().width()} px)"
        )
    return out


FAKE_EVALUATION = {
    "perplexity": {
        "builtin:reasoning": {"merged": 3.1, "base": 4.0, "reasoning": 3.0, "domain": 4.2},
        "builtin:safety": {"merged": 5.0, "base": 6.0, "reasoning": 6.1, "domain": 3.9},
    },
    "generations": [
        {
            "prompt": "Who is Kob's grand-mentor?",
            "outputs": {
                "merged": "Kob's mentor is Dax, and Dax's mentor is Pim, so the answer is Pim.",
                "base": "I do not know",
                "reasoning": "Kob's mentor is Dax; Dax's mentor is Pim",
                "domain": "Sorry",
            },
        }
    ],
    "warnings": [],
    "verdict": [
        "Task Arithmetic (λ 1/1) on the same data keeps 90 % of the reasoning gain, 80 % of the domain gain.",
        'Warning: plain Task Arithmetic keeps more of the two skills than this merge. Run "Find a good '
        'setting" (reasonany tune) before you use this merge.',
    ],
}


def _candidate(i, method, r, d, kept):
    return {
        "index": i,
        "label": f"{method} candidate {i} with a long label p 0.05/0.05, λ 1/1, tensor scope",
        "setting": {
            "method": method,
            "reasoning_ratio": r,
            "domain_ratio": r,
            "reasoning_scale": d,
            "domain_scale": d,
            "scope": "tensor",
        },
        "kept": dict(zip(("reasoning", "domain"), kept, strict=True)),
    }


#: a search result as the report keeps it (TuneResult.report_section()), with every kind of mark and warning
FAKE_TUNE = {
    "summary": "Recommended: Task Arithmetic λ 0.6/0.6. On your held-out data it keeps 91 % of the reasoning model's "
    "gain and 44 % of the domain model's gain. Warning: even this merge keeps less than half of the "
    "domain gain.",
    "recommended": 2,
    "pareto": [1, 2],
    "warnings": ["The domain model is no better than the base on its own held-out domain data."],
    "check_rows": {"reasoning": {"data": "r.jsonl", "rows": 24}, "domain": {"data": "d.jsonl", "rows": 24}},
    "candidates": [
        _candidate(0, "reasonany", 0.05, 1.0, (0.05, 0.25)),
        _candidate(1, "task_arithmetic", 0.5, 1.0, (0.97, 0.3)),
        _candidate(2, "task_arithmetic", 0.5, 0.6, (0.91, 0.44)),
        _candidate(3, "ties", 0.5, 1.0, (None, 0.3)),
        _candidate(4, "dare", 0.5, 1.0, (0.8, 0.2)),
    ],
}


@pytest.fixture
def merged_window(qtbot, window, job_waiter):
    """The window after a real merge of the tiny trio, with an evaluation to show (no generation needed)."""
    qtbot.mouseClick(window.merge_button, Qt.MouseButton.LeftButton)
    state, name, result = job_waiter(window)
    assert (state, name) == ("finished", "merge"), result
    window.results.evaluation.show_result(FAKE_EVALUATION)
    window.results.evaluation.show_answers(
        {"outputs": {r: "An answer" for r in ("merged", "base", "reasoning", "domain")}}
    )
    window.results.tune_view.set_result(FAKE_TUNE)
    window.results.tune_view.mark_current(FAKE_TUNE["candidates"][0]["setting"])
    window.settings.adv_toggle.setChecked(True)  # the advanced settings open too: the longest Settings page
    window.results.retune.set_expanded(True)  # and the Re-tune card's fields: the longest Results page
    window.settings.auto_tune.setChecked(True)
    return window


def show(qtbot, w, size, key):
    w.resize(*size)
    w.go(key)
    qtbot.wait(60)  # layouts, splitters and stacked columns settle
    QApplication.processEvents()
    w.run_panel.refresh()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_screen_fits(qtbot, merged_window, size):
    w = merged_window
    problems = []
    for key in PAGES:
        show(qtbot, w, size, key)
        problems += page_problems(w, key)
        if key == "results":
            for tab in range(w.results.tabs.count()):
                w.results.tabs.setCurrentIndex(tab)
                QApplication.processEvents()
                problems += [p + f" (tab {w.results.tabs.tabText(tab)})" for p in page_problems(w, key)]
            w.results.tabs.setCurrentIndex(0)
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_the_layout_check_catches_cut_text_and_overlap(qtbot, styled_app):
    """The checker itself: a too-narrow label and button and two overlapping labels are reported."""
    root = QWidget()
    qtbot.addWidget(root)
    root.resize(300, 200)
    label = QLabel("A label with far too much text for its width", root)
    label.setGeometry(0, 0, 60, 20)
    button = QPushButton("Update masks", root)
    button.setGeometry(0, 30, 30, 30)
    other = QLabel("x", root)
    other.setGeometry(10, 5, 40, 20)
    root.show()
    found = text_problems(root) + squeeze_and_overlap_problems(root)
    assert any("label cut" in p for p in found)
    assert any("button text cut" in p for p in found)
    assert any("overlaps" in p for p in found)


# ---------------------------------------------------------------------- the mouse wheel
def wheel(widget: QWidget, steps: int = -3) -> None:
    """Scroll the wheel over the middle of a widget, as a user passing over it on a long page."""
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    glob = QPointF(widget.mapToGlobal(pos.toPoint()))
    ev = QWheelEvent(
        pos,
        glob,
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)


def value_of(box: QWidget) -> object:
    """What a value widget shows: a spin box's text, a combo box's choice, a tab bar's tab."""
    if isinstance(box, QAbstractSpinBox):
        return box.text()
    if isinstance(box, QComboBox):  # an editable one (shard size) is its text: focus may match it to an entry
        return box.currentText() if box.isEditable() else (box.currentIndex(), box.currentText())
    assert isinstance(box, QTabBar)
    return box.currentIndex()


def value_widgets(root: QWidget) -> list[QWidget]:
    return [b for b in root.findChildren(QWidget) if isinstance(b, (QAbstractSpinBox, QComboBox, QTabBar))]


def wheel_everywhere(qtbot, w, boxes: list[QWidget]) -> list[str]:
    """Wheel up and down over each box (and its text field), unfocused and then focused; what changed."""
    before = {id(b): value_of(b) for b in boxes}
    for box in boxes:
        parts = [box] + ([box.lineEdit()] if isinstance(box, (QAbstractSpinBox, QComboBox)) and box.lineEdit() else [])
        for focused in (False, True):
            if focused:
                box.setFocus(Qt.FocusReason.TabFocusReason)
                assert box.hasFocus() or not box.isEnabled(), f"{_name(box)} did not take the focus"
            for part in parts:
                wheel(part, -3)
                wheel(part, 3)
        w.setFocus()
    changed = [f"{type(b).__name__} {_name(b)}: {before[id(b)]} -> {value_of(b)}" for b in boxes]
    return [c for b, c in zip(boxes, changed, strict=True) if value_of(b) != before[id(b)]]


def test_the_wheel_never_edits_a_value_or_switches_a_tab(qtbot, merged_window, monkeypatch):
    """Issue 23: every spin box, combo box and tab bar of every screen, focused or not: the wheel changes nothing,
    opens no dialog, and over a field on a page that scrolls it scrolls the page."""
    from PySide6.QtWidgets import QFileDialog

    dialogs: list[str] = []  # "Own file…" chosen by the wheel would open a (blocking) file dialog
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (dialogs.append(str(a[1:2])), ("", ""))[1])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: (dialogs.append(str(a[1:2])), "")[1])
    w = merged_window
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=2000)
    problems: list[str] = []
    seen = 0
    for key in PAGES:
        show(qtbot, w, (1024, 700), key)
        tabs = range(w.results.tabs.count()) if key == "results" else [0]
        for tab in tabs:
            if key == "results":
                w.results.tabs.setCurrentIndex(tab)
                QApplication.processEvents()
            boxes = [b for b in value_widgets(w.pages[key]) if b.isVisibleTo(w)]
            seen += len(boxes)
            problems += [f"{key}/{tab}: {p}" for p in wheel_everywhere(qtbot, w, boxes)]
            assert QApplication.activeModalWidget() is None, f"{key}: the wheel opened a dialog"
            if key == "results":
                assert w.results.tabs.currentIndex() == tab, "the wheel switched the Results tab"
    assert seen > 30 and not problems, "\n".join(problems)
    assert not dialogs, f"the wheel opened file dialogs: {dialogs}"


def test_the_wheel_over_a_focused_field_scrolls_the_page(qtbot, window):
    w = window
    w.resize(1024, 700)
    w.go("settings")
    w.settings.adv_toggle.setChecked(True)
    qtbot.wait(50)
    samples, storage = w.settings.fields["samples"], w.settings.fields["accumulators"]
    assert all(b.focusPolicy() == Qt.FocusPolicy.StrongFocus for b in value_widgets(w))  # the wheel gives no focus
    before = (samples.value(), storage.currentIndex())
    area = w.stack.currentWidget()
    area.verticalScrollBar().setValue(0)
    samples.setFocus()
    qtbot.waitUntil(samples.hasFocus, timeout=2000)
    wheel(samples)  # the issue: "Samples" 100 -> 97 while scrolling the page over the field just clicked
    wheel(storage)
    assert (samples.value(), storage.currentIndex()) == before
    assert area.verticalScrollBar().value() > 0  # ... the page scrolled instead
    samples.stepUp()  # the arrows and the keyboard still change it
    assert samples.value() == before[0] + 1


# ---------------------------------------------------------------------- where the window opens
def test_the_first_window_fits_the_screen():
    from PySide6.QtCore import QRect, QSize

    from reasonany_gui.ui.window_geometry import MINIMUM, PREFERRED, first_size, fits

    assert first_size(QSize(1024, 672)) == QSize(960, 618)  # a 1024 x 700 screen less a panel: Merge on screen
    assert first_size(QSize(1920, 1040)) == PREFERRED
    assert first_size(QSize(1280, 680)).height() <= 680 and first_size(QSize(800, 500)) == MINIMUM
    assert fits(QRect(10, 10, 960, 618), QRect(0, 0, 1024, 672))
    assert not fits(QRect(0, 0, 1360, 880), QRect(0, 0, 1024, 672))  # issue 23: 1360 x 880 on 1024 x 700


def test_a_saved_geometry_is_restored_only_when_it_fits(qtbot, styled_app):
    from PySide6.QtWidgets import QMainWindow

    from reasonany_gui.ui.window_geometry import fits, place_window

    w = QMainWindow()
    qtbot.addWidget(w)
    available = w.screen().availableGeometry()
    w.setGeometry(available.adjusted(0, 0, 0, -20))  # the offscreen screen is 800 x 800: at least the minimum
    fitting = w.saveGeometry()
    again = QMainWindow()
    qtbot.addWidget(again)
    assert place_window(again, fitting) == "saved"
    w.setGeometry(available.right() - 50, available.bottom() - 50, 1360, 880)  # mostly off this screen
    other = QMainWindow()
    qtbot.addWidget(other)
    how = place_window(other, w.saveGeometry())  # Qt may pull it onto the screen itself; it ends up on screen
    assert fits(other.frameGeometry(), available) or (how == "maximised" and other.isMaximized()), how


def test_a_new_run_shows_progress_and_cancel(qtbot, window, job_waiter):
    """Issue 23: the Run screen scrolls back to its top (its bar and Cancel), and the status bar's stay visible."""
    w = window
    w.resize(1024, 700)
    w.go("run")
    area = w.stack.currentWidget()
    qtbot.wait(50)
    area.verticalScrollBar().setValue(area.verticalScrollBar().maximum())
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert w.runner.busy and area.verticalScrollBar().value() == 0
    assert w.status_cancel.isVisible() and w.status_progress.isVisible()
    assert w.run_panel.cancel_button.isVisible()
    assert job_waiter(w)[:2] == ("finished", "merge")
    assert not w.status_cancel.isVisible()


def test_results_before_any_run_say_what_to_do_above_the_fold(qtbot, window):
    """Issue 23: Results before any run (and after a cancelled one) was blank at 1024 x 700: its words stood 600 px
    down, centred in the height of the hidden results."""
    w = window
    w.resize(1024, 700)
    w.go("results")
    qtbot.wait(50)
    area = w.stack.currentWidget()
    empty = w.results.empty
    assert not w.results.showing_results and empty.isVisible() and "Press Merge" in empty.text()
    bottom = empty.mapTo(area.viewport(), empty.rect().bottomLeft()).y()
    assert bottom < area.viewport().height() and area.verticalScrollBar().maximum() == 0
