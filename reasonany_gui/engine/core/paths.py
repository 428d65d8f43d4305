"""Where the app keeps its files (platformdirs), overridable with REASONANY_HOME for tests and portables."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

#: the package's data files (built-in calibration sets, the demo trio, icons): reasonany_gui/resources
RESOURCES = Path(__file__).resolve().parents[2] / "resources"

APP = "reasonany-gui"
#: the folder inside each merged model's output folder that holds run.yaml, report.json/html, masks, tune.json
RUN_DIR = "reasonany"
#: the shard index of a sharded safetensors model: read by the checkpoint reader, the score cache and the
#: downloader, written by the shard writer (one spelling for all four)
SAFETENSORS_INDEX = "model.safetensors.index.json"


def _root(kind: str) -> Path | None:
    home = os.environ.get("REASONANY_HOME")
    return Path(home) / kind if home else None


def run_files(out_dir: str | Path) -> Path:
    """The run's own files inside an output folder (`OUT/reasonany/`): one name for the engine, the CLI and the app."""
    return Path(out_dir) / RUN_DIR


def cache_dir() -> Path:
    """Score cache and the generated demo trio. Safe to delete."""
    return _root("cache") or Path(platformdirs.user_cache_dir(APP, appauthor=False))


def config_dir() -> Path:
    return _root("config") or Path(platformdirs.user_config_dir(APP, appauthor=False))


def log_dir() -> Path:
    return _root("logs") or Path(platformdirs.user_log_dir(APP, appauthor=False))


def log_file() -> Path:
    d = log_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d / "reasonany.log"
