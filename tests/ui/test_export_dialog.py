"""The export (GGUF) and publish dialogs: type and size first, progress, Cancel that leaves no file, the
Ollama / LM Studio instructions; the publish dialog shows the exact files and card, and sends them to a fake Hub."""

from __future__ import annotations

import pytest
import skills

from tests.test_publish import ALWAYS, fake_hub, out  # noqa: F401 - the fixtures


@pytest.fixture(scope="module")
def merged(tmp_path_factory, trio, data_files):
    from reasonany_gui.cli import main

    folder = tmp_path_factory.mktemp("export-ui") / "merge"
    assert main([*skills.merge_argv(trio, data_files, folder), "--quiet"]) == 0
    return folder


def test_export_dialog_exports_and_says_how_to_load(qtbot, styled_app, merged):
    from reasonany_gui.ui.export_dialog import open_export_dialog

    dlg = open_export_dialog(merged)
    qtbot.addWidget(dlg)
    assert dlg.type_name == "q8_0" and f"{merged.name}-Q8_0.gguf, about" in dlg.file_label.text()
    dlg.type_box.setCurrentIndex(dlg.type_box.findData("f16"))
    assert f"{merged.name}-F16.gguf" in dlg.file_label.text()
    with qtbot.waitSignal(dlg.runner.finished, timeout=20000):
        dlg.export_button.click()
    assert (merged / f"{merged.name}-F16.gguf").is_file() and (merged / "Modelfile").is_file()
    assert dlg.progress.value() == 1000
    assert "ollama create" in dlg.status.text() and "LM Studio" in dlg.status.text()
    dlg.resize(1024, 700)  # the app's smallest window: the dialog fits
    assert dlg.sizeHint().height() <= 700


def test_export_dialog_cancel_leaves_no_file(qtbot, styled_app, merged):
    from reasonany_gui.ui.export_dialog import ExportDialog

    dlg = ExportDialog(merged)
    qtbot.addWidget(dlg)
    dlg.type_box.setCurrentIndex(dlg.type_box.findData("q4_0"))
    dlg.runner.engine_event.connect(lambda _ev: dlg.cancel_button.click())  # Cancel at the first event
    with qtbot.waitSignal(dlg.runner.failed, timeout=20000):
        dlg.export_button.click()
    assert "no GGUF file was written" in dlg.status.text()
    assert not list(merged.glob("*Q4_0*")) and not [p for p in merged.iterdir() if p.name.startswith(".")]


def test_export_dialog_refuses_other_families_at_once(qtbot, styled_app, tmp_path):
    import json

    from reasonany_gui.ui.export_dialog import ExportDialog

    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    dlg = ExportDialog(tmp_path)
    qtbot.addWidget(dlg)
    assert "supports Llama, Mistral" in dlg.file_label.text() and not dlg.export_button.isEnabled()


def test_publish_dialog_shows_the_files_then_publishes(qtbot, styled_app, out, fake_hub):  # noqa: F811
    from reasonany_gui.ui.publish_dialog import open_publish_dialog

    dlg = open_publish_dialog(out)
    qtbot.addWidget(dlg)
    assert not dlg.publish_button.isEnabled()
    dlg.repo.setText("me/m")
    shown = dlg.files.toPlainText()
    assert shown.startswith("10 files") and all(name in shown for name in ALWAYS)
    assert "reasonany/report.html" not in shown and "base_model:" in shown
    dlg.extras["report"].setChecked(True)
    assert "reasonany/report.html" in dlg.files.toPlainText()
    with qtbot.waitSignal(dlg.runner.finished, timeout=10000):
        dlg.publish_button.click()
    (commit,) = fake_hub.commits
    assert sorted(commit["files"]) == sorted([*ALWAYS, "reasonany/report.html"])
    assert "https://huggingface.co/me/m" in dlg.status.text()


def test_publish_dialog_offers_a_commit_to_an_existing_repo(qtbot, styled_app, out, fake_hub):  # noqa: F811
    from reasonany_gui.ui.publish_dialog import PublishDialog

    fake_hub.existing.add("me/m")
    dlg = PublishDialog(out)
    qtbot.addWidget(dlg)
    dlg.repo.setText("me/m")
    with qtbot.waitSignal(dlg.runner.failed, timeout=10000):
        dlg.publish_button.click()
    assert dlg.add_commit.isVisibleTo(dlg) and "already exists" in dlg.status.text() and not fake_hub.commits
    dlg.add_commit.setChecked(True)
    with qtbot.waitSignal(dlg.runner.finished, timeout=10000):
        dlg.publish_button.click()
    assert len(fake_hub.commits) == 1


def test_results_buttons_open_the_dialogs(qtbot, window, job_waiter):
    """Results ▸ Export GGUF… and Publish…: on screen at 1024 x 700 without scrolling, each opens its dialog for
    the saved folder shown; with re-tuned masks not saved they wait for Save this version."""
    from PySide6.QtCore import QPoint, Qt

    from reasonany_gui.ui.export_dialog import ExportDialog
    from reasonany_gui.ui.publish_dialog import PublishDialog

    w = window
    w.resize(1024, 700)
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    assert job_waiter(w)[:2] == ("finished", "merge")
    res = w.results
    area = w.stack.currentWidget()
    qtbot.wait(50)
    for button in (res.export_gguf, res.publish):
        assert button.isEnabled() and button.isVisible()
        corner = button.mapTo(area.viewport(), QPoint(button.width(), button.height()))
        assert area.viewport().rect().contains(corner), f"{button.text()} is off-screen at 1024 x 700"
    qtbot.mouseClick(res.export_gguf, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(res.publish, Qt.MouseButton.LeftButton)
    export = [d for d in w.findChildren(ExportDialog) if d.isVisible()]
    publish = [d for d in w.findChildren(PublishDialog) if d.isVisible()]
    assert len(export) == len(publish) == 1
    assert export[0].out == w.session.out_dir and publish[0].out == w.session.out_dir
    export[0].reject()
    publish[0].reject()
    res.set_output(w.session.out_dir, saved_current=False)  # re-tuned, not saved: nothing to export yet
    assert not res.export_gguf.isEnabled() and not res.publish.isEnabled()
    assert "Save this version first" in res.export_gguf.toolTip()
