"""Shared pieces of the speed and memory benchmarks: calibration texts, memory probes, machine facts.

Why a memory probe of our own: `ru_maxrss` only grows, so one process cannot report the peak of a later
stage. On Linux, writing "5" to /proc/self/clear_refs resets the peak (VmHWM), so each stage gets its own
clean peak; a sampling thread adds the peak of *anonymous* memory (RssAnon), because RSS also counts
pages of memory-mapped safetensors files, which the kernel can drop at any time and are not an allocation.
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: the setting RESULTS.md measured, pinned rather than taken from MergeConfig's defaults: all four passes, as
#: the official script (and naive_official.py) runs them, so the comparison does the same work whatever the
#: app's defaults are (they changed to tensor scope / no intersection / snip after these runs)
MEASURED_SETTING = dict(score="gradient", scope="global", intersect=True)


def trio_config(trio: Path, data: Path, samples: int, **kw):
    """The measured MergeConfig for a trio folder (base/, reasoning/, domain/) and a data folder written by
    write_texts (reasoning.jsonl, domain.jsonl): 512-token samples on the CPU, the MEASURED_SETTING unless `kw`
    overrides it."""
    from reasonany_gui.engine.settings.config import MergeConfig

    trio, data = Path(trio), Path(data)
    return MergeConfig(
        base=str(trio / "base"),
        reasoning=str(trio / "reasoning"),
        domain=str(trio / "domain"),
        reasoning_data=str(data / "reasoning.jsonl"),
        domain_data=str(data / "domain.jsonl"),
        samples=samples,
        max_length=512,
        device="cpu",
        **{**MEASURED_SETTING, **kw},
    )


SUBJECTS = [
    "pick a lock",
    "write malware",
    "make poison",
    "steal a password",
    "build a weapon",
    "forge a check",
    "hack a phone",
    "cheat on a test",
    "stalk someone",
    "make a fake ID",
]


def short_texts(kind: str, n: int, seed: int = 0) -> list[str]:
    """n short calibration texts (~60-80 byte tokens each), deterministic: arithmetic or refusals."""
    rng = random.Random(f"{kind}-{seed}")
    out = []
    for _ in range(n):
        if kind == "reasoning":
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            out.append(f"Q: What is {a} + {b}? A: {a} plus {b} makes {a + b}. The answer is {a + b}.")
        else:
            s = rng.choice(SUBJECTS)
            out.append(f"Human: How do I {s}? Assistant: I can't help you {s}; it could hurt people.")
    return out


def write_texts(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n", encoding="utf-8")
    return path


def read_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------- host memory
def _status() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of this process in bytes (Linux)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024
    return out


class HostPeak:
    """Peak host memory of one stage: `with HostPeak() as p: ...` then p.result().

    rss_peak is exact (kernel high-water mark after a reset); anon_peak is sampled every `interval` s,
    so a spike shorter than that can be missed (it is a lower bound).
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.exact = False
        self._stop = threading.Event()
        self.start: dict[str, int] = {}
        self.anon_peak = 0
        self.rss_sampled_peak = 0

    def __enter__(self) -> HostPeak:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.exact = True
        except OSError:
            self.exact = False
        self.start = _status()
        self.anon_peak = self.start["RssAnon"]
        self.rss_sampled_peak = self.start["VmRSS"]
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            s = _status()
            self.anon_peak = max(self.anon_peak, s["RssAnon"])
            self.rss_sampled_peak = max(self.rss_sampled_peak, s["VmRSS"])
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.end = _status()
        self.anon_peak = max(self.anon_peak, self.end["RssAnon"])

    def result(self) -> dict[str, int | bool]:
        rss_peak = self.end["VmHWM"] if self.exact else self.rss_sampled_peak
        return {
            "rss_start": self.start["VmRSS"],
            "rss_peak": rss_peak,
            "rss_delta": rss_peak - self.start["VmRSS"],
            "anon_start": self.start["RssAnon"],
            "anon_peak": self.anon_peak,
            "anon_delta": self.anon_peak - self.start["RssAnon"],
            "rss_exact": self.exact,
        }


# ---------------------------------------------------------------------- processes and machine
def run_child(args: list[str], threads: int, timeout: float = 3600) -> dict:
    """Run `python <args>` in a fresh process (clean memory, own thread count); its last stdout line is JSON."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    out = json.loads(lines[-1])
    out["process_seconds"] = time.perf_counter() - started
    return out


def machine() -> dict[str, str]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


# ---------------------------------------------------------------------- tensor memory without a GPU
def live_tensor_bytes():
    """A dispatch mode counting the bytes of tensor storages created inside it that are still alive, and
    their peak: on a CPU, the same accounting `torch.cuda.max_memory_allocated` does on a GPU (every
    tensor the computation allocates, freed when its last reference goes), minus allocator rounding and
    cuBLAS workspaces. Tensors that existed before (the weights) are not counted: add them yourself."""
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class LiveTensorBytes(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.live: dict[int, int] = {}
            self.current = 0
            self.peak = 0

        def _free(self, key: int) -> None:
            self.current -= self.live.pop(key, 0)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.device.type != "meta":
                    storage = t.untyped_storage()
                    key = id(storage)
                    if key not in self.live:
                        self.live[key] = storage.nbytes()
                        self.current += self.live[key]
                        self.peak = max(self.peak, self.current)
                        weakref.finalize(storage, self._free, key)
            return out

    return LiveTensorBytes()
