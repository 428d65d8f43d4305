"""Where the main window opens: a first window that fits the available screen, and a saved geometry restored only
when it still fits.

Why: on a fresh profile the window opened at 1360 × 880 on a 1024 × 700 screen, with Merge and Next off-screen
until the user maximised it; a geometry saved on a large monitor put it half off a laptop's screen (issue 23).
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRect, QSize, Qt
from PySide6.QtWidgets import QMainWindow

#: the size the window would like on a large screen
PREFERRED = QSize(1360, 880)
#: the smallest window every screen is laid out for (tests/ui/test_layout.py checks 1024 × 700 screens)
MINIMUM = QSize(960, 600)
#: share of the available screen a first window takes at most (room for the frame and the desktop's panels)
SCREEN_SHARE = 0.92


def first_size(available: QSize) -> QSize:
    """The first window's size on a screen with this much room: the preferred size, shrunk to fit."""
    return QSize(
        max(MINIMUM.width(), min(PREFERRED.width(), int(available.width() * SCREEN_SHARE))),
        max(MINIMUM.height(), min(PREFERRED.height(), int(available.height() * SCREEN_SHARE))),
    )


def fits(frame: QRect, available: QRect) -> bool:
    """Whether a window frame lies wholly on the available screen (a pixel or two of frame may overhang)."""
    return available.adjusted(-2, -2, 2, 2).contains(frame)


def place_window(window: QMainWindow, saved: QByteArray | None) -> str:
    """Open `window` at its saved geometry when that still fits the screen, else at a size that fits, centred;
    on a screen smaller than MINIMUM, maximised. Returns how: "saved", "fitted" or "maximised"."""
    screen = window.screen()
    available = screen.availableGeometry()
    window.setMinimumSize(MINIMUM.boundedTo(available.size()))
    if saved is not None and window.restoreGeometry(saved) and fits(window.frameGeometry(), available):
        return "saved"
    if available.width() < MINIMUM.width() or available.height() < MINIMUM.height():
        window.setGeometry(available)
        window.setWindowState(window.windowState() | Qt.WindowState.WindowMaximized)
        return "maximised"
    size = first_size(available.size()).boundedTo(available.size())
    window.resize(size)
    frame = window.frameGeometry()
    frame.moveCenter(available.center())
    window.move(frame.topLeft())
    return "fitted"
