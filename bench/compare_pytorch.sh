#!/usr/bin/env bash
# Nebula vs PyTorch, same GPT, same configuration, same machine, one after the other (issue 4):
# wall time per training step (forward + backward + clip + AdamW), tokens/s, their ratio and peak RSS.
#   bench/compare_pytorch.sh                 # small: 200 steps, medium: 20 steps each
#   SMALL_STEPS=2000 MEDIUM_STEPS=30 bench/compare_pytorch.sh
#   NEBULA_BLAS=openblas bench/compare_pytorch.sh   # Nebula on another GEMM backend (default: oneDNN where installed)
# Needs python3 with torch (pip install torch==2.13.0) and reads ../shared/data/shakespeare/input.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-$(nproc)}"
swift build -c release --product nebula-bench >&2
rows=()
for config in small medium; do
  steps=$([ "$config" = small ] && echo "${SMALL_STEPS:-200}" || echo "${MEDIUM_STEPS:-20}")
  echo "== $config: PyTorch ($steps steps, $THREADS threads)" >&2
  torch_json=$(python3 reference/train_gpt.py --config "$config" --steps "$steps" --threads "$THREADS" --eval-batches 1 --json)
  echo "== $config: Nebula ($steps steps)" >&2
  nebula_json=$(.build/release/nebula-bench gpt --config "$config" --steps "$steps" --json)
  rows+=("$config|$torch_json|$nebula_json")
done
python3 - "${rows[@]}" <<'PY'
import json, sys
print(f"{'config':8} {'impl':16} {'ms/step':>9} {'tokens/s':>10} {'peak RSS MB':>12} {'speed vs PyTorch':>17}")
for row in sys.argv[1:]:
    config, torch_line, nebula_line = row.split("|")
    t, n = json.loads(torch_line), json.loads(nebula_line)
    for name, f in (("pytorch", t), (f"nebula/{n['gemm_backend']}", n)):
        ratio = f["tokens_per_s"] / t["tokens_per_s"]
        print(f"{config:8} {name:16} {f['ms_per_step']:9.2f} {f['tokens_per_s']:10.0f} {f['peak_rss_mb']:12.0f} {ratio:16.2f}x")
PY
