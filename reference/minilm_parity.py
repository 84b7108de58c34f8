"""The judge's parity check on the real model (issue #28), run by hand after `make judge` and `make build`:
all-MiniLM-L6-v2 in `transformers` (BertModel, mean pooling over the attention mask, L2 normalisation, as its
sentence-transformers modules say) against `nebula embed` on the same texts: whole-sentence passages of
TinyStories (the first N sentences of the V2 file) and the out-of-domain passages of docs/eval.
Prints the lowest cosine similarity, the largest absolute difference and how many token ids differ.
    python3 reference/minilm_parity.py [--judge .build/judge/all-MiniLM-L6-v2] [--count 100]
"""
import argparse
import json
import os
import re
import subprocess
import tempfile

import torch
from transformers import AutoTokenizer, BertModel

ROOT = os.path.join(os.path.dirname(__file__), "..")


def texts(count):
    story = open(os.path.join(ROOT, "..", "shared", "data", "tinystories", "tinystories_v2_10k.txt"), encoding="utf-8").read()
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", story.replace("<|endoftext|>", " ")) if len(s.split()) >= 3]
    outside = [line.strip() for line in open(os.path.join(ROOT, "docs", "eval", "out_of_domain_passages.txt"), encoding="utf-8") if line.strip()]
    chosen = outside[:count // 4] + sentences[:count - min(len(outside), count // 4)]
    long_text = " ".join(sentences[:60])   # longer than the 128-token truncation
    return chosen[:count - 1] + [long_text]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--judge", default=os.path.join(ROOT, ".build", "judge", "all-MiniLM-L6-v2"))
    parser.add_argument("--nebula", default=os.path.join(ROOT, ".build", "release", "nebula"))
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    batch = texts(args.count)
    tokenizer = AutoTokenizer.from_pretrained(args.judge)
    model = BertModel.from_pretrained(args.judge, add_pooling_layer=False).eval()
    encoded = tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"][..., None].float()
    reference = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(t.replace("\n", " ") for t in batch) + "\n")
    out = subprocess.run([args.nebula, "embed", "--model", args.judge, "--input", f.name], check=True, capture_output=True, text=True).stdout
    ours = torch.tensor([json.loads(line) for line in out.splitlines()])
    cosine = (ours * reference).sum(-1) / ours.norm(dim=-1) / reference.norm(dim=-1)
    print(f"{len(batch)} texts ({int(encoded['attention_mask'].sum(1).max())} tokens at most): "
          f"lowest cosine {cosine.min().item():.8f}, 1 - cosine at most {(1 - cosine).max().item():.2e}, "
          f"max |difference| {(ours - reference).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
