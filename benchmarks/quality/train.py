"""Train the benchmark's trio on CPU: a small base model, then a reasoning and a domain expert from it.

    python benchmarks/quality/train.py --out runs/trio            # 15.5 min on 2 CPU cores (RESULTS.md)

Why this recipe: the paper's setting is a well-pretrained base whose experts differ from it by task
vectors that are small relative to the weights (long, low-learning-rate fine-tunes). The base is trained
long enough to know every mentor fact and how to chain them (in plain text) and the refusal sentence (in stories);
each expert is then fine-tuned at a low learning rate on chat data for its one skill, with the loss on the
assistant's reply only (standard supervised fine-tuning). Everything is seeded and runs on the CPU, so
the trio is the same on every machine with the same torch build.

Outputs under --out: base/, reasoning/, domain/ (Hugging Face folders, safetensors in --dtype, tokenizer
files, generation_config with <|im_end|> as a stop token), data/{reasoning,domain}_calib.jsonl (training
distribution, never the held-out items) and train.json (settings, losses, timings, ||tau||/||theta_b||).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks as T  # noqa: E402

from reasonany_gui.engine.data.demo import make_config, make_tokenizer  # noqa: E402

IGNORE = -100


def encode(tok, doc: dict) -> tuple[list[int], list[int]]:
    """Token ids and labels; for a chat only the assistant's reply (and its end marker) is learned."""
    if "text" in doc:
        ids = tok(doc["text"])["input_ids"] + [tok.eos_token_id]
        return ids, list(ids)
    msgs = doc["messages"]
    prompt = tok.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(msgs, tokenize=False)
    p_ids, ids = tok(prompt)["input_ids"], tok(full)["input_ids"]
    assert ids[: len(p_ids)] == p_ids
    return ids, [IGNORE] * len(p_ids) + ids[len(p_ids) :]


def packed_batches(tok, make_doc, batch: int, block: int):
    """Pretraining batches: documents joined end to end and cut into blocks (no padding wasted)."""
    buf: list[int] = []
    while True:
        while len(buf) < batch * block:
            ids, _ = encode(tok, make_doc())
            buf.extend(ids)
        x = torch.tensor(buf[: batch * block]).view(batch, block)
        buf = buf[batch * block :]
        yield x, x.clone(), None


def padded_batches(tok, make_doc, batch: int):
    """Fine-tuning batches: one chat per row, right-padded, padding masked out of attention and loss."""
    while True:
        rows = [encode(tok, make_doc()) for _ in range(batch)]
        width = max(len(i) for i, _ in rows)
        x = torch.full((batch, width), tok.pad_token_id)
        y = torch.full((batch, width), IGNORE)
        m = torch.zeros((batch, width), dtype=torch.long)
        for r, (ids, lab) in enumerate(rows):
            x[r, : len(ids)] = torch.tensor(ids)
            y[r, : len(lab)] = torch.tensor(lab)
            m[r, : len(ids)] = 1
        yield x, y, m


@torch.no_grad()
def probe(model, tok, sp, n: int = 20) -> float:
    """Share of held-out chains the model completes in the plain-text format it is pretrained on."""
    was_training = model.training
    model.eval()
    items = [(x, h) for x in sp.heldout_people[: n // 2] for h in (2, 3)]
    rows = [tok(f"Question: {T.chain_question(x, h)} Reasoning:")["input_ids"] for x, h in items]
    width = max(len(r) for r in rows)
    x = torch.full((len(rows), width), tok.pad_token_id)
    m = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, width - len(r) :], m[i, width - len(r) :] = torch.tensor(r), 1
    dev = next(model.parameters()).device
    out = model.generate(
        input_ids=x.to(dev),
        attention_mask=m.to(dev),
        max_new_tokens=80,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    texts = tok.batch_decode(out[:, width:], skip_special_tokens=True)
    model.train(was_training)
    return sum(
        T.final_answer(t.split("Question:")[0]) == T.chain_answer(x, h) for t, (x, h) in zip(texts, items, strict=True)
    ) / len(items)


def train(
    model, batches, steps: int, lr: float, warmup: int, log, tag: str, weight_decay: float = 0.0, every=None
) -> list:
    """AdamW with linear warm-up and cosine decay to 10 %; returns [(step, loss)] every 50 steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    )
    model.train()
    curve, run, t0 = [], 0.0, time.time()
    for step in range(1, steps + 1):
        x, y, m = next(batches)
        dev = next(model.parameters()).device
        loss = model(input_ids=x.to(dev), attention_mask=None if m is None else m.to(dev), labels=y.to(dev)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        run += loss.item()
        if step % 50 == 0:
            curve.append((step, round(run / 50, 4)))
            extra = f" probe {every(model):.2f}" if every is not None and step % 500 == 0 else ""
            log(f"[{tag}] step {step}/{steps} loss {run / 50:.4f} ({time.time() - t0:.0f} s){extra}")
            run = 0.0
    model.eval()
    return curve


def relative_norm(expert, base) -> float:
    """||theta_e - theta_b|| / ||theta_b|| over all parameters, in float32."""
    num = den = 0.0
    b = dict(base.named_parameters())
    for n, p in expert.named_parameters():
        num += (p.detach().float() - b[n].detach().float()).pow(2).sum().item()
        den += b[n].detach().float().pow(2).sum().item()
    return math.sqrt(num / den)


def save(model, tok, folder: Path, dtype: torch.dtype) -> None:
    from transformers import GenerationConfig

    folder.mkdir(parents=True, exist_ok=True)
    dev = next(model.parameters()).device
    model.to("cpu", dtype).save_pretrained(folder, safe_serialization=True)
    model.to(dev, torch.float32)
    tok.save_pretrained(folder)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    GenerationConfig(
        eos_token_id=[im_end, tok.eos_token_id], pad_token_id=tok.pad_token_id, do_sample=False, max_new_tokens=96
    ).save_pretrained(folder)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=384)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--pre-steps", type=int, default=2000)
    ap.add_argument("--pre-lr", type=float, default=2e-3)
    ap.add_argument("--pre-batch", type=int, default=12)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--ft-steps", type=int, default=600)
    ap.add_argument("--ft-lr", type=float, default=1e-4)
    ap.add_argument("--ft-batch", type=int, default=16)
    ap.add_argument("--reasoning-lr", type=float, default=None, help="override --ft-lr for the reasoning expert")
    ap.add_argument("--reasoning-steps", type=int, default=None, help="override --ft-steps for the reasoning expert")
    ap.add_argument("--domain-lr", type=float, default=None, help="override --ft-lr for the domain expert")
    ap.add_argument("--domain-steps", type=int, default=None, help="override --ft-steps for the domain expert")
    ap.add_argument(
        "--domain-direct",
        type=float,
        default=0.0,
        help="share of the domain expert's chats that answer a mentor question directly (no chain)",
    )
    ap.add_argument(
        "--experts",
        default="reasoning,domain",
        help="experts to train; the others are copied from the trio that --base-from belongs to",
    )
    ap.add_argument("--calib", type=int, default=200, help="calibration rows written per skill")
    ap.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base-from", type=Path, default=None, help="reuse a trained base (skip pretraining)")
    ap.add_argument("--device", default="cpu", help="cpu (the recipe) or cuda (quick exploration; not bit-identical)")
    args = ap.parse_args(argv)

    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    logf = (out / "train.log").open("a", encoding="utf-8")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    dtype = getattr(torch, args.dtype)
    tok = make_tokenizer()
    sp = T.Splits.make()
    info: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "torch": torch.__version__}
    t0 = time.time()
    if args.base_from:
        base = AutoModelForCausalLM.from_pretrained(args.base_from, dtype=torch.float32).to(args.device)
        info["pretrain"] = {"reused": str(args.base_from)}
    else:
        torch.manual_seed(args.seed)
        cfg = make_config(
            "qwen2",
            layers=args.layers,
            hidden=args.hidden,
            heads=args.heads,
            kv_heads=args.kv_heads,
            intermediate=args.intermediate,
            max_positions=512,
        )
        base = AutoModelForCausalLM.from_config(cfg).to(args.device)
        rng = random.Random(args.seed)
        batches = packed_batches(tok, lambda: T.pretrain_document(rng, sp), args.pre_batch, args.block)
        curve = train(
            base,
            batches,
            args.pre_steps,
            args.pre_lr,
            100,
            log,
            "base",
            weight_decay=0.01,
            every=lambda m: probe(m, tok, sp),
        )
        info["pretrain"] = {"curve": curve, "seconds": round(time.time() - t0, 1)}
    info["parameters"] = sum(p.numel() for p in base.parameters())
    base.to(dtype).float()  # experts start from exactly the weights that are shipped
    save(base, tok, out / "base", dtype)

    makers = {
        "reasoning": lambda r: T.reasoning_example(r, sp),
        "domain": lambda r: T.domain_example(r, sp, direct_share=args.domain_direct),
    }
    train_roles = set(args.experts.split(","))
    for i, (role, make) in enumerate(makers.items(), start=1):
        if role not in train_roles:
            if not args.base_from:
                ap.error("--experts without every expert needs --base-from (the trio to copy the others from)")
            src = args.base_from.parent
            shutil.copytree(src / role, out / role, dirs_exist_ok=True)
            (out / "data").mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / "data" / f"{role}_calib.jsonl", out / "data" / f"{role}_calib.jsonl")
            old = json.loads((src / "train.json").read_text())
            info[role] = {**old[role], "reused": str(src / role)}
            continue
        t1 = time.time()
        torch.manual_seed(args.seed + i)
        expert = copy.deepcopy(base).float()  # from_config(base.config) would inherit the saved dtype
        rng = random.Random(args.seed * 100 + i)
        lr = getattr(args, f"{role}_lr") or args.ft_lr
        steps = getattr(args, f"{role}_steps") or args.ft_steps
        curve = train(
            expert, padded_batches(tok, lambda make=make, rng=rng: make(rng), args.ft_batch), steps, lr, 30, log, role
        )
        expert.to(dtype).float()
        save(expert, tok, out / role, dtype)
        info[role] = {
            "lr": lr,
            "steps": steps,
            "curve": curve,
            "seconds": round(time.time() - t1, 1),
            "tau_over_theta_b": round(relative_norm(expert, base), 5),
        }
        log(f"[{role}] ||tau||/||theta_b|| = {info[role]['tau_over_theta_b']}")
        crng = random.Random(10_000 + i)
        write_jsonl(out / "data" / f"{role}_calib.jsonl", [make(crng) for _ in range(args.calib)])
    info["seconds"] = round(time.time() - t0, 1)
    (out / "train.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    log(f"done in {info['seconds']} s")
    return info


if __name__ == "__main__":
    main()
