#!/usr/bin/env python3
"""`make soak`: mixed traffic at a steady rate through Envoy + the filter for
a long time (30 minutes by default), watching Envoy's memory and the Wasm
VMs.

Traffic: OpenAI passthrough (stream and not), translation to Anthropic and
Gemini (stream and not), Anthropic Messages and OpenAI Responses clients
(passed through and translated, stream and not), a failover pool whose
first provider fails, a
consumer that exhausts its token quota, rate-limit reservations on every
request, provider errors, bodies a provider compressed unasked, requests
the gateway refuses. Every request has a set of statuses it may
get; anything else is counted as unexpected, and so is a stream that does
not end as its API ends a stream ([DONE], message_stop,
response.completed) when it should.

Every minute Envoy's resident memory (VmRSS) is sampled, and at the end
the Wasm VM counters from Envoy's admin. Results go to target/soak/
(soak.json and soak.md, a section for BENCHMARKS.md). Exit status 1 when
memory grew more than 2 MiB after warm-up, a request got an unexpected
status, or a VM was restarted.

    .venv/bin/python bench/soak.py [--minutes 30] [--rate 40]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/e2e"))
from harness import Gateway, Mock  # noqa: E402

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
RESPONSES = "/v1/responses"
MSGS = [{"role": "user", "content": "soak test: say something short"}]
# What a complete stream of each client API ends with.
STREAM_END = {CHAT: b"data: [DONE]\n\n", MESSAGES: b"event: message_stop\n",
              RESPONSES: b"event: response.completed\n"}


def ends_complete(path, text):
    """Whether a stream ended as its API ends a complete stream."""
    if path == CHAT:
        return text.endswith(STREAM_END[CHAT])
    last = text.rfind(b"event: ")
    return last >= 0 and text.startswith(STREAM_END[path], last) and text.endswith(b"\n\n")
FAIL_OPENAI = {"x-mock-status": "503", "x-mock-status-path-prefix": "/v1/chat/"}
QUOTA_KEY = "sk-soak-quota-team"
# After this much of the run, memory is expected to stay flat.
WARMUP_FRACTION = 0.2
MAX_GROWTH_MIB = 2.0


def config(mock):
    m = f"{mock.url}"
    return {
        "providers": [
            {"name": "oai", "type": "openai", "base_url": f"{m}/v1", "api_key": "sk-upstream"},
            {"name": "claude", "type": "anthropic", "base_url": f"{m}/v1",
             "api_key": "sk-upstream"},
            {"name": "gem", "type": "gemini", "base_url": f"{m}/v1beta",
             "api_key": "sk-upstream"},
        ],
        "models": [
            {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
            {"name": "claude", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]},
            {"name": "gemini", "targets": [{"provider": "gem", "model": "gemini-2.5-flash"}]},
            {"name": "pool", "targets": [
                {"provider": "oai", "model": "gpt-4o-mini"},
                {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]},
            {"name": "limited", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
            {"name": "flaky", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
        ],
        # One consumer with a small daily token quota (it runs out early
        # and is then refused); everyone else is anonymous. The rules admit
        # everything at this rate but reserve and settle on every request.
        "auth": {"required": False},
        "consumers": [{"name": "quota-team",
                       "api_keys": ["sha256:" + hashlib.sha256(QUOTA_KEY.encode()).hexdigest()],
                       "quota": {"tokens_per_day": 5000}}],
        "rate_limits": {"rules": [
            {"name": "rpm", "by": ["consumer", "model"], "requests": {"limit": 100000, "per": "minute"}},
            {"name": "tpm", "by": ["consumer"], "tokens": {"limit": 10000000, "per": "minute",
                                                           "count": "total"}},
        ]},
        "health": {"consecutive_failures": 1000},
    }


# name, request body, headers, stream, allowed statuses, weight
SCENARIOS = [
    ("openai", {"model": "gpt"}, {}, False, {200}, 10),
    ("openai-stream", {"model": "gpt", "stream_options": {"include_usage": True}}, {}, True,
     {200}, 10),
    ("anthropic", {"model": "claude"}, {}, False, {200}, 6),
    ("anthropic-stream", {"model": "claude"}, {}, True, {200}, 6),
    ("gemini", {"model": "gemini"}, {}, False, {200}, 4),
    ("gemini-stream", {"model": "gemini"}, {}, True, {200}, 4),
    ("failover", {"model": "pool"}, FAIL_OPENAI, False, {200}, 3),
    ("failover-stream", {"model": "pool"}, FAIL_OPENAI, True, {200}, 3),
    ("quota", {"model": "limited"}, {"authorization": f"Bearer {QUOTA_KEY}"}, False,
     {200, 429}, 4),
    ("gzip-upstream", {"model": "gpt"}, {"x-mock-encoding": "gzip"}, False, {200}, 2),
    ("provider-500", {"model": "flaky"}, {"x-mock-status": "500"}, False, {500}, 2),
    ("provider-429", {"model": "flaky"}, {"x-mock-status": "429", "x-mock-retry-after": "1"},
     False, {429}, 1),
    ("stream-error", {"model": "gpt"}, {"x-mock-sse-inject": "error@3"}, True, {200}, 1),
    ("unknown-model", {"model": "nope"}, {}, False, {404}, 1),
    ("bad-request", {"model": "gpt", "messages": "not a list"}, {}, False, {400}, 1),
    ("messages-openai", {"model": "gpt", "path": MESSAGES}, {}, False, {200}, 3),
    ("messages-anthropic-stream", {"model": "claude", "path": MESSAGES}, {}, True, {200}, 3),
    ("messages-gemini-stream", {"model": "gemini", "path": MESSAGES}, {}, True, {200}, 2),
    ("messages-failover-stream", {"model": "pool", "path": MESSAGES}, FAIL_OPENAI, True, {200}, 2),
    ("responses-anthropic", {"model": "claude", "path": RESPONSES}, {}, False, {200}, 3),
    ("responses-openai-stream", {"model": "gpt", "path": RESPONSES}, {}, True, {200}, 3),
    ("responses-gemini-stream", {"model": "gemini", "path": RESPONSES}, {}, True, {200}, 2),
]


def payload_for(path, body, stream):
    """The request in the client API's shape."""
    if path == MESSAGES:
        return {"messages": MSGS, "max_tokens": 100, **body, "stream": stream}
    if path == RESPONSES:
        return {"input": MSGS[0]["content"], **body, "stream": stream}
    return {"messages": MSGS, **body, "stream": stream}


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wasm_stats(gw):
    text = httpx.get(gw.admin + "/stats", timeout=10).text
    return {k: int(v) for k, _, v in (l.partition(": ") for l in text.splitlines())
            if k.startswith("wasm.") and v.strip().isdigit()}


def one_request(gw, client, scenario):
    name, body, headers, stream, allowed, _ = scenario
    body = dict(body)
    path = body.pop("path", CHAT)
    payload = payload_for(path, body, stream)
    try:
        if stream:
            with client.stream("POST", gw.url + path, json=payload, headers=headers) as r:
                text = b"".join(r.iter_raw())
                ok = r.status_code in allowed
                if ok and r.status_code == 200 and name != "stream-error":
                    ok = ends_complete(path, text)
                if ok and name == "stream-error":
                    ok = b'"error"' in text
                return name, r.status_code, ok
        r = client.post(gw.url + path, json=payload, headers=headers)
        return name, r.status_code, r.status_code in allowed
    except httpx.HTTPError as e:
        return name, f"{type(e).__name__}", False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=40, help="requests per second")
    ap.add_argument("--concurrency", type=int, default=2, help="Envoy workers")
    ap.add_argument("--out", default=str(ROOT / "target/soak"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    mock = Mock(api_key="sk-upstream", extra_args=["--no-record"])
    gw = Gateway(config(mock), out / "gw", concurrency=args.concurrency)
    weights = [s[5] for s in SCENARIOS]
    rng = random.Random(7)
    results = Counter()
    unexpected = Counter()
    lock = threading.Lock()
    samples = []
    start = time.time()
    end = start + args.minutes * 60
    stats_before = wasm_stats(gw)
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64))

    def record(fut):
        name, status, ok = fut.result()
        with lock:
            results[(name, status)] += 1
            if not ok:
                unexpected[(name, status)] += 1

    next_sample = start
    sent = 0
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            while time.time() < end:
                now = time.time()
                if now >= next_sample:
                    samples.append({"t_min": round((now - start) / 60, 2),
                                    "rss_kib": rss_kib(gw.proc.pid), "requests": sent})
                    print(f"[soak] {samples[-1]}", flush=True)
                    next_sample += 60
                due = start + sent / args.rate
                if now < due:
                    time.sleep(min(due - now, 0.05))
                    continue
                scenario = rng.choices(SCENARIOS, weights=weights)[0]
                pool.submit(one_request, gw, client, scenario).add_done_callback(record)
                sent += 1
        samples.append({"t_min": round((time.time() - start) / 60, 2),
                        "rss_kib": rss_kib(gw.proc.pid), "requests": sent})
        stats_after = wasm_stats(gw)
        log_panics = gw.logs().count("panicked")
    finally:
        client.close()
        gw.stop()
        mock.stop()

    warm = [s for s in samples if s["t_min"] >= args.minutes * WARMUP_FRACTION]
    growth_mib = (max(s["rss_kib"] for s in warm) - warm[0]["rss_kib"]) / 1024 if warm else 0
    created = {k: stats_after.get(k, 0) - stats_before.get(k, 0) for k in stats_after
               if k.endswith(".created")}
    restarts = sum(created.values())
    report = {
        "minutes": args.minutes, "rate": args.rate, "requests": sent,
        "by_scenario": {f"{n} {s}": c for (n, s), c in sorted(results.items(), key=str)},
        "unexpected": {f"{n} {s}": c for (n, s), c in unexpected.items()},
        "rss_samples": samples, "rss_growth_after_warmup_mib": round(growth_mib, 3),
        "wasm_vms_created_during_run": created, "vm_panics_in_log": log_panics,
        "wasm_stats_after": stats_after,
    }
    (out / "soak.json").write_text(json.dumps(report, indent=1))
    total_unexpected = sum(unexpected.values())
    md = [
        f"Soak (`make soak`): {args.minutes:g} min of mixed traffic at {args.rate:g} requests/s "
        f"({sent} requests, {len(SCENARIOS)} scenarios), Envoy `--concurrency {args.concurrency}`.",
        "",
        "| minute | Envoy RSS (MiB) | requests sent |",
        "|---|---|---|",
        *[f"| {s['t_min']:g} | {s['rss_kib'] / 1024:.1f} | {s['requests']} |" for s in samples],
        "",
        f"- RSS growth after warm-up (from minute {args.minutes * WARMUP_FRACTION:g}): "
        f"{growth_mib:.2f} MiB (limit {MAX_GROWTH_MIB} MiB)",
        f"- unexpected statuses or broken streams: {total_unexpected}",
        f"- Wasm VMs created during the run (restarts): {restarts}; panics in Envoy's log: "
        f"{log_panics}",
    ]
    (out / "soak.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    failed = growth_mib > MAX_GROWTH_MIB or total_unexpected or restarts or log_panics
    if unexpected:
        print("unexpected:", dict(unexpected))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
