"""Hugging Face GPT-2 folders for the Swift reader's parity tests (issue #14).

Writes, under Tests/NebulaModelsTests/Fixtures/hf/, two tiny random GPT2LMHeadModel folders exactly as
`save_pretrained` writes them, and their golden outputs:
  tiny/       V=96, T=32, L=2, H=2, C=16, one model.safetensors, tied head (no lm_head.weight stored)
  sharded/    V=50257 (GPT-2's vocabulary size), T=64, L=2, H=2, C=8, saved in shards of at most 300 KB
              (model.safetensors.index.json + model-0000k-of-0000n.safetensors)
  <name>/golden.safetensors: ids [T] I64; logits_last [V] (the last position's logits for ids, F32);
                       logits_head [T, 256] (every position, the first 256 tokens); argmax [T] I64;
                       greedy [12] I64 (the tokens greedy decoding appends to ids[:8])
Rerun from the repo root (needs torch and transformers; the Swift tests never run Python):
    python3 reference/hf_gpt2_fixture.py
Tokenizer files are not written: the tests add GPT-2's from ../shared/data when they need them.
"""
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "NebulaModelsTests", "Fixtures", "hf")


def build(name, vocab, positions, layers, heads, width, shard=None, seed=0):
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab, n_positions=positions, n_layer=layers, n_head=heads, n_embd=width,
                        activation_function="gelu_new", layer_norm_epsilon=1e-5)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # larger than the default init, so every layer matters to the logits
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    folder = os.path.join(ROOT, name)
    shutil.rmtree(folder, ignore_errors=True)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(folder, **kwargs)
    generator = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, vocab, (positions // 2,), generator=generator)
    with torch.no_grad():
        logits = model(ids[None]).logits[0]
        greedy = model.generate(ids[None, :8], max_new_tokens=12, do_sample=False, pad_token_id=0)[0, 8:]
    save_file({"ids": ids.to(torch.int64), "logits_last": logits[-1].clone(), "logits_head": logits[:, :256].clone(),
               "argmax": logits.argmax(-1).to(torch.int64), "greedy": greedy.to(torch.int64).contiguous()},
              os.path.join(folder, "golden.safetensors"))
    print(folder, sorted(os.listdir(folder)))


if __name__ == "__main__":
    build("tiny", vocab=96, positions=32, layers=2, heads=2, width=16)
    build("sharded", vocab=50257, positions=64, layers=2, heads=2, width=8, shard="300KB", seed=1)
