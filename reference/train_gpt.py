"""Train reference/gpt.py on tinyshakespeare characters: PyTorch's side of the speed/quality comparison.

    python3 reference/train_gpt.py --config small             # nanoGPT's CPU run, 2000 steps
    python3 reference/train_gpt.py --config medium --steps 30 # 6x6x384, T=256, batch 8: timing only
    python3 reference/train_gpt.py --config small --json      # one JSON line on stdout (progress -> stderr)

Data: ../shared/data/shakespeare/input.txt (override with --data); vocab = sorted set of characters;
first 90% train, last 10% val (as nanoGPT).  Batches: random windows, seeded.  Optimizer: AdamW
betas (0.9, 0.99), weight decay 0.1 on >=2-dim params, clip 1.0, lr 1e-3 with linear warmup over 100
steps then cosine decay to 1e-4 at the last step.  No dropout.
Prints ms/step (mean, median and min over the steps after the first 5, evaluation excluded), tokens/s
(from the mean), peak RSS
(getrusage ru_maxrss) and the final validation loss (mean over 20 random val batches, seeded).
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt import GPT, CausalSelfAttention, GPTConfig  # noqa: E402

CONFIGS = {  # n_layer, n_head, n_embd, block_size, batch_size, steps
    "small": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, steps=2000),
    "medium": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=8, steps=2000),
}
DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                            "shakespeare", "input.txt")
WARMUP_STEPS, WARMUP_IGNORED = 100, 5


def lr_at(step, steps, lr, min_lr, warmup):
    """Linear warmup to lr over `warmup` steps, then cosine decay to min_lr at step `steps`."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def get_batch(data, batch_size, block_size, gen):
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=gen)
    x = torch.stack([data[i:i + block_size] for i in ix.tolist()])          # [B, T]
    y = torch.stack([data[i + 1:i + 1 + block_size] for i in ix.tolist()])  # [B, T]
    return x, y


@torch.no_grad()
def estimate_loss(model, data, batch_size, block_size, batches=20, seed=1234):
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    losses = [model(*get_batch(data, batch_size, block_size, gen))[1].item() for _ in range(batches)]
    model.train()
    return sum(losses) / len(losses)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="small")
    ap.add_argument("--steps", type=int, help="override the number of steps (schedule follows)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--eval-batches", type=int, default=20, help="random val batches for the val loss")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--no-sdpa", action="store_true",
                    help="explicit attention math instead of F.scaled_dot_product_attention")
    ap.add_argument("--json", action="store_true", help="print one JSON line of figures on stdout")
    ap.add_argument("--autocast-bf16", action="store_true",
                    help="forward and loss under torch.autocast('cpu', torch.bfloat16): PyTorch's own mixed precision")
    args = ap.parse_args()
    log = sys.stderr if args.json else sys.stdout

    torch.set_num_threads(args.threads)
    CausalSelfAttention.fused = not args.no_sdpa
    torch.manual_seed(args.seed)
    c = dict(CONFIGS[args.config])
    steps = args.steps or c.pop("steps")
    c.pop("steps", None)
    B, T = c.pop("batch_size"), c["block_size"]

    text = open(args.data, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[ch] for ch in text], dtype=torch.long)
    n = int(0.9 * len(data))
    train, val = data[:n], data[n:]

    model = GPT(GPTConfig(vocab_size=len(chars), **c))
    n_params = sum(p.numel() for p in model.parameters())
    opt = model.configure_optimizer(lr=args.lr, betas=(0.9, 0.99), weight_decay=0.1)
    print(f"config {args.config}: {c}, batch {B}, vocab {len(chars)}, params {n_params:,}, "
          f"steps {steps}, threads {torch.get_num_threads()}, sdpa {not args.no_sdpa}, "
          f"torch {torch.__version__}", file=log)

    gen = torch.Generator().manual_seed(args.seed)
    load_before = os.getloadavg()[0]
    times, t_start = [], time.perf_counter()
    for step in range(steps):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, args.lr, args.min_lr, WARMUP_STEPS)
        x, y = get_batch(train, B, T, gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast_bf16):
            _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = loss.item()
        dt = time.perf_counter() - t0
        if step >= WARMUP_IGNORED:
            times.append(dt)
        if step % args.log_every == 0 or step == steps - 1:
            print(f"step {step:5d} | loss {loss_value:.4f} | {dt * 1000:7.1f} ms", file=log, flush=True)
    wall = time.perf_counter() - t_start

    times = times or [dt]
    ms = 1000 * sum(times) / len(times)
    ms_median = 1000 * sorted(times)[len(times) // 2]  # robust to load spikes on a shared machine
    figures = dict(framework="pytorch", torch=torch.__version__, config=args.config, steps=steps,
                   precision="bf16-autocast" if args.autocast_bf16 else "fp32",
                   sdpa=not args.no_sdpa,
                   batch_size=B, block_size=T, params=n_params, threads=torch.get_num_threads(),
                   ms_per_step=round(ms, 3), ms_per_step_median=round(ms_median, 3),
                   ms_per_step_min=round(1000 * min(times), 3),
                   tokens_per_s=round(B * T / (ms / 1000), 1),
                   peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                   train_loss=round(loss_value, 4),
                   val_loss=round(estimate_loss(model, val, B, T, args.eval_batches), 4),
                   train_wall_s=round(wall, 2),
                   load_avg_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)])  # >cores: contended
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"ms/step {figures['ms_per_step']:.1f} (median {ms_median:.1f}) | tokens/s {figures['tokens_per_s']:.0f} | "
              f"peak RSS {figures['peak_rss_mb']:.0f} MB | val loss {figures['val_loss']:.4f} "
              f"| train wall {wall:.1f} s | load avg {figures['load_avg_1m']}")


if __name__ == "__main__":
    main()
