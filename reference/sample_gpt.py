"""PyTorch's side of the sampling comparison (issue 15): greedy KV-cached decoding of a Nebula LM folder.

The weights are the folder's own (model.safetensors, F16 or F32, read as float32) in reference/gpt.py's GPT.
The loop is what a careful PyTorch user writes: inference mode, a preallocated [B, H, T, D] cache per block,
F.scaled_dot_product_attention, one forward per new token over the whole batch. Every row continues the same
prompt. One JSON line per batch size on stdout, in nebula-bench sample's keys:

    python3 reference/sample_gpt.py --model models/tinystories/lm --prompt-ids 7 8 9 --tokens 120 --batches 1 16
"""
import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from gpt import GPT, GPTConfig


def load(folder):
    config = json.loads((Path(folder) / "config.json").read_text())
    cfg = GPTConfig(vocab_size=config["vocab_size"], block_size=config["context_length"],
                    n_layer=config["n_layer"], n_head=config["n_head"], n_embd=config["n_embd"])
    model = GPT(cfg)
    state = {name: tensor.float() for name, tensor in load_file(str(Path(folder) / "model.safetensors")).items()}
    model.load_state_dict(state)
    return model.eval()


def forward(model, ids, caches, start):
    """ids [B, t] at positions start..start+t-1; fills the caches; returns the last position's logits [B, V]."""
    cfg = model.cfg
    b, t = ids.shape
    h, d = cfg.n_head, cfg.n_embd // cfg.n_head
    x = model.wte(ids) + model.wpe.weight[start:start + t]                    # [B, t, C]
    for block, (keys, values) in zip(model.blocks, caches):
        q, k, v = block.attn.qkv(block.ln1(x)).split(cfg.n_embd, dim=2)      # 3 × [B, t, C]
        q, k, v = (z.view(b, t, h, d).transpose(1, 2) for z in (q, k, v))    # [B, H, t, D]
        keys[:, :, start:start + t] = k
        values[:, :, start:start + t] = v
        y = F.scaled_dot_product_attention(q, keys[:, :, :start + t], values[:, :, :start + t],
                                           is_causal=t > 1)                  # [B, H, t, D] (prefill starts at 0)
        x = x + block.attn.proj(y.transpose(1, 2).reshape(b, t, cfg.n_embd))
        x = x + block.mlp(block.ln2(x))
    return model.lnf(x[:, -1]) @ model.wte.weight.t()                        # [B, V]


def greedy(model, prompt, rows, new_tokens):
    cfg = model.cfg
    d = cfg.n_embd // cfg.n_head
    caches = [(torch.empty(rows, cfg.n_head, cfg.block_size, d), torch.empty(rows, cfg.n_head, cfg.block_size, d))
              for _ in model.blocks]
    ids = torch.tensor([prompt] * rows)
    logits = forward(model, ids, caches, 0)
    out = []
    for i in range(new_tokens):
        token = logits.argmax(dim=-1)                                        # [B]
        out.append(token)
        if i < new_tokens - 1:
            logits = forward(model, token[:, None], caches, len(prompt) + i)
    return torch.stack(out, dim=1)                                           # [B, new_tokens]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/tinystories/lm")
    parser.add_argument("--prompt-ids", type=int, nargs="+", required=True)
    parser.add_argument("--tokens", type=int, default=120)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load(args.model)
    assert len(args.prompt_ids) + args.tokens <= model.cfg.block_size, "the prompt and --tokens must fit in the context"
    with torch.inference_mode():
        for rows in args.batches:
            greedy(model, args.prompt_ids, rows, args.tokens)                # warm-up
            start = time.perf_counter()
            for _ in range(args.repeats):
                tokens = greedy(model, args.prompt_ids, rows, args.tokens)
            seconds = (time.perf_counter() - start) / args.repeats
            print(json.dumps({"impl": "pytorch", "batch": rows, "threads": args.threads, "new_tokens": args.tokens,
                              "seconds": seconds, "tokens_per_s": rows * args.tokens / seconds,
                              "prompt_ids": args.prompt_ids, "tokens": tokens[0].tolist()}), flush=True)


if __name__ == "__main__":
    main()
