"""tiktoken's "gpt2" encoding built from the local GPT-2 files (no download), exactly as
tiktoken_ext.openai_public.gpt2 builds it."""
import os

import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

DATA = os.environ.get("NEBULA_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


def gpt2_encoding() -> tiktoken.Encoding:
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=os.path.join(DATA, "gpt2", "vocab.bpe"),
        encoder_json_file=os.path.join(DATA, "gpt2", "encoder.json"),
    )
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=50257,
        pat_str=r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )
