"""The plainest possible byte-level BPE trainer, to check Nebula's fast one against.

Recounts every pair after every merge; the most frequent pair merges, ties going to the smaller
(left id, right id) — Nebula's documented rule. Byte ids follow GPT-2's byte order.

Usage: python3 reference/bpe_train_naive.py CORPUS.txt MERGES OUTPUT_merges.txt
(documents separated by <|endoftext|> lines, as Nebula's default corpus reader does)
"""
import collections
import sys

import regex

PATTERN = regex.compile(r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_order():
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    return printable + [b for b in range(256) if b not in printable]


def alphabet():
    table, extra = {}, 0
    printable = set(byte_order()[:188])
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


corpus, merge_count, output = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(corpus, encoding="utf-8").read()
documents = []
for part in regex.split(r"^\s*<\|endoftext\|>\s*$", text, flags=regex.M):
    part = part.strip("\n")
    if part:
        documents.append(part)

id_of_byte = {b: i for i, b in enumerate(byte_order())}
counts = collections.Counter(piece for doc in documents for piece in PATTERN.findall(doc))
words = {w: [id_of_byte[b] for b in w.encode()] for w in counts}
token_bytes = {i: bytes([b]) for i, b in enumerate(byte_order())}
merges = []
for step in range(merge_count):
    pairs = collections.Counter()
    for w, ids in words.items():
        for a, b in zip(ids, ids[1:]):
            pairs[(a, b)] += counts[w]
    if not pairs:
        break
    (a, b), best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    if best < 2:
        break
    new = 256 + step
    token_bytes[new] = token_bytes[a] + token_bytes[b]
    merges.append((a, b))
    for w, ids in words.items():
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
                out.append(new)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        words[w] = out

table = alphabet()
spell = lambda i: "".join(table[x] for x in token_bytes[i])
with open(output, "w", encoding="utf-8") as f:
    f.write("#version: 0.2\n")
    for a, b in merges:
        f.write(f"{spell(a)} {spell(b)}\n")
print(f"{len(merges)} merges -> {output}")
