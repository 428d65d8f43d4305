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
import torch
import yaml
from safetensors.torch import load_file, save_file

from reasonany_gui import cli
from reasonany_gui.engine.checkpoints import Checkpoint
from reasonany_gui.engine.config import MergeConfig
from reasonany_gui.engine.errors import CancelledError, InputError, OutOfMemoryError, WriteError
from reasonany_gui.engine.events import CancelToken, Log, Progress, StageStarted
from reasonany_gui.engine.pipeline import Pipeline, oom_error, registry_path
from reasonany_gui.engine.writer import TMP_MARK, human_bytes

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
    return ["merge", "--base", spec["base"], "--reasoning", spec["reasoning"], "--domain", spec["domain"],
            "--reasoning-data", models.get("reasoning_data", data_files["reasoning"]),
            "--domain-data", models.get("domain_data", data_files["domain"]), "--out", out, *CLI_FAST]


def make_config(trio, data_files, out: Path | None = None, **kw) -> MergeConfig:
    base = dict(base=str(trio["base"]), reasoning=str(trio["reasoning"]), domain=str(trio["domain"]),
                reasoning_data=str(data_files["reasoning"]), domain_data=str(data_files["domain"]),
                out=str(out) if out else None, **FAST)
    base.update(kw)
    return MergeConfig(**base)


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
    return {"cfg": cfg, "out": out, "before": before, "after": trio_state(trio), "cache": root / "scores",
            "keys": dict(p.map_keys)}


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
    half = {1: names[: len(names) // 2], 2: names[len(names) // 2:]}
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
    "missing_shard": ("names shard(s) that are missing: model-00002-of-00002.safetensors",
                      "Download the missing files again"),
    "truncated": ("model.safetensors is not a readable safetensors file", "truncated or corrupted: download it again"),
    "corrupted": ("model.safetensors is not a readable safetensors file", "truncated or corrupted: download it again"),
    "pickle_only": ("has only pickle weight files (pytorch_model.bin)", "--allow-pickle"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_bad_model_folder_is_refused_with_the_file_and_the_fix(kind, broken_models, trio, data_files, tmp_path,
                                                                capsys, pristine):
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
    cfg = make_config(trio, data_files, tmp_path / "from_safetensors", intersect=False, samples=2,
                      reasoning_ratio=0.3, domain_ratio=0.3)
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
    assert ("pytorch_model.bin could not be loaded safely (weights_only=True): it holds more than tensors, and "
            "loading it could run code (") in err and "unsupported GLOBAL" in err and "mkdir" in err
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
    with pytest.raises(InputError, match=r"pytorch_model.bin is not a readable PyTorch weight file .* The file is "
                                         r"truncated or corrupted: download it again"):
        Checkpoint(old, allow_pickle=True)


def _plant_custom_code(folder: Path, marker: Path, where: str) -> None:
    """A model (or tokenizer) whose config points to a Python file that would leave a marker when imported."""
    code = (f"open({str(marker)!r}, 'w').write('ran')\n"
            "from transformers import Qwen2Config, Qwen2ForCausalLM, PreTrainedTokenizerFast\n"
            "class EvilConfig(Qwen2Config):\n    model_type = 'evilnet'\n"
            "class EvilForCausalLM(Qwen2ForCausalLM):\n    config_class = EvilConfig\n"
            "class EvilTokenizer(PreTrainedTokenizerFast):\n    pass\n")
    (folder / "custom_code.py").write_text(code)
    if where == "model":
        cfg = json.loads((folder / "config.json").read_text())
        cfg.update(model_type="evilnet", architectures=["EvilForCausalLM"],
                   auto_map={"AutoConfig": "custom_code.EvilConfig", "AutoModelForCausalLM": "custom_code.EvilForCausalLM"})
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
    assert (f"{models['reasoning']} needs custom code from the model folder to load; ReasonAny GUI never runs code "
            "from model folders. Use a model whose architecture is built into transformers.") in err
    assert not marker.exists()
    assert_nothing_written(out)


def test_tokenizer_loaders_never_run_folder_code_even_if_the_user_says_yes(trio, tmp_path, monkeypatch):
    """Left at None, transformers asks on stdin whether to run a folder's code; a 'y' there ran it (measured).
    Both loaders say trust_remote_code=False, so a 'y' cannot matter: the preview's and the pipeline's."""
    from reasonany_gui.engine.calibration import load_tokenizer
    from reasonany_gui.engine.pipeline import _load_tokenizer

    marker = tmp_path / "CODE_RAN"
    folder = tmp_path / "custom"
    shutil.copytree(trio["reasoning"], folder)
    _plant_custom_code(folder, marker, "model")
    _plant_custom_code(folder, marker, "tokenizer")
    monkeypatch.setattr("builtins.input", lambda *_a: "y")
    with pytest.raises(InputError, match="never runs custom tokenizer code from a model folder"):
        load_tokenizer(str(folder))
    with pytest.raises(InputError, match=f"The tokenizer in {folder} could not be loaded"):
        _load_tokenizer(folder)
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
    files = sorted((PACKAGE / "engine").glob("*.py")) + [PACKAGE / "cli.py"]
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
                assert isinstance(kw["trust_remote_code"], ast.Constant) and kw["trust_remote_code"].value is False, where
            if name == "from_pretrained":
                checked["from_pretrained"] += 1
                assert "trust_remote_code" in kw, f"{where}: from_pretrained must say trust_remote_code=False"
            if name == "load" and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "torch":
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

    from reasonany_gui.engine.demo import make_config as model_config, make_tokenizer, save_model

    root = tmp_path_factory.mktemp("misfits")
    variants = {"architecture": dict(arch="llama"), "layers": dict(layers=3), "hidden": dict(hidden=32),
                "vocab": dict(vocab=300), "tied": dict(tie=True)}
    tok = make_tokenizer()
    out = {}
    for name, kw in variants.items():
        torch.manual_seed(0)
        out[name] = save_model(AutoModelForCausalLM.from_config(model_config(**kw)), tok, root / name)
    return out


MISFIT = {
    "architecture": "The domain model's architecture (LlamaForCausalLM) differs from the base model's (Qwen2ForCausalLM)",
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
    "fields.jsonl": (json.dumps({"question_text": "2+2?", "label": 4}).encode(),
                     "no record has a usable field. Found: question_text, label. Accepted: text"),
    "latin1.txt": ("Caf\xe9 au lait, r\xe9sum\xe9\n\nsecond".encode("latin-1"),
                   "is not UTF-8 text (byte 0xe9 at line 1, byte offset 3). Re-save it as UTF-8"),
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
    assert f"The domain calibration data: Calibration data" in err and str(path) in err and expected in err, err
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


@pytest.mark.parametrize("case", ["not_empty", "is_a_file", "is_input", "inside_input", "contains_input",
                                  "under_a_file", "not_writable"])
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
    assert any(f"The output folder {out.resolve()} was filled by something else" in m and str(written) in m
               for m in logs)
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
    assert f"error: The base model: " in err and spec in err and expected in err, err
    assert_nothing_written(out)


# ============================================================================ cancel at every stage
CANCEL_AT = ["check", "identify:reasoning@reasoning", "identify:domain@domain", "identify:base@reasoning",
             "identify:base@domain", "select", "write", "write:report"]


def _cancel_point(stage: str, event: object) -> bool:
    """Where to cancel: mid-stage where the stage reports progress (after its first sample or tensor),
    at its start otherwise; write:report after the last tensor, while the report files are written."""
    if stage == "write:report":
        return isinstance(event, Progress) and event.stage == "write" and event.fraction >= 1.0
    if stage in ("check", "select"):
        return isinstance(event, StageStarted) and event.stage == stage
    return isinstance(event, Progress) and event.stage == stage


@pytest.mark.parametrize("stage", CANCEL_AT)
def test_cancel_at_every_stage_stops_fast_and_leaves_nothing(stage, trio, data_files, tmp_path, reference_run,
                                                              pristine):
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
    p = Pipeline(make_config(trio, data_files, out, score_cache=True, intersect=True), listener=listener, cancel=token,
                 cache_root=cache)
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
    from reasonany_gui.engine import pipeline as pipeline_module

    real_load = pipeline_module.load_model

    def load_then_break(*a, **k):
        model = real_load(*a, **k)
        model.forward = _oom  # the first sample's forward pass runs out of memory
        return model

    monkeypatch.setattr(pipeline_module, "load_model", load_then_break)
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


def test_oom_retry_with_the_suggestions_completes(trio, data_files, tmp_path, monkeypatch):
    """The GUI's one-click retry is config.replace(**exc.suggestions): it must run where the first run failed."""
    from reasonany_gui.engine import pipeline as pipeline_module

    real = pipeline_module.score_pass
    state = {"fits": False}

    def accumulators_do_not_fit(*a, **k):  # OOM before score_pass's own handler: allocating the accumulators
        if not state["fits"]:
            _oom()
        return real(*a, **k)

    monkeypatch.setattr(pipeline_module, "score_pass", accumulators_do_not_fit)
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
    from reasonany_gui.engine import pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "load_model", _oom)
    with pytest.raises(OutOfMemoryError, match="The reasoning model's weights do not fit in the memory") as info:
        Pipeline(make_config(trio, data_files, tmp_path / "merged")).run()
    assert info.value.suggestions == {"compute_dtype": "bfloat16"}  # float32 on the CPU: halve the weights first
    assert_nothing_written(tmp_path / "merged")


# ============================================================================ disk full, write errors
def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_saving_removes_the_temporary_folder_and_says_how_much_is_needed(
        trio, data_files, tmp_path, capsys, monkeypatch, pristine):
    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", _enospc)
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


def test_write_error_in_the_report_files_is_a_clear_write_error(trio, data_files, tmp_path, monkeypatch,
                                                                reference_run):
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
    monkeypatch.setattr(cli, "ConsolePrinter", lambda quiet: (lambda e: stages.append(getattr(e, "stage", ""))))
    out = tmp_path / "merged"
    code, err = run_cli(merge_argv(trio, data_files, out), capsys)
    assert code == 2, err
    n = Checkpoint(trio["base"]).num_params
    needed = n * 4 + n * 4 // 8  # float32 weights + bit-packed masks allowance
    shown = human_bytes(int(needed * 1.05 + 50_000_000))  # the number shown is the one the check compares (#12.16)
    assert (f"Not enough free disk space for the output in {tmp_path.resolve()}: {shown} needed (the output, "
            f"{human_bytes(needed)}, plus a safety margin of 5 % and 50 MB), 999 B free") in err
    assert "Free some space or choose another output folder" in err
    assert not any(s.startswith("identify") for s in stages), stages
    assert_nothing_written(out)


# ============================================================================ killed mid-save
KILL_SCRIPT = """
import json, sys, time
from reasonany_gui.engine.config import MergeConfig
from reasonany_gui.engine.events import Progress
from reasonany_gui.engine.pipeline import Pipeline

def listener(event):
    if isinstance(event, Progress) and event.stage == "write" and event.fraction > 0.5:
        print("WRITING", flush=True)
        time.sleep(120)

Pipeline(MergeConfig(**json.loads(sys.argv[1])), listener=listener).run()
"""


def test_process_killed_mid_save_leaves_no_final_folder_and_leftovers_are_cleaned_next_start(
        trio, data_files, tmp_path, pristine):
    script = tmp_path / "victim.py"
    script.write_text(KILL_SCRIPT)
    out = tmp_path / "merged"
    cfg = make_config(trio, data_files, out, method="task_arithmetic")
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(cfg.to_dict())], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
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
    from reasonany_gui.engine import methods

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


# ============================================================================ last: the inputs, after everything
def test_zz_input_trio_is_unchanged_after_this_whole_module(trio, pristine):
    assert trio_state(trio) == pristine
