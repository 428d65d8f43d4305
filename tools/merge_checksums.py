"""SHA-256 of the merged weights of the demo and of a tiny trio: a refactor that claims "no behaviour change" must
print the same lines before and after (issue 20). One thread, so the scores do not depend on the machine's load.

    python tools/merge_checksums.py OUT_FOLDER
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch


def _build_trio(folder: Path) -> dict[str, Path]:
    try:  # the layered engine
        from reasonany_gui.engine.data.demo import build_trio
    except ImportError:  # the flat engine before issue 20, for the "before" line
        from reasonany_gui.engine.demo import build_trio  # type: ignore[no-redef]
    return build_trio(folder, arch="qwen2", seed=0)


def _digests(folder: Path) -> list[str]:
    return [
        f"{f.relative_to(folder.parent)} {hashlib.sha256(f.read_bytes()).hexdigest()}"
        for f in sorted(folder.glob("*.safetensors"))
    ]


def main(out: Path) -> None:
    from reasonany_gui import cli

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    trio = _build_trio(out / "trio")
    runs = {
        "demo": ["--demo"],
        "tiny": [
            *("--base", str(trio["base"]), "--reasoning", str(trio["reasoning"]), "--domain", str(trio["domain"])),
            *("--reasoning-data", "builtin:reasoning", "--domain-data", "builtin:safety"),
            *("--samples", "8", "--max-length", "64", "--device", "cpu", "--no-cache"),
        ],
    }
    for name, flags in runs.items():
        code = cli.main(["merge", *flags, "--quiet", "--out", str(out / name)])
        assert code == 0, f"{name}: exit {code}"
        print("\n".join(_digests(out / name)))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
