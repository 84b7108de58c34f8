"""A tiny random BERT sentence encoder for the Swift judge's parity tests (issue #28).

Writes Tests/NebulaModelsTests/Fixtures/bert/tiny/, laid out as a sentence-transformers folder:
  tokenizer.json          a WordPiece tokenizer built here from the sample texts' characters and words
                          (BertNormalizer with lower-casing and accent stripping, BertPreTokenizer,
                          [CLS] A [SEP], truncation to 24 ids, max_input_chars_per_word 16)
  config.json, model.safetensors   a random BertModel as `save_pretrained` writes it (V from the tokenizer,
                          2 layers, 4 heads, width 32, MLP 64, 40 positions, GELU-erf, LayerNorm eps 1e-12),
                          weights perturbed so every layer matters
  1_Pooling/config.json   mean pooling; modules.json: Transformer, Pooling, Normalize
  golden.safetensors      encodings: ids_<i> I64 for each text of wordpiece_cases.json (what `tokenizers`
                          encodes); hidden [B, T, 32] F32 and embeddings [B, 32] F32 (mean-pooled over the
                          attention mask, L2-normalised) for a padded batch of `BATCH` (ids [B, T], mask [B, T])
  wordpiece_cases.json    the texts, in order
Rerun from the repo root (needs torch, transformers, tokenizers; the Swift tests never run Python):
    python3 reference/bert_fixture.py
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel

sys.path.insert(0, os.path.dirname(__file__))
from sample_texts import SAMPLES  # noqa: E402

FOLDER = os.path.join(os.path.dirname(__file__), "..", "Tests", "NebulaModelsTests", "Fixtures", "bert", "tiny")

EXTRA = [
    "Ça va? Ünïcödé ÀÉÎÕÜ straße İstanbul",
    "control\x00chars\x07and\ufffdreplacement\u200dzwj",
    "punctuation—dashes–and “curly quotes” «guillemets» ¿qué? ¡sí!",
    "averyveryverylongwordwithoutspaces and short",
    "Tom said, \"Let's go to the park!\" Lily smiled.",
    "The cat sat on the mat. The dog ran in the park. They were happy.",
    "漢字とカタカナ、한국어",
    "\u0301leading combining mark",
]
TEXTS = [text for text in SAMPLES if len(text) < 400] + EXTRA
BATCH = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside.",
    "Tom said, \"Let's go to the park!\" Lily smiled and ran after the big red ball in the sun.",
    "café",
]


def build_tokenizer():
    """A deterministic vocabulary: the specials, the characters of the texts (but emoji and a few others, so
    that [UNK] occurs) alone and as ## continuations, the words seen at least twice, and a few suffixes."""
    normalizer, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = [word for text in TEXTS + BATCH for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))]
    characters = sorted({c for word in words for c in word if ord(c) < 0x1F000 and c not in "ñ한"})
    counts = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    frequent = sorted(word for word, n in counts.items() if n >= 2 and len(word) > 1)
    suffixes = ["##ing", "##ed", "##s", "##ly", "##er", "##ation", "##ous"]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + characters + ["##" + c for c in characters] + frequent + suffixes
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=16))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                             special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer.enable_truncation(max_length=24)
    return tokenizer


def main():
    torch.manual_seed(0)
    shutil.rmtree(FOLDER, ignore_errors=True)
    os.makedirs(os.path.join(FOLDER, "1_Pooling"))
    tokenizer = build_tokenizer()
    tokenizer.save(os.path.join(FOLDER, "tokenizer.json"))
    with open(os.path.join(FOLDER, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
                   "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)
    with open(os.path.join(FOLDER, "modules.json"), "w") as f:
        json.dump([{"idx": i, "name": str(i), "path": path, "type": "sentence_transformers.models." + kind}
                   for i, (path, kind) in enumerate([("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")])], f, indent=2)
    with open(os.path.join(FOLDER, "wordpiece_cases.json"), "w") as f:
        json.dump(TEXTS, f, indent=1, ensure_ascii=False)

    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=40, hidden_act="gelu", layer_norm_eps=1e-12)
    model = BertModel(config, add_pooling_layer=True).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    model.save_pretrained(FOLDER)

    golden = {}
    for i, text in enumerate(TEXTS):
        golden[f"ids_{i}"] = torch.tensor(tokenizer.encode(text).ids, dtype=torch.int64)
    encodings = [tokenizer.encode(text).ids for text in BATCH]
    length = max(map(len, encodings))
    ids = torch.tensor([e + [0] * (length - len(e)) for e in encodings])
    mask = torch.tensor([[1] * len(e) + [0] * (length - len(e)) for e in encodings])
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        embeddings = torch.nn.functional.normalize(pooled, dim=-1)
    golden.update({"ids": ids, "mask": mask.to(torch.int64), "hidden": hidden.contiguous(), "embeddings": embeddings.contiguous()})
    save_file(golden, os.path.join(FOLDER, "golden.safetensors"))
    print(FOLDER, sorted(os.listdir(FOLDER)), "vocabulary", tokenizer.get_vocab_size())


if __name__ == "__main__":
    main()
