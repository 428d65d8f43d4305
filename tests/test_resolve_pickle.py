"""`merge --allow-download --allow-pickle` on a pickle-only repo: the pickle consent reaches the download.

No network: the hub cache lookup says "not here" and `download.fetch` is replaced by a recorder that returns a
local model folder, as a finished download would."""

from __future__ import annotations

from pathlib import Path

import pytest
import skills


def _not_cached(monkeypatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def snapshot_download(repo_id, **kwargs):
        raise LocalEntryNotFoundError(f"{repo_id} is not in the cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def _recording_fetch(monkeypatch, folders: dict[str, Path]) -> list[tuple[str, dict]]:
    from reasonany_gui.engine.io import download

    calls: list[tuple[str, dict]] = []

    def fetch(repo_id, *args, **kwargs):
        calls.append((repo_id, kwargs))
        return folders[repo_id]

    monkeypatch.setattr(download, "fetch", fetch)
    return calls


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_resolve_model_passes_the_pickle_consent_to_the_download(trio, monkeypatch, allow_pickle):
    from reasonany_gui.engine.io.resolve import resolve_model

    _not_cached(monkeypatch)
    calls = _recording_fetch(monkeypatch, {"tester/pickle-only": trio["base"]})
    assert resolve_model("tester/pickle-only", allow_download=True, allow_pickle=allow_pickle) == trio["base"]
    assert calls == [("tester/pickle-only", {"allow_pickle": allow_pickle})]


def test_pipeline_downloads_with_allow_pickle(trio, data_files, tmp_path, monkeypatch):
    """The run's own check (what `reasonany merge` calls) hands cfg.allow_pickle to every model's download."""
    from reasonany_gui.engine.run.pipeline import Pipeline

    _not_cached(monkeypatch)
    repos = {f"tester/{role}": trio[role] for role in ("base", "reasoning", "domain")}
    calls = _recording_fetch(monkeypatch, repos)
    cfg = skills.trio_config(
        {role: f"tester/{role}" for role in ("base", "reasoning", "domain")},
        data_files,
        samples=2,
        max_length=32,
        device="cpu",
        allow_download=True,
        allow_pickle=True,
    )
    p = Pipeline(cfg, cache_root=tmp_path / "scores")
    try:
        p.check()
    finally:
        p.close()
    assert sorted(r for r, _ in calls) == sorted(repos)
    assert all(kwargs == {"allow_pickle": True} for _, kwargs in calls)
