"""The desktop app's entry point (`reasonany-gui`, `python -m reasonany_gui`).

Why logging to a file only: a gui-script on Windows has no stdout; everything goes to
`paths.log_file()`, which every error dialog names. Uncaught exceptions in the GUI thread are logged
and shown as a dialog instead of ending the app.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from reasonany_gui.ui.main_window import MainWindow

RESOURCES = Path(__file__).resolve().parent / "resources"


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to the rotating log file (and nowhere else). Returns its path."""
    from reasonany_gui.engine.core import paths

    log_path = paths.log_file()
    root = logging.getLogger()
    if not any(getattr(h, "_reasonany", False) for h in root.handlers):
        handler = logging.handlers.RotatingFileHandler(log_path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        handler._reasonany = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return log_path


def apply_style(app: QApplication) -> None:
    """The light stylesheet and the app icon; pyqtgraph draws on white to match."""
    import pyqtgraph as pg
    from PySide6.QtGui import QIcon

    pg.setConfigOptions(antialias=True, background="w", foreground="#344054")
    app.setStyle("Fusion")
    qss = RESOURCES / "style.qss"
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8").replace("@RES@", RESOURCES.as_posix()))
    icon = QIcon()
    for name in ("icon.svg", "icon.png"):
        if (RESOURCES / name).is_file():
            icon.addFile(str(RESOURCES / name))
    app.setWindowIcon(icon)


def create_app(argv: list[str] | None = None) -> QApplication:
    from PySide6.QtWidgets import QApplication

    running = QApplication.instance()
    app = running if isinstance(running, QApplication) else QApplication(list(argv if argv is not None else sys.argv))
    app.setApplicationName("ReasonAny")
    app.setOrganizationName("reasonany-gui")
    app.setApplicationDisplayName("ReasonAny")
    apply_style(app)
    return app


def _install_excepthook(window: MainWindow) -> None:
    """Show unexpected GUI-thread errors as a dialog (with the log path) and keep running."""
    log = logging.getLogger("reasonany_gui")

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("uncaught exception in the GUI thread:\n%s", text)
        with contextlib.suppress(Exception):  # never recurse in the hook
            window.errors.show_error(exc, text)

    sys.excepthook = hook


def quiet_console() -> None:
    """A gui-script (pythonw on Windows) has no console: give libraries a sink and switch off tqdm bars."""
    import os

    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the app
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


#: system libraries PySide6's X11 (xcb) plugin loads beyond libxcb itself -> their Debian/Ubuntu packages
XCB_LIBS = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1"}


#: the exit code when system libraries are missing (the app's "cannot start as set up" code, like a usage error)
MISSING_LIBRARIES_EXIT = 2
#: set to 1 to start even though the check below finds a library missing (the lookup can miss a library)
SKIP_CHECK_VARIABLE = "REASONANY_SKIP_LIBRARY_CHECK"


def missing_x11_libraries() -> list[str]:
    """Packages Qt's X11 plugin needs that this Linux machine lacks ([] elsewhere, when unsure, or when the user
    set REASONANY_SKIP_LIBRARY_CHECK=1).

    Why: without them Qt aborts at start (exit code 134) with a message few users understand; main() names all
    of them, with the install line, and exits cleanly instead.
    """
    import ctypes.util
    import os

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return []
    if os.environ.get(SKIP_CHECK_VARIABLE) == "1":
        return []
    if os.environ.get("WAYLAND_DISPLAY") or not os.environ.get("DISPLAY"):
        return []  # Qt uses its Wayland plugin, or there is no X server to talk to anyway
    return [pkg for lib, pkg in XCB_LIBS.items() if ctypes.util.find_library(lib) is None]


def missing_libraries_text(missing: list[str]) -> str:
    """What to do, in words a non-programmer can follow: the packages, the one command, and the way around."""
    return (
        "ReasonAny cannot open its window: these system libraries are missing: "
        + ", ".join(missing)
        + ".\nInstall them and start again (Debian/Ubuntu):\n\n    sudo apt install "
        + " ".join(missing)
        + "\n\n(The README's Quick start has the commands for Fedora and Arch. If they are installed and this "
        + f"check is wrong, start with {SKIP_CHECK_VARIABLE}=1.)"
    )


def main(argv: list[str] | None = None) -> int:
    quiet_console()
    log_path = setup_logging()
    log = logging.getLogger("reasonany_gui")
    missing = missing_x11_libraries()
    if missing:
        # Qt would abort (exit code 134, with a line that names only one library): stop here with the whole fix
        log.error(missing_libraries_text(missing))
        print(missing_libraries_text(missing), file=sys.stderr)
        return MISSING_LIBRARIES_EXIT
    from reasonany_gui import __version__

    log.info("ReasonAny GUI %s starting (Python %s); log: %s", __version__, sys.version.split()[0], log_path)
    app = create_app(argv)
    from reasonany_gui.ui.main_window import MainWindow

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetic
        pass
    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)  # quitting without closing the window still saves and stops
    _install_excepthook(window)
    window.show()
    from PySide6.QtCore import QTimer

    QTimer.singleShot(0, window.offer_stale_cleanup)  # once the window is up, so the question has a parent
    code = app.exec()
    log.info("ReasonAny GUI exits with %s", code)
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
