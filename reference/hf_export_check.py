"""Checks a folder written by `nebula export --format huggingface` in `transformers` (run by hand, issue #14).

    nebula export --from models/tinystories/lm --to /tmp/hf --format huggingface
    python3 reference/hf_export_check.py /tmp/hf --nebula .build/release/nebula --source models/tinystories/lm

Loads the folder with GPT2LMHeadModel.from_pretrained and AutoTokenizer.from_pretrained and compares, for a few
prompts, with `nebula sample --temperature 0 --json` run on the source folder and on the exported one: the
prompt's token ids (their count), the greedy continuation's tokens and its text. With --source, also the
logits: transformers on the exported folder against reference/gpt.py (the PyTorch GPT the Swift golden tests
replay) on the source folder's own safetensors, in float32; the largest difference must be ≤ 1e-4. Prints one
line per prompt and exits 1 on any difference.
"""
import argparse
import json
import subprocess
import sys

import os

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, GPT2LMHeadModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt import GPT, GPTConfig  # noqa: E402

PROMPTS = ["Once upon a time", "Tom and Lily went to the park. They saw", "The little dog was sad because"]


def nebula_greedy(nebula, folder, prompt, tokens):
    out = subprocess.run([nebula, "sample", "--model", folder, "--prompt", prompt, "--max-tokens", str(tokens),
                          "--temperature", "0", "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[0])


def reference_gpt(folder):
    """The source Nebula folder in reference/gpt.py (same parameter names), float32."""
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    model = GPT(GPTConfig(vocab_size=c["vocab_size"], block_size=c["context_length"], n_layer=c["n_layer"],
                          n_head=c["n_head"], n_embd=c["n_embd"]))
    weights = {name: tensor.float() for name, tensor in load_file(os.path.join(folder, "model.safetensors")).items()}
    model.load_state_dict(weights)
    return model.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--nebula", default=".build/release/nebula")
    parser.add_argument("--source", help="the Nebula folder that was exported (default: the exported folder itself)")
    parser.add_argument("--tokens", type=int, default=20)
    args = parser.parse_args()

    model = GPT2LMHeadModel.from_pretrained(args.folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.folder)
    reference = reference_gpt(args.source) if args.source else None
    failures = 0
    for prompt in PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        with torch.no_grad():
            logit_error = 0.0
            if reference is not None:
                logit_error = (model(torch.tensor([ids])).logits - reference(torch.tensor([ids]))[0]).abs().max().item()
            greedy = model.generate(torch.tensor([ids]), max_new_tokens=args.tokens, do_sample=False,
                                    eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)[0, len(ids):].tolist()
        if greedy and greedy[-1] == tokenizer.eos_token_id:
            greedy = greedy[:-1]
        lines = {name: nebula_greedy(args.nebula, folder, prompt, args.tokens)
                 for name, folder in (("source", args.source or args.folder), ("exported", args.folder))}
        same_ids = all(line["prompt_tokens"] == len(ids) for line in lines.values())
        same_tokens = all(line["tokens"] == greedy for line in lines.values())
        text_matches = tokenizer.decode(greedy) == lines["source"]["text"]
        ok = same_ids and same_tokens and text_matches and logit_error <= 1e-4
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {prompt!r}: {len(ids)} prompt ids, greedy {greedy[:8]}… "
              f"(Nebula source {lines['source']['tokens'][:8]}…, exported {lines['exported']['tokens'][:8]}…), "
              f"text {'equal' if text_matches else 'differs'}"
              + (f", max |logit difference| {logit_error:.2e}" if reference is not None else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
