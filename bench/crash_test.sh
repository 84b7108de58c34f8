#!/usr/bin/env bash
# Crash safety (issue #16): every trainer is killed with `kill -9` at random instants, resumed each time with
# --resume, and must end exactly where an uninterrupted run ends.
#   bench/crash_test.sh                 # 8 kills per trainer (LM, autoencoder, diffusion): 24 in all
#   KILLS=20 SEED=7 bench/crash_test.sh
# Then a full disk: a run checkpoints onto a small tmpfs (mounted here; needs root, else skipped) that is
# filled up between its checkpoints. The failing checkpoint must exit 1 with one error line naming the file,
# leave the previous checkpoint whole (the run resumes from it once space is freed and ends byte-equal to an
# uninterrupted run) and no temporary file.
# Pass conditions, per trainer:
#   - every resume starts from the last whole checkpoint: the log, cut back to the checkpoint's step, goes on
#     from it with no duplicated, missing or torn line (steps 1…N once each, in order);
#   - the final weights, averages and optimizer state (every .safetensors file) equal the uninterrupted
#     run's byte for byte, and so does every logged training loss;
#   - no temporary file is left behind.
# Kills that land while a checkpoint is being written are counted (a writer's temporary file is found).
set -euo pipefail
cd "$(dirname "$0")/.."
NEBULA="${NEBULA:-.build/release/nebula}"
KILLS="${KILLS:-8}"
RANDOM="${SEED:-1}"
[ -x "$NEBULA" ] || swift build -c release --product nebula >&2
work=$(mktemp -d /tmp/nebula-crash.XXXXXX)
trap 'umount "$work/disk" 2> /dev/null || true; rm -rf "$work"' EXIT
head -c 300000 ../shared/data/tinystories/tinystories_v2_10k.txt > "$work/corpus.txt"

total_kills=0 in_write=0 failures=0
# crash_run NAME ARGS…: the reference run, then the killed-and-resumed one, then the checks.
crash_run() {
  local name=$1; shift
  local ref="$work/$name-ref" out="$work/$name"
  local start=$(date +%s%N)
  "$NEBULA" "$@" --out "$ref" > /dev/null 2>&1
  local run_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  local kills=0 attempts=0 writes=0
  while :; do
    local resume=()
    [ -f "$out/training_state.safetensors" ] && resume=(--resume)
    "$NEBULA" "$@" --out "$out" "${resume[@]}" > /dev/null 2>&1 &
    local pid=$!
    attempts=$((attempts + 1))
    if [ "$kills" -lt "$KILLS" ] && [ "$attempts" -le $((4 * KILLS)) ]; then
      # a random instant within 2/KILLS of the reference run's length: about KILLS kills before it ends
      sleep "$(awk -v r=$RANDOM -v ms="$run_ms" -v k="$KILLS" 'BEGIN { printf "%.3f", r / 32767 * 2 * ms / k / 1000 }')"
      if kill -9 "$pid" 2> /dev/null; then
        wait "$pid" 2> /dev/null || true
        kills=$((kills + 1))
        ls -a "$out" 2> /dev/null | grep -q '^\..*\.tmp$' && writes=$((writes + 1))
        continue
      fi
    fi
    wait "$pid" || { echo "FAIL $name: the resumed run exited $?" >&2; failures=$((failures + 1)); return; }
    break
  done
  total_kills=$((total_kills + kills)); in_write=$((in_write + writes))
  local problems
  problems=$(python3 - "$ref" "$out" <<'PY'
import json, os, sys
ref, out = sys.argv[1:3]
problems = []
def log(folder):
    lines = open(os.path.join(folder, "log.jsonl")).read().split("\n")
    if lines[-1] != "":
        problems.append(f"{folder}/log.jsonl does not end with a newline")
    return [json.loads(line) for line in lines if line]
a, b = log(ref), log(out)
steps = [r["step"] for r in b]
if steps != list(range(1, len(a) + 1)):
    problems.append(f"log steps are not 1…{len(a)} once each: {len(steps)} lines, first differences at "
                    f"{[i for i, (x, y) in enumerate(zip(steps, range(1, len(steps) + 1))) if x != y][:3]}")
if [r["train_loss"] for r in a] != [r["train_loss"] for r in b]:
    problems.append("logged training losses differ from the uninterrupted run's")
for name in sorted(os.listdir(ref)):
    if name.endswith(".safetensors") and open(os.path.join(ref, name), "rb").read() != open(os.path.join(out, name), "rb").read():
        problems.append(f"{name} differs from the uninterrupted run's")
left = [n for n in os.listdir(out) if n.startswith(".") and n.endswith(".tmp")]
if left:
    problems.append(f"temporary files left: {left}")
print("; ".join(problems))
PY
)
  if [ -n "$problems" ]; then
    echo "FAIL $name ($kills kills, $writes during a checkpoint write): $problems"; failures=$((failures + 1))
  else
    echo "ok   $name: $kills kills ($writes during a checkpoint write), $((attempts - 1)) resumes; log, losses and every .safetensors byte-equal to an uninterrupted run (${run_ms} ms)"
  fi
}

steps="--warmup 5 --eval-every 10 --eval-batches 2 --checkpoint-every 3"
crash_run lm train lm --data "$work/corpus.txt" --char --preset tiny --steps 90 --batch-size 8 $steps
crash_run autoencoder train autoencoder --lm "$work/lm-ref" --latents 4 --latent-width 8 --width 32 --heads 2 \
  --encoder-layers 1 --decoder-layers 1 --max-length 16 --steps 60 --batch-size 8 $steps
crash_run diffusion train diffusion --autoencoder "$work/autoencoder-ref" --width 32 --heads 2 --layers 1 \
  --steps 120 --batch-size 16 $steps
echo "$total_kills kills in all, $in_write of them during a checkpoint write"

full_disk() {
  local disk="$work/disk" ref="$work/lm-ref"
  mkdir -p "$disk"
  if ! mount -t tmpfs -o size=4m tmpfs "$disk" 2> /dev/null; then
    echo "skip full disk: cannot mount a tmpfs here (needs root)"; return
  fi
  local args=(train lm --data "$work/corpus.txt" --char --preset tiny --steps 90 --batch-size 8 $steps --out "$disk/lm")
  "$NEBULA" "${args[@]}" --stop-after 45 > /dev/null 2>&1            # a whole checkpoint at step 45
  local free_kb=$(df -k --output=avail "$disk" | tail -1)
  dd if=/dev/zero of="$disk/filler" bs=1k count=$((free_kb - 8)) status=none 2> /dev/null || true
  local status=0 error
  error=$("$NEBULA" "${args[@]}" --resume 2>&1 > /dev/null) || status=$?
  local problems=()
  [ "$status" -eq 1 ] || problems+=("exit status $status, expected 1")
  error=$(printf '%s\n' "$error" | grep '^nebula: error' || true)     # the status lines before it are not errors
  [ "$(printf '%s\n' "$error" | grep -c .)" -eq 1 ] || problems+=("$(printf '%s\n' "$error" | grep -c .) error lines")
  printf '%s' "$error" | grep -q "$disk/lm/" || problems+=("the error does not name a file in $disk/lm: $error")
  ls -a "$disk/lm" | grep -q '^\..*\.tmp$' && problems+=("temporary files left")
  rm -f "$disk/filler"
  "$NEBULA" "${args[@]}" --resume > /dev/null 2>&1 || problems+=("the resume after freeing space failed")
  for name in model.safetensors training_state.safetensors; do
    cmp -s "$ref/$name" "$disk/lm/$name" || problems+=("$name differs from the uninterrupted run's")
  done
  umount "$disk"
  if [ ${#problems[@]} -gt 0 ]; then
    echo "FAIL full disk: ${problems[*]}"; failures=$((failures + 1))
  else
    echo "ok   full disk: \"$error\", exit 1, no temporary file; resumed from the intact checkpoint to the uninterrupted run's bytes"
  fi
}
full_disk
echo "$failures failures"
[ "$failures" -eq 0 ]
