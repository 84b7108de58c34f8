"""Encodes the sample texts with tiktoken's "gpt2" encoding, ordinary and with all special tokens allowed.

Usage: python3 reference/gpt2_tiktoken_fixture.py OUTPUT.json
"""
import json
import sys

import tiktoken

from gpt2_encoding import gpt2_encoding
from sample_texts import SAMPLES

encoding = gpt2_encoding()
cases = [
    {
        "text": text,
        "ordinary": encoding.encode_ordinary(text),
        "allowed": encoding.encode(text, allowed_special="all"),
    }
    for text in SAMPLES
]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump({"tokenizer": "tiktoken " + tiktoken.__version__ + " gpt2", "cases": cases}, f, ensure_ascii=False, indent=1)
print(f"{len(cases)} cases -> {sys.argv[1]}")
