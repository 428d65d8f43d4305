"""Nothing silently does nothing, no work lost without asking (issue 23, item 5): Open report / Open folder on a
desktop without a default program, Quit with re-tuned masks not saved, and where "Save this version…" writes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox


def button(box: QMessageBox, text: str):
    return next(b for b in box.buttons() if b.text() == text)


def test_no_opener_quit_asks_and_save_says_where(qtbot, window, job_waiter, monkeypatch):
    w = window
    res = w.results
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert job_waiter(w)[:2] == ("finished", "merge")

    # no default program ("Unable to detect a launcher"): say so, offer the path and a copy button
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or False)
    qtbot.mouseClick(res.open_report, Qt.MouseButton.LeftButton)
    box = w.errors.last
    report = res.report_path()
    assert opened == [str(report)] and box is not None and box.isVisible()
    assert "No program on this desktop opens the report" in box.text() and str(report) in box.informativeText()
    qtbot.mouseClick(button(box, "Copy the path"), Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == str(report)
    qtbot.mouseClick(res.open_folder, Qt.MouseButton.LeftButton)
    assert str(res.out_dir) in w.errors.last.informativeText()

    # re-tuned masks: the banner says where "Save this version…" writes them
    res.retune.boxes["reasoning_ratio"].setValue(12.0)
    qtbot.mouseClick(res.retune.apply_button, Qt.MouseButton.LeftButton)
    assert job_waiter(w)[:2] == ("finished", "retune")
    target = res.save_target
    assert target is not None and not target.exists() and str(target) in res.where.text()
    assert str(target) in res.save_version.toolTip()

    # Quit asks; Cancel keeps the window and the masks
    w.close()
    question = w.quit_question
    assert w.isVisible() and question is not None and question.isVisible()
    assert str(target) in question.informativeText()
    question.reject()
    assert w.isVisible() and w.has_unsaved_version()

    # "Save this version" from the question writes to the folder the banner named
    w.close()
    qtbot.mouseClick(button(w.quit_question, "Save this version"), Qt.MouseButton.LeftButton)
    state, name, result = job_waiter(w)
    assert (state, name) == ("finished", "save") and Path(result.out) == target and target.is_dir()
    assert not w.has_unsaved_version()

    # after another re-tune, "Quit without saving" closes
    res.retune.boxes["reasoning_ratio"].setValue(20.0)
    qtbot.mouseClick(res.retune.apply_button, Qt.MouseButton.LeftButton)
    assert job_waiter(w)[:2] == ("finished", "retune")
    w.close()
    qtbot.mouseClick(button(w.quit_question, "Quit without saving"), Qt.MouseButton.LeftButton)
    assert not w.isVisible()
