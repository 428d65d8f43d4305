"""Publish the merged model to the Hugging Face Hub: the repo name, what goes (every file and the total size shown
before anything is sent), then the upload with progress and Cancel.

Why the run files are unticked by default: report.html, run.yaml and the masks can hold local paths and data file
names. Why the login is huggingface_hub's (as the download dialog's): the app never keeps a token. When the repo
exists, the dialog offers to add a commit to it instead of failing twice.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.core.errors import CancelledError, ReasonAnyError
from reasonany_gui.engine.core.events import CancelToken, Listener
from reasonany_gui.engine.io import publish as hub
from reasonany_gui.engine.io.download import stored_token
from reasonany_gui.engine.io.writer import human_bytes
from reasonany_gui.engine.workflows.export import PUBLISH_STAGE, publish

from .job_dialog import JobDialog
from .worker import JobFn

#: the optional run files, as the dialog names them
EXTRAS = {
    "report": "the report (report.html)",
    "run": "the run's settings (run.yaml)",
    "masks": "the masks (masks.safetensors, conflicts)",
}


def publish_job(plan: hub.PublishPlan, add_commit: bool) -> JobFn:
    def run(listener: Listener, cancel: CancelToken) -> str:
        return publish(plan, add_commit=add_commit, listener=listener, cancel=cancel)

    return run


def plan_text(plan: hub.PublishPlan) -> str:
    lines = [f"{f.path_in_repo}  ({human_bytes(f.size)})" for f in plan.files]
    kind = "private" if plan.private else "public"
    return f"{len(plan.files)} files, {human_bytes(plan.total_bytes)} to {kind} repo {plan.repo_id}:\n" + "\n".join(
        lines
    )


class PublishDialog(JobDialog):
    """Repo and choices → the files and size → Publish (progress, Cancel) → the repo's address."""

    stage = PUBLISH_STAGE
    cancelling = "Cancelling… nothing is committed to the repo."

    def __init__(self, out: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.out = Path(out)
        self.setWindowTitle("Publish to the Hugging Face Hub")
        self.plan: hub.PublishPlan | None = None
        self.url: str | None = None
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.repo = QLineEdit()
        self.repo.setPlaceholderText("your-name/my-merge")
        self.repo.textChanged.connect(self.update_plan)
        form.addRow("Repo", self.repo)
        self.private = QCheckBox("Private (only you and your organisation see it)")
        self.private.toggled.connect(self.update_plan)
        form.addRow("", self.private)
        extras = QHBoxLayout()
        self.extras: dict[str, QCheckBox] = {}
        for key, label in EXTRAS.items():
            box = QCheckBox(label)
            box.setToolTip("May hold local folder and data file names: tick only if you want to share them.")
            box.toggled.connect(self.update_plan)
            extras.addWidget(box)
            self.extras[key] = box
        form.addRow("Also send", extras)
        self.add_commit = QCheckBox("The repo exists: add a commit to it")
        self.add_commit.setVisible(False)
        form.addRow("", self.add_commit)
        lay.addLayout(form)
        self.files = QPlainTextEdit()
        self.files.setReadOnly(True)
        self.files.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        lay.addWidget(self.files, 1)
        self.login_state = QLabel()
        self.login_state.setObjectName("muted")
        lay.addWidget(self.login_state)
        self.publish_button = self.add_job_footer(lay, "Publish", self.start, selectable=True)
        self.resize(680, 460)
        self.update_plan()

    def update_plan(self) -> None:
        """The exact files and size for the current choices (a local check: nothing is sent)."""
        logged_in = stored_token() is not None
        self.login_state.setText(
            "Logged in to Hugging Face on this computer."
            if logged_in
            else "Not logged in: log in with a write token first (Models screen → Download… → Log in, "
            "or `hf auth login`)."
        )
        self.plan = None
        self.publish_button.setEnabled(False)
        if not self.repo.text().strip():
            self.files.setPlainText("Type the repo name (OWNER/NAME) to see what will be uploaded.")
            return
        try:
            include = [k for k, box in self.extras.items() if box.isChecked()]
            self.plan = hub.plan_publish(self.out, self.repo.text(), self.private.isChecked(), include)
        except ReasonAnyError as exc:
            self.files.setPlainText(f"⚠ {exc}")
            return
        self.files.setPlainText(plan_text(self.plan) + "\n\nThe model card (README.md):\n\n" + self.plan.card)
        self.publish_button.setEnabled(logged_in and not self.runner.busy)

    def start(self) -> None:
        if self.plan is None or self.runner.busy:
            return
        self.publish_button.setEnabled(False)
        self.begin("publish", publish_job(self.plan, self.add_commit.isChecked()), "Starting the upload…")

    def _on_finished(self, _name: str, result: object) -> None:
        self.url = str(result)
        self.progress.setValue(1000)
        self.status.setText(f"Published: <a href='{self.url}'>{self.url}</a>")
        self.status.setOpenExternalLinks(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.cancel_button.setText("Close")

    def _on_failed(self, _name: str, exc: BaseException) -> None:
        self.progress.setVisible(False)
        self.publish_button.setEnabled(self.plan is not None)
        if isinstance(exc, CancelledError):
            self.status.setText(str(exc))
            return
        if isinstance(exc, hub.RepoExistsError):  # offer the commit instead of an error box
            self.add_commit.setVisible(True)
            self.status.setText(f"{exc}")
            return
        self.status.setText("")
        self.errors.show_error(exc, self.runner.last_traceback)


def open_publish_dialog(out: Path, parent: QWidget | None = None) -> PublishDialog:
    """For the Results and Save screens: show the publish dialog for a finished output folder (non-modal)."""
    dlg = PublishDialog(out, parent)
    dlg.show()
    return dlg
