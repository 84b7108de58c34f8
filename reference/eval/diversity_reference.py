"""Reference values for Nebula's diversity and memorization metrics.

Re-computes, on whitespace words, what the papers' evaluation code computes:
  - LD4LG (Lovelace et al. 2023, `compute_diversity`): one set of n-grams over all samples, nltk n-grams,
    diversity = prod_{n=2..4} unique/total (LD4LG tokenizes with spaCy; here: str.split());
  - SimCTG / contrastive decoding (`measure_repetition_and_diversity`): unique n-grams counted per
    text and summed (SimCTG's loop skips each text's last n-gram; this counts all of them);
  - distinct-n, unique openings (first five words), and 4-gram memorization: the share of generated
    4-grams (with repeats) that occur in a training document (a Python set of word tuples, exact).
Writes Tests/NebulaEvalTests/Fixtures/diversity.json. Run: python3 reference/eval/diversity_reference.py
"""
import json
import pathlib
from nltk.util import ngrams

TRAINING = [
    "once upon a time there was a little girl named lily . she loved to play outside in the sun .",
    "one day tom went to the park with his mom . he saw a big red ball and wanted to play with it .",
    "the cat sat on the mat and looked at the bird . the bird sang a happy song .",
    "ben and mia were best friends . they liked to build sand castles at the beach .",
    "the little dog was lost . he was sad and cold , but a kind girl found him and took him home .",
]
SAMPLES = [
    "once upon a time there was a little boy named tom .",
    "once upon a time there was a little girl named mia .",
    "the cat sat on the mat and looked at the moon .",
    "the cat sat on the mat and looked at the moon .",
    "one day tom went to the park with his dad .",
    "she loved to play outside in the rain and the snow .",
    "the dog the dog the dog the dog",
    "a kind girl found a little cat and took him home .",
    "hello",
    "",
    "ben and mia liked to build big sand castles .",
    "they were best friends and they played all day long .",
]


def words(text):
    return text.split()


def distinct_across(n, texts):
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def distinct_within(n, texts):
    unique = sum(len(set(ngrams(words(t), n))) for t in texts)
    total = sum(len(list(ngrams(words(t), n))) for t in texts)
    return unique / total if total else 0.0


def memorization(texts, training, n=4):
    index = {g for doc in training for g in ngrams(words(doc), n)}
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return sum(g in index for g in grams) / len(grams)


def main():
    fixture = {
        "training": TRAINING,
        "samples": SAMPLES,
        "distinct_across": {n: distinct_across(n, SAMPLES) for n in range(1, 5)},
        "distinct_within": {n: distinct_within(n, SAMPLES) for n in range(1, 5)},
        "diversity_across": distinct_across(2, SAMPLES) * distinct_across(3, SAMPLES) * distinct_across(4, SAMPLES),
        "diversity_within": distinct_within(2, SAMPLES) * distinct_within(3, SAMPLES) * distinct_within(4, SAMPLES),
        "unique_openings": len({tuple(words(t)[:5]) for t in SAMPLES}) / len(SAMPLES),
        "memorization_4": memorization(SAMPLES, TRAINING),
        "memorization_2": memorization(SAMPLES, TRAINING, n=2),
    }
    path = pathlib.Path(__file__).resolve().parents[2] / "Tests/NebulaEvalTests/Fixtures/diversity.json"
    path.write_text(json.dumps(fixture, indent=1) + "\n")
    print({k: v for k, v in fixture.items() if k not in ("training", "samples")})


if __name__ == "__main__":
    main()
