#!/usr/bin/env python3
"""Browser check of the playground (`make e2e`).

Starts `nebula serve`, asks the API for a diffusion passage with a seed, then has headless Chromium (Debian's
`chromium`) open the playground with the same request in its link (`/?…&run=1`). Driving the page over the
DevTools protocol, it watches the stream: the passage must be shown condensing (several step counts, the
estimate changing) and the final text must be the API's. Saves a screenshot and the server log in --out.
Standard library only (a minimal WebSocket client for the DevTools protocol).
"""
import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


class DevTools:
    """The few WebSocket frames the DevTools protocol needs: masked text out, text in."""

    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"DevTools WebSocket refused: {head[:200]!r}")
        self.next_id = 0

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise RuntimeError("DevTools connection closed")
            data += chunk
        return data

    def _send(self, text):
        data = text.encode()
        header = bytearray([0x81])
        if len(data) < 126:
            header.append(0x80 | len(data))
        elif len(data) < 65536:
            header.append(0x80 | 126)
            header += struct.pack(">H", len(data))
        else:
            header.append(0x80 | 127)
            header += struct.pack(">Q", len(data))
        mask = os.urandom(4)
        self.sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _receive(self):
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            message += self._exact(n)
            if b0 & 0x80:
                return json.loads(message.decode())

    def call(self, method, **params):
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = self._receive()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


def wait_for(url, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nebula", default=".build/release/nebula")
    parser.add_argument("--bundle", default="models/tinystories")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--devtools-port", type=int, default=19222)
    parser.add_argument("--out", default=".build/e2e")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--prompt", default="Tom went to the park with his dog.")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("e2e: chromium not found (apt-get install chromium)")
    os.makedirs(args.out, exist_ok=True)
    base = f"http://127.0.0.1:{args.port}"
    log = open(os.path.join(args.out, "server.log"), "w")
    server = subprocess.Popen([args.nebula, "serve", "--model", args.bundle, "--port", str(args.port)], stdout=log, stderr=log)
    profile = tempfile.mkdtemp(prefix="nebula-e2e-chromium-")
    browser = None
    try:
        wait_for(base + "/health")
        request = {"model": "tinystories-diffusion", "prompt": args.prompt, "steps": args.steps, "guidance": 2, "seed": args.seed,
                   "label": "dialogue"}
        api = urllib.request.Request(base + "/v1/completions", data=json.dumps(request).encode(),
                                     headers={"Content-Type": "application/json"})
        expected = json.load(urllib.request.urlopen(api, timeout=120))["choices"][0]["text"]

        browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                    "--hide-scrollbars", "--window-size=1000,760", f"--user-data-dir={profile}",
                                    f"--remote-debugging-port={args.devtools_port}", "--remote-allow-origins=*", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pages = json.loads(wait_for(f"http://127.0.0.1:{args.devtools_port}/json/list"))
        page = next(p for p in pages if p.get("type") == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        query = urllib.parse.urlencode({"model": "tinystories-diffusion", "prompt": args.prompt, "steps": args.steps,
                                        "guidance": 2, "seed": args.seed, "label": "dialogue", "run": 1})
        tools.call("Page.navigate", url=f"{base}/?{query}")

        probe = """JSON.stringify({done: (document.getElementById('output') || {dataset: {}}).dataset.done || '',
            text: (document.getElementById('choice-0') || {}).textContent || '',
            finished: ((document.getElementById('choice-0') || {}).className || '').includes('done'),
            status: (document.getElementById('status') || {}).textContent || ''})"""
        seen_status, seen_text = set(), set()
        state = {}
        deadline = time.time() + 120
        while time.time() < deadline:
            state = json.loads(tools.evaluate(probe) or "{}")
            if state.get("status", "").startswith("step "):
                seen_status.add(state["status"].split(" · ")[0])
                seen_text.add(state["text"])
            if state.get("done"):
                break
            time.sleep(0.02)
        shot = tools.call("Page.captureScreenshot", format="png")["data"]
        with open(os.path.join(args.out, "playground.png"), "wb") as f:
            f.write(base64.b64decode(shot))

        assert state.get("done") == "1", f"the page did not finish: {state}"
        assert state["finished"], f"no finished passage on the page: {state}"
        assert state["text"] == expected, f"the page shows {state['text']!r}, the API returned {expected!r}"
        assert state["status"].startswith(f"done: {args.steps} steps"), f"status line: {state['status']!r}"
        assert len(seen_status) >= 2 and len(seen_text) >= 2, \
            f"the passage was not shown condensing (step counts seen: {sorted(seen_status)})"
        print(f"e2e: the playground showed {len(seen_status)} intermediate steps ({', '.join(sorted(seen_status, key=lambda s: int(s.split()[1])))}),")
        print(f"e2e: then the API's {args.steps}-step passage: {state['text'][:90]}…")
        print(f"e2e: screenshot in {os.path.join(args.out, 'playground.png')}")
    finally:
        if browser:
            browser.terminate()
            browser.wait(10)
        server.terminate()
        server.wait(30)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
