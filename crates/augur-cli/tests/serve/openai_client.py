"""Drives a running `augur serve` with the official `openai` client.

Run by crates/augur-cli/tests/serve.rs as
    python3 openai_client.py SCENARIO
with AUGUR_URL (the server), AUGUR_BIN (the augur binary), AUGUR_MODEL (the
model file the server serves) and, where the server has one, AUGUR_KEY set.
Exits non-zero, with the reason on stderr, when a check fails. Every request
has a timeout and every loop a bound.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

try:
    import openai
except ImportError:
    sys.exit("the openai package is missing: python3 -m pip install openai (scripts/setup.sh does)")

URL = os.environ["AUGUR_URL"]
BIN = os.environ["AUGUR_BIN"]
MODEL = os.environ["AUGUR_MODEL"]
KEY = os.environ.get("AUGUR_KEY", "no-key")
TIMEOUT = 180


def client(url=URL, key=KEY):
    # No retries: the client would retry 503s and hide the queue limit.
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=TIMEOUT)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def augur_run(prompt, n, chat):
    """`augur run --json` for the same prompt and (default, greedy) settings."""
    args = [BIN, "run", "-m", MODEL, "-p", prompt, "-n", str(n), "--json"]
    if chat:
        args.append("--chat")
    out = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    check(out.returncode == 0, f"augur run failed: {out.stderr}")
    return json.loads(out.stdout)


def finish_of(stop):
    return {"end-of-generation": "stop", "max-tokens": "length", "context-full": "length"}[stop]


def raw(method, path, body=None, headers=None, url=URL):
    """One plain HTTP request: (status, parsed JSON body or the raw text)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
    h = {"Authorization": f"Bearer {KEY}"}
    if body is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    try:
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read().decode()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, data


def health(url=URL):
    status, body = raw("GET", "/health", url=url)
    check_eq(status, 200, f"/health answers ({body})")
    return body


def stats_of(obj):
    return obj.model_dump()["augur"]


def start_server(extra=()):
    """A fresh `augur serve` on a free port: (process, url)."""
    p = subprocess.Popen(
        [BIN, "serve", "-m", MODEL, "--port", "0", *extra],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.time() + TIMEOUT
    lines = []
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"serving on (http://127\.0\.0\.1:\d+)", line)
        if m:
            # Keep draining stderr so the server never blocks on it.
            threading.Thread(target=p.stderr.read, daemon=True).start()
            return p, m.group(1)
    p.kill()
    raise AssertionError("the server did not start: " + "".join(lines))


def stop_server(p):
    p.send_signal(signal.SIGTERM)
    check_eq(p.wait(timeout=30), 0, "a fresh server's exit status after SIGTERM")


# ---------------------------------------------------------------------------


def basics():
    c = client()
    ids = [m.id for m in c.models.list().data]
    check_eq(len(ids), 1, "models listed")
    model = ids[0]
    check_eq(health()["status"], "ok", "health")

    # Chat, whole and streamed, against `augur run --chat`.
    question = "What is the capital of France?"
    want = augur_run(question, 24, chat=True)
    r = c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], max_tokens=24
    )
    check_eq(r.choices[0].message.content, want["text"], "chat text = augur run --chat")
    check_eq(r.choices[0].message.role, "assistant", "chat role")
    check_eq(r.choices[0].finish_reason, finish_of(want["stop"]), "chat finish reason")
    check_eq(r.usage.prompt_tokens, want["stats"]["n_prompt"], "chat prompt tokens")
    check_eq(r.usage.completion_tokens, want["stats"]["n_generated"], "chat completion tokens")
    check_eq(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens, "total")
    s = stats_of(r)
    for key in (
        "tokens_per_second",
        "acceptance_rate",
        "tokens_per_target_pass",
        "exactness",
        "prompt_tokens_evaluated",
        "prompt_tokens_reused",
        "drafters",
    ):
        check(key in s, f"augur stats have {key}: {s}")
    check_eq(s["strategy"], "auto", "default strategy")
    check(
        all(d["name"] in ("none", "prompt-lookup") for d in s["drafters"])
        and sum(d["tokens"] for d in s["drafters"]) >= r.usage.completion_tokens,
        f"per-drafter stats of auto, model-free: {s['drafters']}",
    )
    check_eq(
        s["prompt_tokens_evaluated"] + s["prompt_tokens_reused"],
        r.usage.prompt_tokens,
        "evaluated + reused = prompt",
    )
    check(s["tokens_per_second"] > 0, "tokens/s reported")

    stream = c.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, final_stats, n_chunks = "", None, None, None, 0
    for chunk in stream:
        n_chunks += 1
        check(n_chunks < 1000, "a bounded stream")
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finish = choice.finish_reason
                final_stats = stats_of(chunk)
    check_eq(text, want["text"], "streamed chat text")
    check_eq(finish, finish_of(want["stop"]), "streamed finish reason")
    check(usage is not None, "a usage chunk with include_usage")
    check_eq(usage.completion_tokens, want["stats"]["n_generated"], "streamed usage")
    check_eq(usage.prompt_tokens, want["stats"]["n_prompt"], "streamed prompt usage")
    check(final_stats is not None and final_stats["strategy"] == "auto", "final chunk stats")
    # The same request again: everything but the last prompt token is reused.
    check_eq(
        final_stats["prompt_tokens_reused"], r.usage.prompt_tokens - 1, "repeat reuses the prompt"
    )

    # Text completion, whole and streamed, against `augur run`.
    prompt = "def fibonacci(n):"
    want = augur_run(prompt, 24, chat=False)
    r = c.completions.create(model=model, prompt=prompt, max_tokens=24)
    check_eq(r.choices[0].text, want["text"], "completion text = augur run")
    check_eq(r.usage.prompt_tokens, want["stats"]["n_prompt"], "completion prompt tokens")
    check_eq(r.usage.completion_tokens, want["stats"]["n_generated"], "completion tokens")
    check_eq(r.choices[0].finish_reason, finish_of(want["stop"]), "completion finish")
    pieces = []
    for chunk in c.completions.create(model=model, prompt=prompt, max_tokens=24, stream=True):
        check(len(pieces) < 1000, "a bounded stream")
        pieces.append(chunk.choices[0].text)
    check_eq("".join(pieces), want["text"], "streamed completion text")
    check(len(pieces) > 2, f"the completion came in pieces: {pieces}")

    # Without max_tokens a completion makes OpenAI's 16 tokens.
    r = c.completions.create(model=model, prompt=prompt)
    check(r.usage.completion_tokens <= 16, "default completion length")

    # Stop strings: the text ends before the first one, streamed or not.
    full = want["text"]
    stop = full[8:11]
    cut = full[: full.find(stop)]
    r = c.completions.create(model=model, prompt=prompt, max_tokens=24, stop=[stop, "@@@"])
    check_eq(r.choices[0].text, cut, f"text before the stop string {stop!r}")
    check_eq(r.choices[0].finish_reason, "stop", "finish reason at a stop string")
    streamed = "".join(
        ch.choices[0].text
        for ch in c.completions.create(
            model=model, prompt=prompt, max_tokens=24, stop=stop, stream=True
        )
    )
    check_eq(streamed, cut, "streamed text before the stop string")

    # The model may be named by its file name or left out.
    r = c.completions.create(model=os.path.basename(MODEL), prompt=prompt, max_tokens=4)
    check(r.usage.completion_tokens >= 1, "the file name is accepted as model")
    status, body = raw("POST", "/v1/completions", json.dumps({"prompt": prompt, "max_tokens": 4}))
    check_eq(status, 200, f"a request without model ({body})")

    # augur's per-request strategy. Its engine is built on first use, which
    # calibrates the model when this machine has no calibration cached yet
    # (minutes on a busy 2-core machine).
    r = c.with_options(timeout=900).completions.create(
        model=model, prompt=prompt, max_tokens=24, extra_body={"strategy": "prompt-lookup"}
    )
    s = stats_of(r)
    check_eq(s["strategy"], "prompt-lookup", "the request's strategy ran")
    check(s["exactness"] in ("bit-identical", "kernel-level"), f"exactness {s['exactness']}")
    check(r.usage.completion_tokens >= 1, "prompt lookup generated")
    if s["exactness"] == "bit-identical":
        check_eq(r.choices[0].text, want["text"], "bit-identical prompt lookup = baseline")
    r = c.completions.create(model=model, prompt=prompt, max_tokens=8)
    check_eq(stats_of(r)["strategy"], "auto", "the default strategy is back")


QUESTIONS = [
    "Name a fruit that is red.",
    "What color is the sky?",
    "How many legs does a cat have?",
    "What is the opposite of hot?",
    "Say hello in French.",
]
SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer briefly."}


def converse(c, model, extra):
    """Five turns; returns [(messages sent, answer, response)]."""
    messages = [SYSTEM]
    turns = []
    for q in QUESTIONS:
        messages.append({"role": "user", "content": q})
        sent = [dict(m) for m in messages]
        r = c.chat.completions.create(model=model, messages=sent, max_tokens=40, extra_body=extra)
        answer = r.choices[0].message.content
        turns.append((sent, answer, r))
        messages.append({"role": "assistant", "content": answer})
    return turns


def conversation():
    c = client()
    model = _model(c)

    # With prompt reuse (the default), each turn evaluates only its new tokens.
    reused = converse(c, model, None)
    prev = None
    for i, (_, answer, r) in enumerate(reused):
        s = stats_of(r)
        check_eq(
            s["prompt_tokens_evaluated"] + s["prompt_tokens_reused"],
            r.usage.prompt_tokens,
            f"turn {i + 1}: evaluated + reused",
        )
        check_eq(s["prompt_tokens_reused"], r.usage.prompt_tokens_details.cached_tokens, "cached")
        if prev is not None:
            # Everything of the previous turn (its prompt and answer; the
            # answer's last token only when the model ended it itself) is in
            # the cache: only the new tokens are evaluated.
            held = prev.usage.prompt_tokens + prev.usage.completion_tokens
            if prev.choices[0].finish_reason != "stop":
                held -= 1
            new = r.usage.prompt_tokens - held
            check(new > 0, f"turn {i + 1} adds tokens")
            check_eq(s["prompt_tokens_evaluated"], new, f"turn {i + 1}: only new tokens evaluated")
            check_eq(s["exactness"], "kernel-level", f"turn {i + 1}: a reusing run's exactness")
        prev = r
        print(f"reuse, turn {i + 1}: {r.usage.prompt_tokens} prompt tokens, "
              f"{s['prompt_tokens_evaluated']} evaluated: {answer!r}")

    # Asking for bit-exact output evaluates each prompt afresh.
    exact = converse(c, model, {"exact": True})
    for i, (_, answer, r) in enumerate(exact):
        s = stats_of(r)
        check_eq(s["prompt_tokens_reused"], 0, f"exact turn {i + 1} reuses nothing")
        check_eq(s["exactness"], "bit-identical", f"exact turn {i + 1}")

    # A server started fresh for each turn: bit-identical to the exact
    # answers; the reusing answers are the same or, where batched and
    # one-token passes rounded a near tie differently, start the same.
    same = 0
    for i in range(len(QUESTIONS)):
        p, url = start_server()
        try:
            fresh = client(url)
            r = fresh.chat.completions.create(model=model, messages=reused[i][0], max_tokens=40)
            check_eq(stats_of(r)["prompt_tokens_reused"], 0, "a fresh server reuses nothing")
            got, want = reused[i][1], r.choices[0].message.content
            if got == want:
                same += 1
            elif i == 0:
                raise AssertionError(f"turn 1 reused nothing, yet {got!r} != fresh {want!r}")
            else:
                check(got[:4] == want[:4], f"turn {i + 1} with reuse: {got!r}, fresh: {want!r}")
                print(f"turn {i + 1} with reuse differs from a fresh evaluation after "
                      f"{len(os.path.commonprefix([got, want]))} characters: {got!r} vs {want!r}")
            r = fresh.chat.completions.create(
                model=model, messages=exact[i][0], max_tokens=40, extra_body={"exact": True}
            )
            check_eq(exact[i][1], r.choices[0].message.content, f"exact turn {i + 1}: fresh server")
        finally:
            stop_server(p)
    print(f"{same} of {len(QUESTIONS)} reusing answers equal a fresh evaluation's")


def _model(c):
    return c.models.list().data[0].id


def concurrency():
    c = client()
    model = _model(c)
    prompts = [f"Write the number {n} in words." for n in range(1, 9)]
    want = {}
    for p in prompts:
        r = c.chat.completions.create(
            model=model, messages=[{"role": "user", "content": p}], max_tokens=16
        )
        want[p] = r.choices[0].message.content
    got, errors = {}, []

    def one(p, streamed):
        try:
            cl = client()
            if streamed:
                text = ""
                for ch in cl.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": p}], max_tokens=16,
                    stream=True,
                ):
                    for choice in ch.choices:
                        text += choice.delta.content or ""
            else:
                r = cl.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": p}], max_tokens=16
                )
                text = r.choices[0].message.content
            got[p] = text
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{p}: {e!r}")

    threads = [threading.Thread(target=one, args=(p, i % 2 == 0)) for i, p in enumerate(prompts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    check(not errors, f"concurrent clients failed: {errors}")
    check_eq(got, want, "8 concurrent clients' answers")
    check_eq(health()["requests"], 0, "nothing left running")

    # A client that leaves mid-stream frees the model: the next request is
    # answered at once instead of after the abandoned 2000 tokens.
    stream = c.completions.create(
        model=model, prompt="1, 2, 3, 4, 5,", max_tokens=2000, stream=True
    )
    n = 0
    for _ in stream:
        n += 1
        if n == 3:
            break
    stream.close()
    t0 = time.time()
    r = c.completions.create(model=model, prompt="The sky is", max_tokens=4)
    waited = time.time() - t0
    check(r.usage.completion_tokens >= 1, "the next request is answered")
    check(waited < 20, f"the next request waited {waited:.1f} s: the abandoned one ran on")
    print(f"after a disconnect the next request took {waited:.2f} s "
          f"(queued {stats_of(r)['queue_seconds']:.2f} s)")


def queue_limit():
    """The server runs with --max-queue 1: one running, one waiting, then 503."""
    c = client()
    model = _model(c)
    stream = c.completions.create(
        model=model, prompt="1, 2, 3, 4, 5,", max_tokens=2000, stream=True
    )
    it = iter(stream)
    next(it)  # the long generation is running
    waiting = {}

    def second():
        try:
            r = client().completions.create(model=model, prompt="The sky is", max_tokens=4)
            waiting["r"] = r
        except Exception as e:  # noqa: BLE001 - checked below
            waiting["e"] = e

    t = threading.Thread(target=second)
    t.start()
    deadline = time.time() + 30
    while health()["requests"] < 2:
        check(time.time() < deadline, "the second request was never queued")
        time.sleep(0.05)
    try:
        c.completions.create(model=model, prompt="Hello", max_tokens=4)
        raise AssertionError("a third request was accepted beyond --max-queue 1")
    except openai.APIStatusError as e:
        check_eq(e.status_code, 503, "status beyond the queue limit")
        check_eq(e.body.get("code"), "queue_full", f"error code ({e.body})")
        check("max-queue" in e.body.get("message", ""), f"the message says why: {e.body}")
    status, body = raw("POST", "/v1/completions", json.dumps({"prompt": "Hi", "max_tokens": 2}))
    check_eq(status, 503, "raw request beyond the limit")
    check(set(body["error"]) >= {"message", "type", "param", "code"}, f"error shape {body}")
    stream.close()  # leaving frees the model for the waiting request
    t.join(60)
    check("r" in waiting, f"the queued request was answered: {waiting}")
    r = c.completions.create(model=model, prompt="Hello", max_tokens=4)
    check(r.usage.completion_tokens >= 1, "room again after the queue drained")


def bad_input():
    """The server runs with --api-key, -c 256 and --max-body 65536."""
    chat_ok = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}

    def expect(status, body, code=None, param=None, contains=(), path="/v1/chat/completions",
               method="POST", headers=None):
        got, answer = raw(method, path, body, headers)
        what = f"{method} {path} {str(body)[:80]!r}"
        check_eq(got, status, f"{what}: status ({answer})")
        check(isinstance(answer, dict) and "error" in answer, f"{what}: error JSON ({answer})")
        err = answer["error"]
        check(set(err) == {"message", "type", "param", "code"}, f"{what}: error fields {err}")
        check(isinstance(err["message"], str) and err["message"], f"{what}: a message")
        if code:
            check_eq(err["code"], code, f"{what}: code")
        if param:
            check_eq(err["param"], param, f"{what}: param")
        for needle in contains:
            check(needle in err["message"], f"{what}: message has {needle!r}: {err['message']}")
        return err

    def with_(**fields):
        return json.dumps({**chat_ok, **fields})

    expect(400, "{not json", code="invalid_json")
    expect(400, "", code="invalid_json")
    expect(400, "[1, 2]", code="invalid_json")
    expect(400, with_(temperature="hot"), param="temperature", contains=("temperature",))
    expect(400, with_(max_tokens="many"), param="max_tokens")
    expect(400, with_(stream="yes"), param="stream")
    expect(400, json.dumps({"messages": "Hi"}), param="messages")
    expect(400, json.dumps({"messages": [{"role": "user", "content": 5}]}), param="messages[0].content")
    expect(400, json.dumps({"messages": [{"role": "pirate", "content": "a"}]}), param="messages[0].role")
    expect(400, json.dumps({"messages": []}), param="messages")
    expect(400, with_(temperature=-1), param="temperature", contains=("-1",))
    expect(400, with_(top_p=0), param="top_p")
    expect(400, with_(top_p=1.5), param="top_p")
    expect(400, with_(min_p=2), param="min_p")
    expect(400, with_(top_k=-1), param="top_k")
    expect(400, with_(max_tokens=0), param="max_tokens")
    expect(400, with_(max_tokens=-5), param="max_tokens")
    expect(400, with_(n=3), param="n")
    expect(400, with_(stop=[1, 2]), param="stop")
    expect(400, with_(strategy="warp-drive"), param="strategy", contains=("warp-drive",))
    expect(400, with_(strategy="speculative"), param="strategy", contains=("draft",))
    expect(400, with_(draft_max=0, strategy="prompt-lookup"), param="draft_max")
    expect(400, json.dumps({"max_tokens": 4}), param="prompt", path="/v1/completions")
    # A prompt longer than the context (256): the message gives both sizes.
    long = "hello " * 400
    err = expect(400, with_(messages=[{"role": "user", "content": long}]),
                 code="context_length_exceeded", contains=("256",))
    check(re.search(r"needs \d{3} tokens", err["message"]), f"needed tokens: {err['message']}")
    expect(400, json.dumps({"prompt": long}), code="context_length_exceeded",
           path="/v1/completions")
    expect(413, json.dumps({"prompt": "x" * 70000}), code="body_too_large", contains=("65536",))
    expect(404, with_(model="gpt-17"), code="model_not_found", param="model",
           contains=("gpt-17",))
    expect(404, None, path="/v1/models/gpt-17", method="GET", code="model_not_found")
    expect(401, with_(), headers={"Authorization": "Bearer wrong"}, code="invalid_api_key")
    expect(401, with_(), headers={"Authorization": ""}, code="invalid_api_key")
    expect(401, None, path="/v1/models", method="GET", headers={"Authorization": "Basic x"})
    expect(404, None, path="/v2/everything", method="GET", code="unknown_url")
    expect(405, None, path="/v1/chat/completions", method="GET", code="method_not_allowed")

    # The official client maps them onto its exception types.
    c = client()
    model = _model(c)
    for call, kind in [
        (lambda: c.chat.completions.create(model=model, messages=[{"role": "user", "content": "a"}],
                                           temperature=-1), openai.BadRequestError),
        (lambda: c.chat.completions.create(model=model, messages=[{"role": "user", "content": "a"}],
                                           top_p=2, stream=True), openai.BadRequestError),
        (lambda: c.completions.create(model="nope", prompt="a"), openai.NotFoundError),
        (lambda: client(key="wrong").models.list(), openai.AuthenticationError),
    ]:
        try:
            call()
            raise AssertionError(f"expected {kind.__name__}")
        except kind as e:
            check(e.body and "message" in e.body, f"{kind.__name__} has a message: {e.body}")

    # Still healthy, and still answering properly.
    status, body = raw("GET", "/health", headers={"Authorization": ""})
    check_eq(status, 200, "/health needs no key")
    check_eq(body["requests"], 0, "nothing stuck in the queue")
    r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}],
                                  max_tokens=8)
    check(r.usage.completion_tokens >= 1 and r.choices[0].message.content is not None,
          "a normal request after the bad ones")


def shutdown():
    """SIGTERM (to AUGUR_SERVER_PID) during a stream ends the stream promptly."""
    c = client()
    stream = c.completions.create(
        model=_model(c), prompt="1, 2, 3, 4, 5,", max_tokens=2000, stream=True
    )
    it = iter(stream)
    next(it)
    os.kill(int(os.environ["AUGUR_SERVER_PID"]), signal.SIGTERM)
    t0 = time.time()
    try:
        for n, _ in enumerate(it):
            check(n < 2000, "a bounded stream")
        ended = "without an error"
    except openai.APIError as e:
        ended = f"with {e.message!r}"
    except Exception as e:  # noqa: BLE001 - the connection may just close
        ended = f"with {type(e).__name__}"
    took = time.time() - t0
    print(f"the stream ended {took:.2f} s after SIGTERM, {ended}")
    check(took < 10, f"the stream ran on for {took:.1f} s after SIGTERM")


SCENARIOS = {
    "basics": basics,
    "conversation": conversation,
    "concurrency": concurrency,
    "queue_limit": queue_limit,
    "bad_input": bad_input,
    "shutdown": shutdown,
}

if __name__ == "__main__":
    name = sys.argv[1]
    t0 = time.time()
    try:
        SCENARIOS[name]()
    except AssertionError as e:
        sys.exit(f"FAILED {name}: {e}")
    print(f"{name}: ok in {time.time() - t0:.1f} s")
