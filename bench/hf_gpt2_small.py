"""GPT-2 small's shape (124M parameters) in Nebula and in transformers, same folder, same CPU, one run (issue #14).

    python3 bench/hf_gpt2_small.py                      # builds /tmp/nebula-gpt2-small once, then measures
    python3 bench/hf_gpt2_small.py --tokens 8192 --new-tokens 128 --json

The folder is `GPT2LMHeadModel(GPT2Config()).save_pretrained` with random weights (seed 0) and GPT-2's own tokenizer
(../shared/data/gpt2/encoder.json + vocab.bpe, saved by transformers as tokenizer.json): exactly what a user's
`save_pretrained` folder looks like. Each measurement runs in its own process under /usr/bin/time, so peak RSS is
that process's alone:
  - scoring: `nebula eval lm --model DIR --data FILE --max-tokens N` (its tokens_per_s) against transformers' forward
    pass over the same tokens in 1,024-token windows, no_grad;
  - sampling: greedy KV-cached `nebula sample --json` (its seconds) against `model.generate(do_sample=False)`, same
    prompt, same number of new tokens, after one warm-up; the two greedy continuations must be equal (parity).
Both sides use all cores (torch.set_num_threads(nproc); Nebula's worker pool is one worker per core).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
PROMPT = "Once upon a time there was a little girl who"


def build_folder(folder):
    """A random GPT-2 small with GPT-2's tokenizer, as transformers 5 saves it: config.json, model.safetensors,
    tokenizer.json and tokenizer_config.json (no vocab.json / merges.txt)."""
    import shutil
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).save_pretrained(folder)
    vocab, merges = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
    shutil.copyfile(os.path.join(DATA, "gpt2", "encoder.json"), vocab)
    shutil.copyfile(os.path.join(DATA, "gpt2", "vocab.bpe"), merges)
    AutoTokenizer.from_pretrained(folder).save_pretrained(folder)
    os.remove(vocab)
    os.remove(merges)


def timed(command):
    """Runs `command` under /usr/bin/time; returns (stdout, peak RSS in MB)."""
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return result.stdout, int(result.stderr.strip().splitlines()[-1]) / 1024


def transformers_side(args):
    """The transformers measurements, run in a child process (`--side transformers`); prints one JSON object."""
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel
    torch.set_num_threads(os.cpu_count())
    model = GPT2LMHeadModel.from_pretrained(args.folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.folder)
    with open(args.data, encoding="utf-8") as f:
        ids = tokenizer(f.read(4_000_000))["input_ids"][:args.tokens + 1]
    with torch.no_grad():
        start, scored = time.perf_counter(), 0
        for i in range(0, len(ids) - 1, 1024):
            window = torch.tensor([ids[i:i + 1025]])
            model(window[:, :-1], labels=window[:, :-1])
            scored += window.shape[1] - 1
        score_s = time.perf_counter() - start
        prompt = torch.tensor([tokenizer(PROMPT)["input_ids"]])
        options = dict(do_sample=False, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                       pad_token_id=tokenizer.eos_token_id)
        model.generate(prompt, **options)                          # warm-up
        start = time.perf_counter()
        out = model.generate(prompt, **options)[0, prompt.shape[1]:].tolist()
        sample_s = time.perf_counter() - start
    print(json.dumps({"score_tokens_per_s": scored / score_s, "sample_tokens_per_s": len(out) / sample_s, "greedy": out}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", default="/tmp/nebula-gpt2-small")
    parser.add_argument("--nebula", default=os.path.join(ROOT, ".build", "release", "nebula"))
    parser.add_argument("--data", default=os.path.join(DATA, "tinystories", "tinystories_v2_10k.txt"))
    parser.add_argument("--tokens", type=int, default=8192, help="held-out tokens scored")
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens sampled greedily")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--side", choices=["transformers"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return transformers_side(args)
    if not os.path.exists(os.path.join(args.folder, "model.safetensors")):
        print(f"writing a random GPT-2 small to {args.folder} …", file=sys.stderr)
        build_folder(args.folder)

    start = time.perf_counter()
    _, load_rss = timed([args.nebula, "sample", "--model", args.folder, "--prompt", PROMPT, "--max-tokens", "1", "--temperature", "0", "--json"])
    load_s = time.perf_counter() - start
    scored, score_rss = timed([args.nebula, "eval", "lm", "--model", args.folder, "--data", args.data,
                               "--max-tokens", str(args.tokens), "--prompt-count", "1", "--json"])
    sampled, sample_rss = timed([args.nebula, "sample", "--model", args.folder, "--prompt", PROMPT,
                                 "--max-tokens", str(args.new_tokens), "--temperature", "0", "--json"])
    line = json.loads(sampled.splitlines()[0])
    nebula = {"score_tokens_per_s": json.loads(scored)["tokens_per_s"],
              "sample_tokens_per_s": len(line["tokens"]) / line["seconds"],
              "peak_rss_mb": max(score_rss, sample_rss), "load_s": load_s, "load_rss_mb": load_rss}
    out, torch_rss = timed([sys.executable, os.path.abspath(__file__), "--side", "transformers", "--folder", args.folder,
                            "--data", args.data, "--tokens", str(args.tokens), "--new-tokens", str(args.new_tokens)])
    reference = json.loads(out.splitlines()[-1])
    reference["peak_rss_mb"] = torch_rss
    same = reference.pop("greedy")[:len(line["tokens"])] == line["tokens"]
    if args.json:
        print(json.dumps({"nebula": nebula, "transformers": reference, "greedy_equal": same, "threads": os.cpu_count()}))
        return
    print(f"GPT-2 small shape (124M), random weights, {os.cpu_count()} threads; greedy continuations "
          f"{'equal' if same else 'DIFFER'} ({len(line['tokens'])} tokens)")
    print(f"{'':34} {'Nebula':>10} {'transformers':>13} {'ratio':>7}")
    for key, label in (("score_tokens_per_s", f"eval lm, tokens/s ({args.tokens} tokens)"),
                       ("sample_tokens_per_s", f"greedy KV-cached sampling, tokens/s")):
        print(f"{label:34} {nebula[key]:10.1f} {reference[key]:13.1f} {nebula[key] / reference[key]:6.2f}x")
    print(f"{'peak RSS, MB':34} {nebula['peak_rss_mb']:10.0f} {reference['peak_rss_mb']:13.0f} {nebula['peak_rss_mb'] / reference['peak_rss_mb']:6.2f}x")
    print(f"Nebula load + 1 token: {load_s:.2f} s, {load_rss:.0f} MB")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
