#!/usr/bin/env bash
# Browser check of the playground: headless Chromium loads the page with a diffusion request in its link
# (/?…&run=1), the stream runs, and the final passage the page shows must be the one the API returns for
# the same seed. Saves the DOM and a screenshot in $OUT.
#
#   scripts/e2e_playground.sh            # needs Debian's chromium (apt-get install chromium) and a built nebula
set -euo pipefail
NEBULA=${NEBULA:-.build/release/nebula}
BUNDLE=${BUNDLE:-models/tinystories}
PORT=${PORT:-18090}
OUT=${OUT:-.build/e2e}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "e2e: chromium not found (apt-get install chromium)" >&2; exit 1; }
mkdir -p "$OUT"

"$NEBULA" serve --model "$BUNDLE" --port "$PORT" > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break; sleep 0.2; done

PROMPT="Tom went to the park with his dog."
STEPS=30
SEED=5
curl -sf "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
    -d "{\"model\": \"tinystories-diffusion\", \"prompt\": \"$PROMPT\", \"steps\": $STEPS, \"guidance\": 2, \"seed\": $SEED}" \
    > "$OUT/expected.json"
QUERY=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlencode({"model": "tinystories-diffusion", "prompt": sys.argv[1], "steps": sys.argv[2], "guidance": 2, "seed": sys.argv[3], "run": 1}))' "$PROMPT" "$STEPS" "$SEED")
URL="http://127.0.0.1:$PORT/?$QUERY"
FLAGS=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --window-size=1000,760 --virtual-time-budget=60000)
"$CHROMIUM" "${FLAGS[@]}" --dump-dom "$URL" > "$OUT/dom.html" 2> "$OUT/chromium.log"
"$CHROMIUM" "${FLAGS[@]}" --screenshot="$OUT/playground.png" "$URL" >> "$OUT/chromium.log" 2>&1

python3 - "$OUT/dom.html" "$OUT/expected.json" "$STEPS" <<'PY'
import html, json, re, sys
dom = open(sys.argv[1]).read()
expected = json.load(open(sys.argv[2]))["choices"][0]["text"]
steps = sys.argv[3]
assert 'data-done="1"' in dom, "the page did not finish its request"
box = re.search(r'<div class="choice done" id="choice-0"[^>]*>(.*?)</div>', dom, re.S)
assert box, "no finished passage on the page"
shown = html.unescape(box.group(1))
assert shown == expected, f"the page shows {shown!r}, the API returned {expected!r}"
assert f"done: {steps} steps" in dom, "the status line lacks the step count"
print(f"e2e: the playground showed the {steps}-step passage: {shown[:80]}…")
PY
grep -q "GET / 200" "$OUT/server.log" && grep -q "POST /v1/completions 200" "$OUT/server.log"
echo "e2e: screenshot in $OUT/playground.png"
