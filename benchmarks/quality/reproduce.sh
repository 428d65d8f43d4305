#!/usr/bin/env bash
# The recorded quality benchmark, end to end, on the CPU (2 cores: about 35 min of training, 40 min of merges).
#   bash benchmarks/quality/reproduce.sh [RUNS_DIR]
# Trains the two trios, merges each with every method over the recorded grid, writes the tables and plots
# into benchmarks/quality/results/{compatible,conflicting}/ and ships the compatible trio as the app's demo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runs="${1:-runs/quality}"
# 1. base + reasoning expert + domain expert (refusals only): the experts' task vectors barely conflict
python "$here/train.py" --out "$runs/compatible"
# 2. same base and reasoning expert; a domain expert that also answers mentor questions directly (no chain)
python "$here/train.py" --out "$runs/conflicting" --base-from "$runs/compatible/base" --experts domain --domain-direct 0.3
# 3. every method over the recorded grid (run.py grid()), scored on held-out items
python "$here/run.py" --trio "$runs/compatible" --out "$here/results/compatible"
python "$here/run.py" --trio "$runs/conflicting" --out "$here/results/conflicting"
# 3b. robustness: a second training seed (full grid) and two more calibration seeds (the rows the defaults rest on)
python "$here/train.py" --out "$runs/compatible-seed1" --seed 1
python "$here/run.py" --trio "$runs/compatible-seed1" --out "$here/results/compatible-seed1"
for s in 1 2; do
  python "$here/run.py" --trio "$runs/compatible" --out "$here/results/robust/calib-seed$s" --robust --seed "$s"
done
# 4. the compatible trio and its best ReasonAny setting become the app's built-in demo
python "$here/ship_demo.py" --trio "$runs/compatible" --results "$here/results/compatible"
