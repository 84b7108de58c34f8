"""Golden values for Nebula's fused tensor ops: forward outputs and input gradients.

Produces Tests/NebulaTensorTests/Fixtures/ops_golden.safetensors.  Rerun from the repo root:
    python3 reference/golden_ops.py
Deterministic (seeded).  Inputs are drawn in float32, everything is computed in float64, results are
stored as F32 (integer targets as I64): the stored values are the exact answers rounded once to float32.

Naming scheme: for op `<op>` the keys are
    <op>.<input>          each input (e.g. layer_norm.x, layer_norm.weight, layer_norm.bias)
    <op>.out              the op's output
    <op>.upstream         random tensor shaped like out; the scalar loss is sum(out * upstream)
    <op>.grad.<input>     d(loss)/d(input) for every differentiable input
Ops (shapes in the report / printed by this script):
    layer_norm      x [3,5,8], weight [8], bias [8]; eps 1e-5 over the last axis
    rms_norm        x [3,5,8], weight [8]; y = x / sqrt(mean(x^2, last axis) + 1e-6) * weight
    gelu            x [3,5,8]; tanh approximation
    silu            x [3,5,8]; x * sigmoid(x)
    softmax         x [3,5,8]; last axis
    log_softmax     x [3,5,8]; last axis
    cross_entropy   logits [6,10], targets [6] I64 with one -1 (ignored); out [1] = mean over the
                    non-ignored rows; upstream [1]; grad.logits only
    attention_causal        q,k,v [B=2,T=5,H*D=8], H=2 heads of D=4 ("B,T,(H*D)" layout: head h owns
                            features h*D..<(h+1)*D); causal; scale 1/sqrt(D); out [2,5,8]
    attention_cross_masked  q [2,3,8], k,v [2,6,8], H=2; mask [2,6] F32 (1 keep, 0 padded key), not
                            causal; padded keys get -inf scores before softmax; out [2,3,8];
                            gradients for q, k, v (not mask)
    matmul_batched  a [2,3,4], b [2,4,5]; out = a @ b [2,3,5]
    gelu_exact      x [3,5,8]; the erf form x * Phi(x) (BERT's); drawn last so the others stay byte-identical
__metadata__["settings"] holds the scalar settings (eps, heads) as one JSON string.
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                   "Tests", "NebulaTensorTests", "Fixtures", "ops_golden.safetensors")
torch.manual_seed(2024)


def rand(*shape, scale=1.0, offset=0.0):
    """float32-representable random values, as float64 leaves that collect gradients."""
    x = (offset + scale * torch.randn(*shape)).float().double()
    return x.requires_grad_(True)


def attention(q, k, v, heads, causal=False, key_mask=None):
    """q [B,Tq,H*D], k/v [B,Tk,H*D] -> [B,Tq,H*D]; key_mask [B,Tk] with 1 keep / 0 pad."""
    B, Tq, C = q.shape
    Tk, D = k.shape[1], C // heads
    qh = q.view(B, Tq, heads, D).transpose(1, 2)           # [B,H,Tq,D]
    kh = k.view(B, Tk, heads, D).transpose(1, 2)           # [B,H,Tk,D]
    vh = v.view(B, Tk, heads, D).transpose(1, 2)           # [B,H,Tk,D]
    s = qh @ kh.transpose(-2, -1) / math.sqrt(D)           # [B,H,Tq,Tk]
    if causal:
        s = s.masked_fill(~torch.ones(Tq, Tk, dtype=torch.bool).tril(), float("-inf"))
    if key_mask is not None:
        s = s.masked_fill(key_mask[:, None, None, :] == 0, float("-inf"))
    y = s.softmax(-1) @ vh                                 # [B,H,Tq,D]
    return y.transpose(1, 2).reshape(B, Tq, C)             # [B,Tq,H*D]


def record(store, op, inputs, out, constants=None):
    """Store inputs, out, upstream and gradients of sum(out * upstream) for `op`."""
    upstream = torch.randn(out.shape).float().double()
    (out * upstream).sum().backward()
    for name, t in inputs.items():
        store[f"{op}.{name}"] = t.detach()
        store[f"{op}.grad.{name}"] = t.grad.detach()
    for name, t in (constants or {}).items():
        store[f"{op}.{name}"] = t
    store[f"{op}.out"] = out.detach()
    store[f"{op}.upstream"] = upstream


def main():
    s = {}
    x, w, b = rand(3, 5, 8, scale=2.0, offset=0.5), rand(8, scale=0.5, offset=1.0), rand(8, scale=0.5)
    record(s, "layer_norm", dict(x=x, weight=w, bias=b), F.layer_norm(x, (8,), w, b, eps=1e-5))

    x, w = rand(3, 5, 8, scale=2.0, offset=0.5), rand(8, scale=0.5, offset=1.0)
    record(s, "rms_norm", dict(x=x, weight=w), x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w)

    x = rand(3, 5, 8, scale=2.0)
    record(s, "gelu", dict(x=x), F.gelu(x, approximate="tanh"))
    x = rand(3, 5, 8, scale=2.0)
    record(s, "silu", dict(x=x), F.silu(x))
    x = rand(3, 5, 8, scale=2.0)
    record(s, "softmax", dict(x=x), x.softmax(-1))
    x = rand(3, 5, 8, scale=2.0)
    record(s, "log_softmax", dict(x=x), x.log_softmax(-1))

    logits = rand(6, 10, scale=2.0)
    targets = torch.randint(0, 10, (6,))
    targets[2] = -1
    loss = F.cross_entropy(logits, targets, ignore_index=-1).reshape(1)
    record(s, "cross_entropy", dict(logits=logits), loss, constants=dict(targets=targets))

    q, k, v = rand(2, 5, 8), rand(2, 5, 8), rand(2, 5, 8)
    record(s, "attention_causal", dict(q=q, k=k, v=v), attention(q, k, v, heads=2, causal=True))

    q, k, v = rand(2, 3, 8), rand(2, 6, 8), rand(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 0]], dtype=torch.float64)
    record(s, "attention_cross_masked", dict(q=q, k=k, v=v),
           attention(q, k, v, heads=2, key_mask=mask), constants=dict(mask=mask))

    a, bb = rand(2, 3, 4), rand(2, 4, 5)
    record(s, "matmul_batched", dict(a=a, b=bb), a @ bb)

    x = rand(3, 5, 8, scale=3.0)
    record(s, "gelu_exact", dict(x=x), F.gelu(x))

    out = {k: (t.contiguous() if t.dtype == torch.int64 else t.float().contiguous()) for k, t in s.items()}
    # one metadata entry: safetensors writes several in random (hash) order, breaking byte-identical reruns
    meta = {"settings": json.dumps({"layer_norm.eps": 1e-5, "rms_norm.eps": 1e-6, "gelu.approximate": "tanh",
                                    "cross_entropy.ignore_index": -1, "attention_causal.heads": 2,
                                    "attention_cross_masked.heads": 2})}
    save_file(out, OUT, metadata=meta)
    for k in sorted(out):
        print(f"{k:36s} {str(out[k].dtype)[6:]:8s} {list(out[k].shape)}")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(out)} tensors)")


if __name__ == "__main__":
    main()
