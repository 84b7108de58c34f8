"""Nebula's GPT-2-style decoder in plain PyTorch: the reference the Swift side is checked against.

Parameter names are the contract with Swift (NebulaModels.GPT):
  wte.weight [V,C], wpe.weight [T,C],
  blocks.{i}.ln1.{weight,bias} [C], blocks.{i}.attn.qkv.{weight [3C,C], bias [3C]},
  blocks.{i}.attn.proj.{weight [C,C], bias [C]}, blocks.{i}.ln2.{weight,bias} [C],
  blocks.{i}.mlp.fc.{weight [4C,C], bias [4C]}, blocks.{i}.mlp.proj.{weight [C,4C], bias [C]},
  lnf.{weight,bias} [C].  Logits use the tied wte.weight; no separate head parameter.
Pre-LN, causal attention (scale 1/sqrt(D)), GELU tanh, LayerNorm eps 1e-5, no dropout.
Loss: mean cross-entropy over targets != -1.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 64     # V
    block_size: int = 16     # T (max context)
    n_layer: int = 2         # L
    n_head: int = 2          # H
    n_embd: int = 32         # C


class CausalSelfAttention(nn.Module):
    fused = False  # True: F.scaled_dot_product_attention (train_gpt.py); False: explicit math (goldens)

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)   # output columns: q | k | v
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x):                                  # x: [B, t, C]
        B, t, C = x.shape
        H, D = self.n_head, C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)              # each [B, t, C]
        q = q.view(B, t, H, D).transpose(1, 2)             # [B, H, t, D]
        k = k.view(B, t, H, D).transpose(1, 2)             # [B, H, t, D]
        v = v.view(B, t, H, D).transpose(1, 2)             # [B, H, t, D]
        if self.fused:  # PyTorch's fused kernel: same math, used for the speed comparison
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, t, D]
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(D)  # [B, H, t, t]
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = att @ v                                     # [B, H, t, D]
        y = y.transpose(1, 2).reshape(B, t, C)             # [B, t, C] (heads concatenated)
        return self.proj(y)                                # [B, t, C]


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x):                                  # [B, t, C]
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))  # [B, t, 4C] -> [B, t, C]


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.mlp = MLP(cfg)

    def forward(self, x):                                  # [B, t, C]
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return x


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.lnf = nn.LayerNorm(cfg.n_embd, eps=1e-5)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self, std=0.02):
        """Training init: weights N(0, std), biases 0, LN 1/0, residual projections N(0, std/sqrt(2L))."""
        for name, p in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
                p.normal_(0.0, std / math.sqrt(2 * self.cfg.n_layer))
            elif ".ln" in name or name.startswith("lnf"):
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, std)

    def forward(self, ids, targets=None):                  # ids: [B, t] int64
        B, t = ids.shape
        assert t <= self.cfg.block_size
        pos = torch.arange(t, device=ids.device)
        x = self.wte(ids) + self.wpe(pos)                  # [B, t, C]
        for block in self.blocks:
            x = block(x)                                   # [B, t, C]
        x = self.lnf(x)                                    # [B, t, C]
        logits = x @ self.wte.weight.t()                   # [B, t, V] (tied)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=-1)        # mean over targets != -1
        return logits, loss

    def configure_optimizer(self, lr, betas, weight_decay, eps=1e-8):
        """AdamW; decay only parameters with >= 2 dims (matrices, embeddings)."""
        decay = [p for p in self.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.parameters() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
