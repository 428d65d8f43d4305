"""Publishing to the Hub against a fake Hub: huggingface_hub's HfApi calls that reach the network (create_repo,
preupload_lfs_files, create_commit) are replaced, and the tests check the exact files and the card that would be sent,
the plain-word errors, and that a cancel commits nothing."""

from __future__ import annotations

import pytest
import yaml

from reasonany_gui.cli import main
from reasonany_gui.engine.core.errors import CancelledError, InputError
from reasonany_gui.engine.core.events import CancelToken, Progress
from reasonany_gui.engine.io import publish as hub
from reasonany_gui.engine.workflows.export import publish

ALWAYS = [
    "Modelfile",
    "chat_template.jinja",
    "config.json",
    "generation_config.json",
    "m-Q8_0.gguf",
    "model-00001-of-00001.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "README.md",
]


@pytest.fixture
def out(tmp_path):
    """A merged output folder as the writer leaves it (file contents do not matter to the upload)."""
    out = tmp_path / "m"
    (out / "reasonany").mkdir(parents=True)
    for name in ALWAYS[:-1]:
        (out / name).write_text(f"{name} contents")
    # the card the merge wrote (engine/output/card.py): Hub ids only in base_model, the evaluation section
    (out / "README.md").write_text(
        "---\nlibrary_name: transformers\ntags:\n- merge\n- reasonany\n- reasonany-gui\nbase_model:\n"
        "- Qwen/Qwen2.5-0.5B\n- deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B\nbase_model_relation: merge\n---\n\n"
        "# Merged model: m\n\nMade with ReasonAny GUI.\n\n## Evaluation\n\n| data | merged |\n| --- | --- |\n"
        "| domain.jsonl | 3.25 |\n"
    )
    (out / "notes.txt").write_text("a user's own file: not part of the model")
    for name in ("report.html", "run.yaml", "masks.safetensors", "conflicts.safetensors", "mask_shapes.json"):
        (out / "reasonany" / name).write_text(name)
    return out


class FakeHub:
    """Records what would be sent; `existing` repos answer 409 to create_repo, `fail` is raised by the next call."""

    def __init__(self) -> None:
        self.repos: dict[str, bool] = {}  # repo id -> private
        self.existing: set[str] = set()
        self.uploaded: list[str] = []
        self.commits: list[dict] = []
        self.fail: BaseException | None = None

    def _maybe_fail(self) -> None:
        if self.fail is not None:
            raise self.fail

    def create_repo(self, api, repo_id, private=None, repo_type=None, exist_ok=False, **_):
        self._maybe_fail()
        assert api.token == "hf_test"
        if repo_id in self.existing and not exist_ok:
            raise http_error("HfHubHTTPError", 409)
        self.repos[repo_id] = bool(private)

    def preupload_lfs_files(self, api, repo_id, additions, **_):
        self._maybe_fail()
        self.uploaded += [op.path_in_repo for op in additions]

    def create_commit(self, api, repo_id, operations, commit_message="", **_):
        self._maybe_fail()
        files = {}
        for op in operations:
            with op.as_file() as f:
                files[op.path_in_repo] = f.read()
        self.commits.append({"repo": repo_id, "files": files, "message": commit_message})


def http_error(kind: str, status: int):
    import httpx2
    from huggingface_hub import errors

    req = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    return getattr(errors, kind)("boom", response=httpx2.Response(status, request=req))


@pytest.fixture
def fake_hub(monkeypatch):
    from huggingface_hub import HfApi

    fake = FakeHub()
    for name in ("create_repo", "preupload_lfs_files", "create_commit"):
        monkeypatch.setattr(HfApi, name, lambda api, *a, _n=name, **k: getattr(fake, _n)(api, *a, **k))
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    return fake


def card_yaml(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


def test_plan_lists_the_model_files_and_the_merges_card(out):
    plan = hub.plan_publish(out, "me/m")
    assert sorted(f.path_in_repo for f in plan.files) == sorted(ALWAYS)
    assert plan.total_bytes == sum(f.size for f in plan.files) > 0
    meta = card_yaml(plan.card)
    assert meta["base_model"] == ["Qwen/Qwen2.5-0.5B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"]
    assert meta["tags"] == ["merge", "reasonany", "reasonany-gui", "gguf"] and meta["base_model_relation"] == "merge"
    assert meta["pipeline_tag"] == "text-generation"
    assert "# Merged model: m" in plan.card and "| domain.jsonl | 3.25 |" in plan.card  # the evaluation goes along


def test_a_card_naming_a_local_folder_is_refused(out):
    """The merge's card names Hub models only (output/card.py); a hand-edited one naming a folder is stopped here."""
    readme = out / "README.md"
    readme.write_text(readme.read_text().replace("- Qwen/Qwen2.5-0.5B", "- /home/me/models/base"))
    with pytest.raises(InputError, match="base_model '/home/me/models/base' is not a Hub repo id"):
        hub.plan_publish(out, "me/m")


def test_run_files_go_only_when_asked(out):
    plan = hub.plan_publish(out, "me/m", include=["report", "masks"])
    extra = sorted(f.path_in_repo for f in plan.files if f.path_in_repo.startswith("reasonany/"))
    assert extra == [
        "reasonany/conflicts.safetensors",
        "reasonany/mask_shapes.json",
        "reasonany/masks.safetensors",
        "reasonany/report.html",
    ]
    with pytest.raises(InputError, match="choose from report, run, masks"):
        hub.plan_publish(out, "me/m", include=["everything"])


@pytest.mark.parametrize("bad", ["m", "me/", "me/m/x", "me m/x"])
def test_bad_repo_names_are_refused(out, bad):
    with pytest.raises(InputError, match="OWNER/NAME"):
        hub.plan_publish(out, bad)


def test_publish_sends_exactly_the_plan_in_one_commit(out, fake_hub):
    plan = hub.plan_publish(out, "me/m", private=True, include=["run"])
    events = []
    url = publish(plan, listener=events.append)
    assert url == "https://huggingface.co/me/m" and fake_hub.repos == {"me/m": True}
    (commit,) = fake_hub.commits
    assert sorted(commit["files"]) == sorted([*ALWAYS, "reasonany/run.yaml"])
    assert commit["files"]["README.md"].decode() == plan.card
    assert commit["files"]["config.json"] == b"config.json contents"
    assert fake_hub.uploaded == [f.path_in_repo for f in plan.files]
    fractions = [e.overall for e in events if isinstance(e, Progress)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_existing_repo_is_offered_a_commit(out, fake_hub):
    fake_hub.existing.add("me/m")
    plan = hub.plan_publish(out, "me/m")
    with pytest.raises(hub.RepoExistsError, match="already exists on the Hub. Add a commit"):
        publish(plan)
    assert not fake_hub.commits
    publish(plan, add_commit=True)
    assert len(fake_hub.commits) == 1


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (lambda: http_error("HfHubHTTPError", 403), "may not write to 'someorg'"),
        (lambda: http_error("HfHubHTTPError", 401), "refused your token"),
        (lambda: type("ConnectError", (Exception,), {})("no route"), "you are offline"),
    ],
)
def test_hub_errors_in_plain_words(out, fake_hub, error, words):
    fake_hub.fail = error()
    with pytest.raises(InputError, match=words):
        publish(hub.plan_publish(out, "someorg/m"))


def test_no_token_says_log_in(out, fake_hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(hub, "stored_token", lambda: None)
    with pytest.raises(InputError, match="not logged in"):
        publish(hub.plan_publish(out, "me/m"))
    assert not fake_hub.repos


def test_cancel_commits_nothing(out, fake_hub):
    cancel = CancelToken()

    def listener(event):
        if isinstance(event, Progress):
            cancel.cancel()

    with pytest.raises(CancelledError, match="nothing was committed"):
        publish(hub.plan_publish(out, "me/m"), listener=listener, cancel=cancel)
    assert len(fake_hub.uploaded) == 1 and not fake_hub.commits


def test_cli_shows_the_plan_and_publishes(out, fake_hub, capsys):
    assert main(["publish", str(out), "--repo", "me/m", "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert "Public repo me/m: 10 files" in shown and "tags:" in shown and not fake_hub.commits
    assert main(["publish", str(out), "--repo", "me/m", "--include", "report", "--quiet"]) == 0
    assert capsys.readouterr().out.strip().endswith("https://huggingface.co/me/m")
    assert "reasonany/report.html" in fake_hub.commits[0]["files"]
    fake_hub.existing.add("me/m2")
    assert main(["publish", str(out), "--repo", "me/m2", "--quiet"]) == 2


@pytest.mark.parametrize(
    "text, valid",
    [
        ("Qwen/Qwen2.5-7B", True),
        ("org/_name", False),  # the card's old rule took it; the Hub and resolve_model do not
        ("org/né", False),
        ("org/a--b", False),
        ("org/a..b", False),
        ("-org/name", False),
    ],
)
def test_one_repo_id_rule_for_resolving_the_card_and_publishing(text, valid):
    """io.resolve.is_repo_id is the engine's one rule: the card's base_model and publishing agree with it."""
    from reasonany_gui.engine.io.publish import check_repo_id
    from reasonany_gui.engine.io.resolve import is_repo_id
    from reasonany_gui.engine.output.card import hub_repo_id

    assert is_repo_id(text) is valid
    assert (hub_repo_id(text) == text) is valid
    if valid:
        assert check_repo_id(text) == text
    else:
        with pytest.raises(InputError, match="is not a Hugging Face repo name"):
            check_repo_id(text)
