#!/usr/bin/env python3
"""Check relative markdown links `](path#anchor)` in the given files: the path must exist relative to the
file, and an anchor must match a heading of the target markdown file (GitHub's slug rules)."""
import os, re, sys

LINK = re.compile(r"\]\(([^)\s]+)\)")

def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)          # drop punctuation (keeps letters, digits, _, -, space)
    return s.replace(" ", "-")

def anchors(path):
    out, seen, fence = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        m = None if fence else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(2)); n = seen.get(base, 0); seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out

def links(path):
    fence = False
    for no, line in enumerate(open(path, encoding="utf-8"), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if fence:
            continue
        for target in LINK.findall(line):
            yield no, target

bad = total = 0
for md in sys.argv[1:]:
    for no, target in links(md):
        if re.match(r"^[a-z]+:", target):      # http:, https:, mailto:
            continue
        total += 1
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
        problem = None
        if not os.path.exists(full):
            problem = "missing file"
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            problem = "missing anchor"
        if problem:
            bad += 1
            print(f"{md}:{no}: {target} -> {problem}")
print(f"{total} relative links checked in {len(sys.argv) - 1} files, {bad} broken")
sys.exit(1 if bad else 0)
