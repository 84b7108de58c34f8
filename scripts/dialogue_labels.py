#!/usr/bin/env python3
"""Labelled passages for `nebula train classifier`: TinyStories cut into passages of whole sentences (20-40 words,
one starting at every sentence), each labelled by a rule: "dialogue" when it holds a double quote (someone speaks),
else "narration". Writes passage<TAB>label lines to standard output.

    python3 scripts/dialogue_labels.py ../shared/data/tinystories > runs/dialogue.tsv
"""
import pathlib
import re
import sys

SENTENCE = re.compile(r'[^.!?]*[.!?]+["\u201d]?')


def documents(path):
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    for file in files:
        text = file.read_text(encoding="utf-8")
        for story in re.split(r"<\|endoftext\|>|\n\s*\n", text):
            story = " ".join(story.split())
            if story:
                yield story


def passages(story, shortest=20, longest=40):
    sentences = [s.strip() for s in SENTENCE.findall(story) if s.strip()]
    for start in range(len(sentences)):
        words, chosen = 0, []
        for sentence in sentences[start:]:
            count = len(sentence.split())
            if words + count > longest:
                break
            chosen.append(sentence)
            words += count
        if words >= shortest:
            yield " ".join(chosen)


def main():
    for story in documents(pathlib.Path(sys.argv[1])):
        for passage in passages(story):
            label = "dialogue" if '"' in passage or "\u201c" in passage else "narration"
            print(f"{passage}\t{label}")


if __name__ == "__main__":
    main()
