#!/usr/bin/env python3
"""Draws the attribute-control and infilling curves of docs/report/control.md as self-contained SVG (no plotting
library): success of the steered loop against the guidance scale, and the middle's ROUGE-L against the gap's length.

    python3 scripts/plot_control.py docs/report
"""
import json
import pathlib
import sys

COLOURS = ["#3366cc", "#dc3912", "#109618", "#990099", "#ff9900", "#555555"]


def svg(title, xlabel, ylabel, xticks, series, hlines, path, ymax=1.0):
    """series: [(name, [(x index, y)])], hlines: [(name, y)]; x is an index into xticks."""
    width, height, left, right, top, bottom = 640, 380, 60, 200, 40, 50
    pw, ph = width - left - right, height - top - bottom
    def px(i): return left + pw * i / max(1, len(xticks) - 1)
    def py(y): return top + ph * (1 - y / ymax)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>',
           f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle">{xlabel}</text>',
           f'<text x="15" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 15 {top + ph / 2})">{ylabel}</text>']
    for i, tick in enumerate(xticks):
        out.append(f'<text x="{px(i)}" y="{top + ph + 18}" text-anchor="middle">{tick}</text>')
    for k in range(6):
        y = ymax * k / 5
        out.append(f'<text x="{left - 6}" y="{py(y) + 4}" text-anchor="end">{y:.2f}</text>')
        out.append(f'<line x1="{left}" y1="{py(y)}" x2="{left + pw}" y2="{py(y)}" stroke="#eee"/>')
    legend = 0
    for n, (name, points) in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        out.append('<polyline fill="none" stroke-width="2" stroke="%s" points="%s"/>' % (
            colour, " ".join(f"{px(i):.1f},{py(y):.1f}" for i, y in points)))
        for i, y in points:
            out.append(f'<circle cx="{px(i):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        out.append(f'<text x="{left + pw + 10}" y="{top + 14 + 18 * legend}" fill="{colour}">{name}</text>')
        legend += 1
    for m, (name, y) in enumerate(hlines):
        colour = COLOURS[(len(series) + m) % len(COLOURS)]
        out.append(f'<line x1="{left}" y1="{py(y):.1f}" x2="{left + pw}" y2="{py(y):.1f}" stroke="{colour}" stroke-dasharray="5,4"/>')
        out.append(f'<text x="{left + pw + 10}" y="{top + 14 + 18 * legend}" fill="{colour}">{name} (dashed)</text>')
        legend += 1
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


def main():
    folder = pathlib.Path(sys.argv[1])
    scales = ["0", "1", "4", "16", "64"]
    def loop_points(file):
        rows = json.loads((folder / file).read_text())
        return [(scales.index(str(int(r["scale"]))), r["success"]) for r in rows if r.get("scale") is not None]
    def row(file, name):
        return next(r for r in json.loads((folder / file).read_text()) if r["name"] == name)
    svg("Steering towards dialogue: success by the quote rule", "classifier guidance scale", "share of passages with dialogue",
        scales,
        [("guided x0 estimate", loop_points("control_dialogue.json")),
         ("guided noisy latent", loop_points("control_dialogue_noisy_latent.json")),
         ("best of 4", loop_points("control_dialogue_best_of_4.json"))],
        [("LM alone", row("control_dialogue.json", "LM alone")["success"]),
         ("human", row("control_dialogue.json", "human (held-out)")["success"])],
        folder / "control_success_vs_scale.svg")
    gaps = sorted(int(p.stem.split("_")[-1]) for p in folder.glob("infill_gap_*.json"))
    if gaps:
        names = ["loop", "LM alone (prefix only)", "parallel decoder, gap zeroed"]
        series = []
        for name in names:
            points = []
            for i, gap in enumerate(gaps):
                rows = json.loads((folder / f"infill_gap_{gap}.json").read_text())
                points += [(i, r["rougeL"]) for r in rows if r["name"] == name]
            series.append((name, points))
        svg("Infilling: the middle's ROUGE-L against the true middle", "gap (tokens)", "ROUGE-L", [str(g) for g in gaps],
            series, [], folder / "infill_rouge_vs_gap.svg", ymax=0.5)


if __name__ == "__main__":
    main()
