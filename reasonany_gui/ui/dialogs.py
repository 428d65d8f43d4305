"""Turns engine errors into dialogs a non-programmer can act on.

Why non-blocking (`QMessageBox.open()`): an error arrives from the worker while the window keeps
running; a modal `exec()` would nest an event loop inside a signal slot. The last dialog stays
reachable (`ErrorReporter.last`) so tests can read and click it.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget

from reasonany_gui.engine.core import paths
from reasonany_gui.engine.core.errors import CancelledError, InputError, OutOfMemoryError, WriteError

from .texts import describe_value

log = logging.getLogger(__name__)


def error_title(exc: BaseException) -> str:
    if isinstance(exc, InputError):
        return "Please check your input"
    if isinstance(exc, OutOfMemoryError):
        return "Not enough memory"
    if isinstance(exc, WriteError):
        return "Could not save the model"
    if isinstance(exc, CancelledError):
        return "Cancelled"
    return "Something went wrong"


def error_text(exc: BaseException, log_path: Path | None = None) -> str:
    """The dialog's body: the engine's message, plus where the details are when it is not an input error."""
    message = str(exc).strip() or type(exc).__name__
    if isinstance(exc, (InputError, CancelledError)):
        return message
    if isinstance(exc, OutOfMemoryError):
        sugg = getattr(exc, "suggestions", {}) or {}
        if sugg:
            lines = "\n".join(f"  • {describe_value(k, v)}" for k, v in sugg.items())
            message += f"\n\nThese settings use less memory:\n{lines}"
        return message
    where = log_path or paths.log_file()
    if isinstance(exc, WriteError):
        return f"{message}\n\nNothing was left half-written. Details are in the log file:\n{where}"
    return f"{message}\n\nThe app is still usable. Details for a bug report are in the log file:\n{where}"


def _room_for_the_title(box: QMessageBox) -> None:
    """A message box as wide as its window title needs (a short message made a narrow box whose title bar cut
    "Please check your input", issue 23)."""
    width = box.fontMetrics().horizontalAdvance(box.windowTitle()) + 160  # the title bar's buttons and margins
    box.setStyleSheet(
        f"QLabel#qt_msgbox_label, QLabel#qt_msgbox_informativelabel {{ min-width: {max(width, 380)}px; }}"
    )


class ErrorReporter(QObject):
    """Shows one dialog per error; emits `retry_requested(suggestions)` from the out-of-memory dialog."""

    retry_requested = Signal(dict)

    def __init__(self, parent_widget: QWidget) -> None:
        super().__init__(parent_widget)
        self._parent = parent_widget
        self.last: QMessageBox | None = None
        self.retry_button: QPushButton | None = None

    def show_error(self, exc: BaseException, details: str = "", title: str | None = None) -> QMessageBox:
        """title: what failed, when the caller knows better than the kind of error (e.g. "The download failed")."""
        title = title or error_title(exc)
        box = QMessageBox(self._parent)
        box.setWindowTitle(title)
        box.setText(f"<b>{title}</b>")
        _room_for_the_title(box)
        box.setInformativeText(error_text(exc))
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setIcon(
            QMessageBox.Icon.Information if isinstance(exc, (InputError, CancelledError)) else QMessageBox.Icon.Warning
        )
        if details and not isinstance(exc, (InputError, CancelledError)):
            box.setDetailedText(details)
        self.retry_button = None
        sugg = dict(getattr(exc, "suggestions", {}) or {}) if isinstance(exc, OutOfMemoryError) else {}
        if sugg:
            retry = box.addButton("Retry with these settings", QMessageBox.ButtonRole.AcceptRole)
            self.retry_button = retry
            box.addButton(QMessageBox.StandardButton.Close)
            retry.clicked.connect(lambda: self.retry_requested.emit(sugg))
        else:
            box.addButton(QMessageBox.StandardButton.Ok)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self._close_last()
        self.last = box
        box.open()
        return box

    def show_path(self, what: str, path: Path) -> QMessageBox:
        """Nothing on this desktop opens `path` (no default program, e.g. a bare X server): say so and offer the
        path, selectable and with a copy button, so the user can open it another way."""
        box = QMessageBox(self._parent)
        box.setIcon(QMessageBox.Icon.Information)
        box.setWindowTitle(f"Cannot open the {what}")
        box.setText(f"<b>No program on this desktop opens the {what}.</b>")
        box.setInformativeText(f"It is here; copy the path and open it in a file manager or a browser:\n\n{path}")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        copy = box.addButton("Copy the path", QMessageBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(str(path)))
        box.addButton(QMessageBox.StandardButton.Close)
        _room_for_the_title(box)
        self._close_last()
        self.last = box
        box.open()
        return box

    def info(self, title: str, text: str) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, self._parent)
        box.setWindowTitle(title)
        self._close_last()
        self.last = box
        box.open()
        return box

    def _close_last(self) -> None:
        if self.last is not None:
            with contextlib.suppress(RuntimeError):  # already deleted
                self.last.close()
