#!/usr/bin/env bash
# Data-parallel training on MPI (issue #17), 2 ranks: `make test-mpi` builds nebula with MPI and runs this.
#   1. each trainer (LM, autoencoder, diffusion) on 2 ranks, global batch 8, against one process with 2 micro-batches
#      of 4 (the same computation): training losses within 1e-4 at every step, final weights within 1e-4, and the
#      ranks' weights identical (the trainer checks their hash);
#   2. a 2-rank run stopped after 25 steps and resumed with 2 ranks ends byte-equal to an uninterrupted one;
#   3. Ctrl-C to mpirun stops both ranks at one step with a checkpoint; an error on rank 0 alone (a full disk)
#      ends the whole run with exit 1, no rank left waiting;
#   4. two hosts: 2 ranks in two network namespaces joined by a veth pair (made here, addresses 10.213.0.1-2/30),
#      MPI over TCP on that link; the run must match the single-process one too. Needs root (ip netns, mount),
#      else skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
NEBULA="${NEBULA:-.build-mpi/release/nebula}"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl_base_warn_component_unused 0)
export NEBULA_THREADS=1                 # one worker per rank: 2 ranks on a 2-core machine
work=$(mktemp -d /tmp/nebula-mpi.XXXXXX)
cleanup() {
  umount "$work/disk" 2> /dev/null || true
  ip netns del nebula-mpi-a 2> /dev/null || true
  ip netns del nebula-mpi-b 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
head -c 300000 ../shared/data/tinystories/tinystories_v2_10k.txt > "$work/corpus.txt"
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# compare REF OUT: training losses step by step and every weight file, within 1e-4.
compare() {
  python3 - "$1" "$2" <<'PY'
import array, json, struct, sys
a, b = sys.argv[1:3]
def load_file(path):             # the F32 tensors of a safetensors file, with the standard library alone
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    tensors = {}
    for name, info in header.items():
        if name != "__metadata__" and info["dtype"] == "F32":
            start, end = info["data_offsets"]
            tensors[name] = array.array("f", data[8 + n + start:8 + n + end])
    return tensors
def losses(folder):
    return [json.loads(line)["train_loss"] for line in open(f"{folder}/log.jsonl")]
la, lb = losses(a), losses(b)
if len(la) != len(lb):
    sys.exit(f"{len(la)} against {len(lb)} logged steps")
loss_gap = max(abs(x - y) for x, y in zip(la, lb))
wa, wb = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
weight_gap = max(max(abs(x - y) for x, y in zip(wa[k], wb[k])) for k in wa)
print(f"{len(la)} steps, largest loss difference {loss_gap:.2e}, largest weight difference {weight_gap:.2e}")
sys.exit(0 if loss_gap <= 1e-4 and weight_gap <= 1e-4 else 1)
PY
}

common="--warmup 5 --eval-every 25 --eval-batches 2 --checkpoint-every 25"
lm=(train lm --data "$work/corpus.txt" --char --preset tiny --steps 50 $common)
ae=(train autoencoder --lm "$work/lm-1" --latents 4 --latent-width 8 --width 32 --heads 2 --encoder-layers 1 --decoder-layers 1
    --max-length 16 --passages fixed --steps 30 $common)
diffusion=(train diffusion --autoencoder "$work/ae-1" --width 32 --heads 2 --layers 1 --passages fixed --steps 30 $common)

# 1. two ranks against one process, each trainer.
for name in lm ae diffusion; do
  declare -n args=$name
  "$NEBULA" "${args[@]}" --batch-size 4 --accumulate 2 --out "$work/$name-1" > /dev/null 2>&1
  "${MPIRUN[@]}" -np 2 "$NEBULA" "${args[@]}" --batch-size 8 --out "$work/$name-2" > /dev/null 2> "$work/$name-2.err"
  grep -q "all 2 ranks hold the same weights" "$work/$name-2.err" || fail "$name: no same-weights check ($(tail -1 "$work/$name-2.err"))"
  if result=$(compare "$work/$name-1" "$work/$name-2"); then echo "ok   $name, 2 ranks = 1 process: $result"; else fail "$name: $result"; fi
done

# 2. stop after 25 steps, resume on 2 ranks.
"${MPIRUN[@]}" -np 2 "$NEBULA" "${lm[@]}" --batch-size 8 --stop-after 25 --out "$work/lm-resumed" > /dev/null 2>&1
"${MPIRUN[@]}" -np 2 "$NEBULA" "${lm[@]}" --batch-size 8 --resume --out "$work/lm-resumed" > /dev/null 2>&1
if cmp -s "$work/lm-2/model.safetensors" "$work/lm-resumed/model.safetensors"; then
  echo "ok   resume: 25 + 25 steps on 2 ranks byte-equal to 50"
else fail "resume: weights differ from the uninterrupted 2-rank run"; fi

# 3a. Ctrl-C: Open MPI 4's mpirun passes it on to the ranks as SIGTERM only after odls_base_sigkill_timeout
#     seconds, and sends SIGKILL as many seconds later: both ranks must stop at one step in between, rank 0
#     checkpointing. (With the timeout at 30 the whole stop took 59-60 s, too close to this test's limit.)
long=(train lm --data "$work/corpus.txt" --char --preset tiny --steps 100000 --batch-size 8 --warmup 5 --eval-every 100000 --checkpoint-every 100000)
set -m                                  # job control: a background job keeps SIGINT, as a terminal's Ctrl-C would reach it
"${MPIRUN[@]}" -np 2 --mca odls_base_sigkill_timeout 10 "$NEBULA" "${long[@]}" --out "$work/lm-interrupted" > "$work/interrupted.out" 2>&1 &
launcher=$!
set +m
for _ in $(seq 120); do          # until training runs (rank 0 has started the log): Ctrl-C before that just ends it
  [ -s "$work/lm-interrupted/log.jsonl" ] && break
  sleep 0.5
done
sleep 1
kill -INT "$launcher"
interrupted_at=$SECONDS
if ! timeout 60 tail --pid="$launcher" -f /dev/null; then
  fail "Ctrl-C: mpirun still running 60 s after SIGINT; its output ends: $(tail -c 300 "$work/interrupted.out")"
elif ! grep -q "stopped: checkpoint saved" "$work/interrupted.out" || [ ! -f "$work/lm-interrupted/training_state.safetensors" ]; then
  fail "Ctrl-C: the run ended without a checkpoint; its output ends: $(tail -c 300 "$work/interrupted.out")"
else
  step=$(tail -1 "$work/lm-interrupted/log.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["step"])')
  echo "ok   Ctrl-C: both ranks stopped at step $step with a checkpoint, mpirun gone $((SECONDS - interrupted_at)) s after SIGINT"
fi

# 3b. An error on rank 0 alone: its checkpoint onto a full disk fails; the other rank must not wait.
mkdir -p "$work/disk"
if mount -t tmpfs -o size=1m tmpfs "$work/disk" 2> /dev/null; then
  dd if=/dev/zero of="$work/disk/filler" bs=1k count=900 status=none 2> /dev/null || true
  status=0
  timeout 120 "${MPIRUN[@]}" -np 2 "$NEBULA" "${lm[@]}" --batch-size 8 --out "$work/disk/lm" > /dev/null 2> "$work/full.err" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && grep -q "rank 0): error:.*No space left" "$work/full.err"; then
    echo "ok   an error on rank 0 ($(grep -o 'No space left on device' "$work/full.err" | head -1)) ended both ranks, exit $status"
  else fail "rank 0's error: exit $status, $(grep error "$work/full.err" | head -1)"; fi
else echo "skip full disk on rank 0: cannot mount a tmpfs (needs root)"; fi

# 4. Two hosts: two network namespaces, one veth link, MPI over TCP on it.
if ip netns add nebula-mpi-a 2> /dev/null && ip netns add nebula-mpi-b; then
  ip link add nebula-veth-a type veth peer name nebula-veth-b
  ip link set nebula-veth-a netns nebula-mpi-a
  ip link set nebula-veth-b netns nebula-mpi-b
  ip -n nebula-mpi-a addr add 10.213.0.1/30 dev nebula-veth-a
  ip -n nebula-mpi-b addr add 10.213.0.2/30 dev nebula-veth-b
  for ns in a b; do ip -n nebula-mpi-$ns link set nebula-veth-$ns up; ip -n nebula-mpi-$ns link set lo up; done
  # mpirun starts the remote rank through this "rsh agent": the command, run in the other host's namespace.
  cat > "$work/netns-agent.sh" <<'EOF'
#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
case "$1" in 10.213.0.1) ns=nebula-mpi-a ;; 10.213.0.2) ns=nebula-mpi-b ;; *) echo "unknown host $1" >&2; exit 1 ;; esac
shift
exec ip netns exec "$ns" sh -c "$*"
EOF
  chmod +x "$work/netns-agent.sh"
  before=$(ip -n nebula-mpi-b -s -j link show nebula-veth-b | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["bytes"])')
  ip netns exec nebula-mpi-a "${MPIRUN[@]}" -np 2 --host 10.213.0.1,10.213.0.2 --mca plm_rsh_agent "$work/netns-agent.sh" \
    --mca btl tcp,self --mca btl_tcp_if_include 10.213.0.0/30 --mca oob_tcp_if_include 10.213.0.0/30 \
    "$PWD/$NEBULA" "${lm[@]}" --batch-size 8 --out "$work/lm-hosts" > /dev/null 2> "$work/hosts.err" || true
  after=$(ip -n nebula-mpi-b -s -j link show nebula-veth-b | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["bytes"])')
  if result=$(compare "$work/lm-1" "$work/lm-hosts") && grep -q "all 2 ranks hold the same weights" "$work/hosts.err"; then
    echo "ok   two hosts (namespaces, veth, TCP): $result; $(( (after - before) / 1000000 )) MB crossed the link"
  else fail "two hosts: ${result:-} $(tail -2 "$work/hosts.err")"; fi
else echo "skip two hosts: cannot make network namespaces (needs root)"; fi

echo "$failures failures"
[ "$failures" -eq 0 ]
