"""What a `scope: cluster` rule costs per request, beside an instance rule
and no rule: one Envoy (2 workers) with the filter, the mock provider, and —
for the cluster rule — the Rate Limit Service and Redis on loopback. wrk
with one connection (latency: the Rate Limit Service round trip) and with
32 (throughput). Limits are set high enough that nothing is refused.

Run by `make bench`; prints a Markdown table and writes
target/bench/cluster-limits.json."""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/e2e"))

from cluster import Cluster  # noqa: E402
from harness import Gateway, Mock  # noqa: E402

HUGE = {"limit": 1_000_000_000, "per": "minute"}


def config(mock, rules):
    return {
        "providers": [{"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1",
                       "api_key": "sk-upstream"}],
        "models": [{"name": "gpt-4o-mini", "targets": [{"provider": "oai"}]}],
        "rate_limits": {"rules": rules},
    }


SCENARIOS = {
    "no rule": [],
    "instance rule (requests)": [{"name": "rpm", "requests": HUGE}],
    "cluster rule (requests)": [{"name": "rpm", "scope": "cluster", "requests": HUGE}],
    "cluster rules (requests + tokens)": [
        {"name": "rpm", "scope": "cluster", "requests": HUGE},
        {"name": "tpm", "scope": "cluster", "tokens": HUGE}],
}


def wrk(url, connections, seconds, out):
    env = {"BENCH_MODEL": "gpt-4o-mini", "BENCH_OUT": str(out),
           "BENCH_HEADERS": "authorization: Bearer sk-bench"}
    subprocess.run(["wrk", f"-t1", f"-c{connections}", f"-d{seconds}s", "-s",
                    str(ROOT / "bench/chat.lua"), url],
                   check=True, capture_output=True, env={**env, "PATH": "/usr/bin:/bin"})
    r = json.loads(out.read_text())
    bad = sum(r["errors"].values())
    return {"rps": r["requests"] / (r["duration_us"] / 1e6),
            "p50_us": r["latency_us"]["percentiles"]["50"],
            "p99_us": r["latency_us"]["percentiles"]["99"], "errors": bad}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    mock = Mock(api_key="sk-upstream")
    results = {name: [] for name in SCENARIOS}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rnd in range(args.rounds):
                for name, rules in SCENARIOS.items():
                    d = Path(tmp) / f"{rnd}-{len(results[name])}-{name.split()[0]}"
                    cluster = any(r.get("scope") == "cluster" for r in rules)
                    if cluster:
                        c = Cluster(config(mock, rules), d, replicas=1, timeout_ms=1000)
                        gw = c.replicas[0]
                    else:
                        c, gw = None, Gateway(config(mock, rules), d, concurrency=2)
                    try:
                        wrk(gw.url, 1, 2, d / "warm.json")
                        one = wrk(gw.url, 1, args.seconds, d / "c1.json")
                        many = wrk(gw.url, 32, args.seconds, d / "c32.json")
                    finally:
                        c.stop() if c else gw.stop()
                    results[name].append({"c1": one, "c32": many})
    finally:
        mock.stop()
    out = ROOT / "target/bench/cluster-limits.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    base = med([r["c1"]["p50_us"] for r in results["no rule"]])
    print("| scenario | p50, 1 connection | added p50 | p99, 1 connection | requests/s, 32 connections | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        p50 = med([r["c1"]["p50_us"] for r in runs])
        p99 = med([r["c1"]["p99_us"] for r in runs])
        rps = med([r["c32"]["rps"] for r in runs])
        errors = sum(r["c1"]["errors"] + r["c32"]["errors"] for r in runs)
        print(f"| {name} | {p50} µs | {p50 - base:+d} µs | {p99} µs | {rps:,.0f} | {errors} |")


if __name__ == "__main__":
    main()
