"""The software and machine a run used, for report.json: versions, platform, device, peak host memory.

Why a module of its own: it is a fact about this process, not about the merge; the pipeline only asks for it
when it writes the report."""

from __future__ import annotations

import platform
import sys
from typing import Any

import torch


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (ru_maxrss on Unix, peak working set on Windows)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    except ImportError:
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", 0))


def environment(device: torch.device | None) -> dict[str, Any]:
    """Library versions, platform, the compute device (its GPU's name, else the processor) and peak memory."""
    import numpy
    import safetensors
    import transformers

    from ... import __version__

    return {
        "reasonany_gui": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device is not None and device.type == "cuda"
        else platform.processor() or "cpu",
        "peak_host_rss_bytes": int(peak_rss_bytes()),
    }
