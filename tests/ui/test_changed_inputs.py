"""An opened run whose domain model changed after the merge: re-tune and search are refused (issue 22, item 1).

Why: the new masks or the search would be made from the changed model's scores and saved next to weights made
from the old one, with nothing to say so. The refusal is the app's usual "check your input" dialog."""

from __future__ import annotations

import shutil

from PySide6.QtCore import Qt
from safetensors.torch import load_file, save_file


def _scale_one_tensor(model_dir) -> None:
    """Change one weight of the model in place, as a further fine-tune would (same shapes, other values)."""
    path = sorted(model_dir.glob("*.safetensors"))[0]
    tensors = load_file(str(path))
    name = next(n for n, t in tensors.items() if t.ndim == 2)
    tensors[name] = tensors[name] * 1.5
    save_file(tensors, str(path), metadata={"format": "pt"})


def test_an_opened_run_with_a_changed_domain_model_is_not_re_tuned(qtbot, window, job_waiter, picker, trio, tmp_path):
    w = window
    models = {role: tmp_path / "models" / role for role in ("base", "reasoning", "domain")}
    for role, folder in models.items():
        shutil.copytree(trio[role], folder)
    picker(w, models)
    qtbot.mouseClick(w.merge_button, Qt.MouseButton.LeftButton)
    state, _name, merged = job_waiter(w)
    assert state == "finished", merged

    _scale_one_tensor(models["domain"])
    w.open_run(merged.out)
    assert job_waiter(w)[:2] == ("finished", "open")
    assert w.session.pipeline is None

    for start, job in (
        (lambda: w.start_retune({"domain_ratio": 0.4}), "retune"),
        (lambda: w.start_tune({"budget": 3}), "tune"),
    ):
        w.errors.last = None
        start()
        state, name, exc = job_waiter(w)
        assert (state, name) == ("failed", job)
        box = w.errors.last
        assert box is not None, f"{job}: no dialog"
        text = box.text() + box.informativeText()
        assert "domain model" in text and str(models["domain"]) in text and "changed after the run" in text, text
        assert w.session.pipeline is None  # nothing adopted: the opened run's masks stay as they were
