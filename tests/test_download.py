"""engine.download against a fake Hub: a local folder served through patched `HfApi.model_info` / `hf_hub_download`.

No network: HF_HUB_OFFLINE is set for the whole suite, the fake writes the real cache layout (blobs, snapshot
links, refs/main, `.incomplete` partial blobs) into a private HF cache, and the offline test uses huggingface_hub's
own offline mode.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from reasonany_gui.engine.core.errors import CancelledError, InputError
from reasonany_gui.engine.core.events import CancelToken, Progress
from reasonany_gui.engine.core.paths import SAFETENSORS_INDEX
from reasonany_gui.engine.io import download as dl
from reasonany_gui.engine.io.checkpoints import cached_repo_ids
from reasonany_gui.engine.io.model_info import describe_model
from reasonany_gui.engine.io.resolve import APP_FETCH_HINT, resolve_model

REPO = "tester/tiny-base"
SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves `folder` as repo REPO; downloads copy in chunks through the caller's tqdm class."""

    def __init__(self, folder: Path, cache: Path, chunk: int = 4096) -> None:
        self.folder, self.cache, self.chunk = folder, cache, chunk
        self.calls: list[str] = []
        self.fail: BaseException | None = None

    def model_info(self, _api, repo_id, revision=None, files_metadata=False, token=None, **_kw):
        if self.fail is not None:
            raise self.fail
        sib = [
            SimpleNamespace(rfilename=str(p.relative_to(self.folder)), size=p.stat().st_size)
            for p in sorted(self.folder.rglob("*"))
            if p.is_file()
        ]
        return SimpleNamespace(sha=SHA, siblings=sib, gated=False)

    def hf_hub_download(self, repo_id, filename, *, revision=None, cache_dir=None, token=None, tqdm_class=None, **_kw):
        from huggingface_hub.file_download import repo_folder_name

        self.calls.append(filename)
        src = self.folder / filename
        data = src.read_bytes()
        root = Path(cache_dir) / repo_folder_name(repo_id=repo_id, repo_type="model")
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        part = blob.with_name(blob.name + ".incomplete")
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            have = part.stat().st_size if part.exists() else 0
            bar = tqdm_class(total=len(data), initial=have, unit="B")
            with open(part, "ab") as out:
                for start in range(have, len(data), self.chunk):
                    piece = data[start : start + self.chunk]
                    out.write(piece)
                    out.flush()
                    bar.update(len(piece))  # may raise CancelledError, leaving the .incomplete blob
            bar.close()
            os.replace(part, blob)
        link = root / "snapshots" / revision / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(os.path.relpath(blob, link.parent))
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / "main").write_text(revision)
        return str(link)


@pytest.fixture
def hub(tmp_path, trio, monkeypatch):
    from huggingface_hub import HfApi, constants

    folder = tmp_path / "remote"
    shutil.copytree(trio["base"], folder)
    (folder / "modeling_evil.py").write_text("import os\n")
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"x")
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    import huggingface_hub.utils._cache_manager as cache_manager  # scan_cache_dir binds the path at import

    monkeypatch.setattr(cache_manager, "HF_HUB_CACHE", str(cache))
    fake = FakeHub(folder, cache)
    monkeypatch.setattr(HfApi, "model_info", lambda api, *a, **k: fake.model_info(api, *a, **k))
    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake.hf_hub_download)
    return fake


def test_plan_sizes_and_file_filter(hub):
    p = dl.plan(REPO)
    names = {f.name for f in p.files}
    assert "config.json" in names and any(n.endswith(".safetensors") for n in names)
    assert not any(n.endswith((".bin", ".py", ".onnx")) for n in names)
    assert {"modeling_evil.py", "pytorch_model.bin", "onnx/model.onnx"} <= set(p.skipped)
    assert p.total_bytes == sum((hub.folder / n).stat().st_size for n in names)
    assert p.cached_bytes == 0 and p.remaining_bytes == p.total_bytes and p.revision == SHA


def test_choose_files_pickle_only_when_allowed():
    names = ["config.json", "pytorch_model.bin", "tokenizer.json", "setup.py"]
    assert dl.choose_files(names)[0] == ["config.json", "tokenizer.json"]
    assert "pytorch_model.bin" in dl.choose_files(names, allow_pickle=True)[0]
    sharded = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "consolidated.safetensors",
        SAFETENSORS_INDEX,
        "config.json",
    ]
    assert "consolidated.safetensors" not in dl.choose_files(sharded)[0]


def test_download_progress_resolves_and_plan_sees_cache(hub):
    events = []
    p = dl.plan(REPO)
    snap = dl.download(p, events.append, CancelToken())
    prog = [e for e in events if isinstance(e, Progress)]
    assert prog and all(e.stage == "download" for e in prog)
    assert prog[-1].overall == pytest.approx(1.0)
    assert [e.overall for e in prog] == sorted(e.overall for e in prog)
    assert hub.calls[-1] == "config.json"  # last: a snapshot with config.json is complete
    assert resolve_model(REPO) == snap
    assert describe_model(REPO).num_layers > 0
    assert REPO in cached_repo_ids()
    again = dl.plan(REPO)
    assert again.remaining_bytes == 0 and again.cached_bytes == p.total_bytes


def test_cancel_mid_file_leaves_nothing_resolvable_then_resumes(hub):
    hub.chunk = 512
    p = dl.plan(REPO)
    big = max(p.files, key=lambda f: f.size)
    token = CancelToken()
    seen = []

    def listener(ev):
        seen.append(ev)
        if isinstance(ev, Progress) and big.name in ev.message and ev.fraction < 1:  # as the file starts
            token.cancel()

    with pytest.raises(CancelledError, match="resume"):
        dl.download(p, listener, token)
    root = Path(hub.cache) / "models--tester--tiny-base"
    assert list((root / "blobs").glob("*.incomplete"))  # the partial file stays for the resume
    with pytest.raises(InputError, match="not in the local Hugging Face cache"):
        resolve_model(REPO)
    assert REPO not in cached_repo_ids()
    hub.calls.clear()
    events = []
    snap = dl.download(dl.plan(REPO), events.append, CancelToken())
    assert resolve_model(REPO) == snap
    assert not list((root / "blobs").glob("*.incomplete"))
    first = [e for e in events if isinstance(e, Progress) and big.name in e.message][0]
    assert first.fraction > 0  # continued from the partial blob, not from zero


def test_allow_download_fetches_through_module(hub):
    with pytest.raises(InputError) as cli:
        resolve_model(REPO)
    assert str(cli.value) == (
        "Model 'tester/tiny-base' is not in the local Hugging Face cache. Download it first: run again with "
        "--allow-download, or in a terminal: hf download tester/tiny-base. Or pick a local folder."
    )
    assert "Download… button" not in str(cli.value)  # a CLI user has no button
    with pytest.raises(InputError) as app:
        resolve_model(REPO, fetch_hint=APP_FETCH_HINT)
    assert str(app.value) == (
        "Model 'tester/tiny-base' is not in the local Hugging Face cache. Download it first with the Download… "
        "button next to the model, or pick a local folder."
    )
    assert resolve_model(REPO, allow_download=True).joinpath("config.json").is_file()
    assert "config.json" in hub.calls


def _http_error(cls, status):
    import httpx2

    req = httpx2.Request("GET", "https://huggingface.co/api/models/x")
    return cls("boom", response=httpx2.Response(status, request=req))


@pytest.mark.parametrize(
    "kind, pattern",
    [
        ("gated", "gated: log in with your Hugging Face token"),
        ("unknown", "No model 'tester/tiny-base' on the Hugging Face Hub: check the id"),
    ],
)
def test_hub_errors_are_input_errors(hub, kind, pattern):
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        hub.fail = _http_error(
            GatedRepoError if kind == "gated" else RepositoryNotFoundError, 401 if kind == "unknown" else 403
        )
    except Exception:  # constructor signature differs between versions
        hub.fail = (GatedRepoError if kind == "gated" else RepositoryNotFoundError)("boom")
    with pytest.raises(InputError, match=pattern):
        dl.plan(REPO)


def test_offline_is_an_input_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(InputError, match="you are offline"):
        dl.plan("someone/not-here")


@pytest.fixture
def token_files(tmp_path, monkeypatch):
    """huggingface_hub's token files in a temporary folder, and a whoami that accepts any token (no network)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf" / "stored_tokens"))
    monkeypatch.setattr(
        "huggingface_hub.hf_api.whoami",
        lambda token=None, **_k: {"name": "tester", "auth": {"accessToken": {"displayName": "app"}}},
    )
    return tmp_path / "hf" / "token"


def test_token_goes_to_huggingface_hub_not_settings(tmp_path, token_files):
    dl.login("hf_secret123")
    assert dl.stored_token() == "hf_secret123"
    assert (tmp_path / "hf" / "token").read_text().strip() == "hf_secret123"
    home = Path(os.environ["REASONANY_HOME"])
    assert not any("hf_secret123" in p.read_text(errors="ignore") for p in home.rglob("*") if p.is_file())
    dl.logout()
    assert dl.stored_token() is None
    with pytest.raises(InputError, match="empty"):
        dl.login("  ")
