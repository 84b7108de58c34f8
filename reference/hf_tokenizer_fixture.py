"""Encodes the sample texts with a Nebula-trained tokenizer.json through Hugging Face `tokenizers`.

Usage: python3 reference/hf_tokenizer_fixture.py TOKENIZER_DIR OUTPUT.json

The output (texts and ids) is committed as a fixture; the Swift test checks that Nebula encodes
every text to the same ids, so the saved tokenizer.json is proven to mean the same thing to both.
"""
import json
import sys

from tokenizers import Tokenizer

from sample_texts import SAMPLES

folder, output = sys.argv[1], sys.argv[2]
tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
cases = [{"text": text, "ids": tokenizer.encode(text, add_special_tokens=False).ids} for text in SAMPLES]
with open(output, "w", encoding="utf-8") as f:
    json.dump({"tokenizer": "tokenizers " + __import__("tokenizers").__version__, "cases": cases}, f, ensure_ascii=False, indent=1)
print(f"{len(cases)} cases -> {output}")
