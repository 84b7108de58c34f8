#!/usr/bin/env python3
"""Where a Nebula step spends its time (issue 15): runs a nebula-bench command under `perf record` and
prints a markdown table of the share of samples per operation, grouping symbols by what they do.

    python3 bench/profile.py                        # the four profiles of docs/performance/README.md, one after another
    python3 bench/profile.py -- gpt --config small  # one nebula-bench command
Needs perf (apt-get install linux-perf) and a release nebula-bench (swift build -c release --product nebula-bench).
oneDNN's JIT-compiled kernels have no symbols: samples in them are counted as GEMM, with libdnnl's own code.
Shares are of CPU samples on all threads: "waiting for workers" includes helpers spinning while the calling
thread runs serial work, so at batch 1 it is idle time, not time lost.
"""
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / ".build/release/nebula-bench"
PROFILES = {
    "training step, 4×128 (nanoGPT's CPU config)": ["gpt", "--config", "small", "--steps", "100"],
    "training step, 6×384": ["gpt", "--config", "medium", "--steps", "6"],
    "training step, 6×384, --precision bf16": ["gpt", "--config", "medium", "--steps", "6", "--precision", "bf16"],
    "sampling step, bundle LM, batch 1": ["sample", "--batches", "1", "--repeats", "20"],
}
# (operation, pattern on "dso symbol"), first match wins.
CATEGORIES = [
    ("GEMM (oneDNN kernels)", r"\[JIT\]|libdnnl|libopenblas|BF16Matmul|sgemm"),
    ("bf16 rounding of GEMM operands", r"roundToBFloat16"),
    ("attention: softmax, masking, single-query", r"scaledDotProductAttention|singleQueryAttention|AttentionShape|KVCache"),
    ("GELU", r"Gelu|gelu"),
    ("layer norm", r"layerNorm|rmsNorm"),
    ("AdamW and gradient clipping", r"AdamW|clipGradientNorm"),
    ("cross-entropy, softmax", r"crossEntropy|softmax|logSoftmax"),
    ("other elementwise and broadcasts", r"broadcastMap|binaryBackward|unary|Elementwise|sumAxis|sum\b"),
    ("copies, slices, concatenation, memset", r"memset|memmove|memcpy|slice|concatenate|split|gatherRows|ShapeOps"),
    ("allocation and page faults", r"malloc|_int_free|cfree|free\b|clear_page|page_fault|swift_allocObject|swift_slowAlloc"),
    ("reference counting", r"swift_retain|swift_release|swift_bridgeObject"),
    ("waiting for workers", r"WorkerPool|sched_yield|__schedule|futex|finish_task_switch|_raw_spin"),
    ("sampling the next token", r"sampleToken"),
    ("set-up (initialisation, random numbers)", r"randn|SeededGenerator|__cos|__sin|__ieee754_log"),
]


def profile(arguments):
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "perf.data"
        subprocess.run(["perf", "record", "-F", "2000", "-o", str(data), str(BENCH), *arguments],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso,symbol", "--stdio"],
                                check=True, capture_output=True, text=True).stdout
    shares = defaultdict(float)
    for line in report.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+(.*?)\s+\[[.k]\]\s+(.*)", line)
        if not match:
            continue
        share, dso, symbol = float(match[1]), match[2], match[3]
        key = f"{dso} {symbol}"
        name = next((n for n, pattern in CATEGORIES if re.search(pattern, key)), "other")
        shares[name] += share
    return shares


def main():
    jobs = {" ".join(sys.argv[2:]): sys.argv[2:]} if sys.argv[1:2] == ["--"] else PROFILES
    results = {title: profile(arguments) for title, arguments in jobs.items()}
    names = [n for n, _ in CATEGORIES] + ["other"]
    print("| operation | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for name in names:
        if all(shares.get(name, 0) < 0.5 for shares in results.values()):
            continue
        print(f"| {name} | " + " | ".join(f"{shares.get(name, 0):.1f}%" for shares in results.values()) + " |")


if __name__ == "__main__":
    main()
