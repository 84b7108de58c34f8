#!/usr/bin/env bash
# PyTorch half of the Nebula-vs-PyTorch comparison (issue 4): one JSON line per configuration on stdout
# (keys: config, steps, ms_per_step, tokens_per_s, peak_rss_mb, val_loss, ...), progress on stderr.
#   bench/pytorch_figures.sh                    # small: full 2000 steps; medium: 30 steps
#   SMALL_STEPS=200 MEDIUM_STEPS=20 THREADS=2 bench/pytorch_figures.sh
# Needs python3 with torch; reads ../shared/data/shakespeare/input.txt (or DATA=path).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-../shared/data/shakespeare/input.txt}"
THREADS="${THREADS:-2}"
python3 reference/train_gpt.py --config small  --steps "${SMALL_STEPS:-2000}" --threads "$THREADS" --data "$DATA" --json
python3 reference/train_gpt.py --config medium --steps "${MEDIUM_STEPS:-30}" --threads "$THREADS" --data "$DATA" --json
