"""Reference values for Nebula's BLEU and ROUGE-L (sacrebleu 2.x, rouge-score 0.1.x).

Writes Tests/NebulaEvalTests/Fixtures/reconstruction.json: (reference, hypothesis) pairs with
  - corpus BLEU-4 as sacrebleu.corpus_bleu, tokenize '13a' (the default) and 'none' (default smoothing
    'exp', no effective order),
  - sentence BLEU for each pair as sacrebleu.sentence_bleu(tokenize='none') with every smoothing method,
    and with the defaults (tokenize '13a', smoothing 'exp'),
  - the 13a tokens of each text,
  - ROUGE-L precision/recall/F as rouge_score with a whitespace tokenizer, case kept and lowercased.
Run: python3 reference/eval/reconstruction_reference.py
"""
import json
import pathlib
import sacrebleu
from sacrebleu.metrics import BLEU
from rouge_score import rouge_scorer

PAIRS = [
    ("once upon a time there was a little girl named lily .", "once upon a time there was a little girl named lily ."),
    ("she loved to play with her red ball in the park .", "she loved to play with her blue ball in the park ."),
    ("the cat sat on the mat .", "the cat sat on the mat"),
    ("the dog ran fast .", "a bird flew away"),
    ("tom and his mom went to the store to buy some milk .", "tom and mom went to the shop to buy milk ."),
    ("he was very happy .", ""),
    ("the sun was shining and the birds were singing .", "the sun was shining ."),
    ("one day , a big bear came out of the woods .", "one day , a big bear came out of the woods and said hello ."),
    ("Lily said , \" I want to see the moon ! \"", "lily said , \" i want to see the moon ! \""),
    ("they played all day and had lots of fun .", "they played all day and had lots of fun ."),
    ("the the the the", "the the the the the the the"),
    ("a b c d e f g", "g f e d c b a"),
    ("hello", "hello"),
    ("hello there", "hello"),
    ("Ben found a shiny rock near the river .", "Ben found a shiny stone near the river ."),
    ("the little boat sailed across the big blue sea .", "the little boat sailed across the sea ."),
    ("mia was sad because her toy was broken .", "mia was sad because her toy broke ."),
    ("then her dad fixed it and she smiled .", "her dad fixed it and then she smiled ."),
    ("the end .", "the end ."),
    ("sam liked to draw pictures of cars and trucks .", "sam liked to paint pictures of trucks and cars ."),
    ("it was a cold and snowy day .", "it was a warm and sunny day ."),
    ("the frog jumped into the pond with a loud splash .", "with a loud splash the frog jumped into the pond ."),
    ("grandma baked cookies for everyone .", "grandma baked cookies for everyone . everyone was happy ."),
    ("x y", "y x"),
    ("max the dog wagged his tail .", "Max the dog wagged his tail ."),
    ("a", "b"),
    ("the owl looked at the stars all night long .", "the owl looked at the stars all night ."),
    ("kitty climbed the tall tree but could not get down .", "kitty climbed the tree but could not come down ."),
    ("anna and tim shared their toys .", "anna and tim shared their toys and snacks ."),
    ("the rain stopped and a rainbow appeared in the sky .", "the rain stopped and a rainbow appeared ."),
    # untokenized text, where 13a and whitespace words differ
    ("Lily said, \"I want to see the moon!\"", "Lily said, \"I want to see the stars!\""),
    ("It was 3.5 miles away, so they walked.", "It was 3.5 miles away, so they walked."),
    ("Tom's mom & dad (and Sue) came at 4-5pm.", "Tom's mom &amp; dad came at 4-5pm."),
    ("\"Wow!\" said Max. \"Look at that!\"", "\"Wow,\" said Max, \"look at this.\""),
    ("Then, they went home.   ", "Then they went home..."),
]


class WhitespaceTokenizer:
    def __init__(self, lowercase):
        self.lowercase = lowercase

    def tokenize(self, text):
        return (text.lower() if self.lowercase else text).split()


def rouge_l(lowercase):
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=WhitespaceTokenizer(lowercase))
    out = []
    for ref, hyp in PAIRS:
        s = scorer.score(ref, hyp)["rougeL"]
        out.append({"precision": s.precision, "recall": s.recall, "f": s.fmeasure})
    return out


def main():
    refs = [r for r, _ in PAIRS]
    hyps = [h for _, h in PAIRS]
    corpus = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none")
    corpus13a = sacrebleu.corpus_bleu(hyps, [refs])
    tokenizer13a = BLEU(tokenize="13a").tokenizer
    sentence = {}
    for method, value in [("none", None), ("exp", None), ("floor", 0.1), ("add-k", 1)]:
        bleu = BLEU(tokenize="none", smooth_method=method, smooth_value=value, effective_order=True)
        sentence[method] = [bleu.sentence_score(h, [r]).score for r, h in PAIRS]
    sentence["13a"] = [sacrebleu.sentence_bleu(h, [r]).score for r, h in PAIRS]
    fixture = {
        "pairs": [{"reference": r, "hypothesis": h} for r, h in PAIRS],
        "corpus_bleu": {"score": corpus.score, "counts": corpus.counts, "totals": corpus.totals,
                        "bp": corpus.bp, "sys_len": corpus.sys_len, "ref_len": corpus.ref_len},
        "corpus_bleu_13a": {"score": corpus13a.score, "counts": corpus13a.counts, "totals": corpus13a.totals,
                            "bp": corpus13a.bp, "sys_len": corpus13a.sys_len, "ref_len": corpus13a.ref_len},
        "sentence_bleu": sentence,
        "tokens_13a": [tokenizer13a(t.rstrip()).split() for pair in PAIRS for t in pair],
        "rouge_l": rouge_l(lowercase=False),
        "rouge_l_lowercased": rouge_l(lowercase=True),
        "versions": {"sacrebleu": sacrebleu.__version__},
    }
    path = pathlib.Path(__file__).resolve().parents[2] / "Tests/NebulaEvalTests/Fixtures/reconstruction.json"
    path.write_text(json.dumps(fixture, indent=1) + "\n")
    print("corpus BLEU", corpus, "| 13a:", corpus13a)


if __name__ == "__main__":
    main()
