"""Download a model from the Hugging Face Hub into the local cache: size first, then progress with Cancel.

A download touches only the HF cache, so it runs as the dialog's own job (job_dialog.py). The token is handed
to huggingface_hub's own login (stored where `hf auth login` keeps it), never to QSettings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.core.errors import CancelledError
from reasonany_gui.engine.core.events import CancelToken, Listener
from reasonany_gui.engine.io import download as dl
from reasonany_gui.engine.io.writer import human_bytes

from .job_dialog import JobDialog
from .worker import JobFn


def plan_job(repo_id: str, token: str | None) -> JobFn:
    def run(_listener: Listener, _cancel: CancelToken) -> dl.DownloadPlan:
        if token:
            dl.login(token)
        return dl.plan(repo_id)

    return run


def download_job(plan: dl.DownloadPlan) -> JobFn:
    def run(listener: Listener, cancel: CancelToken) -> Path:
        return dl.download(plan, listener, cancel)

    return run


def plan_text(p: dl.DownloadPlan) -> str:
    n_cached = sum(1 for f in p.files if f.cached)
    lines = [
        f"<b>{p.repo_id}</b>: {len(p.files)} files, {human_bytes(p.total_bytes)} in all.",
        f"Already in the cache: {n_cached} files, {human_bytes(p.cached_bytes)}.",
        f"<b>To download: {human_bytes(p.remaining_bytes)}</b>.",
    ]
    if p.skipped:
        lines.append(
            f"<span style='color:#667085'>Left out: {len(p.skipped)} files the merge does not need "
            "(pickle weights, code, other formats).</span>"
        )
    return "<br>".join(lines)


class DownloadDialog(JobDialog):
    """Check (size first) → Download (progress, Cancel) → `downloaded(repo_id, folder)`."""

    downloaded = Signal(str, object)
    stage = "download"
    cancelling = "Cancelling… what was fetched stays in the cache and resumes next time."

    def __init__(self, repo_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Download {repo_id}")
        self.repo_id = repo_id
        self.plan: dl.DownloadPlan | None = None
        self.result_path: Path | None = None
        lay = QVBoxLayout(self)
        self.summary = QLabel("Asking the Hugging Face Hub for the files and their size…")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        token_row = QHBoxLayout()
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("Hugging Face token, only for gated or private models (hf_…)")
        self.token.setToolTip("Stored by huggingface_hub where `hf auth login` keeps it, never in the app's settings.")
        self.check_button = QPushButton("Log in and check again")
        self.check_button.clicked.connect(self.check)
        self.logout_button = QPushButton("Log out")
        self.logout_button.setToolTip("Forget the token huggingface_hub stored on this computer.")
        self.logout_button.clicked.connect(self._logout)
        token_row.addWidget(self.token, 1)
        token_row.addWidget(self.check_button)
        token_row.addWidget(self.logout_button)
        lay.addLayout(token_row)
        self.login_state = QLabel()
        self.login_state.setObjectName("muted")
        lay.addWidget(self.login_state)
        self.download_button = self.add_job_footer(lay, "Download", self.start_download)
        self.download_button.setEnabled(False)
        self.resize(560, 240)
        self._update_login_state()

    # ------------------------------------------------------------------ actions
    def check(self) -> None:
        """Ask the Hub for the plan (after storing the token, when one was typed)."""
        if self.runner.busy:
            return
        token = self.token.text().strip() or None
        self.token.clear()  # the widget does not keep it either
        self.download_button.setEnabled(False)
        self.summary.setText("Asking the Hugging Face Hub for the files and their size…")
        self.runner.start("download-plan", plan_job(self.repo_id, token))

    def start_download(self) -> None:
        if self.plan is None or self.runner.busy:
            return
        self.download_button.setEnabled(False)
        self.check_button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setValue(int(1000 * self.plan.cached_bytes / max(self.plan.total_bytes, 1)))
        self.status.setText("Starting the download…")
        self.runner.start("download", download_job(self.plan))

    def _logout(self) -> None:
        try:
            dl.logout()
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            self.errors.show_error(exc)
        self._update_login_state()

    def _update_login_state(self) -> None:
        logged_in = dl.stored_token() is not None
        self.login_state.setText(
            "Logged in to Hugging Face on this computer."
            if logged_in
            else "Not logged in (public models need no token)."
        )
        self.logout_button.setEnabled(logged_in)

    # ------------------------------------------------------------------ job signals
    def _on_finished(self, name: str, result: object) -> None:
        self._update_login_state()
        if name == "download-plan":
            assert isinstance(result, dl.DownloadPlan)
            self.plan = result
            self.summary.setText(plan_text(result))
            self.download_button.setEnabled(True)
            self.download_button.setText("Download" if result.remaining_bytes else "Use it (all cached)")
        elif name == "download":
            self.result_path = Path(str(result))
            self.progress.setValue(1000)
            self.status.setText("Downloaded.")
            self.downloaded.emit(self.repo_id, self.result_path)
            self.accept()

    def _on_failed(self, name: str, exc: BaseException) -> None:
        self._update_login_state()
        self.check_button.setEnabled(True)
        if name == "download" and self.plan is not None:
            self.download_button.setEnabled(True)
            self.download_button.setText("Resume download")
        if isinstance(exc, CancelledError):
            self.status.setText(str(exc))
            return
        if name == "download-plan":
            self.summary.setText(f"⚠ {exc}")
        self.status.setText("")
        title = "The download failed" if name == "download" else "Could not look up this model on the Hub"
        self.errors.show_error(exc, self.runner.last_traceback, title=title)
