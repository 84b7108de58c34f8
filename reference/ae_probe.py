"""A quick PyTorch probe of the stage-2 autoencoder design on the shipped TinyStories LM.

Used to find, in minutes, which encoder/decoder route lets the latent carry a passage; the Swift
implementation (NebulaModels.LatentAutoencoder) is the product. Prints train loss and the held-out loss
with each passage's own latent vs its neighbour's (the gap is what the latent carries).

  python3 reference/ae_probe.py --route adapters --steps 300 [--input-dropout 1.0] [--positions]
"""
import argparse, math, random, time
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import ByteLevelBPETokenizer
from gpt import GPT, GPTConfig, Block

p = argparse.ArgumentParser()
p.add_argument("--lm", default="models/tinystories/lm")
p.add_argument("--data", default="../shared/data/tinystories/tinystories_v2_10k.txt")
p.add_argument("--route", default="adapters", choices=["adapters", "prefix"])
p.add_argument("--steps", type=int, default=300)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--input-dropout", type=float, default=0.0)
p.add_argument("--positions", action="store_true", help="learned positions added to the compressor's context")
p.add_argument("--layers", default="final", help="LM layers the compressor reads: final | all")
p.add_argument("--K", type=int, default=16); p.add_argument("--d", type=int, default=64)
p.add_argument("--noise", type=float, default=0.05)
p.add_argument("--comp-layers", type=int, default=3); p.add_argument("--rec-layers", type=int, default=2)
a = p.parse_args()
torch.manual_seed(0); random.seed(0); torch.set_num_threads(2)

tok = ByteLevelBPETokenizer(f"{a.lm}/vocab.json", f"{a.lm}/merges.txt")
ids = tok.encode(open(a.data).read()[:1_200_000]).ids
L = 64
EOT = tok.token_to_id("<|endoftext|>")
windows = [ids[i:i + L] for i in range(0, len(ids) - L, L)]
val, train = windows[:64], windows[64:]

cfg = GPTConfig(vocab_size=4096, block_size=128, n_layer=6, n_head=6, n_embd=192)
lm = GPT(cfg); lm.load_state_dict({k: v.float() for k, v in load_file(f"{a.lm}/model.safetensors").items()})
for q in lm.parameters(): q.requires_grad_(False)
C, W, H = 192, 192, 6

class XAttn(nn.Module):
    def __init__(s, w, cw):
        super().__init__(); s.q = nn.Linear(w, w); s.kv = nn.Linear(cw, 2 * w); s.o = nn.Linear(w, w)
    def forward(s, x, c):
        B, T, _ = x.shape; q = s.q(x).view(B, T, H, -1).transpose(1, 2)
        k, v = s.kv(c).chunk(2, -1); k = k.view(B, c.shape[1], H, -1).transpose(1, 2); v = v.view(B, c.shape[1], H, -1).transpose(1, 2)
        return s.o(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, -1))

class Perceiver(nn.Module):
    def __init__(s, cw):
        super().__init__(); s.lq = nn.LayerNorm(W); s.lc = nn.LayerNorm(cw); s.x = XAttn(W, cw)
        s.ln1 = nn.LayerNorm(W); s.sa = XAttn(W, W); s.ln2 = nn.LayerNorm(W); s.mlp = nn.Sequential(nn.Linear(W, 4 * W), nn.GELU(), nn.Linear(4 * W, W))
    def forward(s, q, c):
        q = q + s.x(s.lq(q), s.lc(c)); h = s.ln1(q); q = q + s.sa(h, h); return q + s.mlp(s.ln2(q))

class AE(nn.Module):
    def __init__(s):
        super().__init__()
        nread = cfg.n_layer if a.layers == "all" else 1
        s.queries = nn.Parameter(torch.randn(a.K, W) * 0.02)
        s.pos = nn.Parameter(torch.randn(L, C * nread) * 0.02) if a.positions else None
        s.comp = nn.ModuleList([Perceiver(C * nread) for _ in range(a.comp_layers)])
        s.lnz = nn.LayerNorm(W); s.toz = nn.Linear(W, a.d); s.fromz = nn.Linear(a.d, W)
        s.zpos = nn.Parameter(torch.randn(a.K, W) * 0.02)
        s.rec = nn.ModuleList([Perceiver(W) for _ in range(a.rec_layers)]); s.lnr = nn.LayerNorm(W)
        if a.route == "prefix": s.toprefix = nn.Linear(W, cfg.n_layer * 2 * C)
        else:
            s.ad_ln = nn.ModuleList([nn.LayerNorm(C) for _ in range(cfg.n_layer)])
            s.ad = nn.ModuleList([XAttn(C, W) for _ in range(cfg.n_layer)])
            s.gate = nn.Parameter(torch.zeros(cfg.n_layer))
    def hidden(s, x):
        with torch.no_grad():
            h = lm.wte(x) + lm.wpe(torch.arange(x.shape[1])); hs = []
            for b in lm.blocks: h = b(h); hs.append(h)
            return lm.lnf(h) if a.layers == "final" else torch.cat(hs, -1)
    def encode(s, x):
        c = s.hidden(x)
        if s.pos is not None: c = c + s.pos
        q = s.queries.expand(x.shape[0], -1, -1)
        for l in s.comp: q = l(q, c)
        return F.layer_norm(s.toz(s.lnz(q)), (a.d,))
    def decode_loss(s, z, x, drop=0.0):
        r = s.fromz(z) + s.zpos
        for l in s.rec: r = l(r, r)
        r = s.lnr(r)
        inp = torch.cat([torch.full((x.shape[0], 1), EOT), x], 1)
        if drop > 0: inp = torch.where((torch.rand(inp.shape) < drop) & (torch.arange(inp.shape[1]) > 0), torch.full_like(inp, EOT), inp)
        tgt = torch.cat([x, torch.full((x.shape[0], 1), EOT)], 1)
        h = lm.wte(inp) + lm.wpe(torch.arange(inp.shape[1]))
        B, T = inp.shape
        for i, blk in enumerate(lm.blocks):
            if a.route == "prefix":
                kv = s.toprefix(r).view(B, a.K, cfg.n_layer, 2, C)[:, :, i]
                hn = blk.ln1(h); q, k, v = blk.attn.qkv(hn).split(C, 2)
                k = torch.cat([kv[:, :, 0], k], 1); v = torch.cat([kv[:, :, 1], v], 1)
                sh = lambda t: t.view(B, t.shape[1], H, -1).transpose(1, 2)
                mask = torch.ones(T, a.K + T, dtype=torch.bool).tril(a.K)
                y = F.scaled_dot_product_attention(sh(q), sh(k), sh(v), attn_mask=mask).transpose(1, 2).reshape(B, T, C)
                h = h + blk.attn.proj(y); h = h + blk.mlp(blk.ln2(h))
            else:
                h = blk(h); h = h + torch.tanh(s.gate[i]) * s.ad[i](s.ad_ln[i](h), r)
        logits = lm.lnf(h) @ lm.wte.weight.t()
        return F.cross_entropy(logits.reshape(-1, 4096), tgt.reshape(-1))

ae = AE()
opt = torch.optim.AdamW([q for q in ae.parameters()], lr=a.lr, betas=(0.9, 0.99), weight_decay=0.1)
vx = torch.tensor(val[:32])
t0 = time.time()
for step in range(1, a.steps + 1):
    x = torch.tensor(random.sample(train, a.batch))
    z = ae.encode(x)
    loss = ae.decode_loss(z + a.noise * torch.randn_like(z), x, a.input_dropout) + z.mean(0).pow(2).mean()
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
    for g in opt.param_groups: g["lr"] = a.lr * min(1, step / 30)
    opt.step()
    if step % 50 == 0:
        with torch.no_grad():
            zv = ae.encode(vx)
            own = ae.decode_loss(zv, vx, a.input_dropout if a.input_dropout >= 1 else 0).item()
            shuf = ae.decode_loss(zv.roll(1, 0), vx, a.input_dropout if a.input_dropout >= 1 else 0).item()
        print(f"step {step} train {loss.item():.3f} val own {own:.3f} shuffled {shuf:.3f} gap {shuf - own:.3f} ({time.time() - t0:.0f}s)", flush=True)
