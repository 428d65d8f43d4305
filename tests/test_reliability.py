"""Reliability and security (issue 5): bad inputs, faults, and input folders that are never touched.

Every test asserts what the user gets: the exit code, the message (the file or value, and the fix), that
nothing was written (no output folder, no temporary `.NAME.reasonany-tmp-*` folder) and that the input model
folders are byte-for-byte unchanged. Faults that cannot be produced for real (a GPU running out of memory, a
full disk) are injected where the real one would surface; a killed save is a real SIGKILL of a real process.
docs/RELIABILITY.md lists each case, the message the user sees and the test that proves it.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import skills
import torch
import yaml
from safetensors.torch import load_file, save_file

from reasonany_gui import cli
from reasonany_gui.engine.core import layout
from reasonany_gui.engine.core.errors import CancelledError, InputError, OutOfMemoryError, WriteError
from reasonany_gui.engine.core.events import CancelToken, Log, Progress, StageStarted
from reasonany_gui.engine.io.checkpoints import Checkpoint
from reasonany_gui.engine.io.writer import TMP_MARK, human_bytes
from reasonany_gui.engine.run.pipeline import Pipeline, registry_path
from reasonany_gui.engine.scoring.oom import oom_error
from reasonany_gui.engine.settings.config import MergeConfig

PACKAGE = Path(__file__).resolve().parents[1] / "reasonany_gui"
FAST = dict(samples=4, max_length=48, device="cpu", seed=0, score_cache=False)
CLI_FAST = ["--samples", "4", "--max-length", "48", "--device", "cpu", "--no-cache", "--quiet"]
ROLES = ("base", "reasoning", "domain")


# ---------------------------------------------------------------------------------------------- helpers
def tree_state(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under `folder`: sha256 and modification time (a rewrite with equal bytes counts too)."""
    out = {}
    for f in sorted(Path(folder).rglob("*")):
        if f.is_file():
            out[str(f.relative_to(folder))] = (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns)
    return out


def trio_state(trio: dict[str, Path]) -> dict[str, dict]:
    return {r: tree_state(trio[r]) for r in ROLES}


def leftovers(parent: Path) -> list[Path]:
    """Temporary or probe folders anywhere under `parent` (a failed run must leave none)."""
    return [p for p in Path(parent).rglob("*") if TMP_MARK in p.name or ".reasonany-probe-" in p.name]


def assert_nothing_written(out: Path) -> None:
    out = Path(out)
    assert not out.exists(), f"{out} was created"
    assert not leftovers(out.parent), leftovers(out.parent)


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def merge_argv(trio, data_files, out: Path, **models) -> list[str]:
    spec = {r: models.get(r, trio[r]) for r in ROLES}
    data = {k: models.get(f"{k}_data", data_files[k]) for k in ("reasoning", "domain")}
    return skills.merge_argv(spec, data, out, *CLI_FAST)


def make_config(trio, data_files, out: Path | None = None, **kw) -> MergeConfig:
    return skills.trio_config(trio, data_files, out, **{**FAST, **kw})


def load_output(out: Path) -> dict[str, torch.Tensor]:
    index = json.loads((out / "model.safetensors.index.json").read_text())
    tensors = {}
    for f in sorted(set(index["weight_map"].values())):
        tensors.update(load_file(str(out / f)))
    return tensors


def registry_entries() -> list[dict]:
    path = registry_path()
    return json.loads(path.read_text()) if path.is_file() else []


@pytest.fixture(scope="module")
def pristine(trio):
    """The trio as it was before this module ran; the last test compares against it."""
    return trio_state(trio)


@pytest.fixture(scope="module")
def reference_run(trio, data_files, tmp_path_factory, pristine):
    """One full ReasonAny run (all four passes) on the safetensors trio, inputs hashed right before and after.
    Its score cache serves the tests that need scores but not new gradients."""
    before = trio_state(trio)
    root = tmp_path_factory.mktemp("reference")
    out = root / "merged"
    cfg = make_config(trio, data_files, out, score_cache=True, intersect=True)  # all four passes
    p = Pipeline(cfg, cache_root=root / "scores")
    p.run()
    return {
        "cfg": cfg,
        "out": out,
        "before": before,
        "after": trio_state(trio),
        "cache": root / "scores",
        "keys": dict(p.map_keys),
    }


# ============================================================================ input folders are never modified
def test_full_run_leaves_input_folders_byte_for_byte_unchanged(reference_run, trio):
    assert reference_run["before"] == reference_run["after"]
    assert all(reference_run["before"][r] for r in ROLES)  # the hashes cover real files
    assert (reference_run["out"] / "reasonany" / "report.json").is_file()
    assert not leftovers(reference_run["out"].parent)


# ============================================================================ bad model folders
@pytest.fixture(scope="module")
def broken_models(trio, tmp_path_factory) -> dict[str, Path]:
    """Model folders that are wrong in one way each, made from copies of the base."""
    root = tmp_path_factory.mktemp("broken")
    base = trio["base"]
    out: dict[str, Path] = {}

    out["empty"] = root / "empty"
    out["empty"].mkdir()

    out["no_weights"] = root / "no_weights"
    out["no_weights"].mkdir()
    shutil.copy(base / "config.json", out["no_weights"] / "config.json")

    def copy(name: str) -> Path:
        out[name] = root / name
        shutil.copytree(base, out[name])
        return out[name]

    sharded = copy("missing_shard")
    tensors = load_file(str(sharded / "model.safetensors"))
    (sharded / "model.safetensors").unlink()
    names = sorted(tensors)
    half = {1: names[: len(names) // 2], 2: names[len(names) // 2 :]}
    weight_map = {}
    for i, part in half.items():
        fname = f"model-0000{i}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, str(sharded / fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in part})
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (sharded / "model-00002-of-00002.safetensors").unlink()  # an interrupted download

    f = copy("truncated") / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])

    f = copy("corrupted") / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[8:40] = b"\xff" * 32  # the JSON header
    f.write_bytes(bytes(data))

    pickled = copy("pickle_only")
    torch.save(load_file(str(pickled / "model.safetensors")), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    return out


BROKEN = {
    "empty": ("is not a model folder: it has no config.json", "Pick the folder that holds config.json"),
    "no_weights": ("has a config.json but no weight files", "Is the download complete?"),
    "missing_shard": (
        "names shard(s) that are missing: model-00002-of-00002.safetensors",
        "Download the missing files again",
    ),
    "truncated": ("model.safetensors is not a readable safetensors file", "truncated or corrupted: download it again"),
    "corrupted": ("model.safetensors is not a readable safetensors file", "truncated or corrupted: download it again"),
    "pickle_only": ("has only pickle weight files (pytorch_model.bin)", "--allow-pickle"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_bad_model_folder_is_refused_with_the_file_and_the_fix(
    kind, broken_models, trio, data_files, tmp_path, capsys, pristine
):
    folder = broken_models[kind]
    before = tree_state(folder)
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, reasoning=folder), capsys)
    assert code == 2, err
    what, fix = BROKEN[kind]
    assert f"The reasoning model: {folder}" in err and what in err and fix in err, err
    assert "Traceback" not in err
    assert_nothing_written(out)
    assert tree_state(folder) == before
    assert trio_state(trio) == pristine


@pytest.mark.slow  # two full merges
def test_pickle_is_loaded_only_when_allowed_and_then_gives_the_same_merge(trio, data_files, tmp_path):
    """A .bin trio made by torch.save merges, with --allow-pickle, exactly like the safetensors trio
    (scores included: the scoring passes load the .bin files through transformers)."""
    pk = {}
    for role in ROLES:
        pk[role] = tmp_path / role
        shutil.copytree(trio[role], pk[role])
        torch.save(load_file(str(pk[role] / "model.safetensors")), pk[role] / "pytorch_model.bin")
        (pk[role] / "model.safetensors").unlink()
    before = trio_state(pk)
    cfg = make_config(
        trio,
        data_files,
        tmp_path / "from_safetensors",
        intersect=False,
        samples=2,
        reasoning_ratio=0.3,
        domain_ratio=0.3,
    )
    ref = load_output(Pipeline(cfg).run())
    pickled = cfg.replace(out=str(tmp_path / "from_pickle"), allow_pickle=True, **{r: str(pk[r]) for r in ROLES})
    got = load_output(Pipeline(pickled).run())
    assert set(got) == set(ref) and all(torch.equal(got[n], ref[n]) for n in ref)
    assert any(not torch.equal(ref[n], load_file(str(trio["base"] / "model.safetensors"))[n]) for n in ref)
    assert trio_state(pk) == before


class _Payload:
    """Unpickling this would create a folder: the stand-in for code hidden in a pickle file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_with_code_is_refused_even_when_pickle_is_allowed(trio, data_files, tmp_path, capsys):
    marker = tmp_path / "CODE_RAN"
    evil = tmp_path / "evil"
    shutil.copytree(trio["domain"], evil)
    state = load_file(str(evil / "model.safetensors"))
    state["payload"] = _Payload(marker)
    torch.save(state, evil / "pytorch_model.bin")
    (evil / "model.safetensors").unlink()
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, domain=evil) + ["--allow-pickle"], capsys)
    assert code == 2, err
    assert (
        (
            "pytorch_model.bin could not be loaded safely (weights_only=True): it holds more than tensors, and "
            "loading it could run code ("
        )
        in err
        and "unsupported GLOBAL" in err
        and "mkdir" in err
    )
    assert "Use a safetensors copy of the model instead." in err
    assert not marker.exists()
    assert_nothing_written(out)


def test_old_format_pickle_loads_and_a_damaged_one_says_download_again(trio, tmp_path):
    """Pre-1.6 (non-zip) .bin files cannot be memory-mapped; they still load, with weights_only=True."""
    state = load_file(str(trio["base"] / "model.safetensors"))
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(trio["base"] / "config.json", old)
    torch.save(state, old / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    ckpt = Checkpoint(old, allow_pickle=True)
    assert ckpt.names == sorted(state) and all(torch.equal(ckpt.get(n), state[n]) for n in state)
    (old / "pytorch_model.bin").write_bytes(b"\x80\x02 not a pickle")
    with pytest.raises(
        InputError,
        match=r"pytorch_model.bin is not a readable PyTorch weight file .* The file is "
        r"truncated or corrupted: download it again",
    ):
        Checkpoint(old, allow_pickle=True)


def _plant_custom_code(folder: Path, marker: Path, where: str) -> None:
    """A model (or tokenizer) whose config points to a Python file that would leave a marker when imported."""
    code = (
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import Qwen2Config, Qwen2ForCausalLM, PreTrainedTokenizerFast\n"
        "class EvilConfig(Qwen2Config):\n    model_type = 'evilnet'\n"
        "class EvilForCausalLM(Qwen2ForCausalLM):\n    config_class = EvilConfig\n"
        "class EvilTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    )
    (folder / "custom_code.py").write_text(code)
    if where == "model":
        cfg = json.loads((folder / "config.json").read_text())
        cfg.update(
            model_type="evilnet",
            architectures=["EvilForCausalLM"],
            auto_map={"AutoConfig": "custom_code.EvilConfig", "AutoModelForCausalLM": "custom_code.EvilForCausalLM"},
        )
        (folder / "config.json").write_text(json.dumps(cfg))
    else:
        tok = json.loads((folder / "tokenizer_config.json").read_text())
        tok.update(tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": [None, "custom_code.EvilTokenizer"]})
        (folder / "tokenizer_config.json").write_text(json.dumps(tok))


def test_code_in_a_model_folder_is_never_run(trio, data_files, tmp_path, capsys):
    marker = tmp_path / "CODE_RAN"
    models = {}
    for role in ROLES:
        models[role] = tmp_path / role
        shutil.copytree(trio[role], models[role])
        _plant_custom_code(models[role], marker, "model")
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, **models), capsys)
    assert code == 2, err
    assert (
        f"{models['reasoning']} needs custom code from the model folder to load; ReasonAny GUI never runs code "
        "from model folders. Use a model whose architecture is built into transformers."
    ) in err
    assert not marker.exists()
    assert_nothing_written(out)


def test_tokenizer_loader_never_runs_folder_code_even_if_the_user_says_yes(trio, tmp_path, monkeypatch):
    """Left at None, transformers asks on stdin whether to run a folder's code; a 'y' there ran it (measured).
    The one loader (previews, scoring, tuner, evaluation) says trust_remote_code=False, so a 'y' cannot matter,
    whether it is given a spec (the preview) or a resolved folder (the pipeline)."""
    from reasonany_gui.engine.data.calibration import load_tokenizer

    marker = tmp_path / "CODE_RAN"
    folder = tmp_path / "custom"
    shutil.copytree(trio["reasoning"], folder)
    _plant_custom_code(folder, marker, "model")
    _plant_custom_code(folder, marker, "tokenizer")
    monkeypatch.setattr("builtins.input", lambda *_a: "y")
    with pytest.raises(InputError, match="never runs custom tokenizer code from a model folder"):
        load_tokenizer(str(folder))
    with pytest.raises(InputError, match=f"The tokenizer in {folder} could not be loaded"):
        load_tokenizer(folder)
    assert not marker.exists()
    assert len(load_tokenizer(str(trio["reasoning"]))) == 259  # a plain folder still loads


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            yield name, {k.arg: k.value for k in node.keywords}, node


def test_source_never_enables_remote_code_and_loads_pickle_only_with_weights_only():
    """Call by call: every from_pretrained says trust_remote_code=False, every torch.load weights_only=True,
    and nothing uses pickle, eval or exec."""
    files = sorted((PACKAGE / "engine").rglob("*.py")) + [PACKAGE / "cli.py"]
    assert len(files) > 30
    checked = {"from_pretrained": 0, "load": 0}
    for f in files:
        tree = ast.parse(f.read_text(), filename=str(f))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(m.split(".")[0] in ("pickle", "dill", "cloudpickle") for m in mods), f
        for name, kw, node in _calls(tree):
            where = f"{f.name}:{node.lineno}"
            if "trust_remote_code" in kw:
                assert isinstance(kw["trust_remote_code"], ast.Constant) and kw["trust_remote_code"].value is False, (
                    where
                )
            if name == "from_pretrained":
                checked["from_pretrained"] += 1
                assert "trust_remote_code" in kw, f"{where}: from_pretrained must say trust_remote_code=False"
            if (
                name == "load"
                and isinstance(node.func, ast.Attribute)
                and getattr(node.func.value, "id", "") == "torch"
            ):
                checked["load"] += 1
                w = kw.get("weights_only")
                assert isinstance(w, ast.Constant) and w.value is True, f"{where}: torch.load without weights_only=True"
            assert name not in ("eval", "exec") or isinstance(node.func, ast.Attribute), where
    assert checked["from_pretrained"] >= 3 and checked["load"] >= 1  # the scan saw the real loaders


# ============================================================================ models that do not fit together
@pytest.fixture(scope="module")
def misfits(tmp_path_factory) -> dict[str, Path]:
    """Single models that differ from the trio's base (Qwen2, 2 layers, hidden 64, vocab 259, untied) in one way."""
    from transformers import AutoModelForCausalLM

    from reasonany_gui.engine.data.demo import make_config as model_config
    from reasonany_gui.engine.data.demo import make_tokenizer, save_model

    root = tmp_path_factory.mktemp("misfits")
    variants = {
        "architecture": dict(arch="llama"),
        "layers": dict(layers=3),
        "hidden": dict(hidden=32),
        "vocab": dict(vocab=300),
        "tied": dict(tie=True),
    }
    tok = make_tokenizer()
    out = {}
    for name, kw in variants.items():
        torch.manual_seed(0)
        out[name] = save_model(AutoModelForCausalLM.from_config(model_config(**kw)), tok, root / name)
    return out


MISFIT = {
    "architecture": (
        "The domain model's architecture (LlamaForCausalLM) differs from the base model's (Qwen2ForCausalLM)"
    ),
    "layers": "The domain model's number of layers (3) differs from the base model's (2)",
    "hidden": "The domain model's hidden size (32) differs from the base model's (64)",
    "vocab": "The domain model's vocabulary size (300) differs from the base model's (259)",
    "tied": "The domain model's tied input/output embeddings (True) differs from the base model's (False)",
}


@pytest.mark.parametrize("kind", list(MISFIT))
def test_models_that_do_not_fit_together_are_refused(kind, misfits, trio, data_files, tmp_path, capsys, pristine):
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, domain=misfits[kind]), capsys)
    assert code == 2, err
    assert "The three models do not fit together" in err and MISFIT[kind] in err, err
    assert "Pick a model fine-tuned from the same base" in err
    assert_nothing_written(out)
    assert trio_state(trio) == pristine


# ============================================================================ calibration data
CALIBRATION = {
    "empty.jsonl": (b"", "is empty. Pick a file with at least one sample"),
    "table.xlsx": (b"PK\x03\x04 not a text file", "unknown file type '.xlsx'. Use one of .jsonl"),
    "fields.jsonl": (
        json.dumps({"question_text": "2+2?", "label": 4}).encode(),
        "no record has a usable field. Found: question_text, label. Accepted: text",
    ),
    "latin1.txt": (
        "Caf\xe9 au lait, r\xe9sum\xe9\n\nsecond".encode("latin-1"),
        "is not UTF-8 text (byte 0xe9 at line 1, byte offset 3). Re-save it as UTF-8",
    ),
    "broken.jsonl": (b'{"text": "ok"}\n{"text": oops}\n', "line 2: not valid JSON"),
    "missing.jsonl": (None, "does not exist. Check the path"),
}


@pytest.mark.parametrize("name", list(CALIBRATION))
def test_bad_calibration_file_is_refused_with_the_file_and_the_fix(name, trio, data_files, tmp_path, capsys, pristine):
    content, expected = CALIBRATION[name]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, domain_data=path), capsys)
    assert code == 2, err
    assert "The domain calibration data: Calibration data" in err and str(path) in err and expected in err, err
    assert_nothing_written(out)
    assert trio_state(trio) == pristine


def test_long_samples_are_truncated_and_few_samples_used_and_both_counted(trio, data_files, tmp_path, capsys):
    """3 records (2 longer than max_length), 4 asked: all 3 used, 2 cut, the report and the console say so."""
    data = tmp_path / "few.jsonl"
    texts = ["Short one: 2 + 2 = 4.", "Long: " + "12 + 30 = 42, so " * 20 + "done.", "Also long " * 30]
    data.write_text("\n".join(json.dumps({"text": t}) for t in texts))
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, reasoning_data=data) + ["--no-intersect"], capsys)
    assert code == 0, err
    assert "Only 3 samples in few.jsonl, 4 asked: using 3." in err
    assert "2 of 3 samples were longer than max_length = 48 tokens and were cut" in err
    report = json.loads((out / "reasonany" / "report.json").read_text())
    d = report["data"]["reasoning"]
    assert (d["available"], d["requested"], d["used"], d["truncated"], d["dropped"]) == (3, 4, 3, 2, 0)
    # byte-level tokenizer: the short text is its bytes; the two long ones count max_length tokens each
    assert d["tokens"] == (len(texts[0].encode()) - 1) + 2 * (48 - 1)


# ============================================================================ settings
VALUES = [
    ("--reasoning-ratio=0", "reasoning_ratio = 0.0 must be a fraction strictly between 0 and 1 (e.g. 0.05)"),
    ("--domain-ratio=1", "domain_ratio = 1.0 must be a fraction strictly between 0 and 1"),
    ("--reasoning-ratio=1.5", "reasoning_ratio = 1.5 must be a fraction strictly between 0 and 1"),
    ("--domain-ratio=-0.1", "domain_ratio = -0.1 must be a fraction strictly between 0 and 1"),
    ("--reasoning-ratio=nan", "reasoning_ratio = nan must be a fraction strictly between 0 and 1"),
    ("--reasoning-scale=-1", "reasoning_scale = -1.0 must be a number between 0 and 10"),
    ("--domain-scale=1e6", "domain_scale = 1000000.0 must be a number between 0 and 10"),
    ("--domain-scale=inf", "domain_scale = inf must be a number between 0 and 10"),
    ("--samples=0", "samples = 0 must be a whole number between 1 and 1000000"),
    ("--samples=-5", "samples = -5 must be a whole number between 1 and 1000000"),
    ("--max-length=0", "max_length = 0 must be a whole number between 8 and"),
    ("--device=cuda:7", "device = 'cuda:7' does not exist: this machine has"),
    ("--device=gpu", "device = 'gpu' is not valid: use auto, cpu, cuda or cuda:N"),
    ("--shard-size=lots", "shard_size = 'lots' is not a size: write e.g. 5GB"),
]


@pytest.mark.parametrize("flag,expected", VALUES, ids=[v[0] for v in VALUES])
def test_bad_value_is_refused_naming_the_value_and_the_fix(flag, expected, trio, data_files, tmp_path, capsys):
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out) + [flag], capsys)
    assert code == 2, err
    assert expected in err, err
    if "cuda:7" in flag:
        assert "Use --device cpu or auto" in err
    assert_nothing_written(out)


# ============================================================================ output folder and model ids
def _unwritable_folder(tmp_path: Path) -> Path | None:
    """A folder where creating a sub-folder really fails (a read-only folder; as root, a read-only mount)."""
    ro = tmp_path / "read_only"
    ro.mkdir()
    ro.chmod(0o555)
    for candidate in (ro, Path("/sys/fs"), Path("/proc/sys")):
        try:
            (candidate / "reasonany-probe-test").mkdir()
        except OSError:
            return candidate
        (candidate / "reasonany-probe-test").rmdir()
    return None


@pytest.mark.parametrize(
    "case", ["not_empty", "is_a_file", "is_input", "inside_input", "contains_input", "under_a_file", "not_writable"]
)
def test_bad_output_folder_is_refused_before_any_work(case, trio, data_files, tmp_path, capsys, pristine):
    expected = {
        "not_empty": "already exists and is not empty. Choose a new folder or empty it",
        "is_a_file": "is a file. Choose a new folder name",
        "is_input": f"is (inside) the input model folder {trio['base']}; input folders are never modified",
        "inside_input": f"is (inside) the input model folder {trio['reasoning']}; input folders are never modified",
        "contains_input": "contains the input model",
        "under_a_file": "is a file, not a folder. Choose another place",
        "not_writable": "is not writable",
    }[case]
    if case == "not_empty":
        out = tmp_path / "taken"
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "is_a_file":
        out = tmp_path / "file.txt"
        out.write_text("mine")
    elif case == "is_input":
        out = trio["base"]
    elif case == "inside_input":
        out = trio["reasoning"] / "merged"
    elif case == "contains_input":
        out = trio["base"].parent
    elif case == "under_a_file":
        (tmp_path / "file.txt").write_text("mine")
        out = tmp_path / "file.txt" / "merged"
    else:
        folder = _unwritable_folder(tmp_path)
        if folder is None:
            pytest.skip("no folder on this machine refuses writes to this user")
        out = folder / "merged"
    before = tree_state(tmp_path)
    code, err = run_cli(merge_argv(trio, data_files, out), capsys)
    assert code == 2, err
    assert expected in err and "Choose" in err, err
    assert tree_state(tmp_path) == before  # nothing created, removed or changed, probe folders included
    assert trio_state(trio) == pristine
    assert not (trio["reasoning"] / "merged").exists()


def test_existing_empty_output_folder_is_used(trio, data_files, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert Pipeline(make_config(trio, data_files, out, method="task_arithmetic")).run() == out.resolve()
    assert (out / "model.safetensors.index.json").is_file() and not leftovers(tmp_path)


def test_output_folder_filled_during_the_run_is_left_alone_and_the_work_is_kept(trio, data_files, tmp_path):
    """Something writes into the chosen (empty) folder while the run works: the last step must neither
    overwrite it nor throw hours of work away; the model goes to NAME-2 and a warning says so."""
    out = tmp_path / "merged"
    out.mkdir()
    logs: list[str] = []

    def listener(e):
        if isinstance(e, Progress) and e.stage == "write" and e.fraction >= 1.0:
            (out / "theirs.txt").write_text("written by another program")
        if isinstance(e, Log) and e.level == "warning":
            logs.append(e.message)

    written = Pipeline(make_config(trio, data_files, out, method="task_arithmetic"), listener=listener).run()
    assert written == out.resolve().with_name("merged-2")
    assert (written / "model.safetensors.index.json").is_file() and (written / "reasonany" / "run.yaml").is_file()
    assert [f.name for f in out.iterdir()] == ["theirs.txt"] and (out / "theirs.txt").read_text().startswith("written")
    assert any(
        f"The output folder {out.resolve()} was filled by something else" in m and str(written) in m for m in logs
    )
    assert not leftovers(tmp_path)


REPO_IDS = [
    ("owner/../../etc", "is neither an existing folder nor a valid Hugging Face repo id (owner/name, no '..'"),
    ("../../../outside/model", "is neither an existing folder nor a valid Hugging Face repo id"),
    ("owner/name/../../x", "is neither an existing folder nor a valid Hugging Face repo id"),
    ("/definitely/not/a/model", "Model folder /definitely/not/a/model does not exist. Check the path"),
    ("someone/not-in-the-cache", "is not in the local Hugging Face cache. Download it first"),
]


@pytest.mark.parametrize("spec,expected", REPO_IDS, ids=[r[0] for r in REPO_IDS])
def test_model_id_with_path_tricks_is_refused(spec, expected, trio, data_files, tmp_path, capsys):
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, base=spec), capsys)
    assert code == 2, err
    assert "error: The base model: " in err and spec in err and expected in err, err
    assert_nothing_written(out)


# ============================================================================ cancel at every stage
CANCEL_AT = [
    "check",
    "identify:reasoning@reasoning",
    "identify:domain@domain",
    "identify:base@reasoning",
    "identify:base@domain",
    "select",
    "write",
    "write:report",
]


def _cancel_point(stage: str, event: object) -> bool:
    """Where to cancel: mid-stage where the stage reports progress (after its first sample or tensor),
    at its start otherwise; write:report after the last tensor, while the report files are written."""
    if stage == "write:report":
        return isinstance(event, Progress) and event.stage == "write" and event.fraction >= 1.0
    if stage in ("check", "select"):
        return isinstance(event, StageStarted) and event.stage == stage
    return isinstance(event, Progress) and event.stage == stage


@pytest.mark.parametrize("stage", CANCEL_AT)
def test_cancel_at_every_stage_stops_fast_and_leaves_nothing(
    stage, trio, data_files, tmp_path, reference_run, pristine
):
    """Each run starts from the reference's score cache minus the map being cancelled, so the stage under
    test is the only expensive one; the cancelled map must not reach the cache."""
    cache = tmp_path.parent / f"{tmp_path.name}-cache"
    shutil.copytree(reference_run["cache"], cache)
    target = stage.removeprefix("identify:") if stage.startswith("identify:") else None
    if target:
        shutil.rmtree(cache / reference_run["keys"][target])
    token = CancelToken()
    seen: list[str] = []
    cancelled_at: list[float] = []

    def listener(e):
        if isinstance(e, StageStarted):
            seen.append(e.stage)
        if not token.cancelled and _cancel_point(stage, e):
            cancelled_at.append(time.perf_counter())
            token.cancel()

    out = tmp_path / "merged"
    p = Pipeline(
        make_config(trio, data_files, out, score_cache=True, intersect=True),
        listener=listener,
        cancel=token,
        cache_root=cache,
    )
    with pytest.raises(CancelledError):
        p.run()
    stopped = time.perf_counter()
    assert cancelled_at, f"never reached {stage}: {seen}"
    assert stopped - cancelled_at[0] < 5.0  # a tiny model: one sample or tensor, then cleanup
    assert seen[-1] == stage.removesuffix(":report")  # no stage started after the cancel
    if target:
        assert seen == ["check", stage] and not (cache / reference_run["keys"][target]).exists()
    assert_nothing_written(out)
    assert list(tmp_path.iterdir()) == [] and not leftovers(cache)
    assert not [e for e in registry_entries() if tmp_path in Path(e["path"]).parents]
    assert trio_state(trio) == pristine


@pytest.mark.slow  # a cancelled and a full run; cancelling is covered by the per-stage test
def test_after_a_cancel_the_next_run_works(trio, data_files, tmp_path):
    """The app stays usable: a run cancelled mid-identification, then a full run in the same process."""
    token = CancelToken()

    def listener(e):
        if isinstance(e, Progress) and e.stage.startswith("identify") and e.fraction >= 0.5:
            token.cancel()

    first = Pipeline(make_config(trio, data_files, tmp_path / "a", intersect=False), listener=listener, cancel=token)
    with pytest.raises(CancelledError):
        first.run()
    assert torch.is_grad_enabled() and not first._tmp_root.exists()
    out = Pipeline(make_config(trio, data_files, tmp_path / "b", intersect=False)).run()
    assert (out / "reasonany" / "report.json").is_file() and not (tmp_path / "a").exists()


# ============================================================================ out of memory
def _oom(*_a, **_k):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")


def test_oom_in_the_forward_pass_names_the_fix_and_the_retry_flags(trio, data_files, tmp_path, capsys, monkeypatch):
    from reasonany_gui.engine.run import identify

    real_load = identify.load_model

    def load_then_break(*a, **k):
        model = real_load(*a, **k)
        model.forward = _oom  # the first sample's forward pass runs out of memory
        return model

    monkeypatch.setattr(identify, "load_model", load_then_break)
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out), capsys)
    assert code == 1, err
    assert "The GPU ran out of memory while scoring the reasoning model on the reasoning data" in err
    assert "host memory" in err and "gradient checkpointing" in err and "shorter maximum length (now 48" in err
    assert "Try again with: --accumulators host --gradient-checkpointing" in err
    assert "Log: " in err
    assert_nothing_written(out)


def test_oom_suggestions_are_the_next_settings_not_yet_on():
    cfg = MergeConfig(base="b", reasoning="r", domain="d", max_length=512)
    assert oom_error(cfg, "x").suggestions == {"accumulators": "host", "gradient_checkpointing": True}
    assert oom_error(cfg.replace(accumulators="host"), "x").suggestions == {"gradient_checkpointing": True}
    both = cfg.replace(accumulators="host", gradient_checkpointing=True)
    assert oom_error(both, "x").suggestions == {"max_length": 256}
    assert oom_error(both.replace(max_length=64), "x").suggestions == {"device": "cpu"}
    for c in (cfg, both):
        c.replace(**oom_error(c, "x").suggestions).validate(need_out=False)  # every suggestion is a valid setting


@pytest.mark.slow  # a full merge per suggestion
def test_oom_retry_with_the_suggestions_completes(trio, data_files, tmp_path, monkeypatch):
    """The GUI's one-click retry is config.replace(**exc.suggestions): it must run where the first run failed."""
    from reasonany_gui.engine.run import identify

    real = identify.score_pass
    state = {"fits": False}

    def accumulators_do_not_fit(*a, **k):  # OOM before score_pass's own handler: allocating the accumulators
        if not state["fits"]:
            _oom()
        return real(*a, **k)

    monkeypatch.setattr(identify, "score_pass", accumulators_do_not_fit)
    cfg = make_config(trio, data_files, tmp_path / "merged", intersect=False)
    with pytest.raises(OutOfMemoryError) as info:
        Pipeline(cfg).run()
    assert info.value.suggestions == {"accumulators": "host", "gradient_checkpointing": True}
    assert_nothing_written(tmp_path / "merged")
    state["fits"] = True  # what host accumulators and checkpointing achieve on the real GPU
    out = Pipeline(cfg.replace(**info.value.suggestions)).run()
    run = yaml.safe_load((out / "reasonany" / "run.yaml").read_text())
    assert run["accumulators"] == "host" and run["gradient_checkpointing"] is True


def test_oom_while_loading_weights_suggests_less_memory(trio, data_files, tmp_path, monkeypatch):
    from reasonany_gui.engine.run import identify

    monkeypatch.setattr(identify, "load_model", _oom)
    with pytest.raises(OutOfMemoryError, match="The reasoning model's weights do not fit in the memory") as info:
        Pipeline(make_config(trio, data_files, tmp_path / "merged")).run()
    assert info.value.suggestions == {"compute_dtype": "bfloat16"}  # float32 on the CPU: halve the weights first
    assert_nothing_written(tmp_path / "merged")


# ============================================================================ disk full, write errors
def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_saving_removes_the_temporary_folder_and_says_how_much_is_needed(
    trio, data_files, tmp_path, capsys, monkeypatch, pristine
):
    from reasonany_gui.engine.io import writer

    # model shards are streamed into their files by the writer (io/writer.py), not through safetensors' save_file
    monkeypatch.setattr(writer, "open", _enospc, raising=False)
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out) + ["--method", "task_arithmetic"], capsys)
    assert code == 1, err
    needed = Checkpoint(trio["base"]).num_params * 4  # float32 output, no masks for task arithmetic
    assert f"The disk is full while writing {out.resolve() / 'model-00001-of-00001.safetensors'}." in err
    assert TMP_MARK not in err  # the temporary folder is gone; the message names the folder the user chose
    assert f"The output needs about {human_bytes(needed)};" in err and "free now" in err
    assert "input models are untouched" in err and "Log: " in err
    assert_nothing_written(out)
    assert trio_state(trio) == pristine


def test_write_error_in_the_report_files_is_a_clear_write_error(trio, data_files, tmp_path, monkeypatch, reference_run):
    """The masks file is written by the report, not the shard writer: its OSError must be handled too."""
    import safetensors.torch

    real = safetensors.torch.save_file

    def masks_fail(tensors, path, *a, **k):
        if Path(path).name == "masks.safetensors":
            raise OSError(errno.EACCES, "Permission denied", path)
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(safetensors.torch, "save_file", masks_fail)
    out = tmp_path / "merged"
    cfg = make_config(trio, data_files, out, score_cache=True)
    with pytest.raises(WriteError, match=r"Writing .* failed: .*Permission denied.*Check that the folder is writable"):
        Pipeline(cfg, cache_root=reference_run["cache"]).run()
    assert_nothing_written(out)


def test_free_space_is_checked_before_identification(trio, data_files, tmp_path, capsys, monkeypatch):
    import shutil as shutil_module

    real = shutil_module.disk_usage
    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: real(p)._replace(free=999))
    stages: list[str] = []
    monkeypatch.setattr(cli, "ConsolePrinter", lambda quiet: lambda e: stages.append(getattr(e, "stage", "")))
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out), capsys)
    assert code == 2, err
    n = Checkpoint(trio["base"]).num_params
    needed = n * 4 + n * 4 // 8  # float32 weights + bit-packed masks allowance
    shown = human_bytes(int(needed * 1.05 + 50_000_000))  # the number shown is the one the check compares (#12.16)
    assert (
        f"Not enough free disk space for the output in {tmp_path.resolve()}: {shown} needed (the output, "
        f"{human_bytes(needed)}, plus a safety margin of 5 % and 50 MB), 999 B free"
    ) in err
    assert "Free some space or choose another output folder" in err
    assert not any(s.startswith("identify") for s in stages), stages
    assert_nothing_written(out)


# ============================================================================ killed mid-save
KILL_SCRIPT = """
import json, sys, time
from reasonany_gui.engine.settings.config import MergeConfig
from reasonany_gui.engine.core.events import Progress
from reasonany_gui.engine.run.pipeline import Pipeline

def listener(event):
    if isinstance(event, Progress) and event.stage == "write" and event.fraction > 0.5:
        print("WRITING", flush=True)
        time.sleep(120)

Pipeline(MergeConfig(**json.loads(sys.argv[1])), listener=listener).run()
"""


@pytest.mark.slow  # a killed subprocess, then a clean-up run
def test_process_killed_mid_save_leaves_no_final_folder_and_leftovers_are_cleaned_next_start(
    trio, data_files, tmp_path, pristine
):
    script = tmp_path / "victim.py"
    script.write_text(KILL_SCRIPT)
    out = tmp_path / "merged"
    cfg = make_config(trio, data_files, out, method="task_arithmetic")
    proc = subprocess.Popen(
        [sys.executable, str(script), json.dumps(cfg.to_dict())],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 120
        line = ""
        while "WRITING" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert "WRITING" in line, "the subprocess never reached the write stage"
        temp = [t.resolve() for t in tmp_path.glob(f".merged{TMP_MARK}{proc.pid}-*")]
        assert len(temp) == 1 and temp[0].is_dir()
        proc.kill()  # SIGKILL on POSIX: no finally, no atexit
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert not out.exists()  # never a half-written folder under the final name
    assert temp[0].exists()
    theirs = [Path(e["path"]) for e in registry_entries() if e["pid"] == proc.pid]
    assert temp[0] in theirs and all(p.exists() for p in theirs)  # the output's and the score maps' temp folders

    logs: list[str] = []
    p = Pipeline(cfg, listener=lambda e: logs.append(e.message) if isinstance(e, Log) else None)
    p.check()  # the next start: any run, or the app's first check
    p.close()
    assert not any(p.exists() for p in theirs)
    assert not [e for e in registry_entries() if e["pid"] == proc.pid]
    assert f"Removed the leftovers of an interrupted run: {temp[0]}" in logs
    assert list(tmp_path.iterdir()) == [script]
    assert trio_state(trio) == pristine


# ============================================================================ unexpected errors
def test_unexpected_error_prints_message_and_log_path_with_exit_1(trio, data_files, tmp_path, capsys, monkeypatch):
    from reasonany_gui.engine.methods import registry as methods

    def broken(*_a, **_k):
        raise RuntimeError("injected bug in merge_tensor")

    monkeypatch.setattr(methods, "merge_tensor", broken)
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out) + ["--method", "task_arithmetic"], capsys)
    assert code == 1, err
    assert "error: RuntimeError: injected bug in merge_tensor" in err
    log_line = next(line for line in err.splitlines() if line.startswith("Details are in the log: "))
    log_path = Path(log_line.removeprefix("Details are in the log: "))
    text = log_path.read_text(encoding="utf-8")
    assert "Traceback" in text and "injected bug in merge_tensor" in text
    assert "Traceback" not in err  # the console gets the message, the log the details
    assert_nothing_written(out)  # the temporary folder of the write stage is gone


# ============================================================================ round two (issue 12)
def _cli_merge_yaml(tmp_path: Path, trio, data_files, capsys, text: str) -> tuple[int, str, Path]:
    """`reasonany merge run.yaml` with the trio, the data and `text` appended (YAML)."""
    out = tmp_path / "merged"
    head = {
        "base": str(trio["base"]),
        "reasoning": str(trio["reasoning"]),
        "domain": str(trio["domain"]),
        "reasoning_data": str(data_files["reasoning"]),
        "domain_data": str(data_files["domain"]),
    }
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(head) + text)
    code, err = run_cli(["merge", config, "--out", out, *CLI_FAST], capsys)
    return code, err, out


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.slow  # full merges
def test_allow_pickle_keeps_safetensors_models_loading(trio, data_files, tmp_path):
    """#12.1: a trio mixing one .bin model with safetensors models (the reason to allow pickle) merges, and
    exactly like the all-safetensors trio."""
    pk = _copy_model(trio["reasoning"], tmp_path / "reasoning_bin")
    torch.save(load_file(str(pk / "model.safetensors")), pk / "pytorch_model.bin")
    (pk / "model.safetensors").unlink()
    cfg = make_config(trio, data_files, tmp_path / "ref", samples=2, reasoning_ratio=0.3, domain_ratio=0.3)
    ref = load_output(Pipeline(cfg).run())
    mixed = cfg.replace(out=str(tmp_path / "mixed"), reasoning=str(pk), allow_pickle=True)
    got = load_output(Pipeline(mixed).run())
    assert set(got) == set(ref) and all(torch.equal(got[n], ref[n]) for n in ref)


def test_ambiguous_safetensors_files_are_refused_and_stray_ones_ignored(trio, data_files, tmp_path, capsys):
    """#12.2: two files with the same tensors and no index: which is the model? Refused, naming both. A file
    with other tensors next to model.safetensors is ignored (as transformers does), with a warning."""
    amb = _copy_model(trio["domain"], tmp_path / "ambiguous")
    backup = load_file(str(amb / "model.safetensors"))
    save_file({n: t * 0 for n, t in backup.items()}, str(amb / "model-backup.safetensors"))  # sorts last
    before = tree_state(amb)
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, domain=amb), capsys)
    assert code == 2, err
    assert (
        f"The domain model: {amb} holds several safetensors files that store the same tensors "
        "(model-backup.safetensors, model.safetensors: both have"
    ) in err or (
        f"The domain model: {amb} holds several safetensors files that store the same tensors "
        "(model.safetensors, model-backup.safetensors: both have"
    ) in err, err
    assert "Move the extra file(s) out of the folder" in err
    assert_nothing_written(out) and tree_state(amb) == before
    # no model.safetensors: the same check between the other files
    (amb / "model.safetensors").rename(amb / "weights-a.safetensors")
    with pytest.raises(InputError, match="weights-a.safetensors: both have"):
        Checkpoint(amb)
    # disjoint extra file and a macOS resource fork: ignored, with a warning for the extra
    stray = _copy_model(trio["domain"], tmp_path / "stray")
    save_file({"adapter.weight": torch.ones(2)}, str(stray / "adapter.safetensors"))
    (stray / "._model.safetensors").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    ck = Checkpoint(stray)
    assert ck.weight_files == [stray / "model.safetensors"] and ck.ignored_files == [stray / "adapter.safetensors"]
    logs: list[str] = []
    p = Pipeline(
        make_config(trio, data_files, method="task_arithmetic", domain=str(stray)),
        listener=lambda e: logs.append(e.message) if isinstance(e, Log) else None,
    )
    p.check()
    p.close()
    assert any(f"The domain model: {stray / 'adapter.safetensors'} is not read" in m for m in logs), logs


CONFIG_TYPES = {
    "allow_pickle_quoted": ('allow_pickle: "false"\n', "allow_pickle = 'false' is text, not true or false"),
    "allow_download_quoted": ('allow_download: "no"\n', "allow_download = 'no' is text, not true or false"),
    "score_cache_quoted": ('score_cache: "false"\n', "score_cache = 'false' is text, not true or false"),
    "intersect_number": ("intersect: 1\n", "intersect = 1 is a whole number, not true or false"),
    "samples_text": ('samples: "100"\n', "samples = '100' is text, not a whole number"),
    "ratio_text": ('reasoning_ratio: "0.1"\n', "reasoning_ratio = '0.1' is text, not a number"),
    "method_list": ("method: [ties]\n", "method = ['ties'] is a list, not text"),
    "out_number": ("out: 12345\n", "out = 12345 is a whole number, not text"),
    "int_key": ("1: x\n", "unknown setting(s) 1."),
    "extra_not_mapping": ("extra: [1, 2]\n", "extra = [1, 2] is a list, not a mapping"),
    "extra_date": ("extra: {when: 2024-01-02}\n", "extra.when = '2024-01-02' is date"),
    "extra_timestamp": ("extra: {at: 2024-01-02 10:00:00}\n", "extra.at = '2024-01-02 10:00:00' is datetime"),
    "extra_bytes": ("extra: {blob: !!binary aGVsbG8=}\n", "extra.blob = \"b'hello'\" is bytes"),
    "extra_set": ("extra: {tags: !!set {a: null}}\n", "extra.tags = \"{'a'}\" is set"),
    "extra_int_key": ("extra: {1: one}\n", "extra has the key 1, which is not text"),
    "billion_laughs": (
        'extra:\n  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        "  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "  d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
        "uses YAML aliases (*name); run configs may not",
    ),
    "deep_nesting": ("extra: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
}


@pytest.mark.parametrize("case", list(CONFIG_TYPES))
def test_every_run_config_field_is_type_checked(case, trio, data_files, tmp_path, capsys):
    """#12.3, #12.6 (extra that run.yaml cannot keep), #12.12 (billion laughs), #12.14 (int key, out: 12345):
    exit 2 with the setting, what it is, and how to write it; found before anything is loaded."""
    text, expected = CONFIG_TYPES[case]
    t0 = time.perf_counter()
    code, err, out = _cli_merge_yaml(tmp_path, trio, data_files, capsys, text)
    assert code == 2, err
    assert expected in err and "Traceback" not in err, err
    assert time.perf_counter() - t0 < 30
    assert_nothing_written(out)


def test_config_type_check_also_guards_configs_built_in_code():
    with pytest.raises(InputError, match="allow_pickle = 'false' is text, not true or false"):
        MergeConfig(base="b", reasoning="r", domain="d", allow_pickle="false").validate(need_out=False)
    MergeConfig(base="b", reasoning="r", domain="d", reasoning_scale=1, extra={"note": [1, 2.5, None]}).validate(
        need_out=False
    )  # ints for numbers and plain nested notes are fine


@pytest.fixture(scope="module")
def tied_head_trio(tmp_path_factory):
    """A tied Llama trio whose files store lm_head.weight too (a copy of the embedding), as many real ones do."""
    from reasonany_gui.engine.data.demo import build_trio

    trio = build_trio(tmp_path_factory.mktemp("tied_head"), arch="llama", seed=3, tie=True, dtype=torch.bfloat16)
    for folder in trio.values():
        state = load_file(str(folder / "model.safetensors"))
        state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return trio


@pytest.mark.parametrize("select_embeddings", [False, True])
def test_tied_checkpoint_that_stores_lm_head_merges_and_can_select_it(
    select_embeddings, tied_head_trio, data_files, tmp_path
):
    """#12.18: the default run used to fail at the write ("Some tensors share memory"); with select_embeddings
    the tied weight (scored under lm_head.weight) was never selected."""
    out = tmp_path / "merged"
    cfg = make_config(
        tied_head_trio, data_files, out, select_embeddings=select_embeddings, reasoning_ratio=0.3, domain_ratio=0.3
    )
    p = Pipeline(cfg)
    written = p.run()
    got = load_output(written)
    base = load_file(str(tied_head_trio["base"] / "model.safetensors"))
    assert torch.equal(got["lm_head.weight"], got["model.embed_tokens.weight"])
    changed = not torch.equal(got["model.embed_tokens.weight"], base["model.embed_tokens.weight"])
    assert changed == select_embeddings
    selected = [n for n in p.selection.names if layout.is_embedding(n)]
    assert selected == (["lm_head.weight"] if select_embeddings else [])
    assert p.selection.counts.get("lm_head.weight", {}).get("domain", 0) > 0 or not select_embeddings


def test_selection_k_is_the_exact_floor_of_ratio_times_n():
    """#12.19: 0.29 · 100 is 28.999999999999996 in floats; k must be 29."""
    from reasonany_gui.engine.methods.topk import exact_k
    from reasonany_gui.engine.scoring.selection import find_threshold, to_keys

    assert 0.29 * 100 < 29 and exact_k(0.29, 100) == 29
    assert [exact_k(r, n) for r, n in ((0.57, 100), (0.58, 100), (0.1, 30), (0.05, 7_000_000_000), (0.5, 3))] == [
        57,
        58,
        3,
        350_000_000,
        1,
    ]
    keys, bits = to_keys(torch.arange(100, dtype=torch.float32))
    t = find_threshold(lambda: [keys], 100, 0.29, "top", bits)
    assert t.k == 29 and t.value == 71.0


@pytest.mark.parametrize("method", ["reasonany", "task_arithmetic"])
def test_nan_or_inf_weights_are_named_in_the_check(method, trio, data_files, tmp_path, capsys, monkeypatch):
    """#12.13: ReasonAny blamed the compute precision after identification; Task Arithmetic wrote Inf, exit 0."""
    bad = _copy_model(trio["domain"], tmp_path / "nan_domain")
    state = load_file(str(bad / "model.safetensors"))
    state["model.layers.1.mlp.up_proj.weight"][3, 5] = float("nan")
    state["model.norm.weight"][0] = float("inf")
    save_file(state, str(bad / "model.safetensors"), metadata={"format": "pt"})
    stages: list[str] = []
    monkeypatch.setattr(cli, "ConsolePrinter", lambda quiet: lambda e: stages.append(getattr(e, "stage", "")))
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, domain=bad) + ["--method", method], capsys)
    assert code == 2, err
    assert (
        f"The domain model {bad} has weights that are NaN or infinite, in 2 tensor(s): "
        "model.layers.1.mlp.up_proj.weight, model.norm.weight."
    ) in err, err
    assert "download it again" in err and "float32" not in err
    assert not any(s.startswith(("identify", "write")) for s in stages), stages
    assert_nothing_written(out)


def test_the_fast_finite_check_finds_every_nan_and_inf():
    """#12.13: the check reads every weight, so it reads bfloat16 as float32 pairs (CPU bf16 math is slow);
    every position, every kind of non-finite value, every dtype, odd and even lengths."""
    from reasonany_gui.engine.io.finite import all_finite

    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        for n in (1, 2, 3, 4, 7, 64, 65):
            for pos in range(n):
                for bad in (float("nan"), float("inf"), float("-inf")):
                    t = torch.randn(n).to(dtype)
                    assert all_finite(t)
                    t[pos] = bad
                    assert not all_finite(t), (dtype, n, pos, bad)
    assert all_finite(torch.full((99,), 3e38, dtype=torch.bfloat16)) and all_finite(torch.full((99,), 3e38))


_CACHE_WRITER = """
import sys, time, torch
from pathlib import Path
from reasonany_gui.engine.io.scorecache import ScoreStore
root, start = Path(sys.argv[1]), float(sys.argv[2])
scores = {f"t{i}": torch.arange(20000, dtype=torch.float32) * (i + 1) for i in range(6)}
store = ScoreStore(root)
while time.time() < start:
    time.sleep(0.001)
for i in range(15):
    store.write("0123456789abcdef01234567", scores, "bfloat16", {"round": i})
    assert store.has("0123456789abcdef01234567")
    store.open("0123456789abcdef01234567").get("t3")
print("OK")
"""


@pytest.mark.slow  # several processes writing one cache entry
def test_score_cache_writes_are_atomic_between_processes(tmp_path, monkeypatch):
    """#12.4: ScoreStore.write removed the entry with rmtree and then failed to rename onto a folder another run
    had just filled. An entry already there with the same key is success; three writers at once all succeed."""
    from reasonany_gui.engine.io import writer
    from reasonany_gui.engine.io.scorecache import ScoreStore

    scores = {"a": torch.rand(64), "b": torch.rand(8, 8)}
    store = ScoreStore(tmp_path / "one")
    key = "0123456789abcdef01234567"
    real_commit = writer.TempFolder.commit

    def another_run_wins(self, *a, **k):  # the same entry is completed by another process just before our rename
        if self.final.name == key and not self.final.exists():
            shutil.copytree(self.path, self.final)
        return real_commit(self, *a, **k)

    monkeypatch.setattr(writer.TempFolder, "commit", another_run_wins)
    assert store.write(key, scores, "float32", {}) == store.path(key)
    monkeypatch.setattr(writer.TempFolder, "commit", real_commit)
    assert store.has(key) and torch.equal(store.open(key).get("a"), scores["a"])
    assert [p.name for p in store.root.iterdir()] == [key]  # no temporary folder left
    store.write(key, scores, "float32", {})  # again, with the entry in place: kept, not removed first
    assert store.has(key)

    script = tmp_path / "writer.py"
    script.write_text(_CACHE_WRITER)
    root = tmp_path / "shared"
    start = time.time() + 3
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 and "OK" in r[0] for p, r in zip(procs, results, strict=True)), [
        r[1][-2000:] for r in results
    ]
    assert [p.name for p in root.iterdir()] == ["0123456789abcdef01234567"]


#: the two rebuild-the-whole-entry cases are slow (a fresh scoring each); the other three stay in the fast loop
DAMAGE = [
    pytest.param("truncated_shard", marks=pytest.mark.slow),
    pytest.param("missing_shard", marks=pytest.mark.slow),
    "corrupt_index",
    "scrambled_values",
    "corrupt_meta",
]


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_score_cache_entry_is_dropped_and_recomputed(damage, trio, data_files, tmp_path, reference_run):
    """#12.7: a damaged entry gave exit 2 "download it again" on every rerun; scrambled values were used
    silently. Every shard has a checksum: the entry is dropped with a warning and computed again."""
    cache = tmp_path / "cache"
    shutil.copytree(reference_run["cache"], cache)
    entry = cache / reference_run["keys"]["domain@domain"]
    shard = next(entry.glob("scores-*.safetensors"))
    original = {n: t.clone() for n, t in load_file(str(shard)).items()}  # not a view of the file damaged below
    if damage == "truncated_shard":
        shard.write_bytes(shard.read_bytes()[:-100])
    elif damage == "missing_shard":
        shard.unlink()
    elif damage == "corrupt_index":
        (entry / "model.safetensors.index.json").write_text("{not json")
    elif damage == "scrambled_values":
        save_file({n: t.flip(0) for n, t in original.items()}, str(shard))  # same size, same header
    else:
        (entry / "meta.json").write_text("[]")
    logs: list[str] = []
    cfg = make_config(trio, data_files, tmp_path / "merged", score_cache=True, intersect=True)
    p = Pipeline(cfg, cache_root=cache, listener=lambda e: logs.append(e.message) if isinstance(e, Log) else None)
    out = p.run()
    assert any(f"The cached scores in {entry} are damaged" in m and "computed again" in m for m in logs), logs
    assert p.backward_passes == len(p.calib["domain"].samples)  # only the damaged map was computed again
    assert all(torch.equal(load_file(str(shard))[n], original[n]) for n in original)
    assert torch.equal(load_output(out)["model.norm.weight"], load_output(reference_run["out"])["model.norm.weight"])


def test_huge_record_is_cut_before_tokenizing_and_prepare_can_be_cancelled(trio, tmp_path, monkeypatch):
    """#12.5: a 20 MB record was tokenized whole (7 GB, 39 s before Ctrl+C acted). Now the text is cut by
    characters first (the ids are those of the whole text's beginning), and cancel is checked per sample."""
    from transformers import PreTrainedTokenizerFast

    from reasonany_gui.engine.data import calibration
    from reasonany_gui.engine.data.calibration import load_tokenizer, prepare, preview

    tok = load_tokenizer(str(trio["reasoning"]))
    data = tmp_path / "huge.jsonl"
    huge = "step " * 1_000_000  # 5 MB
    data.write_text(
        "\n".join(json.dumps(r) for r in ({"text": "short one"}, {"text": huge}, {"prompt": "Why?", "response": huge}))
    )
    seen: list[int] = []
    real = calibration._encode

    def spy(tokenizer, text, *a, **k):
        seen.append(len(text))
        return real(tokenizer, text, *a, **k)

    monkeypatch.setattr(calibration, "_encode", spy)
    t0 = time.perf_counter()
    cs = prepare(str(data), tok, 3, 48, 0, response_only=True)
    assert time.perf_counter() - t0 < 20 and max(seen) < 10_000, seen
    assert cs.truncated == 2 and [s.input_ids.shape[1] for s in cs.samples] == [9, 48, 48]
    assert cs.samples[1].input_ids[0].tolist() == tok(huge[:48], add_special_tokens=True)["input_ids"][:48]
    shown = preview(str(data), tok, n=2)
    assert len(shown[1][0]) < 25_000 and "cut for the preview: 5,000,000 characters" in shown[1][0]

    # the cut gives the same ids as the whole text, also for a trained BPE with a regex pre-tokenizer
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    texts = [f"Question {i}: what is {i} times {i + 7}? Let us think step by step, carefully." * 3 for i in range(300)]
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(vocab_size=600, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe)
    for text in ("".join(texts[:40]), "x" * 5000, "  ".join(texts[5:30]) + " zzzz" * 900):
        whole = real(fast, text, False, 0)[0][:64]
        assert calibration._encode_cut(fast, text, False, 0, 64)[0][:64] == whole

    token = CancelToken()
    calls = {"n": 0}

    def cancel_after_first(*a, **k):
        calls["n"] += 1
        token.cancel()
        return real(*a, **k)

    monkeypatch.setattr(calibration, "_encode", cancel_after_first)
    with pytest.raises(CancelledError):
        prepare(str(data), tok, 3, 48, 0, cancel=token)
    assert calls["n"] == 1


def test_failures_found_in_the_check_not_after_identification(trio, data_files, tmp_path, capsys, monkeypatch):
    """#12.6: an output name too long for its temporary name, and an unusable score-cache folder, failed only
    after identification, with exit 1 (and a failed run left the output's new parent folders behind)."""
    stages: list[str] = []
    monkeypatch.setattr(cli, "ConsolePrinter", lambda quiet: lambda e: stages.append(getattr(e, "stage", "")))
    out = tmp_path / ("m" * 230)
    code, err = run_cli(merge_argv(trio, data_files, out), capsys)
    assert code == 2 and "bytes long; this file system allows names of 255 bytes" in err, err
    assert "Choose a name of at most" in err and not leftovers(tmp_path) and not out.exists()

    home = tmp_path / "home_is_a_file"
    home.write_text("not a folder")
    cfg = make_config(trio, data_files, tmp_path / "merged", score_cache=True)
    with pytest.raises(InputError, match=r"The score cache folder .* cannot be used .*--no-cache"):
        Pipeline(cfg, cache_root=home / "scores").run()
    assert not any(s.startswith("identify") for s in stages)
    assert_nothing_written(tmp_path / "merged")

    from reasonany_gui.engine.io.writer import TempFolder

    deep = tmp_path / "new" / "deeper" / "merged"
    with pytest.raises(RuntimeError), TempFolder(deep):
        raise RuntimeError("a failed run")
    assert not (tmp_path / "new").exists()  # the parents it made are gone again


def test_setting_up_logging_twice_leaves_no_file_open(tmp_path, monkeypatch):
    """Each cli.main() in one process opened the log file again and dropped the handler unclosed (a
    ResourceWarning per CLI test run): the duplicate is now closed."""
    import gc
    import logging
    import warnings

    monkeypatch.setenv("REASONANY_HOME", str(tmp_path / "home"))
    root = logging.getLogger("reasonany")
    before = list(root.handlers)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert cli.setup_logging() == cli.setup_logging()
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
    finally:
        for h in root.handlers[:]:
            if h not in before:
                root.removeHandler(h)
                h.close()


def test_unusable_log_folder_falls_back_to_a_temporary_log(tmp_path, capsys, monkeypatch):
    """#12.8: setup_logging() ran outside the error handling: a raw traceback when the log folder could not be
    made. Now: a log in the temporary folder (or the console), and a note that says so."""
    import logging

    home = tmp_path / "home_file"
    home.write_text("REASONANY_HOME is a file")
    monkeypatch.setenv("REASONANY_HOME", str(home))
    root = logging.getLogger("reasonany")
    before = list(root.handlers)
    try:
        code = cli.main(["cache", "info"])
        err = capsys.readouterr().err
        assert code == 0 and "note: the log folder cannot be used" in err and "logging to" in err, err
    finally:
        for h in root.handlers[:]:
            if h not in before:
                root.removeHandler(h)
                h.close()


@pytest.mark.parametrize(
    "content", ['"just text"', '[["not", "a dict"]]', '{"path": 1}', '[{"path": 5, "pid": "x"}]', "{broken"]
)
def test_temp_folder_registry_of_the_wrong_shape_is_set_aside(content, trio, data_files, tmp_path, monkeypatch):
    """#12.9: AttributeError on every run until the file was deleted by hand."""
    home = tmp_path / "home"
    monkeypatch.setenv("REASONANY_HOME", str(home))
    registry_path().parent.mkdir(parents=True)
    registry_path().write_text(content)
    out = Pipeline(make_config(trio, data_files, tmp_path / "merged", method="task_arithmetic")).run()
    assert (out / "model.safetensors.index.json").is_file()
    assert [
        p.name.startswith("temp-folders.json.broken-") for p in registry_path().parent.glob("temp-folders.json.*")
    ] == [True]
    assert registry_entries() == []


@pytest.mark.parametrize("method", ["reasonany", "task_arithmetic"])
def test_missing_tokenizer_files_are_named_in_the_check(method, trio, data_files, tmp_path, capsys):
    """#12.10: "all chosen samples were dropped" blamed the data; a baseline wrote a model without tokenizer."""
    notok = _copy_model(trio["reasoning"], tmp_path / "no_tokenizer")
    for f in list(notok.iterdir()):
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            f.unlink()
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, reasoning=notok) + ["--method", method], capsys)
    assert code == 2, err
    assert f"The tokenizer source (the reasoning model): {notok} has no tokenizer files" in err, err
    assert "--tokenizer-source" in err
    assert_nothing_written(out)


_FIFO_RUN = """
import sys
from reasonany_gui import cli
from reasonany_gui.engine.core import layout
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("where", ["weights", "tokenizer", "data"])
def test_fifo_or_other_special_file_is_refused_not_read(where, trio, data_files, tmp_path):
    """#12.11: a FIFO as a weight or data file hung the run (Ctrl+C ignored). Refused up front, by file type."""
    model = _copy_model(trio["domain"], tmp_path / "domain")
    data = data_files["domain"]
    if where == "weights":
        fifo = model / "model-extra.safetensors"
    elif where == "tokenizer":
        (model / "tokenizer.json").unlink()
        fifo = model / "tokenizer.json"
    else:
        fifo = data = tmp_path / "data.jsonl"
    os.mkfifo(fifo)
    script = tmp_path / "run.py"
    script.write_text(_FIFO_RUN)
    argv = merge_argv(trio, data_files, tmp_path / "merged", domain=model, domain_data=data)
    proc = subprocess.run([sys.executable, str(script), *map(str, argv)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"{fifo} is a named pipe (FIFO), not a regular file: reading it would hang" in proc.stderr


MALFORMED = {
    "layers_text": ("num_hidden_layers = 'two' must be a whole number", "config"),
    "text_config_list": ('"text_config" must be an object (found a list)', "config"),
    "weight_map_list": ('"weight_map" must map each tensor name to the name of a shard file', "index"),
    "weight_map_dict_values": ('"weight_map" must map each tensor name to the name of a shard file', "index"),
    "weight_map_escape": ('"weight_map" must map each tensor name to the name of a shard file', "index"),
    "bitsandbytes": ("describes a quantized model (bitsandbytes): quantized models are not supported", "config"),
    "deep_json": ("is not valid JSON (nested too deeply)", "config"),
    "no_model_type": ('has no "model_type", so transformers can load neither this model nor a merge', "config"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_model_config_is_a_clear_input_error(case, trio, data_files, tmp_path, capsys):
    """#12.14 and #12.17 (no model_type): bare exceptions (exit 1) or a merge that would not load (exit 0)."""
    bad = _copy_model(trio["domain"], tmp_path / case)
    cfg = json.loads((bad / "config.json").read_text())
    if case == "layers_text":
        cfg["num_hidden_layers"] = "two"
    elif case == "text_config_list":
        cfg["text_config"] = [1, 2]
    elif case == "bitsandbytes":  # the config and a real quantized layout (uint8 weights with their absmax)
        cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
        tensors = load_file(str(bad / "model.safetensors"))
        name = "model.layers.0.mlp.down_proj.weight"
        tensors[name] = torch.zeros(tensors[name].numel() // 2, 1, dtype=torch.uint8)
        tensors[name + ".absmax"] = torch.ones(4)
        save_file(tensors, str(bad / "model.safetensors"), metadata={"format": "pt"})
    elif case == "no_model_type":
        del cfg["model_type"]
    elif case.startswith("weight_map"):
        names = list(load_file(str(bad / "model.safetensors")))
        weight_map = {
            "weight_map_list": ["model.safetensors"],
            "weight_map_dict_values": {n: {"file": "model.safetensors"} for n in names},
            "weight_map_escape": {n: "../domain/model.safetensors" for n in names},
        }[case]
        (bad / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    if case == "deep_json":
        (bad / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    else:
        (bad / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out, domain=bad), capsys)
    assert code == 2, err
    assert MALFORMED[case][0] in err and "Traceback" not in err, err
    assert_nothing_written(out)


def test_tokenizer_with_ids_beyond_the_vocabulary_and_deep_calibration_json(trio, data_files, tmp_path, capsys):
    """#12.14: tokenizer ids beyond the model's embedding rows (IndexError) and 100k-deep JSON data
    (RecursionError) were exit 1."""
    from reasonany_gui.engine.data.demo import make_tokenizer

    big = _copy_model(trio["reasoning"], tmp_path / "big_tokenizer")
    tok = make_tokenizer()
    tok.add_tokens([f"<extra_{i}>" for i in range(10)])
    tok.save_pretrained(big)
    code, err = run_cli(merge_argv(trio, data_files, tmp_path / "m1", reasoning=big), capsys)
    assert code == 2 and "has 269 tokens, but the models have embeddings for only 259" in err, err
    for name, text in (("deep.json", "[" * 100_000 + "]" * 100_000), ("deep.jsonl", "[" * 100_000 + "]" * 100_000)):
        (tmp_path / name).write_text(text)
        code, err = run_cli(merge_argv(trio, data_files, tmp_path / "m2", domain_data=tmp_path / name), capsys)
        assert code == 2 and "nested too deeply" in err and "Traceback" not in err, err
    assert_nothing_written(tmp_path / "m1") and not (tmp_path / "m2").exists()


def test_cache_clear_follows_a_symlink_and_outputs_inside_the_cache_are_refused(
    trio, data_files, tmp_path, capsys, monkeypatch
):
    """#12.15: with a symlinked cache folder "Cleared" removed nothing; a merge written into the cache was
    deleted by clear."""
    from reasonany_gui.engine.core.paths import cache_dir

    home = tmp_path / "home"
    monkeypatch.setenv("REASONANY_HOME", str(home))
    real = tmp_path / "elsewhere"
    entry = real / "0123456789abcdef01234567"
    entry.mkdir(parents=True)
    (entry / "meta.json").write_text("{}")
    (real / "my-notes.txt").write_text("mine")
    cache_dir().mkdir(parents=True)
    (cache_dir() / "scores").symlink_to(real)
    code, text = cli.main(["cache", "clear"]), capsys.readouterr().out
    assert code == 0 and not entry.exists() and (real / "my-notes.txt").is_file(), text
    assert f"Cleared the score cache in {real.resolve()}: 1 entry removed" in text and "my-notes.txt" in text
    for out in (cache_dir() / "merged", cache_dir() / "scores" / "merged"):
        code, err = run_cli(merge_argv(trio, data_files, out), capsys)
        assert code == 2 and "is inside the app's cache folder" in err, err
        assert not out.exists()


def test_safetensors_own_disk_full_error_is_reported_as_a_full_disk(trio, data_files, tmp_path, capsys, monkeypatch):
    """#12.16: safetensors raises its own error type on a full disk, not OSError. The message below is the one
    safetensors 0.8 gave on a real full 64 KB tmpfs (recorded; mounting one needs root, and writing to /dev/full
    is not an option: as root, safetensors' write-then-rename replaces the device node with a plain file)."""
    import safetensors.torch
    from safetensors import SafetensorError

    real = safetensors.torch.save_file

    def full(tensors, path, *a, **k):  # the masks file still goes through save_file (model shards are streamed)
        if Path(path).name == "masks.safetensors":
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out), capsys)
    assert code == 1 and "The disk is full while writing" in err and "Free some space" in err, err
    assert_nothing_written(out)


@pytest.mark.slow  # full merges under two umasks
def test_output_files_respect_the_umask(trio, data_files, tmp_path):
    """Issue 11, in the writer: safetensors writes 0600, so a merge saved for a team was unreadable to it."""
    old = os.umask(0o022)
    try:
        out = Pipeline(make_config(trio, data_files, tmp_path / "merged", reasoning_ratio=0.3)).run()
    finally:
        os.umask(old)
    modes = {str(f.relative_to(out)): f.stat().st_mode & 0o777 for f in out.rglob("*")}
    assert modes["model-00001-of-00001.safetensors"] == 0o644 and modes["reasonany/masks.safetensors"] == 0o644
    assert all(m == (0o755 if (out / f).is_dir() else 0o644) for f, m in modes.items()), modes
    assert out.stat().st_mode & 0o777 == 0o755


def test_minor_cases_warn_or_refuse(trio, data_files, tmp_path, capsys):
    """#12.17: a ratio that selects nothing, the same model in two roles (warnings); non-text calibration
    values and eval --max-samples 0 (exit 2); a registry entry whose folder and process are gone (pruned)."""
    logs: list[str] = []
    cfg = make_config(trio, data_files, reasoning_ratio=1e-9, domain=str(trio["reasoning"]))
    p = Pipeline(cfg, listener=lambda e: logs.append(e.message) if isinstance(e, Log) else None)
    p.check()
    p.close()
    assert any(m.startswith("reasoning_ratio = 1e-09 selects no weight") for m in logs), logs
    assert any(m.startswith("The reasoning and domain models are the same weights") for m in logs), logs

    for rec, what in (
        ({"prompt": "2+2?", "response": [4]}, "the field 'response' is a list ([4]), not text"),
        ({"text": {"nested": "x"}}, "the field 'text' is an object"),
        ({"text": True}, "the field 'text' is a boolean"),
        ({"messages": [{"role": "user", "content": {"a": 1}}]}, "the field 'messages' is an object"),
    ):
        data = tmp_path / "nontext.jsonl"
        data.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps(rec))
        code, err = run_cli(merge_argv(trio, data_files, tmp_path / "m", domain_data=data), capsys)
        assert code == 2 and f"{data}, record 2: {what}" in err, err

    from reasonany_gui.engine.data.calibration import load_tokenizer, prepare

    data = tmp_path / "numbers.jsonl"  # a numeric answer is used as text, and the run says so
    data.write_text(json.dumps({"question": "2+2?", "answer": 4}) + "\n" + json.dumps({"text": "fine"}))
    cs = prepare(str(data), load_tokenizer(str(trio["reasoning"])), 2, 48, 0)
    assert "1 sample(s) in numbers.jsonl have a number where text is expected" in " ".join(cs.warnings)

    code, err = run_cli(["eval", tmp_path, "--max-samples", "0"], capsys)
    assert code == 2 and "--max-samples 0: evaluate at least 1 sample" in err, err

    from reasonany_gui.engine.io.writer import clean_stale

    gone = tmp_path / f".x{TMP_MARK}999999-deadbeef"
    registry_path().parent.mkdir(parents=True, exist_ok=True)
    entries = registry_entries() + [{"path": str(gone), "pid": 2**22 + 1}]
    registry_path().write_text(json.dumps(entries))
    clean_stale(registry_path())
    assert str(gone) not in [e["path"] for e in registry_entries()]


@pytest.mark.slow  # a CLI subprocess
def test_sigterm_cancels_cleanly_like_ctrl_c(trio, data_files, tmp_path):
    """#12.17: SIGTERM (and SIGHUP) got no cleanup: the temporary folder stayed."""
    import signal

    script = tmp_path / "run.py"
    script.write_text(
        "import sys, time\nfrom reasonany_gui import cli\nfrom reasonany_gui.engine.run import pipeline\n"
        "real = pipeline.Pipeline.merge_one\n"
        "def slow(*a, **k):\n    print('WRITING', flush=True)\n    time.sleep(0.5)\n"
        "    return real(*a, **k)\n"
        "pipeline.Pipeline.merge_one = slow\nsys.exit(cli.main(sys.argv[1:]))\n"
    )
    out = tmp_path / "merged"
    argv = merge_argv(trio, data_files, out) + ["--method", "task_arithmetic"]
    proc = subprocess.Popen(
        [sys.executable, str(script), *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert "WRITING" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Cancelled; nothing was written." in err, err
    assert_nothing_written(out)


# ============================================================================ last: the inputs, after everything
def test_zz_input_trio_is_unchanged_after_this_whole_module(trio, pristine):
    assert trio_state(trio) == pristine
