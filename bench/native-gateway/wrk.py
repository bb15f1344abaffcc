#!/usr/bin/env python3
"""Short wrk comparison: plain Envoy, the Wasm gateway and the native gateway
(bench/native-gateway), each → OpenAI (passthrough) and → Anthropic
(translated), driven as `make bench` (bench/run.py) drives wrk: 1 thread, 32
keep-alive connections, bench/chat.lua, the same mock (`--threads 2`), Envoy
`--concurrency 2`, everything under `taskset -c 0,1`. Bootstraps are the ones
profile.py renders (plain, gw-*, native-*).

Each target gets a 2 s warm-up then a 10 s measured run; two rounds, the
second in rotated order. Per run it records the 1-minute load average and
the CPU other processes on the machine used meanwhile (from /proc/stat
minus our Envoys', the mock's and wrk's CPU time).

    (cd bench/native-gateway && nice cargo build --release)
    nice .venv/bin/python bench/native-gateway/wrk.py [--duration 10 --warmup 2 --rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import profile as prof  # noqa: E402 — bench/profile.py (renders the bootstraps)

run = prof.bench_run
CPUS = "0,1"
LUA = run.LUA
KNOBS = {"x-mock-chunk-chars": "2"}


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def start_envoy(work: Path, key: str, mock_url: str):
    port, admin = run.free_port(), run.free_port()
    boot = prof.render(work, mock_url, port, admin, key)
    log = open(work / f"{key}.envoy.log", "w")
    p = subprocess.Popen(["taskset", "-c", CPUS, prof.envoy_binary(), "-c", str(boot), "--concurrency", "2",
                          "--disable-hot-restart", "--log-level", "warn"],
                         stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
                         env={**os.environ, "ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(prof.NATIVE_DIR)})
    prof.wait_http(f"http://{prof.HOST}:{admin}/ready", p, 60)
    return p, f"http://{prof.HOST}:{port}"


def wrk(url: str, model: str, headers: dict, duration: float, out: Path, pgids: list[int], sut: int) -> dict:
    out.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_PATH": prof.CHAT, "BENCH_BODY": run.request_body(model, False),
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()), "BENCH_OUT": str(out)}
    argv = ["taskset", "-c", CPUS, "wrk", "-t1", "-c32", f"-d{duration:g}s", "--timeout", "10s",
            "-s", str(LUA), url]
    sut0 = run.group_cpu_s(sut)
    la0, sys0, grp0, ch0 = loadavg(), run.system_cpu(), sum(run.group_cpu_s(g) for g in pgids), children_cpu()
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    la1, sys1, grp1, ch1 = loadavg(), run.system_cpu(), sum(run.group_cpu_s(g) for g in pgids), children_cpu()
    sut1 = run.group_cpu_s(sut)
    if p.returncode or not out.exists():
        raise RuntimeError(f"wrk failed: {p.stdout[-500:]} {p.stderr[-500:]}")
    r = json.loads(out.read_text())
    secs = r["duration_us"] / 1e6
    machine = (sys1[0] - sys0[0]) + (sys1[1] - sys0[1])  # task + irq seconds, all CPUs
    ours = (grp1 - grp0) + (ch1 - ch0)
    r.update(rps=r["requests"] / secs, load1_before=la0, load1_after=la1,
             other_cores=max(machine - ours, 0.0) / secs, steal_cores=(sys1[2] - sys0[2]) / secs,
             ours_cores=ours / secs, error_count=sum(r["errors"].values()),
             envoy_us_per_req=(sut1 - sut0) / r["requests"] * 1e6 if r["requests"] else None)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "target/wrk.json")
    ap.add_argument("--wasm", type=Path, help="another Wasm filter build")
    ap.add_argument("--native-dir", type=Path, help="directory of another libllmgw_native.so build")
    a = ap.parse_args()
    if a.wasm:
        prof.WASM = a.wasm.resolve()
    if a.native_dir:
        prof.NATIVE_DIR = a.native_dir.resolve()
    work = Path(tempfile.mkdtemp(prefix="llmgw-native-wrk-"))
    procs = []
    mport = run.free_port()
    mock = subprocess.Popen(["taskset", "-c", CPUS, str(prof.MOCK), "--listen", f"{prof.HOST}:{mport}",
                             "--no-record", "--threads", "2"],
                            stdout=subprocess.DEVNULL, start_new_session=True)
    procs.append(mock)
    mock_url = f"http://{prof.HOST}:{mport}"
    results: dict[str, list] = {}
    try:
        prof.wait_http(f"{mock_url}/__mock/health", mock, 15)
        plain, plain_url = start_envoy(work, "plain", mock_url)
        procs.append(plain)
        gw, gw_url = start_envoy(work, "gw-wrk", mock_url)
        procs.append(gw)
        nat, nat_url = start_envoy(work, "native-wrk", mock_url)
        procs.append(nat)
        up = {"authorization": f"Bearer {prof.KEY}", **KNOBS}
        targets = [
            ("plain", plain_url, "gpt-4o-mini", up, plain.pid),
            ("wasm-openai", gw_url, "bench-openai", KNOBS, gw.pid),
            ("wasm-anthropic", gw_url, "bench-anthropic", KNOBS, gw.pid),
            ("native-openai", nat_url, "bench-openai", KNOBS, nat.pid),
            ("native-anthropic", nat_url, "bench-anthropic", KNOBS, nat.pid),
        ]
        pgids = [p.pid for p in procs]
        for rnd in range(a.rounds):
            shift = (rnd * 2) % len(targets)
            order = targets[shift:] + targets[:shift]
            print(f"round {rnd + 1}: {[t[0] for t in order]}", flush=True)
            for key, url, model, hs, sut in order:
                wrk(url, model, hs, a.warmup, work / f"warm-{key}-{rnd}.json", pgids, sut)
                r = wrk(url, model, hs, a.duration, work / f"wrk-{key}-{rnd}.json", pgids, sut)
                r["round"] = rnd + 1
                results.setdefault(key, []).append(r)
                print(f"  {key:18s} {r['rps']:9.0f} req/s  p50 {r['latency_us']['percentiles']['50'] / 1000:6.2f} ms"
                      f"  errors {r['error_count']}  load1 {r['load1_before']:.2f}->{r['load1_after']:.2f}"
                      f"  other cores {r['other_cores']:.2f}  steal {r['steal_cores']:.2f}"
                      f"  ours {r['ours_cores']:.2f}  envoy {r['envoy_us_per_req']:.0f} us/req", flush=True)
    finally:
        for p in reversed(procs):
            prof.stop(p)
    summary = {}
    base = sum(r["rps"] for r in results["plain"]) / len(results["plain"])
    base_cpu = sum(r["envoy_us_per_req"] for r in results["plain"]) / len(results["plain"])
    plain_by_round = {r["round"]: r["rps"] for r in results["plain"]}
    print(f"\n{'target':18s} {'req/s by round':>16s} {'mean':>7s} {'/plain':>7s} {'/plain same round':>18s}"
          f" {'Envoy CPU us/req':>17s} {'x plain':>8s}")
    for key, rs in results.items():
        mean = sum(r["rps"] for r in rs) / len(rs)
        per_round = ", ".join("%.0f" % r["rps"] for r in rs)
        same = ", ".join("%.3f" % (r["rps"] / plain_by_round[r["round"]]) for r in rs)
        cpu = sum(r["envoy_us_per_req"] for r in rs) / len(rs)
        summary[key] = {"rps": [round(r["rps"]) for r in rs], "mean": round(mean), "ratio_to_plain": mean / base,
                        "ratio_to_plain_same_round": [r["rps"] / plain_by_round[r["round"]] for r in rs],
                        "envoy_us_per_req": cpu, "envoy_cpu_ratio_to_plain": cpu / base_cpu}
        print(f"{key:18s} {per_round:>16s} {mean:7.0f} {mean / base:7.3f} {same:>18s} {cpu:17.1f} {cpu / base_cpu:8.2f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "summary": summary, "runs": results},
                                indent=2))
    print(f"wrote {a.out}; workdir {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
