"""GPU identification: device vs host accumulators, peak device memory per parameter, tokens/s and the
fraction of the card's bf16 peak, on Qwen2-shaped models built at random on the GPU (no downloads).

    python benchmarks/speed/bench_gpu.py --json $OUT/gpu.json                  # 0.5b, 1.5b and 7b shapes
    python benchmarks/speed/bench_gpu.py --sizes tiny --device cpu --samples 2 # smoke test without a GPU

What is timed is the engine's own identification pass (`importance.score_pass`: batch of one, no padding,
per-parameter post-accumulate hooks adding |g| into float32 accumulators) on samples of exactly
`--max-length` random tokens, after a warm-up pass. FLOPs per sample are counted as 6·params·tokens
(the issue's convention; attention's own T² terms are not counted, so the fraction is a slight
underestimate). The card's peak is the datasheet's dense bf16 rate when the card is known, and the rate of
a large bf16 matmul measured here (a practical ceiling). Peak memory is `torch.cuda.max_memory_allocated`
after a reset, over the whole pass, weights included.

The naive (official-approach) pass is measured once at the smallest size on short texts for comparison:
base and expert resident, bf16 `zeros_like` sums, pads to 512, whole-model gradients, cat + kthvalue.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from common import live_tensor_bytes, machine, short_texts  # noqa: E402

#: Qwen2 shapes (hidden, layers, heads, kv heads, intermediate, vocab, tied), as the public configs give them
SHAPES = {
    "tiny": (64, 2, 4, 2, 128, 259, False),
    # CPU-sized shapes with Qwen2's real vocabulary, for checking the memory model without a GPU
    "cpu-4l": (256, 4, 4, 2, 1536, 151936, True),
    "cpu-8l": (256, 8, 4, 2, 1536, 151936, True),
    "0.5b": (896, 24, 14, 2, 4864, 151936, True),
    "1.5b": (1536, 28, 12, 2, 8960, 151936, True),
    "7b": (3584, 28, 28, 4, 18944, 152064, False),
}
#: datasheet dense bf16 tensor rates (FLOP/s), by a fragment of torch.cuda.get_device_name
DATASHEET_BF16 = [
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("H800", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("RTX 4090", 165e12),
    ("A6000", 155e12),
    ("L4", 121e12),
]


@dataclass
class Sample:
    """What score_pass reads from a calibration sample."""

    input_ids: torch.Tensor
    labels: torch.Tensor


def build(size: str, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, Qwen2Config

    h, layers, heads, kv, inter, vocab, tie = SHAPES[size]
    cfg = Qwen2Config(
        vocab_size=vocab,
        hidden_size=h,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=4096,
        tie_word_embeddings=tie,
        use_cache=False,
    )
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model.eval(), cfg


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class DevicePeak:
    """Peak device memory of a block: `max_memory_allocated` after a reset on a GPU; on a CPU the peak of
    live tensor bytes (the same accounting, see common.live_tensor_bytes) plus `resident` bytes that existed
    before (the weights), so the memory model can be checked without a GPU."""

    def __init__(self, device: torch.device, resident: int = 0) -> None:
        self.device, self.resident, self.peak = device, resident, 0

    def __enter__(self) -> DevicePeak:
        free(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._mode = live_tensor_bytes()
            self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        sync(self.device)
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._mode.__exit__(*exc)
            self.peak = self.resident + self._mode.peak


def matmul_rate(device: torch.device, n: int = 8192, reps: int = 20) -> float | None:
    """Measured bf16 matmul FLOP/s (median of `reps` timed with CUDA events), the practical ceiling."""
    if device.type != "cuda":
        return None
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del a, b
    free(device)
    return 2 * n**3 / statistics.median(times)


def datasheet_rate(name: str) -> float | None:
    for fragment, rate in DATASHEET_BF16:
        if fragment in name:
            return rate
    return None


def random_samples(n: int, length: int, vocab: int, seed: int) -> list[Sample]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(0, min(vocab, 32000), (1, length), generator=g)
        out.append(Sample(ids, ids.clone()))
    return out


def score(model, samples: list[Sample], accumulate_on: torch.device, device: torch.device) -> dict:
    """One timed engine pass; peak device memory over the pass (weights included)."""
    from reasonany_gui.engine.core.events import CancelToken
    from reasonany_gui.engine.scoring.importance import parameter_names, score_pass

    params = parameter_names(model, set(model.state_dict().keys()))
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    with DevicePeak(device, weights) as peak:
        t0 = time.perf_counter()
        res = score_pass(
            model, params, samples, "gradient", accumulate_on, "bench", "model", "data", lambda e: None, CancelToken()
        )
        sync(device)
        seconds = time.perf_counter() - t0
    finite = all(bool(torch.isfinite(a).all()) for a in list(res.scores.values())[:4])
    nonzero = sum(int((a > 0).sum()) for a in res.scores.values())
    del res
    free(device)
    return {
        "seconds": seconds,
        "peak_allocated": peak.peak,
        "finite": finite,
        "nonzero_scores": nonzero,
        "peak_kind": "max_memory_allocated" if device.type == "cuda" else "live tensor bytes + weights (CPU)",
    }


def plain_fwd_bwd(model, samples: list[Sample], device: torch.device) -> float:
    """Seconds per sample of forward+backward with ordinary .grad accumulation (no hooks): the hooks' cost."""
    for p in model.parameters():
        p.requires_grad_(True)
    sync(device)
    t0 = time.perf_counter()
    for s in samples:
        model.zero_grad(set_to_none=True)
        model(input_ids=s.input_ids.to(device), labels=s.labels.to(device)).loss.backward()
    sync(device)
    seconds = (time.perf_counter() - t0) / len(samples)
    model.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.requires_grad_(False)
    free(device)
    return seconds


def naive_vs_ours(model, cfg, device: torch.device, n: int) -> dict:
    """Official approach vs the engine on n short texts, same model: peak memory and seconds per sample."""
    import naive_official
    from transformers import AutoModelForCausalLM

    from reasonany_gui.engine.data.demo import make_tokenizer

    tok = make_tokenizer()
    texts = short_texts("reasoning", n)
    ours_samples = [Sample(*(torch.tensor([tok(t)["input_ids"]]),) * 2) for t in texts]
    with torch.device(device):  # the expert, resident beside the base as in the official script
        expert = AutoModelForCausalLM.from_config(cfg, dtype=model.dtype).eval()
    for p in list(model.parameters()) + list(expert.parameters()):
        p.requires_grad_(True)
    weights = sum(p.numel() * p.element_size() for p in list(model.parameters()) + list(expert.parameters()))
    naive_official.importance(expert, tok, texts[:1], device)  # warm-up
    model.zero_grad(set_to_none=True)
    expert.zero_grad(set_to_none=True)
    with DevicePeak(device, weights) as peak:
        t0 = time.perf_counter()
        s_expert = naive_official.importance(expert, tok, texts, device)
        sync(device)
        naive_seconds = (time.perf_counter() - t0) / n
        s_base = naive_official.importance(model, tok, texts, device)
        names = naive_official.selected_names(s_expert, 0.05, True) & naive_official.selected_names(s_base, 0.05, True)
        del s_expert, s_base
    model.zero_grad(set_to_none=True)
    del expert
    free(device)
    ours = score(model, ours_samples, device, device)
    return {
        "texts": n,
        "mean_tokens": sum(s.input_ids.numel() for s in ours_samples) / n,
        "naive_seconds_per_sample": naive_seconds,
        "naive_peak_allocated": peak.peak,
        "naive_selected_tensors": len(names),
        "ours_seconds_per_sample": ours["seconds"] / n,
        "ours_peak_allocated": ours["peak_allocated"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="0.5b,1.5b,7b")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--samples", type=int, default=16, help="timed samples with device accumulators")
    ap.add_argument("--host-samples", type=int, default=3, help="timed samples with host accumulators")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--naive-texts", type=int, default=8, help="short texts for the naive comparison (0: skip)")
    ap.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float32"],
        default="auto",
        help="model dtype; auto: bfloat16 on a GPU, float32 on a CPU",
    )
    ap.add_argument("--threads", type=int, help="torch CPU threads (be civil on a shared machine)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = (
        (torch.bfloat16 if device.type == "cuda" else torch.float32)
        if args.dtype == "auto"
        else getattr(torch, args.dtype)
    )
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
    measured = matmul_rate(device)
    sheet = datasheet_rate(name)
    report: dict = {
        "machine": machine(),
        "device": name,
        "device_total_bytes": total,
        "dtype": str(dtype),
        "max_length": args.max_length,
        "matmul_bf16_flops": measured,
        "datasheet_bf16_flops": sheet,
        "command": " ".join(["python", *sys.argv]),
        "rows": [],
    }
    print(
        f"device {name}, total {total / 2**30:.1f} GiB; bf16 matmul measured "
        f"{(measured or 0) / 1e12:.0f} TFLOP/s, datasheet {(sheet or 0) / 1e12:.0f} TFLOP/s",
        flush=True,
    )
    # on a CPU, host and device accumulators are the same memory: only "device" is run there
    modes = (
        (("device", args.samples), ("host", args.host_samples))
        if device.type == "cuda"
        else (("device", args.samples),)
    )
    for i, size in enumerate(args.sizes.split(",")):
        t0 = time.perf_counter()
        model, cfg = build(size, device, dtype)
        n = sum(p.numel() for p in model.parameters())
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        print(f"{size}: {n / 1e9:.3f} B params built in {time.perf_counter() - t0:.1f} s", flush=True)
        samples = random_samples(max(args.samples, args.host_samples), args.max_length, cfg.vocab_size, seed=i)
        score(model, samples[: 1 if device.type == "cpu" else 2], device, device)  # warm-up: kernels, handles
        row = {
            "size": size,
            "params": n,
            "weights_bytes": weights,
            "estimate": estimate_terms(cfg, n, dtype, args.max_length),
        }
        for where, k in modes:
            acc = device if where == "device" else torch.device("cpu")
            r = score(model, samples[:k], acc, device)
            tokens = k * args.max_length
            acc_bytes = 4 * n if where == "device" else 0
            r.update(
                samples=k,
                tokens_per_s=tokens / r["seconds"],
                flops_per_s=6 * n * tokens / r["seconds"],
                bytes_per_param=r["peak_allocated"] / n,
                beyond_weights_and_acc=r["peak_allocated"] - weights - acc_bytes,
                estimate_bytes=weights
                + acc_bytes
                + row["estimate"]["largest_gradient"]
                + row["estimate"]["activations"],
            )
            row[where] = r
            print(
                f"  {where:6s} acc: {r['tokens_per_s']:9.0f} tok/s, {r['flops_per_s'] / 1e12:6.1f} TFLOP/s, "
                f"peak {r['peak_allocated'] / 2**30:6.2f} GiB = {r['bytes_per_param']:.2f} B/param; beyond weights+acc "
                f"{r['beyond_weights_and_acc'] / 2**30:.2f} GiB (engine estimate of that: "
                f"{(r['estimate_bytes'] - weights - acc_bytes) / 2**30:.2f} GiB)",
                flush=True,
            )
        if device.type == "cuda" and size != "7b":
            row["plain_fwd_bwd_seconds_per_sample"] = plain_fwd_bwd(model, samples[: min(8, args.samples)], device)
        if i == 0 and args.naive_texts:
            row["naive"] = naive_vs_ours(model, cfg, device, args.naive_texts)
            nv = row["naive"]
            print(
                f"  naive vs ours on {nv['texts']} short texts ({nv['mean_tokens']:.0f} tokens): "
                f"{nv['naive_seconds_per_sample'] * 1e3:.1f} vs {nv['ours_seconds_per_sample'] * 1e3:.1f} ms/sample, "
                f"peak {nv['naive_peak_allocated'] / 2**30:.2f} vs {nv['ours_peak_allocated'] / 2**30:.2f} GiB",
                flush=True,
            )
        report["rows"].append(row)
        del model
        free(device)
        if args.json:  # after every size: a later failure keeps what was measured
            args.json.write_text(json.dumps(report, indent=2))
    print(
        "\n| model | params | acc | samples | tokens/s | TFLOP/s | of datasheet | of matmul | peak GiB | B/param "
        "| beyond weights+acc GiB |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in report["rows"]:
        for where, _ in modes:
            r = row[where]
            frac = lambda ref, r=r: f"{r['flops_per_s'] / ref:.1%}" if ref else "-"  # noqa: E731
            print(
                f"| {row['size']} | {row['params'] / 1e9:.3f} B | {where} | {r['samples']} | {r['tokens_per_s']:.0f} | "
                f"{r['flops_per_s'] / 1e12:.2f} | {frac(sheet)} | {frac(measured)} | "
                f"{r['peak_allocated'] / 2**30:.3f} | {r['bytes_per_param']:.2f} | "
                f"{r['beyond_weights_and_acc'] / 2**30:.3f} |"
            )
    if len(report["rows"]) >= 2:
        a, b = report["rows"][0], report["rows"][-1]
        slope = (b["device"]["peak_allocated"] - a["device"]["peak_allocated"]) / (b["params"] - a["params"])
        print(f"\nslope of the device-accumulator peak between {a['size']} and {b['size']}: {slope:.2f} B/param")


def estimate_terms(cfg, n: int, dtype: torch.dtype, max_length: int) -> dict[str, int]:
    """The engine's own memory model (engine/estimate.py) for this shape, to compare with the measurement."""
    from reasonany_gui.engine.io.model_info import ModelInfo
    from reasonany_gui.engine.scoring.estimate import activation_bytes

    info = ModelInfo(
        path=Path("."),
        architecture="Qwen2ForCausalLM",
        model_type="qwen2",
        num_params=n,
        dtype=str(dtype).removeprefix("torch."),
        size_bytes=n * dtype.itemsize,
        num_layers=cfg.num_hidden_layers,
        hidden_size=cfg.hidden_size,
        vocab_size=cfg.vocab_size,
        tied_embeddings=cfg.tie_word_embeddings,
    )
    return {
        "activations": activation_bytes(info, max_length, dtype.itemsize, False),
        "largest_gradient": cfg.vocab_size * cfg.hidden_size * dtype.itemsize,
    }


if __name__ == "__main__":
    main()
