#!/usr/bin/env python3
"""Load test for `nebula serve`: mixed LM / diffusion / malformed requests over persistent connections.

    python3 scripts/loadtest.py --url http://127.0.0.1:8080 --requests 10000 --connections 32 [--pid PID]
    python3 scripts/loadtest.py --compare 64 [--steps 50]   # throughput of each model: 1 connection vs 16

Standard library only. Prints the status counts, requests/s, p50/p99 latency per kind, and (with --pid)
the server's resident memory before, during and after. Exits 1 on a crash (connection refused / reset
after the start) or on any 5xx other than the designed 503.
"""
import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse

LM = {"model": "tinystories-lm", "prompt": "Once upon a time", "max_tokens": 16, "temperature": 0.8}
DIFFUSION = {"model": "tinystories-diffusion", "prompt": "", "steps": 10}
MALFORMED = [
    ("POST", "/v1/completions", b'{"model": "tinystories-lm", "prompt": '),             # 400 bad JSON
    ("POST", "/v1/completions", b'{"model": "tinystories-lm", "max_tokens": "ten"}'),   # 400 wrong type
    ("POST", "/v1/completions", b'{"model": "gpt-4"}'),                                 # 404 model
    ("POST", "/v1/completions", b'{"model": "tinystories-lm", "max_tokens": 100000}'),  # 400 cap
    ("GET", "/v1/completions", None),                                                   # 405
    ("GET", "/nowhere", None),                                                          # 404
]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def pick(i, rng, mix):
    r = rng.random()
    if r < mix[0]:
        body = dict(LM, seed=i)
        return "lm", "POST", "/v1/completions", json.dumps(body).encode()
    if r < mix[0] + mix[1]:
        body = dict(DIFFUSION, seed=i)
        return "diffusion", "POST", "/v1/completions", json.dumps(body).encode()
    method, path, body = rng.choice(MALFORMED)
    return "malformed", method, path, body


def run(url, total, connections, mix, seed=0):
    parsed = urllib.parse.urlparse(url)
    lock = threading.Lock()
    counter = iter(range(total))
    results = []  # (kind, status, seconds)
    failures = []

    def worker(w):
        rng = random.Random(seed * 1000 + w)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            kind, method, path, body = pick(i, rng, mix)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            start = time.perf_counter()
            for attempt in range(2):
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                    if response.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
                    break
                except (ConnectionError, http.client.HTTPException, OSError) as error:
                    # A keep-alive connection the server closed (after an error answer): reconnect once.
                    conn.close()
                    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
                    if attempt == 1:
                        status = None
                        with lock:
                            failures.append(f"{kind} {method} {path}: {error!r}")
            with lock:
                results.append((kind, status, time.perf_counter() - start))
        conn.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    return threads, start, results, failures


def report(results, failures, seconds, label):
    print(f"{label}: {len(results)} requests in {seconds:.1f} s = {len(results) / seconds:.1f} requests/s")
    statuses = {}
    for _, status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    print("  status counts:", dict(sorted(statuses.items(), key=lambda kv: str(kv[0]))))
    for kind in ("lm", "diffusion", "malformed"):
        times = [s * 1000 for k, st, s in results if k == kind and st is not None]
        if times:
            print(f"  {kind:9s} n={len(times):5d}  p50 {percentile(times, 50):8.1f} ms  p99 {percentile(times, 99):8.1f} ms")
    every = [s * 1000 for _, st, s in results if st is not None]
    print(f"  all       n={len(every):5d}  p50 {percentile(every, 50):8.1f} ms  p99 {percentile(every, 99):8.1f} ms")
    bad = {s: n for s, n in statuses.items() if s is None or (s >= 500 and s != 503)}
    for line in failures[:5]:
        print("  failure:", line)
    return bad


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--mix", default="0.4,0.4,0.2", help="shares of LM, diffusion, malformed requests")
    parser.add_argument("--pid", type=int, help="the server's process id, to follow its memory")
    parser.add_argument("--compare", type=int, metavar="N",
                        help="instead: N requests of each model on 1 connection, then on 16; print the throughput ratios")
    parser.add_argument("--steps", type=int, default=DIFFUSION["steps"], help="denoising steps of each diffusion request")
    parser.add_argument("--models", default="diffusion,lm", help="with --compare: which models to measure")
    args = parser.parse_args()

    DIFFUSION["steps"] = args.steps
    if args.compare:
        kinds = {"diffusion": (0, 1, 0), "lm": (1, 0, 0)}
        for kind in args.models.split(","):
            mix = kinds[kind]
            rates = []
            for connections in (1, 16):
                threads, start, results, failures = run(args.url, args.compare, connections, mix)
                for t in threads:
                    t.join()
                seconds = time.perf_counter() - start
                label = f"diffusion ({args.steps} steps)" if kind == "diffusion" else f"lm ({LM['max_tokens']} tokens)"
                if report(results, failures, seconds, f"{label}, {connections} connection(s)"):
                    sys.exit(1)
                rates.append(len(results) / seconds)
            print(f"{kind} throughput at 16 connections / 1 connection: {rates[1] / rates[0]:.2f}x")
        return

    mix = tuple(float(x) for x in args.mix.split(","))
    memory = [rss_kb(args.pid)] if args.pid else []
    threads, start, results, failures = run(args.url, args.requests, args.connections, mix)
    last = 0
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        if args.pid and len(results) - last >= args.requests // 10:
            last = len(results)
            memory.append(rss_kb(args.pid))
    seconds = time.perf_counter() - start
    bad = report(results, failures, seconds, f"{args.connections} connections")
    if args.pid:
        memory.append(rss_kb(args.pid))
        print("  server RSS (MB) at each tenth:", " ".join(f"{m / 1024:.0f}" for m in memory if m))
    if bad:
        print("FAILED: unexpected statuses", bad)
        sys.exit(1)


if __name__ == "__main__":
    main()
