"""Reference timings for `nebula-bench tokenizer`: tiktoken "gpt2" encoding (1 thread and all cores)
and Hugging Face `tokenizers` byte-level BPE training (4096 tokens) on the same files.

Usage: python3 bench/tokenizer_reference.py [--data ../shared/data] [--repeats 5]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
from gpt2_encoding import gpt2_encoding  # noqa: E402

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
parser.add_argument("--repeats", type=int, default=5)
args = parser.parse_args()


def best(fn):
    fn()  # warm-up
    fastest = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


files = ["tinystories/tinystories_v2_10k.txt", "tinystories/tinystories_v1_train_head.txt", "shakespeare/input.txt"]
cores = os.cpu_count()
encoding = gpt2_encoding()
print(f"Reference tokenizer benchmark ({cores} cores, best of {args.repeats})\n")
print(f"| file | MB | tiktoken 1 thread MB/s | tiktoken {cores} threads MB/s | tokens |")
print("|---|---:|---:|---:|---:|")
for name in files:
    text = open(os.path.join(args.data, name), encoding="utf-8").read()
    mb = len(text.encode()) / 1e6
    lines = text.splitlines(keepends=True)
    chunks = ["".join(lines[i::cores * 8]) for i in range(cores * 8)]  # equal shares for the batch API
    single = best(lambda: encoding.encode_ordinary(text))
    parallel = best(lambda: encoding.encode_ordinary_batch(chunks, num_threads=cores))
    tokens = len(encoding.encode_ordinary(text))
    print(f"| {name} | {mb:.2f} | {mb / single:.2f} | {mb / parallel:.2f} | {tokens} |")

paths = [os.path.join(args.data, name) for name in files[:2]]
mb = sum(os.path.getsize(p) for p in paths) / 1e6


def train():
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=["<|endoftext|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train(paths, trainer)
    train.vocabulary = tokenizer.get_vocab_size()


seconds = best(train)
print("\n| training | corpus MB | vocabulary | seconds |")
print("|---|---:|---:|---:|")
print(f"| HF tokenizers byte-level BPE, both TinyStories files | {mb:.2f} | {train.vocabulary} | {seconds:.3f} |")
