#!/usr/bin/env python3
"""Correctness smoke for the native gateway (bench/native-gateway): renders the
bootstrap as profile.py does (native = the dynamic module in the Wasm filter's
place), starts the mock and Envoy (no valgrind) for the Wasm gateway and the
native one, sends the same requests to both and compares status and JSON shape.

    (cd bench/native-gateway && nice cargo build --release)
    .venv/bin/python bench/native-gateway/smoke.py
"""
import http.client, json, os, subprocess, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import profile as prof  # bench/profile.py

CHAT, MESSAGES = prof.CHAT, prof.MESSAGES


VOLATILE = {"id", "created"}


def norm(v):
    """The JSON minus per-request ids and timestamps."""
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items() if k not in VOLATILE}
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def sse_norm(data: bytes):
    out = []
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("data: ") and line[6:].strip() != "[DONE]":
            out.append(norm(json.loads(line[6:])))
        elif line.strip():
            out.append(line)
    return out


def shape(v):
    """The JSON's structure: keys and value types, not the values."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x) for x in v[:1]]
    return type(v).__name__


CASES = [
    # name, path, body (bytes), extra headers
    ("openai passthrough", CHAT, json.dumps(prof.request_body(CHAT, "bench-openai", False)).encode(), {}),
    ("anthropic translated", CHAT, json.dumps(prof.request_body(CHAT, "bench-anthropic", False)).encode(), {}),
    ("anthropic translated, stream", CHAT, json.dumps(prof.request_body(CHAT, "bench-anthropic", True)).encode(), {}),
    ("messages client -> openai", MESSAGES, json.dumps(prof.request_body(MESSAGES, "bench-openai", False)).encode(), {}),
    ("invalid body", CHAT, b'{"model": "bench-openai", "messages": [', {}),
    ("unknown model", CHAT, json.dumps(prof.request_body(CHAT, "no-such-model", False)).encode(), {}),
    ("chunked body (2 frames)", CHAT, None, {}),
]


def send(port, path, body, chunked=False):
    c = http.client.HTTPConnection(prof.HOST, port, timeout=30)
    hs = {"content-type": "application/json", "authorization": f"Bearer {prof.KEY}", "x-mock-chunk-chars": "2"}
    if chunked:
        raw = json.dumps(prof.request_body(CHAT, "bench-anthropic", False)).encode()
        half = len(raw) // 2

        def gen():
            yield raw[:half]
            yield raw[half:]
        c.request("POST", path, body=gen(), headers={**hs, "transfer-encoding": "chunked"}, encode_chunked=True)
    else:
        c.request("POST", path, body=body, headers=hs)
    r = c.getresponse()
    data = r.read()
    return r.status, dict(r.getheaders()), data


def run(key, work, mport):
    port, admin = prof.bench_run.free_port(), prof.bench_run.free_port()
    boot = prof.render(work, f"http://{prof.HOST}:{mport}", port, admin, key)
    log = open(work / f"{key}.envoy.log", "w")
    envoy = subprocess.Popen([prof.envoy_binary(), "-c", str(boot), "--concurrency", "2",
                              "--disable-hot-restart", "--log-level", "warn",
                              "--component-log-level", "dynamic_modules:info,wasm:info"],
                             stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
                             env={**os.environ, "ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(prof.NATIVE_DIR),
                                  "LLMGW_NATIVE_DUMP_METRICS": "1"})
    out = {}
    try:
        prof.wait_http(f"http://{prof.HOST}:{admin}/ready", envoy, 60)
        for name, path, body, _ in CASES:
            st, hs, data = send(port, path, body, chunked=body is None)
            try:
                j = json.loads(data)
                sh = shape(j)
            except ValueError:
                j, sh = sse_norm(data), "<SSE>"
            out[name] = (st, hs.get("x-llm-gateway-target"), sh, j, data)
    finally:
        prof.stop(envoy)
        log.close()
    return out


def main():
    work = Path(tempfile.mkdtemp(prefix="llmgw-native-gw-smoke-"))
    mport = prof.bench_run.free_port()
    mock = subprocess.Popen([str(prof.MOCK), "--listen", f"{prof.HOST}:{mport}", "--no-record"],
                            stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        prof.wait_http(f"http://{prof.HOST}:{mport}/__mock/health", mock, 15)
        wasm = run("gw-smoke", work, mport)
        native = run("native-smoke", work, mport)
    finally:
        prof.stop(mock)
    ok = True
    for name, *_ in CASES:
        w, n = wasm[name], native[name]
        same_body = norm(w[3]) == norm(n[3])
        same = w[0] == n[0] and w[2] == n[2] and w[1] == n[1] and same_body
        ok &= same
        print(f"{name:32s} wasm {w[0]} native {n[0]}  target hdr wasm={w[1]} native={n[1]}  "
              f"shape {'same' if w[2] == n[2] else 'DIFFERENT'}  "
              f"body minus id/created {'identical' if same_body else 'DIFFERENT'}")
        print(f"    native body: {n[4][:300]!r}")
        if w[2] != n[2]:
            print(f"    wasm body:   {w[4][:300]!r}")
    log = (work / "native-smoke.envoy.log").read_text()
    lines = [ln for ln in log.splitlines() if "llm-gateway" in ln or "llmgw-metric" in ln or "critical" in ln
             or "error" in ln.lower()]
    print("\n".join(lines[:12]))
    metrics = [ln.split("llmgw-metric ", 1)[1] for ln in log.splitlines() if "llmgw-metric" in ln]
    print(f"native in-module metrics (last dump, {len(set(metrics))} distinct lines):")
    for m in sorted(set(metrics))[-12:]:
        print("   ", m)
    print("workdir", work)
    print("SMOKE", "OK (native == wasm on status, target header, JSON shape, body minus id/created)" if ok else "DIFFERENCES")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
