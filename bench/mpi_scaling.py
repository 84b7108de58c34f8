"""Data-parallel scaling on paper, from measurements on this machine (issue #17).

    python3 bench/mpi_scaling.py            # needs .build-mpi/release/nebula (make build-mpi) and ../shared/data

Measures, one after the other:
  - compute per step, one process on all cores: a few `nebula train` steps of each model at the batch it is trained
    with (the bundle's LM, autoencoder and denoiser; GPT-2 small's shape at one 1,024-token sequence a rank);
  - MPI_Allreduce between 2 ranks on this machine (`nebula allreduce-bench`), over shared memory and over TCP on
    loopback, for each model's gradient size, and the latency of a 1-float allreduce over TCP.
Then predicts, for N = 2…64 nodes linked at 10 and 100 Gbit/s, each node running one rank with the same batch
(weak scaling, as DDP is used), the step time compute + allreduce, where a ring allreduce takes
2(N−1)/N · bytes / bandwidth + 2(N−1) · latency, and the efficiency compute / step. Prints a Markdown table.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEBULA = os.path.join(ROOT, ".build-mpi", "release", "nebula")
DATA = os.path.join(ROOT, "..", "shared", "data")
BUNDLE = os.path.join(ROOT, "models", "tinystories")
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "--mca", "btl_base_warn_component_unused", "0"]


def step_seconds(work, name, arguments, items_per_step, steps):
    """Median seconds a step from the log of a short run (its first step, with warm-up costs, left out)."""
    out = os.path.join(work, name)
    subprocess.run([NEBULA] + arguments + ["--steps", str(steps), "--eval-every", "100000", "--checkpoint-every", "100000",
                                           "--warmup", "1", "--out", out], check=True, capture_output=True, cwd=ROOT)
    rates = sorted(json.loads(line)["items_per_s"] for line in open(os.path.join(out, "log.jsonl")))[1:]
    return items_per_step / rates[len(rates) // 2]


def allreduce_ms(floats, transport):
    mca = ["--mca", "btl", "tcp,self"] if transport == "tcp" else []
    out = subprocess.run(MPIRUN + mca + [NEBULA, "allreduce-bench", "--repeats", "7", "--floats"] + [str(f) for f in floats],
                         check=True, capture_output=True, text=True, env={**os.environ, "NEBULA_THREADS": "1"}).stdout
    return [float(m) for m in re.findall(r"median +([0-9.]+) ms", out)]


def main():
    corpus = os.path.join(DATA, "tinystories", "tinystories_v2_10k.txt")
    work = tempfile.mkdtemp(prefix="nebula-scaling-")
    with open(os.path.join(work, "corpus.txt"), "w") as f:
        f.write(open(corpus, encoding="utf-8").read()[:3_000_000])
    gpt2 = os.path.join(work, "gpt2")
    os.makedirs(gpt2)
    for source, target in (("encoder.json", "vocab.json"), ("vocab.bpe", "merges.txt")):
        with open(os.path.join(DATA, "gpt2", source), "rb") as a, open(os.path.join(gpt2, target), "wb") as b:
            b.write(a.read())
    # (name, weights, train arguments, items a step, steps)
    models = [
        ("bundle LM (6 × 192)", 3_480_576, ["train", "lm", "--data", os.path.join(work, "corpus.txt"), "--tokenizer", os.path.join(BUNDLE, "lm"),
                                            "--preset", "small", "--batch-size", "16"], 16 * 128, 12),
        ("bundle autoencoder", 7_264_928, ["train", "autoencoder", "--lm", os.path.join(BUNDLE, "lm"), "--latent-width", "32",
                                           "--batch-size", "32", "--passages", "fixed"], 32, 12),
        ("bundle denoiser (6 × 256)", 8_287_040, ["train", "diffusion", "--autoencoder", os.path.join(BUNDLE, "autoencoder"),
                                                  "--batch-size", "64", "--passages", "fixed"], 64, 12),
        ("GPT-2 small (124M), 1 × 1,024 tokens", 124_439_808, ["train", "lm", "--data", os.path.join(work, "corpus.txt"), "--tokenizer", gpt2,
                                                                "--preset", "base", "--layers", "12", "--heads", "12", "--width", "768",
                                                                "--context", "1024", "--batch-size", "1"], 1024, 4),
    ]
    compute = []
    for name, weights, arguments, items, steps in models:
        seconds = step_seconds(work, re.sub(r"\W+", "-", name), arguments, items, steps)
        compute.append(seconds)
        print(f"compute: {name}: {1000 * seconds:.1f} ms a step", file=sys.stderr)
    sizes = [m[1] for m in models]
    shared = allreduce_ms(sizes, "shared")
    tcp = allreduce_ms(sizes, "tcp")
    latency = allreduce_ms([1], "tcp")[0] / 1000 / 2          # a 2-rank ring: 2 messages
    print(f"allreduce, 2 ranks: shared memory {shared} ms, TCP loopback {tcp} ms; 1-float latency {1e6 * latency:.0f} µs",
          file=sys.stderr)

    counts = [2, 4, 8, 16, 32, 64]
    print("| model | compute a step | allreduce, 2 ranks here: shared memory / TCP loopback | link | "
          + " | ".join(f"N = {n}" for n in counts) + " |")
    print("|---|---|---|---|" + "---|" * len(counts))
    for (name, weights, *_), seconds, s_ms, t_ms in zip(models, compute, shared, tcp):
        for gbit in (10, 100):
            cells = []
            for n in counts:
                ring = 2 * (n - 1) / n * weights * 4 * 8 / (gbit * 1e9) + 2 * (n - 1) * latency
                step = seconds + ring
                cells.append(f"{1000 * step:.0f} ms, {100 * seconds / step:.0f}%")
            print(f"| {name} | {1000 * seconds:.0f} ms | {s_ms:.1f} / {t_ms:.1f} ms | {gbit} Gbit/s | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
