"""Speed of `augur serve` against `augur run`, and what prompt reuse saves.

    python3 scripts/bench_serve.py [--model NAME] [--runs N] [--tokens N]

1. Throughput: the same greedy request (a text completion of --tokens tokens)
   through `augur run --json` and through the server, whole and streamed
   (read by a plain HTTP client, light enough not to slow the model on a small
   machine). Reports augur run's decode tokens/s, the server's own (its
   "augur" statistics) and the rate a streaming client saw (pieces after the
   first over the time between the first and the last); medians of --runs
   runs, taken in turns so that all see the same machine.
2. Time to first token on turn 5 of a conversation whose first message holds
   a source file (an editor's request), with prompt reuse and without
   (--no-prompt-reuse), measured by the client; medians of --runs
   conversations.

Needs `pip install openai` and a release build (target/release/augur).
"""

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

import openai

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "augur")


def start_server(model, extra=()):
    p = subprocess.Popen(
        [BIN, "serve", "-m", model, "--port", "0", *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    for line in p.stderr:
        m = re.search(r"serving on (http://127\.0\.0\.1:\d+)", line)
        if m:
            threading.Thread(target=p.stderr.read, daemon=True).start()
            return p, openai.OpenAI(base_url=m.group(1) + "/v1", api_key="x", max_retries=0,
                                    timeout=600)
    sys.exit("the server did not start")


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)


def run_once(model, prompt, n):
    out = subprocess.run([BIN, "run", "-m", model, "-p", prompt, "-n", str(n), "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def serve_once(url, prompt, n, stream):
    """One completion over a plain HTTP connection (a light client, so that
    on a small machine the client's own work hardly slows the model):
    (text, augur statistics, arrival time of each text piece)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({"prompt": prompt, "max_tokens": n, "stream": stream})
    conn.request("POST", "/v1/completions", body=body,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    text, stats, times = "", None, []
    if not stream:
        answer = json.loads(resp.read())
        conn.close()
        return answer["choices"][0]["text"], answer["augur"], times
    for line in resp:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        piece = chunk["choices"][0]["text"]
        if piece:
            times.append(time.perf_counter())
            text += piece
        if chunk["choices"][0]["finish_reason"]:
            stats = chunk["augur"]
    conn.close()
    return text, stats, times


def throughput(model, runs, n):
    prompt = "1, 2, 3, 4, 5,"
    p, client = start_server(model)
    url = str(client.base_url).removesuffix("/v1/").removesuffix("/v1")
    try:
        run_rates, whole_rates, server_rates, client_rates = [], [], [], []
        serve_once(url, prompt, 8, True)  # warm up
        for _ in range(runs):
            r = run_once(model, prompt, n)
            run_rates.append(r["stats"]["tokens_per_second"])
            text, stats, _ = serve_once(url, prompt, n, False)
            whole_rates.append(stats["tokens_per_second"])
            text, stats, times = serve_once(url, prompt, n, True)
            if text != r["text"]:
                print("  (note: the server's text differs from augur run's)")
            server_rates.append(stats["tokens_per_second"])
            # Pieces after the first, over the time they took to arrive.
            client_rates.append((len(times) - 1) / (times[-1] - times[0]))
    finally:
        stop(p)
    m = statistics.median
    base = m(run_rates)
    print(f"throughput, {n} tokens, median of {runs} (load average {os.getloadavg()[0]:.1f}):")
    print(f"  augur run:                    {base:7.2f} tokens/s")
    print(f"  server, whole answer:         {m(whole_rates):7.2f} tokens/s "
          f"({m(whole_rates) / base:.3f}x)")
    print(f"  server, streamed (engine):    {m(server_rates):7.2f} tokens/s "
          f"({m(server_rates) / base:.3f}x)")
    print(f"  server, streamed (client saw):{m(client_rates):7.2f} pieces/s "
          f"({m(client_rates) / base:.3f}x)")


def conversation_ttft(client, source):
    model = client.models.list().data[0].id
    messages = [{"role": "user", "content": f"Here is a file:\n\n{source}\n\nWhat does it do?"}]
    follow_ups = ["Which function is the most important?", "Is there a bug?",
                  "How would you test it?", "Summarize in one sentence."]
    ttft = None
    for turn in range(5):
        t0 = time.perf_counter()
        first, text = None, ""
        for chunk in client.chat.completions.create(model=model, messages=messages,
                                                    max_tokens=24, stream=True):
            for c in chunk.choices:
                if c.delta.content:
                    first = first or time.perf_counter()
                    text += c.delta.content
        ttft = first - t0
        messages.append({"role": "assistant", "content": text})
        if turn < 4:
            messages.append({"role": "user", "content": follow_ups[turn]})
    return ttft


def reuse(model, runs):
    with open(os.path.join(ROOT, "crates", "augur-server", "src", "stop.rs")) as f:
        source = f.read()
    results = {}
    for label, extra in [("with reuse", ()), ("without reuse", ("--no-prompt-reuse",))]:
        p, client = start_server(model, extra)
        try:
            results[label] = statistics.median(conversation_ttft(client, source)
                                               for _ in range(runs))
        finally:
            stop(p)
    w, wo = results["with reuse"], results["without reuse"]
    print(f"time to first token on turn 5 (a {len(source)}-byte file in turn 1), "
          f"median of {runs}:")
    print(f"  with reuse:    {w:.3f} s")
    print(f"  without reuse: {wo:.3f} s  ({wo / w:.1f}x slower)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    args = ap.parse_args()
    print(f"model {args.model}, {os.cpu_count()} cores", flush=True)
    throughput(args.model, args.runs, args.tokens)
    sys.stdout.flush()
    reuse(args.model, args.runs)


if __name__ == "__main__":
    main()
