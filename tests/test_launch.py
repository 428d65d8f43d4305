"""The one multi-process launcher (engine.workflows.launcher.launch) that the CLI's --devices and the app's "All GPUs"
share, and the JSON event stream by which rank 0 reports to the app.

Fake launcher processes (a few lines of Python) keep the cancel and failure tests to a second or two; the
real two-rank runs through torch's launcher are in tests/ui/test_all_gpus.py and tests/test_distributed.py.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import skills

from reasonany_gui import cli
from reasonany_gui.engine.core.errors import CancelledError, ReasonAnyError
from reasonany_gui.engine.core.events import (
    EVENT_TYPES,
    CancelToken,
    Log,
    MaskSummary,
    Progress,
    SensitivityUpdate,
    StageFinished,
    StageStarted,
    TuneCandidate,
    from_dict,
    to_dict,
)
from reasonany_gui.engine.settings.config import MergeConfig
from reasonany_gui.engine.workflows import launcher
from reasonany_gui.ui import jobs

GRID = np.array([[0.5, np.nan, 2.0], [1e-9, 3.0, np.nan]])
SAMPLES = [
    StageStarted("identify:reasoning@reasoning", "Scoring the reasoning model", 1, 5),
    Progress("identify:reasoning@reasoning", 0.25, 0.1, "sample 1 of 4", 12.5),
    Progress("write", 1.0, 1.0),
    StageFinished("write", 3.25),
    Log("warning", 'ünïcode and "quotes"\nand a second line'),
    SensitivityUpdate("reasoning@reasoning", "reasoning", "reasoning", 2, 4, ("q", "k", "v"), GRID),
    MaskSummary(
        ("q", "k", "v"),
        GRID.copy(),
        np.zeros((2, 3)),
        np.ones((2, 3), dtype=np.float32),
        {"reasoning": 12, "domain": np.int64(7), "conflicts": 1, "selectable": 100},
    ),
    TuneCandidate(0, 4, "ReasonAny p 0.2/0.2", {"method": "reasonany", "reasoning_ratio": 0.2}, 0.91, None, 0),
]


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b if not isinstance(a, np.integer) else int(a) == b


def test_every_event_type_survives_a_json_round_trip() -> None:
    assert {type(e).__name__ for e in SAMPLES} == set(EVENT_TYPES)  # a new event type needs a sample here
    for event in SAMPLES:
        back = from_dict(json.loads(json.dumps(to_dict(event))))
        assert type(back) is type(event)
        for name in vars(event):
            assert _same(getattr(event, name), getattr(back, name)), (type(event).__name__, name)


def test_from_dict_refuses_what_is_not_an_event() -> None:
    with pytest.raises(ValueError, match="not an engine event"):
        from_dict({"type": "Nonsense"})
    with pytest.raises(TypeError):
        to_dict(object())


def _config(trio, data_files, out: Path, devices: str = "cpu,cpu") -> MergeConfig:
    return skills.trio_config(trio, data_files, out, devices=devices, samples=4, max_length=32)


class _Recorded:
    """Stands in for subprocess.Popen: records the command and the run config, then exits with `code`."""

    calls: list[tuple[list[str], MergeConfig]] = []

    def __init__(self, cmd: list[str], **kw: object) -> None:
        type(self).calls.append((list(cmd), MergeConfig.from_yaml(cmd[4])))
        self.pid = -1
        self.returncode = 2
        self.stdout = None

    def poll(self) -> int:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode


def test_cli_and_app_start_the_same_launcher_command(trio, data_files, tmp_path, monkeypatch) -> None:
    """`reasonany merge --devices cpu,cpu` and the app's job run one command (both read rank 0's events)."""
    monkeypatch.setattr(launcher.subprocess, "Popen", _Recorded)
    _Recorded.calls = []
    cfg = _config(trio, data_files, tmp_path / "merged")
    argv = skills.merge_argv(
        trio, data_files, tmp_path / "merged", "--devices", "cpu,cpu", "--samples", "4", "--max-length", "32"
    )
    assert cli.main(argv) == 2  # the launcher's (here: the fake's) exit code is the CLI's
    with pytest.raises(ReasonAnyError):  # the fake wrote no events and exited 2
        jobs.ranks_merge_job(cfg)(lambda _e: None, CancelToken())
    (cli_cmd, cli_cfg), (app_cmd, app_cfg) = _Recorded.calls
    assert cli_cmd[:3] == [sys.executable, "-m", launcher.LAUNCHER_MODULE] and cli_cmd[3] == "2"
    assert cli_cmd[5:] == app_cmd[5:] == ["--events-jsonl"]
    assert cli_cmd[:4] == app_cmd[:4]
    assert cli_cfg == app_cfg == cfg  # the ranks run exactly the validated setting
    assert not Path(cli_cmd[4]).parent.exists() and not Path(app_cmd[4]).parent.exists()  # config folders removed


def test_worker_flags_are_the_clis_for_the_apps_search_options() -> None:
    args = cli.build_parser().parse_args(["merge", "--tune", "--budget", "5", "--checks", "c.yaml", "--quiet"])
    flags = cli.launch_flags(args)
    assert flags[:4] == ["--quiet", "--tune", "--budget", "5"]
    assert flags[-3:] == ["--checks", "c.yaml", "--events-jsonl"]
    app = launcher.worker_flags(tune={"budget": 5, "checks": "c.yaml"}, events=True)
    assert app == ["--tune", "--budget", "5", "--checks", "c.yaml", "--events-jsonl"]
    assert launcher.worker_flags() == []


def _fake_launcher(monkeypatch, tmp_path: Path, body: str) -> Path:
    """launch() starts `body` (Python) instead of torch's launcher; it may spawn a child into its process group."""
    script = tmp_path / "fake_launcher.py"
    script.write_text(textwrap.dedent(body), encoding="utf-8")
    monkeypatch.setattr(
        launcher, "launch_command", lambda path, flags, n: [sys.executable, str(script), str(tmp_path), *flags]
    )
    return script


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose; /proc tells (Linux), elsewhere trust kill
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_cancel_stops_the_launchers_process_group_and_leaves_no_output(trio, data_files, tmp_path, monkeypatch):
    _fake_launcher(
        monkeypatch,
        tmp_path,
        """
        import json, subprocess, sys, time
        from pathlib import Path
        # a "rank" in the launcher's process group, as a stand-in for what the launcher forwards to
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        Path(sys.argv[1], "child.pid").write_text(str(child.pid))
        ev = {"type": "Progress", "stage": "identify:x", "fraction": 0.1, "overall": 0.05, "message": "",
              "eta_seconds": None}
        print(json.dumps(ev), flush=True)
        time.sleep(60)
        """,
    )
    out = tmp_path / "merged"
    cancel = CancelToken()
    seen: list[object] = []

    def listener(event: object) -> None:
        seen.append(event)
        cancel.cancel()  # the user presses Cancel as soon as progress shows

    launched = launcher.launch(_config(trio, data_files, out), ["--events-jsonl"], 2, capture=True)
    started = time.monotonic()
    with pytest.raises(CancelledError):
        launcher.follow(launched, listener, cancel)
    assert time.monotonic() - started < 10
    assert isinstance(seen[0], Progress) and seen[0].stage == "identify:x"
    assert launched.proc.poll() is not None  # the launcher is gone ...
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)  # ... and so is its process group
    assert not out.exists() and not launched.folder.exists()


def test_a_failed_rank_ends_the_job_with_rank_0s_message(trio, data_files, tmp_path, monkeypatch) -> None:
    message = "Rank 1 of 2 failed, so every rank stopped and nothing was written. Rank 1's error: disk on fire"
    _fake_launcher(
        monkeypatch,
        tmp_path,
        f"""
        import json, sys
        print("a library's stray print", flush=True)
        print(json.dumps({{"type": "failed", "message": {message!r}, "input": False, "cancelled": False}}))
        print("Traceback: noise on stderr", file=sys.stderr)
        sys.exit(1)
        """,
    )
    launched = launcher.launch(_config(trio, data_files, tmp_path / "m"), [], 2, capture=True)
    with pytest.raises(ReasonAnyError) as info:
        launcher.follow(launched, lambda _e: None, CancelToken())
    assert str(info.value) == message


def test_a_launcher_that_dies_without_a_word_shows_its_last_output(trio, data_files, tmp_path, monkeypatch):
    _fake_launcher(
        monkeypatch, tmp_path, "import sys; print('ImportError: no gloo here', file=sys.stderr); sys.exit(1)"
    )
    launched = launcher.launch(_config(trio, data_files, tmp_path / "m"), [], 2, capture=True)
    with pytest.raises(ReasonAnyError, match=r"2-process merge stopped \(exit code 1\)(.|\n)*no gloo here"):
        launcher.follow(launched, lambda _e: None, CancelToken())
