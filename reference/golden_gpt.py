"""Golden state for the Swift GPT replay test (llm.c's test_gpt2 pattern).

Produces Tests/NebulaModelsTests/Fixtures/gpt_golden.safetensors.  Rerun from the repo root:
    python3 reference/golden_gpt.py
Deterministic (seeded); the file is committed and the Swift tests never run Python.

Config V=64, T=16, L=2, H=2, C=32, batch B=4.  Everything is computed in float64 from parameters and
inputs that are exactly representable in float32, then stored as F32 (ids as I64), so the stored values
are the exact answer rounded once to float32.  Keys:
  param.<name>        every parameter (weights N(0,0.1); LN weights 1+0.1*noise; biases 0.1*noise)
  input.ids [B,T] I64, input.targets [B,T] I64 (a few positions are -1 = ignored)
  output.logits [B,T,V], output.loss [1]
  grad.<name>         d(loss)/d(param) for every parameter
  train.losses [10]   loss before each of 10 AdamW steps on the same batch
  train.grad_norms [10] global gradient norm before clipping at each step
  final.<name>        every parameter after the 10 steps
AdamW(lr=1e-2, betas=(0.9,0.95), eps=1e-8, weight_decay=0.1 on >=2-dim params, 0 otherwise),
torch.nn.utils.clip_grad_norm_(params, 1.0) before each step.  __metadata__["config"] holds the JSON.

Tolerance note: the key part of each qkv bias (blocks.{i}.attn.qkv.bias[C:2C]) has an exactly zero true
gradient (softmax ignores a constant added to all scores), so its float32 gradient is rounding noise
(~1e-9) that Adam (eps 1e-8) turns into steps of up to ~lr/10.  Plain float32 PyTorch lands 1.5e-3 away
from this file's final k-bias (which is unchanged from param.*); every other final.* entry is within 2e-5.
Compare final k-bias with an absolute tolerance ~5e-3 (or skip it); grad k-bias only in absolute terms.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt import GPT, GPTConfig  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                   "Tests", "NebulaModelsTests", "Fixtures", "gpt_golden.safetensors")
B, STEPS = 4, 10
OPT = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
CLIP = 1.0


def build(cfg, dtype):
    torch.manual_seed(1337)
    model = GPT(cfg)
    with torch.no_grad():  # golden init: std 0.1 everywhere so every term matters
        for name, p in model.named_parameters():
            noise = 0.1 * torch.randn(p.shape)
            if name.endswith("weight") and (".ln" in name or name.startswith("lnf")):
                p.copy_(1.0 + noise)
            else:
                p.copy_(noise)
            p.copy_(p.float())  # exactly representable in float32
    model = model.to(dtype)
    g = torch.Generator().manual_seed(42)
    ids = torch.randint(0, cfg.vocab_size, (B, cfg.block_size), generator=g)
    targets = torch.randint(0, cfg.vocab_size, (B, cfg.block_size), generator=g)
    targets[0, 3] = targets[1, 0] = targets[2, 15] = targets[3, 7] = targets[3, 8] = -1
    return model, ids, targets


def run(dtype):
    cfg = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)
    model, ids, targets = build(cfg, dtype)
    t = {f"param.{n}": p.detach().clone() for n, p in model.named_parameters()}
    t["input.ids"], t["input.targets"] = ids, targets
    logits, loss = model(ids, targets)
    loss.backward()
    t["output.logits"], t["output.loss"] = logits.detach(), loss.detach().reshape(1)
    t.update({f"grad.{n}": p.grad.detach().clone() for n, p in model.named_parameters()})

    model.zero_grad(set_to_none=True)
    opt = model.configure_optimizer(**OPT)
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        _, loss = model(ids, targets)
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP).item())
        losses.append(loss.item())
        opt.step()
    t["train.losses"] = torch.tensor(losses, dtype=torch.float64)
    t["train.grad_norms"] = torch.tensor(norms, dtype=torch.float64)
    t.update({f"final.{n}": p.detach().clone() for n, p in model.named_parameters()})
    return cfg, t


def main():
    cfg, gold = run(torch.float64)
    _, f32 = run(torch.float32)
    # How far plain float32 PyTorch lands from the float64 answer: a guide for Swift tolerances.
    print(f"{'group':16s} max|f32-f64|   max rel (|d|/max|ref|)")
    for prefix in ["output.logits", "output.loss", "grad.", "train.losses", "train.grad_norms", "final."]:
        keys = [k for k in gold if k.startswith(prefix)]
        d = max((f32[k].double() - gold[k]).abs().max().item() for k in keys)
        r = max(((f32[k].double() - gold[k]).abs().max() / gold[k].abs().max()).item() for k in keys)
        print(f"{prefix:16s} {d:.3e}     {r:.3e}")
    out = {k: (v.contiguous() if v.dtype == torch.int64 else v.float().contiguous()) for k, v in gold.items()}
    meta = {"config": json.dumps(dict(vocab_size=cfg.vocab_size, block_size=cfg.block_size,
                                      n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                                      batch_size=B, steps=STEPS, clip=CLIP, ignore_index=-1,
                                      ln_eps=1e-5, gelu="tanh", optimizer="AdamW", **OPT))}
    save_file(out, OUT, metadata=meta)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(out)} tensors)")
    print("losses", [round(x, 6) for x in gold["train.losses"].tolist()])


if __name__ == "__main__":
    main()
