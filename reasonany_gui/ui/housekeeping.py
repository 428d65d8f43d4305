"""File and Help menu chores: leftovers of interrupted runs, the score cache, About."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from reasonany_gui import __version__
from reasonany_gui.engine.core import paths
from reasonany_gui.engine.io.scorecache import Cleared, ScoreStore
from reasonany_gui.engine.io.writer import human_bytes

from .window_base import WindowBase

log = logging.getLogger(__name__)


class Housekeeping(WindowBase):
    """Offer to remove half-written folders at start, clear the score cache, say what this app is, and ask before
    quitting with re-tuned masks not saved."""

    #: the user chose "Quit without saving" (the next close goes through)
    quit_confirmed = False
    #: the open question before quitting, if any (tests read and click it)
    quit_question: QMessageBox | None = None

    def has_unsaved_version(self) -> bool:
        """Re-tuned masks are shown that no folder holds (they live only in the kept pipeline)."""
        return not self.session.saved and self.session.pipeline is not None

    def ask_before_quit(self) -> QMessageBox:
        """Quit (Ctrl+Q, closing the window) with re-tuned masks not saved: save them, quit anyway, or stay.

        Why non-blocking (open(), not exec()): a close event must return at once; the answer closes again."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Re-tuned masks not saved")
        box.setText("<b>The re-tuned masks are not saved yet.</b>")
        target = self.results.save_target
        box.setInformativeText(
            "Quitting loses them (the measured scores stay in the score cache)."
            + (f"\n\n“Save this version” writes them to {target}." if target else "")
        )
        save = box.addButton("Save this version", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Quit without saving", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        save.clicked.connect(self.results.save_requested)  # what the Results screen's button does
        discard.clicked.connect(self._quit_without_saving)
        self.quit_question = box
        box.open()
        return box

    def _quit_without_saving(self) -> None:
        self.quit_confirmed = True
        self.close()

    def offer_stale_cleanup(self) -> QMessageBox | None:
        """At start: offer to delete the half-written folders of runs that were killed (power cut, kill -9).

        Why ask instead of deleting silently: they can be large and sit next to the user's own folders; the
        engine only ever removes folders it named itself (the `.reasonany-tmp-` mark)."""
        from reasonany_gui.engine.io import writer
        from reasonany_gui.engine.run.pipeline import registry_path

        try:
            stale = writer.stale_temp_folders(registry_path())
        except Exception as exc:  # noqa: BLE001 - a broken registry must not stop the app from starting
            log.warning("could not read the temporary-folder registry: %s", exc)
            return None
        if not stale:
            return None
        listed = "\n".join(f"• {p}" for p in stale[:10]) + (
            f"\n… and {len(stale) - 10} more" if len(stale) > 10 else ""
        )
        box = self.errors.info(
            "Leftovers of interrupted runs",
            f"{len(stale)} unfinished output folder(s) from runs that were stopped abruptly "
            f"are still on disk:\n{listed}\n\nThey hold no usable model. Remove them?",
        )
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        yes = box.button(QMessageBox.StandardButton.Yes)
        yes.setText("Remove")
        box.button(QMessageBox.StandardButton.No).setText("Keep")
        yes.clicked.connect(self.clean_stale)
        return box

    def clean_stale(self) -> list[Path]:
        from reasonany_gui.engine.io import writer
        from reasonany_gui.engine.run.pipeline import registry_path

        removed = writer.clean_stale(registry_path())
        for p in removed:
            log.info("removed the leftover temporary folder %s", p)
        self.status_text.setText(f"Removed {len(removed)} leftover folder(s) of interrupted runs.")
        return removed

    def score_store(self) -> ScoreStore:
        return ScoreStore(paths.cache_dir() / "scores")

    def ask_clear_cache(self) -> None:
        if self.runner.busy:
            self.status_text.setText("Wait for the current task to finish before clearing the score cache.")
            return
        size = self.score_store().size_bytes()
        box = self.errors.info(
            "Clear the score cache?",
            f"The kept importance scores take {human_bytes(size)}. Without them, re-tuning an "
            "earlier run measures the models again. Merged models are not affected.",
        )
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        yes = box.button(QMessageBox.StandardButton.Yes)
        yes.setText("Clear")
        yes.clicked.connect(self.clear_cache)

    def clear_cache(self) -> None:
        """Delete the score cache; the live pipeline reads from it, so re-tuning needs a new run afterwards."""
        self.session.close_pipeline()
        self.results.scores_cleared()
        self.status_text.setText(cleared_words(self.score_store().clear()))

    def about(self) -> None:
        self.errors.info(
            "About ReasonAny",
            f"ReasonAny GUI {__version__}\n\nTraining-free merging of a reasoning model and a domain "
            "model (ReasonAny, arXiv 2601.05560).\n\n"
            f"Settings: {self.store.path}\nLog: {paths.log_file()}",
        )


def cleared_words(cleared: Cleared) -> str:
    """What clearing did, in words. Why say more than "cleared": entries a running merge still reads are kept (its
    scores would vanish under it), so the user should not think the space they take was freed."""
    words = f"Score cache cleared: {_count(cleared.removed, 'entry', 'entries')} removed."
    if cleared.in_use:
        words += f" {_count(len(cleared.in_use), 'entry', 'entries', ' in use')} kept: a running merge reads"
        words += " them; clear again when it has finished."
    if cleared.kept:
        words += f" {_count(len(cleared.kept), 'item', 'items', ' not made by the app')} left alone."
    return words


def _count(n: int, one: str, many: str, tail: str = "") -> str:
    """'1 entry' / '3 entries'; with a tail, the verb too: '1 entry in use was' / '2 entries in use were'."""
    words = f"{n} {one if n == 1 else many}{tail}"
    return f"{words} {'was' if n == 1 else 'were'}" if tail else words
