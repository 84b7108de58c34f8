#!/usr/bin/env bash
# Nebula vs PyTorch on the same machine, one after the other (issues 4 and 15):
#  - training: the same GPT and configuration; wall time per step (forward + backward + clip + AdamW),
#    tokens/s, ratio to PyTorch fp32 and peak RSS; fp32 on both sides, then bf16 (Nebula's --precision bf16,
#    PyTorch's autocast) where the CPU has AVX-512 BF16 (PRECISIONS="fp32" to skip it);
#  - sampling: greedy KV-cached decoding of the bundle's LM at batch 1 and 16, on 1 and 2 threads; tokens/s,
#    ratio, and whether both produced the same tokens.
#   bench/compare_pytorch.sh                      # both parts: small 200 steps, medium 20 steps; sampling
#   PARTS=sample bench/compare_pytorch.sh         # one part (train or sample)
#   SMALL_STEPS=2000 MEDIUM_STEPS=30 bench/compare_pytorch.sh
#   NEBULA_BLAS=openblas bench/compare_pytorch.sh # Nebula on another GEMM backend (default: oneDNN where installed)
# Needs python3 with torch (pip install torch==2.13.0).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-$(nproc)}"
PARTS="${PARTS:-train sample}"
LM="${LM:-models/tinystories/lm}"
swift build -c release --product nebula-bench >&2
bench=.build/release/nebula-bench

if [[ " $PARTS " == *" train "* ]]; then
  precisions="${PRECISIONS:-fp32 bf16}"
  grep -q avx512_bf16 /proc/cpuinfo 2>/dev/null || precisions=fp32
  rows=()
  for config in small medium; do
    steps=$([ "$config" = small ] && echo "${SMALL_STEPS:-200}" || echo "${MEDIUM_STEPS:-20}")
    for precision in $precisions; do
      autocast=$([ "$precision" = bf16 ] && echo --autocast-bf16 || true)
      echo "== train $config $precision: PyTorch ($steps steps, $THREADS threads)" >&2
      torch_json=$(python3 reference/train_gpt.py --config "$config" --steps "$steps" --threads "$THREADS" --eval-batches 1 --json $autocast)
      echo "== train $config $precision: Nebula ($steps steps)" >&2
      nebula_json=$(NEBULA_THREADS="$THREADS" $bench gpt --config "$config" --steps "$steps" --precision "$precision" --json)
      rows+=("$config|$torch_json|$nebula_json")
    done
  done
  python3 - "${rows[@]}" <<'PY'
import json, sys
print(f"{'config':8} {'impl':16} {'precision':>13} {'ms/step':>9} {'tokens/s':>10} {'peak RSS MB':>12} {'vs PyTorch fp32':>16}")
baseline = {}
for row in sys.argv[1:]:
    config, torch_line, nebula_line = row.split("|")
    t, n = json.loads(torch_line), json.loads(nebula_line)
    baseline.setdefault(config, t["tokens_per_s"])      # the fp32 PyTorch run comes first
    for name, f in (("pytorch", t), (f"nebula/{n['gemm_backend']}", n)):
        ratio = f["tokens_per_s"] / baseline[config]
        print(f"{config:8} {name:16} {f['precision']:>13} {f['ms_per_step']:9.2f} {f['tokens_per_s']:10.0f} {f['peak_rss_mb']:12.0f} {ratio:15.2f}x")
PY
fi

if [[ " $PARTS " == *" sample "* ]]; then
  rows=()
  for threads in 1 2; do
    echo "== sample: Nebula, $threads threads" >&2
    nebula_lines=$(NEBULA_THREADS=$threads $bench sample --model "$LM" --batches 1 16 --json)
    ids=$(python3 -c 'import json,sys; print(*json.loads(sys.stdin.readline())["prompt_ids"])' <<<"$nebula_lines")
    echo "== sample: PyTorch, $threads threads" >&2
    torch_lines=$(cd reference && python3 sample_gpt.py --model "../$LM" --prompt-ids $ids --batches 1 16 --threads $threads)
    rows+=("$nebula_lines" "$torch_lines")
  done
  python3 - "${rows[@]}" <<'PY'
import json, sys
lines = [json.loads(line) for block in sys.argv[1:] for line in block.splitlines()]
print(f"{'threads':>7} {'batch':>5} {'PyTorch tok/s':>14} {'Nebula tok/s':>13} {'speed vs PyTorch':>17} {'same tokens':>12}")
for n in (l for l in lines if l["impl"] == "nebula"):
    t = next(l for l in lines if l["impl"] == "pytorch" and l["batch"] == n["batch"] and l["threads"] == n["threads"])
    print(f"{n['threads']:7} {n['batch']:5} {t['tokens_per_s']:14.0f} {n['tokens_per_s']:13.0f} "
          f"{n['tokens_per_s'] / t['tokens_per_s']:16.2f}x {str(n['tokens'] == t['tokens']):>12}")
PY
fi
