"""Entry script of the bundled desktop app (`reasonany-gui` in the PyInstaller folder).

Why a separate script instead of `reasonany_gui/app.py`: PyInstaller runs its entry script as `__main__`
from the bundle root, so `app.py`'s `Path(__file__).parent / "resources"` would point next to the
executable instead of at `reasonany_gui/resources`. Importing the package keeps every path as in a
normal install.

`--self-test` (bundle only): start the real app, show the main window, check that the bundled
resources and the engine's heavy imports work, quit after ~2 s. Exit code 0 means the bundle is sound;
1 means something is missing (the reason is printed and logged). The packaging docs verify every build
with it: `QT_QPA_PLATFORM=offscreen dist/reasonany-gui/reasonany-gui --self-test`.
"""

from __future__ import annotations

import multiprocessing
import sys

SELF_TEST_MS = 2000


def _bundle_problems() -> list[str]:
    """What a broken bundle lacks: resources, native extensions and lazily imported modules."""
    from reasonany_gui.app import RESOURCES

    problems = [
        f"missing resource {RESOURCES / name}"
        for name in ("style.qss", "icon.svg", "icon.png")
        if not (RESOURCES / name).is_file()
    ]
    calibration = sorted((RESOURCES / "calibration").glob("*.jsonl"))
    if not calibration:
        problems.append(f"no built-in calibration sets in {RESOURCES / 'calibration'}")
    try:
        # Imported lazily by the engine (transformers' lazy modules are what PyInstaller misses).
        import safetensors.torch  # noqa: F401
        import tokenizers  # noqa: F401
        import torch
        from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

        with torch.device("meta"):
            tiny = dict(
                num_hidden_layers=1,
                hidden_size=64,
                intermediate_size=128,
                num_attention_heads=4,
                num_key_value_heads=2,
                vocab_size=256,
            )
            for cfg in (Qwen2Config(**tiny), LlamaConfig(**tiny)):
                AutoModelForCausalLM.from_config(cfg)
    except Exception as exc:  # noqa: BLE001 - the self-test reports, it does not crash
        problems.append(f"engine imports failed: {type(exc).__name__}: {exc}")
    return problems


def _self_test(argv: list[str]) -> int:
    """Run the real `main()` with a timer that closes the window; fail if the bundle is incomplete."""
    import logging

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from reasonany_gui import app as gui

    gui.setup_logging()
    log = logging.getLogger("reasonany_gui.self_test")
    problems = _bundle_problems()
    qt_app = gui.create_app(argv)
    shown: list[str] = []

    def finish() -> None:
        shown.extend(w.windowTitle() or type(w).__name__ for w in QApplication.topLevelWidgets() if w.isVisible())
        qt_app.quit()

    QTimer.singleShot(SELF_TEST_MS, finish)
    code = gui.main(argv)  # reuses the QApplication created above
    if not shown:
        problems.append("no visible top-level window after start")
    for problem in problems:
        log.error("self-test: %s", problem)
        print(f"self-test: {problem}", file=sys.stderr)
    ok = code == 0 and not problems
    print(f"self-test: {'ok' if ok else 'FAILED'} (windows: {shown}; log: {gui.setup_logging()})")
    return 0 if ok else 1


def run(argv: list[str]) -> int:
    if "--self-test" in argv:
        return _self_test([a for a in argv if a != "--self-test"])
    from reasonany_gui.app import main

    return int(main(argv) or 0)


def _ensure_std_streams() -> None:
    """A windowed executable on Windows/macOS has no stdout/stderr (None); libraries that print progress
    (tqdm in transformers' save_pretrained, warnings) would then crash. Send them to the null device."""
    import os

    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the app


if __name__ == "__main__":
    multiprocessing.freeze_support()  # harmless; needed if any library ever spawns workers in the bundle
    _ensure_std_streams()
    raise SystemExit(run(sys.argv))
