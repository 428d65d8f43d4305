"""The Models panel's Download… flow against the fake local hub of tests/test_download.py (no network)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_download import REPO, hub, token_files  # noqa: F401 - the fixtures


def test_download_button_dialog_size_first_then_model_is_picked(qtbot, styled_app, hub, token_files, reasonany_home):  # noqa: F811
    from reasonany_gui.ui.models_panel import ModelsPanel
    from reasonany_gui.ui.settings_store import SettingsStore

    panel = ModelsPanel()
    qtbot.addWidget(panel)
    panel.show()
    picker = panel.pickers["base"]
    picker.set_spec(REPO)
    assert "Download… button" in (picker.error or "")
    assert picker.download_button.isVisibleTo(panel)

    picker.download_button.click()
    dlg = panel.download_dialog
    qtbot.waitUntil(lambda: dlg.plan is not None, timeout=10000)
    assert "To download:" in dlg.summary.text() and dlg.download_button.isEnabled()

    # a token typed for a gated model goes to huggingface_hub's login, not to the widget or QSettings
    dlg.token.setText("hf_uitoken42")
    dlg.check_button.click()
    qtbot.waitUntil(lambda: not dlg.runner.busy and dlg.download_button.isEnabled(), timeout=10000)
    assert token_files.read_text().strip() == "hf_uitoken42" and dlg.token.text() == ""
    SettingsStore().qs.sync()
    for f in Path(os.environ["REASONANY_HOME"]).rglob("*"):
        if f.is_file():
            assert "hf_uitoken42" not in f.read_text(errors="ignore"), f

    with qtbot.waitSignal(dlg.downloaded, timeout=15000):
        dlg.download_button.click()
    qtbot.waitUntil(lambda: picker.model_info is not None, timeout=5000)
    assert picker.error is None and not picker.download_button.isVisibleTo(panel)
    assert dlg.progress.value() == 1000


def test_cancel_in_the_dialog_then_resume(qtbot, styled_app, hub, token_files):  # noqa: F811
    from reasonany_gui.engine.core.errors import InputError
    from reasonany_gui.engine.io.resolve import resolve_model
    from reasonany_gui.ui.download_dialog import DownloadDialog

    dlg = DownloadDialog(REPO)
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.check()
    qtbot.waitUntil(lambda: dlg.plan is not None, timeout=10000)
    dlg.runner.engine_event.connect(lambda _ev: dlg.cancel_button.click())  # Cancel as soon as the first progress shows
    with qtbot.waitSignal(dlg.runner.failed, timeout=10000):
        dlg.download_button.click()
    assert "resume" in dlg.status.text().lower() and dlg.download_button.text() == "Resume download"
    with pytest.raises(InputError):
        resolve_model(REPO)
    dlg.runner.engine_event.disconnect()
    dlg.runner.engine_event.connect(dlg._on_event)
    with qtbot.waitSignal(dlg.downloaded, timeout=15000):
        dlg.download_button.click()
    assert resolve_model(REPO) == dlg.result_path


def test_hub_error_goes_to_the_usual_dialog(qtbot, styled_app, hub):  # noqa: F811
    from huggingface_hub.errors import OfflineModeIsEnabled

    from reasonany_gui.ui.download_dialog import DownloadDialog

    hub.fail = OfflineModeIsEnabled("offline")
    dlg = DownloadDialog(REPO)
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.check()
    qtbot.waitUntil(lambda: dlg.errors.last is not None, timeout=10000)
    assert "you are offline" in dlg.errors.last.informativeText()
    box = dlg.errors.last
    assert box.windowTitle() == "Could not look up this model on the Hub"  # not "Please check your input"
    title_width = box.fontMetrics().horizontalAdvance(box.windowTitle())
    qtbot.waitUntil(lambda: box.width() > title_width + 100, timeout=2000)  # room for the whole title
    assert not dlg.download_button.isEnabled()
    dlg.errors.last.close()
    dlg.reject()
