#!/usr/bin/env python3
"""Side-by-side end-to-end benchmark of llm-gateway (Envoy + the Wasm filter)
against the same mock upstream reached directly, through plain Envoy, through
LiteLLM's proxy and through Portkey's gateway.

Run it with the bench venv (`make bench` sets everything up):

    .venv-bench/bin/python bench/run.py --native target/bench/translate.txt

`--quick` does a few-second smoke run of the whole pipeline (results go to
target/bench/quick/, the committed BENCHMARKS.md is left alone).

Every process it starts gets its own process group and is stopped (SIGTERM,
then SIGKILL) when the run ends, fails or is interrupted. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
WASM = Path(os.environ.get("BENCH_WASM") or ROOT / "target/wasm32-wasip1/release/llm_gateway.wasm")
FLOOR_WASM = ROOT / "target/wasm32-wasip1/release/llm_gateway_floor.wasm"
RENDER = ROOT / "target/release/llm-gateway-render"
MOCK = ROOT / "target/mock/release/mock-provider"
ENVOY = os.environ.get("ENVOY") or str(ROOT / ".venv/bin/envoy")
LITELLM = ROOT / ".venv-bench/bin/litellm"
PORTKEY_DIR = BENCH / "node_modules/@portkey-ai/gateway"
PORTKEY_JS = PORTKEY_DIR / "build/start-server.js"
PORTKEY_PRELOAD = BENCH / "portkey-loopback.mjs"
LUA = BENCH / "chat.lua"

CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
UPSTREAM_KEY = "sk-bench-upstream"
SYSTEM_PROMPT = "You are a helpful assistant."
USER_PROMPT = "Say hello in one short sentence."
EXPECTED_TEXT = f"Hello from mock-provider! You said: {USER_PROMPT}"
CHUNK_CHARS = 2  # x-mock-chunk-chars: many small SSE events per stream
KNOBS = {"x-mock-chunk-chars": str(CHUNK_CHARS)}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def request_body(model: str, stream: bool) -> str:
    """Byte-identical to bench/chat.lua's body."""
    body = (f'{{"model":"{model}","messages":[{{"role":"system","content":"{SYSTEM_PROMPT}"}},'
            f'{{"role":"user","content":"{USER_PROMPT}"}}]')
    return body + (',"stream":true}' if stream else "}")


# ---------------------------------------------------------------- processes

LIVE: list["Proc"] = []


class Proc:
    """A child in its own session/process group; stop() ends the whole group."""

    def __init__(self, name: str, argv: list[str], logdir: Path, env: dict | None = None,
                 cpus: str | None = None, cwd: Path | None = None):
        self.name = name
        self.argv = (["taskset", "-c", cpus] if cpus else []) + [str(a) for a in argv]
        self.log_path = logdir / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.popen = subprocess.Popen(
            self.argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True)
        self.pgid = self.popen.pid  # session leader: pgid == pid
        LIVE.append(self)

    @property
    def command(self) -> str:
        return shlex.join(self.argv).replace(str(ROOT) + "/", "")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pids(self) -> list[int]:
        return group_pids(self.pgid)

    def tail(self, n: int = 3000) -> str:
        self.log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (workers of a dead leader, or a leader
        # that ignored SIGTERM) is killed.
        deadline = time.time() + timeout
        while group_pids(self.pgid) and time.time() < deadline:
            time.sleep(0.1)
        if group_pids(self.pgid):
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()
        if self in LIVE:
            LIVE.remove(self)


def stop_all() -> None:
    for p in reversed(list(LIVE)):
        try:
            p.stop()
        except Exception as e:  # keep stopping the others
            log(f"could not stop {p.name}: {e}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: Proc, timeout: float, ok=lambda r: r.status_code == 200) -> None:
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}): {proc.tail()}")
        try:
            r = httpx.get(url, timeout=2)
            if ok(r):
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f} s ({last}): {proc.tail()}")


# ---------------------------------------------------------------- /proc

def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # fields after "pid (comm)"; comm may contain spaces and parentheses
    return raw[raw.rindex(")") + 2:].split()


def group_pids(pgid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = _stat_fields(int(d))
            # f[0]=state f[1]=ppid f[2]=pgrp
            if f and int(f[2]) == pgid and f[0] != "Z":
                out.append(int(d))
    return out


def group_cpu_s(pgid: int) -> float:
    """utime + stime of every live process of the group (all threads)."""
    ticks = 0
    for pid in group_pids(pgid):
        f = _stat_fields(pid)
        if f:
            ticks += int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)
    return ticks / CLK_TCK


def group_rss_kb(pgid: int) -> int:
    total = 0
    for pid in group_pids(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def system_cpu() -> tuple[float, float, float, float]:
    """(task time, irq+softirq time, steal, total) in seconds summed over all
    CPUs, from /proc/stat. Task time (user+nice+system) is what processes are
    charged; interrupt time (here: mostly the loopback network stack) is not."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = f
    return ((user + nice + system) / CLK_TCK, (irq + softirq) / CLK_TCK, steal / CLK_TCK,
            sum(f) / CLK_TCK)


def self_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------- load

class Target:
    """How to talk to one system under test (or to one of the mock's endpoints)."""

    def __init__(self, url: str, model: str | None, headers: dict[str, str],
                 path: str = "/v1/chat/completions", stream_path: str | None = None,
                 body=None, openai: bool = True):
        self.url, self.model, self.headers, self.path = url, model, headers, path
        self.stream_path = stream_path
        self.body = body  # callable(stream) -> str, for non-OpenAI endpoints
        self.openai = openai  # answers in OpenAI's format (checked by smoke())

    def path_for(self, stream: bool) -> str:
        return self.stream_path if stream and self.stream_path else self.path

    def body_for(self, stream: bool) -> str:
        return self.body(stream) if self.body else request_body(self.model, stream)


def anthropic_native_body(stream: bool) -> str:
    """What llm-gateway sends the mock for the benchmark request (Anthropic)."""
    b = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": SYSTEM_PROMPT,
         "messages": [{"role": "user", "content": USER_PROMPT}]}
    if stream:
        b["stream"] = True
    return json.dumps(b, separators=(",", ":"))


def gemini_native_body(stream: bool) -> str:
    """What llm-gateway sends the mock for the benchmark request (Gemini)."""
    return json.dumps({"contents": [{"role": "user", "parts": [{"text": USER_PROMPT}]}],
                       "systemInstruction": {"parts": [{"text": SYSTEM_PROMPT}]}},
                      separators=(",", ":"))


def wrk_argv(t: Target, connections: int, duration: float, cpus: str) -> list[str]:
    return ["taskset", "-c", cpus, "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s",
            "--timeout", "10s", "-s", str(LUA), t.url]


def run_wrk(t: Target, stream: bool, connections: int, duration: float, workdir: Path,
            cpus: str, sut_pgid: int | None, mock_pgid: int | None, tag: str,
            mix: str | None = None, bench_pgids=()) -> dict:
    out = workdir / f"wrk-{tag}.json"
    out.unlink(missing_ok=True)
    env = {**os.environ,
           "BENCH_PATH": t.path_for(stream), "BENCH_BODY": t.body_for(stream),
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in t.headers.items()),
           "BENCH_OUT": str(out)}
    if mix:
        env["BENCH_MIX"] = mix
    argv = wrk_argv(t, connections, duration, cpus)
    before = _counters(sut_pgid, mock_pgid, bench_pgids)
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    try:
        text, _ = p.communicate(timeout=duration + 60)
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        raise
    after = _counters(sut_pgid, mock_pgid, bench_pgids)
    if p.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({p.returncode}): {text[-2000:]}")
    r = json.loads(out.read_text())
    secs = r["duration_us"] / 1e6
    n = r["requests"]
    r["rps"] = n / secs if secs else 0.0
    r["stream"] = stream
    r["connections"] = connections
    r["command"] = (f"BENCH_PATH={t.path_for(stream)} BENCH_BODY={shlex.quote(t.body_for(stream))} "
                    + shlex.join(argv)).replace(str(ROOT) + "/", "")
    cpu = {k: after[k] - before[k] for k in after}
    other = other_cores(before, after, 1.0)  # CPU seconds
    r["cpu"] = {
        "sut_s": cpu["sut"], "mock_s": cpu["mock"], "wrk_s": cpu["wrk"],
        "machine_task_s": cpu["task"], "machine_irq_s": cpu["irq"],
        "machine_total_s": cpu["total"], "steal_s": cpu["steal"],
        "idle_share": 1 - (cpu["task"] + cpu["irq"] + cpu["steal"]) / cpu["total"] if cpu["total"] else None,
        "other_s": max(other, 0.0),
        # CPU time of the system under test per request, microseconds
        "sut_us_per_req": cpu["sut"] / n * 1e6 if n else None,
        "mock_us_per_req": cpu["mock"] / n * 1e6 if n else None,
        # cores kept busy by processes that are not part of this benchmark
        "other_cores": max(other, 0.0) / secs if secs else None,
        # cores the hypervisor gave to someone else while we wanted them
        "steal_cores": cpu["steal"] / secs if secs else None,
    }
    errs = r["errors"]
    r["error_count"] = sum(errs.values())
    return r


def _counters(sut_pgid: int | None, mock_pgid: int | None, bench_pgids=()) -> dict:
    """CPU seconds so far: the machine's, the system under test's, the mock's,
    other benchmark processes' (idle systems of phase 2), wrk's and ours."""
    task, irq, steal, total = system_cpu()
    sut = group_cpu_s(sut_pgid) if sut_pgid else 0.0
    mock = group_cpu_s(mock_pgid) if mock_pgid and mock_pgid != sut_pgid else 0.0
    bench = sum(group_cpu_s(g) for g in bench_pgids if g not in (sut_pgid, mock_pgid))
    return {"task": task, "irq": irq, "total": total, "steal": steal, "sut": sut, "mock": mock,
            "bench": bench, "wrk": children_cpu_s(), "self": self_cpu_s()}


def other_cores(before: dict, after: dict, seconds: float) -> float:
    """Cores used by processes outside the benchmark between two _counters()."""
    d = {k: after[k] - before[k] for k in after}
    # Per-process times (scaled to the scheduler's runtime) include the softirq
    # work done in a process's context (here mostly the loopback network
    # stack), which /proc/stat books as irq time: compare with task + irq.
    other = d["task"] + d["irq"] - d["sut"] - d["mock"] - d["bench"] - d["wrk"] - d["self"]
    return max(other, 0.0) / seconds if seconds else 0.0


def parse_sse(raw: bytes) -> tuple[int, str, bool]:
    """(data events, concatenated delta content, saw [DONE]) of an OpenAI stream."""
    events, text, done = 0, [], False
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        events += 1
        if data == "[DONE]":
            done = True
            continue
        obj = json.loads(data)
        if "error" in obj:
            raise RuntimeError(f"error event in stream: {data}")
        for ch in obj.get("choices") or []:
            c = (ch.get("delta") or {}).get("content")
            if c:
                text.append(c)
    return events, "".join(text), done


def smoke(t: Target) -> dict:
    """One non-streamed and one streamed request, checked end to end."""
    h = {"content-type": "application/json", **t.headers}
    r = httpx.post(t.url + t.path_for(False), content=t.body_for(False), headers=h, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"non-stream smoke: HTTP {r.status_code}: {r.text[:500]}")
    content = r.json()["choices"][0]["message"]["content"]
    if content != EXPECTED_TEXT:
        raise RuntimeError(f"non-stream smoke: unexpected content {content!r}")
    r = httpx.post(t.url + t.path_for(True), content=t.body_for(True), headers=h, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"stream smoke: HTTP {r.status_code}: {r.text[:500]}")
    events, text, done = parse_sse(r.content)
    if text != EXPECTED_TEXT or not done:
        raise RuntimeError(f"stream smoke: content {text!r}, [DONE] seen: {done}")
    return {"stream_events": events, "stream_bytes": len(r.content),
            "content_events": -(-len(EXPECTED_TEXT) // CHUNK_CHARS)}


def pct(sorted_xs: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_xs:
        return float("nan")
    k = max(0, min(len(sorted_xs) - 1, int(round(p / 100 * len(sorted_xs) + 0.5)) - 1))
    return sorted_xs[k]


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on a plain socket, for timing.
    httpx costs about a millisecond per request on this VM, with jitter of
    the same order as the 100 µs being measured; this client's own cost is a
    few tens of microseconds. It times the first byte of the decoded response
    body (after the status line, headers and first chunk-size line) and the
    end of the body."""

    def __init__(self, url: str):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("connection closed by the server mid-response")
        self.buf += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def request(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, int, int, bytes]:
        """(status, ns to first body byte, ns to end of body, body)."""
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = b""
        hdrs = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = (f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
               f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{hdrs}\r\n"
               ).encode() + body
        t0 = time.perf_counter_ns()
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        h = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            h[k.strip().lower()] = v.strip()
        parts, t_first = [], None
        if "chunked" in h.get("transfer-encoding", "").lower():
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers, then the empty line
                        pass
                    break
                while not self.buf:
                    self._fill()
                if t_first is None:
                    t_first = time.perf_counter_ns()
                while len(self.buf) < size + 2:
                    self._fill()
                parts.append(self.buf[:size])
                self.buf = self.buf[size + 2:]
        else:
            n = int(h.get("content-length", "0"))
            if n:
                while not self.buf:
                    self._fill()
                t_first = time.perf_counter_ns()
                while len(self.buf) < n:
                    self._fill()
                parts.append(self.buf[:n])
                self.buf = self.buf[n:]
        t_end = time.perf_counter_ns()
        if h.get("connection", "").lower() == "close":
            self.close()
        return status, (t_first or t_end) - t0, t_end - t0, b"".join(parts)


def probe_interleaved(targets: dict[str, Target], n: int, stream: bool, warm: int = 20) -> dict:
    """n sequential requests per target, interleaved request by request over
    the targets (one keep-alive connection each, the order rotated every
    round) so drifts of the shared machine hit every target alike. Per
    request: time to the first response body byte and to the end of the
    response, in microseconds."""
    keys = list(targets)
    clients = {k: RawClient(targets[k].url) for k in keys}
    first = {k: [] for k in keys}
    last = {k: [] for k in keys}
    events = {}
    what = "TTFT probe" if stream else "latency probe"
    try:
        for i in range(warm + n):
            order = keys[i % len(keys):] + keys[:i % len(keys)]  # rotate the order
            for k in order:
                t = targets[k]
                status, tf, tl, raw = clients[k].request(t.path_for(stream), t.body_for(stream).encode(),
                                                         t.headers)
                if status != 200:
                    raise RuntimeError(f"{what} {k}: HTTP {status}: {raw[:300]!r}")
                if i >= warm:
                    first[k].append(tf / 1e3)
                    last[k].append(tl / 1e3)
                if i == warm and stream:
                    if t.openai:
                        ev, text, done = parse_sse(raw)
                        if text != EXPECTED_TEXT or not done:
                            raise RuntimeError(f"{what} {k}: bad stream {text!r}")
                        events[k] = ev
                    else:
                        events[k] = raw.count(b"data:")
                elif i == warm and t.openai:
                    content = json.loads(raw)["choices"][0]["message"]["content"]
                    if content != EXPECTED_TEXT:
                        raise RuntimeError(f"{what} {k}: unexpected content {content!r}")
    finally:
        for c in clients.values():
            c.close()
    out = {}
    for k in keys:
        f, l_ = sorted(first[k]), sorted(last[k])
        if stream:
            out[k] = {"n": len(f), "ttft_p50_us": statistics.median(f), "ttft_p99_us": pct(f, 99),
                      "ttft_min_us": f[0], "ttlb_p50_us": statistics.median(l_),
                      "ttlb_p99_us": pct(l_, 99), "events": events.get(k)}
        else:
            out[k] = {"n": len(l_), "p50_us": statistics.median(l_), "p90_us": pct(l_, 90),
                      "p99_us": pct(l_, 99), "min_us": l_[0], "mean_us": statistics.mean(l_)}
    return out


# ---------------------------------------------------------------- systems

class Ctx:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.cpus = args.cpus
        self.mock: Proc | None = None
        self.mock_url = ""
        self.commands: dict[str, str] = {}
        self.configs: dict[str, str] = {}


def start_mock(ctx: Ctx) -> None:
    port = free_port()
    p = Proc("mock", [MOCK, "--listen", f"{HOST}:{port}", "--no-record",
                      "--threads", str(ctx.args.mock_threads)], ctx.workdir, cpus=ctx.cpus)
    ctx.mock, ctx.mock_url = p, f"http://{HOST}:{port}"
    wait_http(f"{ctx.mock_url}/__mock/health", p, 15)
    ctx.commands["mock"] = p.command


def gateway_config(mock_url: str, port: int, admin: int) -> dict:
    """The gateway file every llm-gateway system here runs (also `bench/profile.py`)."""
    m = mock_url
    return {
        "listener": {"address": HOST, "port": port},
        "admin": {"address": HOST, "port": admin},
        "envoy": {"access_log": "none"},
        "providers": [
            {"name": "mock_openai", "type": "openai", "base_url": f"{m}/v1", "api_key": UPSTREAM_KEY},
            {"name": "mock_anthropic", "type": "anthropic", "base_url": f"{m}/v1",
             "api_key": UPSTREAM_KEY},
            {"name": "mock_gemini", "type": "gemini", "base_url": f"{m}/v1beta",
             "api_key": UPSTREAM_KEY},
        ],
        "models": [
            {"name": "bench-openai", "targets": [{"provider": "mock_openai", "model": "gpt-4o-mini"}]},
            {"name": "bench-anthropic",
             "targets": [{"provider": "mock_anthropic", "model": "claude-sonnet-4-5",
                          "max_tokens": 1024}]},
            {"name": "bench-gemini",
             "targets": [{"provider": "mock_gemini", "model": "gemini-2.5-flash"}]},
        ],
    }


def render_gateway(ctx: Ctx, name: str) -> tuple[Path, int, int]:
    port, admin = free_port(), free_port()
    cfg = ctx.workdir / f"{name}.gateway.yaml"
    cfg.write_text(yaml.safe_dump(gateway_config(ctx.mock_url, port, admin), sort_keys=False))
    out = ctx.workdir / f"{name}.envoy.yaml"
    subprocess.run([str(RENDER), "--config", str(cfg), "--wasm", str(WASM), "--out", str(out)],
                   check=True)
    ctx.configs.setdefault("gateway.yaml (rendered with llm-gateway-render)", cfg.read_text())
    return out, port, admin


def _hcm(boot: dict) -> dict:
    return boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def without_filter(boot: dict) -> None:
    """A rendered bootstrap minus the Wasm filter, every route sent to the
    mock's OpenAI cluster; every other Envoy setting stays identical."""
    hcm = _hcm(boot)
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != "envoy.filters.http.wasm"]
    assert hcm["http_filters"][-1]["name"] == "envoy.filters.http.router"
    for vh in hcm["route_config"]["virtual_hosts"]:
        for route in vh["routes"]:
            route["route"] = {"cluster": "llmgw_mock_openai", "timeout": "300s"}
            route.pop("request_headers_to_remove", None)


def with_floor_filter(boot: dict, twin: str = "") -> None:
    """A rendered bootstrap with the floor filter in place of llm-gateway,
    routing every request to the mock's OpenAI cluster. `twin` ("calls", or
    "calls anthropic") makes it add llm-gateway's host calls without its logic
    (bench/floor-filter); FLOOR_TWIN_SKIP (e.g. "-pairs") leaves groups out."""
    wasm = next(f for f in _hcm(boot)["http_filters"]
                if f["name"] == "envoy.filters.http.wasm")["typed_config"]["config"]
    wasm["vm_config"]["code"]["local"]["filename"] = str(FLOOR_WASM)
    words = ["llmgw_mock_openai"]
    if twin:
        words += [twin, os.environ.get("FLOOR_TWIN_SKIP", "")]
    wasm["configuration"]["value"] = " ".join(words).strip()


def plain_envoy_config(ctx: Ctx) -> tuple[Path, int, int]:
    """The rendered gateway bootstrap minus the Wasm filter, its route pointed at
    the mock's OpenAI cluster: every other Envoy setting stays identical."""
    rendered, port, admin = render_gateway(ctx, "envoy-plain-src")
    boot = yaml.safe_load(rendered.read_text())
    without_filter(boot)
    out = ctx.workdir / "envoy-plain.yaml"
    out.write_text(yaml.safe_dump(boot, sort_keys=False))
    return out, port, admin


def sys_floor(ctx: Ctx, twin: str = ""):
    """The rendered gateway bootstrap with the floor filter (bench/floor-filter)
    in place of llm-gateway: only the work any filter routing on the body's
    `model` must do. Its RPS is the ceiling for such a filter on this Envoy.
    With `twin` it also makes llm-gateway's host calls (see `with_floor_filter`)."""
    if not FLOOR_WASM.exists():
        raise RuntimeError(f"{FLOOR_WASM} missing: `make profile` builds it")
    name = "envoy-floor" + ("-twin" if twin else "") + ("-anthropic" if "anthropic" in twin else "")
    rendered, port, admin = render_gateway(ctx, f"{name}-src")
    boot = yaml.safe_load(rendered.read_text())
    with_floor_filter(boot, twin)
    out = ctx.workdir / f"{name}.yaml"
    out.write_text(yaml.safe_dump(boot, sort_keys=False))
    what = ("the floor filter making llm-gateway's host calls "
            + ("translating to Anthropic" if "anthropic" in twin else "passing through")) if twin else "floor filter"
    return _sys_mock_openai_envoy(
        ctx, name, out, port, admin,
        f"{name}.yaml (derived: rendered bootstrap, {what} instead of llm-gateway)",
        "# http_filters: [wasm (bench/floor-filter, routes every request to llmgw_mock_openai"
        + (f"; configuration 'llmgw_mock_openai {twin}'" if twin else "") + "), router]\n")


def sys_floor_twin(ctx: Ctx):
    return sys_floor(ctx, "calls")


def sys_floor_twin_anthropic(ctx: Ctx):
    return sys_floor(ctx, "calls anthropic")


def _sys_mock_openai_envoy(ctx: Ctx, name: str, boot: Path, port: int, admin: int,
                           config_title: str, config_note: str):
    """Starts an Envoy whose every request goes to the mock's OpenAI endpoint."""
    p = start_envoy(ctx, name, boot, admin)
    ctx.configs[config_title] = config_note
    t = Target(f"http://{HOST}:{port}", "gpt-4o-mini",
               {"authorization": f"Bearer {UPSTREAM_KEY}", **KNOBS})
    return p, t, {"admin": f"http://{HOST}:{admin}"}


def start_envoy(ctx: Ctx, name: str, bootstrap: Path, admin: int) -> Proc:
    p = Proc(name, [ENVOY, "-c", bootstrap, "--concurrency", "2", "--disable-hot-restart",
                    "--log-level", "warn"], ctx.workdir, cpus=ctx.cpus)
    wait_http(f"http://{HOST}:{admin}/ready", p, 60)
    return p


def sys_mock(ctx: Ctx):
    t = Target(ctx.mock_url, "gpt-4o-mini",
               {"authorization": f"Bearer {UPSTREAM_KEY}", **KNOBS})
    return ctx.mock, t, {}


def sys_envoy(ctx: Ctx):
    boot, port, admin = plain_envoy_config(ctx)
    return _sys_mock_openai_envoy(
        ctx, "envoy-plain", boot, port, admin,
        "envoy-plain.yaml (derived: rendered bootstrap minus the Wasm filter)",
        "# http_filters: [envoy.filters.http.router] only; route: {cluster: llmgw_mock_openai}\n")


def _sys_gateway(ctx: Ctx, name: str, model: str):
    boot, port, admin = render_gateway(ctx, name)
    p = start_envoy(ctx, name, boot, admin)
    url = f"http://{HOST}:{port}"
    wait_http(f"{url}/v1/models", p, 10)
    # Clients of the gateway send no provider key: the filter adds the upstream one.
    return p, Target(url, model, dict(KNOBS)), {"admin": f"http://{HOST}:{admin}"}


def sys_gw_openai(ctx):
    return _sys_gateway(ctx, "gw-openai", "bench-openai")


def sys_gw_anthropic(ctx):
    return _sys_gateway(ctx, "gw-anthropic", "bench-anthropic")


def sys_gw_gemini(ctx):
    return _sys_gateway(ctx, "gw-gemini", "bench-gemini")


def _sys_litellm(ctx: Ctx, name: str, workers: int | None):
    if not LITELLM.exists():
        raise RuntimeError(f"{LITELLM} missing: `make bench` installs it (bench/requirements.txt)")
    port = free_port()
    master = "sk-" + secrets.token_hex(16)
    cfg = {
        "model_list": [{
            "model_name": "bench-openai",
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_base": f"{ctx.mock_url}/v1",
                "api_key": UPSTREAM_KEY,
                # LiteLLM does not forward client headers upstream by default;
                # the mock's chunk-size knob is set here instead.
                "extra_headers": dict(KNOBS),
            },
        }],
        "general_settings": {"master_key": master},
    }
    path = ctx.workdir / f"{name}.config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    shown = yaml.safe_dump(cfg, sort_keys=False).replace(master, "sk-<random per run>")
    ctx.configs["litellm config.yaml"] = shown
    # Per-request access logging is off on every system: uvicorn's access log
    # (on by default) is silenced, errors still go to the log.
    logcfg = ctx.workdir / "litellm-logging.json"
    logcfg.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"default": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {"uvicorn": {"handlers": ["default"], "level": "INFO"},
                    "uvicorn.error": {"level": "INFO"},
                    "uvicorn.access": {"handlers": ["default"], "level": "WARNING",
                                       "propagate": False}},
    }, indent=1))
    argv = [LITELLM, "--config", path, "--host", HOST, "--port", str(port),
            "--log_config", logcfg, "--telemetry", "False"]
    if workers:
        argv += ["--num_workers", str(workers)]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    p = Proc(name, argv, ctx.workdir, env=env, cpus=ctx.cpus)
    url = f"http://{HOST}:{port}"
    wait_http(f"{url}/health/liveliness", p, 120)
    return p, Target(url, "bench-openai", {"authorization": f"Bearer {master}"}), {}


def sys_litellm(ctx):
    return _sys_litellm(ctx, "litellm", None)


def sys_litellm_2w(ctx):
    return _sys_litellm(ctx, "litellm-2w", 2)


def sys_portkey(ctx: Ctx):
    node = shutil.which("node")
    if not node:
        raise RuntimeError("node not found")
    if not PORTKEY_JS.exists():
        raise RuntimeError(f"{PORTKEY_JS} missing: `make bench` installs it (bench/package.json)")
    port = free_port()
    argv = [node, "--import", PORTKEY_PRELOAD, PORTKEY_JS, "--headless", f"--port={port}"]
    p = Proc("portkey", argv, ctx.workdir, env={**os.environ, "PORTKEY_BIND_HOST": HOST},
             cpus=ctx.cpus, cwd=BENCH)
    url = f"http://{HOST}:{port}"
    wait_http(f"{url}/", p, 60)
    headers = {"authorization": f"Bearer {UPSTREAM_KEY}",
               "x-portkey-provider": "openai",
               "x-portkey-custom-host": f"{ctx.mock_url}/v1",
               "x-portkey-forward-headers": ",".join(KNOBS),
               **KNOBS}
    return p, Target(url, "gpt-4o-mini", headers), {}


SYSTEMS = [
    # key, label, starter, kind
    ("mock", "mock (direct)", sys_mock, "baseline"),
    ("envoy", "plain Envoy", sys_envoy, "envoy"),
    ("floor", "floor filter (body routing only)", sys_floor, "envoy"),
    ("floor-twin", "floor filter + llm-gateway's passthrough host calls (no logic)", sys_floor_twin, "envoy"),
    ("floor-twin-anthropic", "floor filter + llm-gateway's host calls translating to Anthropic (no logic)",
     sys_floor_twin_anthropic, "envoy"),
    ("gw-openai", "llm-gateway → OpenAI", sys_gw_openai, "gateway"),
    ("gw-anthropic", "llm-gateway → Anthropic", sys_gw_anthropic, "gateway"),
    ("gw-gemini", "llm-gateway → Gemini", sys_gw_gemini, "gateway"),
    ("litellm", "LiteLLM (1 worker, default)", sys_litellm, "litellm"),
    ("litellm-2w", "LiteLLM (2 workers)", sys_litellm_2w, "litellm"),
    ("portkey", "Portkey", sys_portkey, "portkey"),
]


PERF_HISTORY = BENCH / "perf-history.json"

# BENCHMARKS.md's hand-written sections (studies, one-off measurements) lie
# between these lines; a run keeps them instead of dropping them.
KEPT_BEGIN = "<!-- hand-written: bench/run.py keeps what lies between these lines -->"
KEPT_END = "<!-- end of hand-written -->"


def kept_notes(path: Path) -> str | None:
    """The hand-written block of an existing report, markers included."""
    if not path.exists():
        return None
    text = path.read_text()
    begin, end = text.find(KEPT_BEGIN), text.find(KEPT_END)
    if begin < 0 or end < begin:
        return None
    return text[begin:end + len(KEPT_END)]


def write_profile(w, R: dict) -> None:
    """Instructions per request inside Envoy (callgrind), this run and the
    recorded before/after steps of the filter's performance work."""
    w("## Instructions per request inside Envoy (callgrind)")
    w("")
    prof = R.get("profile")
    if prof:
        sc = prof["scenarios"]
        plain = sc.get("plain", {}).get("instructions_per_request")
        plain_s = sc.get("plain-stream", {}).get("instructions_per_request")
        w(f"`make profile` ({prof['date']}): Envoy under `valgrind --tool=callgrind`, one worker, "
          "requests sent one at a time after a warm-up; instructions of the whole Envoy process "
          "(its code, V8's code for the filter, libc; not the kernel) divided by requests. These "
          "counts repeat to within 1–2 % (plain Envoy measured 187–190 k across runs) whatever else "
          "the machine does, so they show what a change to the filter costs where wall-clock numbers "
          "on this VM cannot. *Floor filter* "
          "(`bench/floor-filter`) does only what any filter routing on the body must: hold the "
          "headers, buffer and read the body, set the routing header, write the body back, mark "
          "the response.")
        w("")
        w("| scenario | instructions/request | vs plain Envoy | above the floor filter |")
        w("|---|---:|---:|---:|")
        floor = sc.get("floor", {}).get("instructions_per_request")
        for key, r in sc.items():
            n = r["instructions_per_request"]
            base = plain_s if key.endswith("stream") else plain
            ratio = f"{n / base:.2f}×" if base else "–"
            above = (f"+{n - floor:,}" if floor and key.startswith("gw") and not key.endswith("stream")
                     else "–")
            w(f"| {r['label']} | {n:,} | {ratio} | {above} |")
        w("")
    else:
        w("Not run in this invocation (`make profile` writes `target/bench/profile.json`; "
          "`bench/run.py --profile FILE` embeds it; `make bench` does both).")
        w("")
    if PERF_HISTORY.exists():
        hist = json.loads(PERF_HISTORY.read_text())
        w("### Performance work: before and after")
        w("")
        w(hist["method"])
        w("")
        cols = hist["columns"]
        w("| step | " + " | ".join(cols) + " |")
        w("|---|" + "---:|" * len(cols))
        for step in hist["steps"]:
            w(f"| {step['step']} | " + " | ".join(step["values"].get(c, "–") for c in cols) + " |")
        w("")
        for note in hist.get("notes", []):
            w(f"- {note}")
        w("")


def _fmt_log(r: dict) -> str:
    c = r["cpu"]
    cpu = f"{c['sut_us_per_req']:.0f} µs" if c["sut_us_per_req"] is not None else "–"
    return (f"{r['rps']:.0f} req/s, p50 {r['latency_us']['percentiles']['50']} µs, "
            f"p99 {r['latency_us']['percentiles']['99']} µs, errors {r['error_count']}, "
            f"SUT {cpu} CPU/req, other load {c['other_cores']:.2f} cores")


def bench_system(ctx: Ctx, key: str, label: str, starter, kind: str, rnd: int = 0) -> dict:
    """Phase 1 for one system, alone on the machine with the mock: fixed
    concurrency throughput/latency, CPU per request, memory."""
    a = ctx.args
    res: dict = {"key": key, "label": label, "kind": kind, "status": "ok"}
    proc = None
    try:
        t0 = time.time()
        proc, target, extra = starter(ctx)
        res["startup_s"] = time.time() - t0
        res["command"] = proc.command
        ctx.commands[key] = proc.command
        res["smoke"] = smoke(target)
        res["rss_start_kb"] = group_rss_kb(proc.pgid)
        mock_pgid = ctx.mock.pgid if ctx.mock else None
        common = dict(workdir=ctx.workdir, cpus=ctx.cpus, sut_pgid=proc.pgid, mock_pgid=mock_pgid)
        for stream in (False, True):
            mode = "stream" if stream else "nonstream"
            best = None
            for attempt in range(1 + a.max_retries):
                waited = wait_quiet(a.quiet_budget)
                if waited:
                    log(f"{key}: waited {waited:.0f} s for other load to drop")
                run_wrk(target, stream, a.connections, a.warmup, tag=f"{key}-r{rnd}-warm-{mode}", **common)
                log(f"{key}: {mode}, {a.connections} connections for {a.duration:g} s")
                r = run_wrk(target, stream, a.connections, a.duration,
                            tag=f"{key}-r{rnd}-{mode}-a{attempt}", **common)
                r["quiet_wait_s"] = waited
                r["attempt"] = attempt + 1
                log(f"{key}: {mode}: {_fmt_log(r)}")
                if best is None or r["cpu"]["other_cores"] < best["cpu"]["other_cores"]:
                    best = r
                # Other people's load landed on this run: measure it again while
                # the run's retry budget lasts, and keep the least disturbed one.
                cost = a.warmup + a.duration
                if (r["cpu"]["other_cores"] <= a.noisy_cores
                        or RETRY["spent"] + cost > a.retry_budget):
                    break
                RETRY["spent"] += cost
                log(f"{key}: {mode}: other load {r['cpu']['other_cores']:.2f} cores, measuring again")
            res[mode] = best
            if r["requests"] == 0:
                raise RuntimeError(f"{mode}: no request completed in {a.duration:g} s")
        res["rss_end_kb"] = group_rss_kb(proc.pgid)
        res["pids_at_end"] = len(proc.pids())
        if "admin" in extra:
            res["envoy_memory"] = httpx.get(extra["admin"] + "/memory", timeout=5).json()
    except Exception as e:
        res["status"] = "failed"
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc()
        log(f"{key}: FAILED: {res['error'][:1500]}")
    finally:
        if proc is not None and proc is not ctx.mock:
            proc.stop()
    return res


def merge_rounds(rounds: list[dict]) -> dict:
    """One row per system from its rounds: RPS and latency percentiles are the
    means of the rounds' values, CPU/req is total CPU ÷ total requests."""
    ok = [r for r in rounds if r["status"] == "ok"]
    base = dict(rounds[0])
    base["rounds"] = rounds
    if not ok:
        return base
    base.update({k: ok[0][k] for k in ("smoke", "command", "startup_s")})
    base["status"] = "ok"
    base["failed_rounds"] = [r["error"] for r in rounds if r["status"] != "ok"]
    base.pop("error", None)
    base.pop("traceback", None)
    for key in ("rss_start_kb", "rss_end_kb", "pids_at_end"):
        base[key] = round(statistics.mean(r[key] for r in ok))
    base["envoy_memory"] = ok[-1].get("envoy_memory")
    for mode in ("nonstream", "stream"):
        rs = [r[mode] for r in ok]
        n = sum(r["requests"] for r in rs)
        sut = sum(r["cpu"]["sut_s"] for r in rs)
        mock = sum(r["cpu"]["mock_s"] for r in rs)
        base[mode] = {
            "rps": statistics.mean(r["rps"] for r in rs),
            "rps_rounds": [r["rps"] for r in rs],
            "requests": n,
            "error_count": sum(r["error_count"] for r in rs),
            "latency_us": {"percentiles": {
                p: statistics.mean(r["latency_us"]["percentiles"][p] for r in rs)
                for p in ("50", "90", "99", "99.9")}},
            "cpu": {"sut_us_per_req": sut / n * 1e6 if n else None,
                    "mock_us_per_req": mock / n * 1e6 if n else None,
                    "other_cores": statistics.mean(r["cpu"]["other_cores"] for r in rs),
                    "other_cores_max": max(r["cpu"]["other_cores"] for r in rs),
                    "steal_cores": statistics.mean(r["cpu"]["steal_cores"] for r in rs),
                    "quiet_wait_s": sum(r.get("quiet_wait_s", 0) for r in rs),
                    "attempts": [r.get("attempt", 1) for r in rs]},
            "command": rs[0]["command"],
        }
    return base


QUIET = {"spent": 0.0}
RETRY = {"spent": 0.0}


def wait_quiet(budget: float, threshold: float = 0.3, window: float = 0.5, cap: float = 20) -> float:
    """Before a measured run: wait (at most `cap` s, and within the run's total
    `budget`) until processes outside the benchmark use less than `threshold`
    cores. The benchmark's own processes are idle at that moment, so the
    machine's task time is other people's. Returns the seconds waited."""
    waited = 0.0
    while QUIET["spent"] < budget and waited < cap:
        t0, i0, _, _ = system_cpu()
        s0 = self_cpu_s()
        time.sleep(window)
        t1, i1, _, _ = system_cpu()
        busy = (t1 + i1 - t0 - i0 - (self_cpu_s() - s0)) / window
        if busy < threshold:
            break
        time.sleep(1.0)
        waited += window + 1.0
        QUIET["spent"] += window + 1.0
    return waited


LATENCY_LABELS = {
    "mock": "mock, OpenAI endpoint (direct)",
    "mock-anthropic": "mock, Anthropic endpoint (direct)",
    "mock-gemini": "mock, Gemini endpoint (direct)",
    "mock-slow": "mock, OpenAI endpoint (direct; probed beside LiteLLM and Portkey)",
    "envoy": "plain Envoy → mock OpenAI",
    "gw-openai": "llm-gateway → OpenAI",
    "gw-anthropic": "llm-gateway → Anthropic",
    "gw-gemini": "llm-gateway → Gemini",
    "litellm": "LiteLLM (1 worker) → OpenAI",
    "portkey": "Portkey → OpenAI",
}
# the upstream endpoint each system's requests end on (for "added over its upstream");
# the slow systems are probed in their own group beside their own mock baseline
UPSTREAM_OF = {"envoy": "mock", "gw-openai": "mock", "gw-anthropic": "mock-anthropic",
               "gw-gemini": "mock-gemini", "litellm": "mock-slow", "portkey": "mock-slow"}
SLOW = ("litellm", "portkey")


def latency_phase(ctx: Ctx, wanted: list[str]) -> dict:
    """Phase 2: per-request latency with one request in flight, and TTFT.
    Every system is up at once but only one is ever sent a request; the
    systems are visited in rotating round-robin order, so drifts in the
    shared machine's load hit them alike (pairs like llm-gateway vs plain
    Envoy are measured seconds apart, many times, not minutes apart once)."""
    a = ctx.args
    out: dict = {"status": "ok", "c1": {}, "ttft": {}, "failed": {}}
    procs: list[Proc] = []
    m = ctx.mock_url
    up = f"Bearer {UPSTREAM_KEY}"
    targets: dict[str, Target] = {
        "mock": Target(m, "gpt-4o-mini", {"authorization": up, **KNOBS}),
        "mock-anthropic": Target(m, None, {"x-api-key": UPSTREAM_KEY,
                                           "anthropic-version": "2023-06-01", **KNOBS},
                                 path="/v1/messages", body=anthropic_native_body, openai=False),
        "mock-gemini": Target(m, None, {"x-goog-api-key": UPSTREAM_KEY, **KNOBS},
                              path="/v1beta/models/gemini-2.5-flash:generateContent",
                              stream_path="/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                              body=gemini_native_body, openai=False),
    }
    starters = [("envoy", sys_envoy), ("gw", sys_gw_openai), ("litellm", sys_litellm),
                ("portkey", sys_portkey)]
    try:
        for key, starter in starters:
            if key == "gw" and not {"gw-openai", "gw-anthropic", "gw-gemini"} & set(wanted):
                continue
            if key != "gw" and key not in wanted:
                continue
            try:
                proc, t, _ = starter(ctx)
                procs.append(proc)
                if key == "gw":
                    # one gateway Envoy, the three providers selected by model
                    for gk, model in (("gw-openai", "bench-openai"), ("gw-anthropic", "bench-anthropic"),
                                      ("gw-gemini", "bench-gemini")):
                        if gk in wanted:
                            targets[gk] = Target(t.url, model, t.headers)
                else:
                    targets[key] = t
            except Exception as e:
                out["failed"][key] = f"{type(e).__name__}: {e}"
                log(f"latency phase: {key} did not start: {e}")
        for k, t in targets.items():
            if t.openai:
                smoke(t)
        keys = list(targets)
        pgids = [ctx.mock.pgid] + [p.pgid for p in procs]
        # Two groups, each interleaved on its own: a request to LiteLLM (~13 ms) or
        # Portkey leaves the CPUs idle long enough that the next request, whoever
        # it goes to, pays a deep wake-up; the fast systems are compared among
        # themselves, the slow ones beside their own run of the direct mock.
        fast = {k: t for k, t in targets.items() if k not in SLOW}
        slow = {k: t for k, t in targets.items() if k in SLOW}
        if slow:
            slow = {"mock-slow": targets["mock"], **slow}
        groups = [g for g in (fast, slow) if g]
        log(f"latency phase: one request in flight, {a.c1_requests} non-streamed requests per "
            f"target over {len(keys)} targets, interleaved")
        t0, c0 = time.time(), _counters(None, None, pgids)
        for g in groups:
            out["c1"].update(probe_interleaved(g, a.c1_requests, stream=False, warm=50))
        c1_ = _counters(None, None, pgids)
        out["c1_other_cores"] = other_cores(c0, c1_, time.time() - t0)
        out["c1_steal_cores"] = (c1_["steal"] - c0["steal"]) / (time.time() - t0)
        for k, c in out["c1"].items():
            log(f"c1 {k}: p50 {c['p50_us']:.0f} µs, p99 {c['p99_us']:.0f} µs")
        log(f"latency phase: TTFT, {a.ttft_requests} streamed requests per target, interleaved")
        t0, c0 = time.time(), _counters(None, None, pgids)
        for g in groups:
            out["ttft"].update(probe_interleaved(g, a.ttft_requests, stream=True))
        c1_ = _counters(None, None, pgids)
        out["ttft_other_cores"] = other_cores(c0, c1_, time.time() - t0)
        out["ttft_steal_cores"] = (c1_["steal"] - c0["steal"]) / (time.time() - t0)
        for k, t in out["ttft"].items():
            log(f"ttft {k}: p50 {t['ttft_p50_us']:.0f} µs, p99 {t['ttft_p99_us']:.0f} µs, events {t['events']}")
    except Exception as e:
        out["status"] = "failed"
        out["error"] = f"{type(e).__name__}: {e}"
        log(f"latency phase FAILED: {out['error'][:1500]}")
        traceback.print_exc()
    finally:
        for p in procs:
            p.stop()
    return out


def envoy_rq_completed(admin: str) -> int:
    r = httpx.get(f"{admin}/stats", params={"filter": r"^http\.llm_gateway\.downstream_rq_completed$"},
                  timeout=5)
    m = re.search(r"downstream_rq_completed: (\d+)", r.text)
    return int(m.group(1)) if m else 0


def memory_soak(ctx: Ctx) -> dict:
    """Wasm VM memory flatness: RSS of a fresh gateway Envoy after N requests
    and after 10N, under one continuous load that rotates over the three
    providers, streamed and not."""
    a = ctx.args
    n = a.soak_n
    res: dict = {"n": n, "status": "ok"}
    proc = None
    wrk = None
    try:
        boot, port, admin_port = render_gateway(ctx, "gw-soak")
        proc = start_envoy(ctx, "gw-soak", boot, admin_port)
        admin = f"http://{HOST}:{admin_port}"
        url = f"http://{HOST}:{port}"
        wait_http(f"{url}/v1/models", proc, 10)
        res["rss_idle_kb"] = group_rss_kb(proc.pgid)
        env = {**os.environ, "BENCH_MIX": "bench-openai,bench-anthropic,bench-gemini",
               "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in KNOBS.items()),
               "BENCH_OUT": str(ctx.workdir / "wrk-soak.json")}
        argv = ["taskset", "-c", ctx.cpus, "wrk", "-t1", f"-c{a.connections}", "-d600s",
                "--timeout", "10s", "-s", str(LUA), url]
        res["command"] = ("BENCH_MIX=bench-openai,bench-anthropic,bench-gemini "
                          + shlex.join(argv)).replace(str(ROOT) + "/", "")
        wrk = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        marks = {}
        t0 = time.time()
        for label, goal in (("n", n), ("10n", 10 * n)):
            while True:
                if wrk.poll() is not None:
                    raise RuntimeError("wrk ended early")
                if time.time() - t0 > a.soak_timeout:
                    raise RuntimeError(f"soak did not reach {goal} requests in {a.soak_timeout} s")
                done = envoy_rq_completed(admin)
                if done >= goal:
                    break
                time.sleep(0.02)
            mem = httpx.get(f"{admin}/memory", timeout=5).json()
            marks[label] = {"requests": done, "rss_kb": group_rss_kb(proc.pgid),
                            "seconds": time.time() - t0,
                            "allocated": int(mem.get("allocated", 0)),
                            "heap_size": int(mem.get("heap_size", 0))}
            log(f"soak: {done} requests, RSS {marks[label]['rss_kb'] / 1024:.1f} MiB")
        os.killpg(wrk.pid, signal.SIGINT)
        wrk.wait(timeout=15)
        time.sleep(1)
        res["rss_after_kb"] = group_rss_kb(proc.pgid)
        res["marks"] = marks
        stats = httpx.get(f"{admin}/stats",
                          params={"filter": r"^http\.llm_gateway\.downstream_rq_[245]xx$"},
                          timeout=5).text
        res["status_counts"] = {k: int(v) for k, v in
                                re.findall(r"http\.llm_gateway\.downstream_rq_(\dxx): (\d+)", stats)}
        if res["status_counts"].get("4xx") or res["status_counts"].get("5xx"):
            raise RuntimeError(f"error responses during the soak: {res['status_counts']}")
        growth = marks["10n"]["rss_kb"] - marks["n"]["rss_kb"]
        extra_reqs = marks["10n"]["requests"] - marks["n"]["requests"]
        res["growth_kb"] = growth
        res["growth_bytes_per_req"] = growth * 1024 / extra_reqs if extra_reqs else None
        res["flat"] = growth <= a.flat_kb
    except Exception as e:
        res["status"] = "failed"
        res["error"] = f"{type(e).__name__}: {e}"
        log(f"soak FAILED: {res['error']}")
    finally:
        if wrk is not None and wrk.poll() is None:
            try:
                os.killpg(wrk.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wrk.wait()
        if proc is not None:
            proc.stop()
    return res


# ---------------------------------------------------------------- environment

def _cmd(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


def machine_info() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return {
        "nproc": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "cpu_model": model.group(1) if model else "unknown",
        "mem_total_gib": int(mem.group(1)) / 1024 / 1024 if mem else None,
        "kernel": platform.release(),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def versions() -> dict:
    v = {}
    v["envoy"] = _cmd([ENVOY, "--version"]).split("version:")[-1].strip()
    wrk = _cmd(["wrk", "--version"]).splitlines()
    v["wrk"] = wrk[0].split("Copyright")[0].strip() if wrk else "?"
    try:
        from importlib.metadata import version
        v["litellm"] = version("litellm")
    except Exception as e:
        v["litellm"] = f"not installed ({e})"
    for pkg, key in ((PORTKEY_DIR, "portkey"),
                     (BENCH / "node_modules/@hono/node-server", "hono_node_server")):
        try:
            v[key] = json.loads((pkg / "package.json").read_text())["version"]
        except OSError:
            v[key] = "not installed"
    v["node"] = _cmd(["node", "--version"])
    v["python"] = platform.python_version()
    m = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "tools/mock-provider/Cargo.toml").read_text(), re.M)
    v["mock_provider"] = m.group(1) if m else "?"
    m = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    v["llm_gateway"] = m.group(1) if m else "?"
    v["wasm_bytes"] = WASM.stat().st_size if WASM.exists() else None
    if WASM.exists():
        import hashlib
        v["wasm_sha256"] = hashlib.sha256(WASM.read_bytes()).hexdigest()
        v["wasm_mtime"] = dt.datetime.fromtimestamp(WASM.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    v["rustc"] = _cmd(["rustc", "--version"])
    return v


# ---------------------------------------------------------------- report

def fmt_us(x) -> str:
    if x is None:
        return "–"
    if abs(x) >= 10_000:
        return f"{x / 1000:,.1f} ms"
    if abs(x) >= 1000:
        return f"{x / 1000:,.2f} ms"
    return f"{x:,.0f} µs"


def fmt_num(x, digits=0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_ratio(x, pct_style=False) -> str:
    if x is None:
        return "–"
    return f"{x * 100:.1f} %" if pct_style else f"{x:,.1f}×"


def get(res: dict, key: str, *path):
    r = res.get(key)
    if not r or r.get("status") != "ok":
        return None
    for p in path:
        r = r.get(p) if isinstance(r, dict) else None
        if r is None:
            return None
    return r


def lat(res, key, mode, p):
    return get(res, key, mode, "latency_us", "percentiles", p)


def lat_added(LP: dict, what: str, k: str) -> dict:
    """Added p50/p99 of latency-phase target k over its upstream endpoint, and
    that minus plain Envoy's added time (the filter's share for the gateway)."""
    tab = LP.get(what) or {}
    f50, f99 = ("p50_us", "p99_us") if what == "c1" else ("ttft_p50_us", "ttft_p99_us")
    out: dict = {}
    if k not in tab or k not in UPSTREAM_OF or UPSTREAM_OF[k] not in tab:
        return out
    up = tab[UPSTREAM_OF[k]]
    out["add50"] = tab[k][f50] - up[f50]
    out["add99"] = tab[k][f99] - up[f99]
    if k != "envoy" and "envoy" in tab and "mock" in tab:
        out["vs_envoy50"] = out["add50"] - (tab["envoy"][f50] - tab["mock"][f50])
        out["vs_envoy99"] = out["add99"] - (tab["envoy"][f99] - tab["mock"][f99])
    return out


def render_markdown(R: dict) -> str:
    res = {r["key"]: r for r in R["systems"]}
    keys = [r["key"] for r in R["systems"]]
    labels = {r["key"]: r["label"] for r in R["systems"]}
    a = R["args"]
    m = R["machine"]
    v = R["versions"]
    L = []
    w = L.append

    w("# Benchmarks")
    w("")
    w("End-to-end, side-by-side benchmark of **llm-gateway** (Envoy + the Wasm filter) against the same "
      "mock upstream reached directly, through plain Envoy, through LiteLLM's proxy and through Portkey's "
      "gateway, all in **one run** on one machine. Generated by `bench/run.py` "
      f"(`make bench`) on {R['started']} — every number and ratio below comes from that single run; "
      "rerun `make bench` to regenerate this file and `bench/chart.png`.")
    w("")
    w("![RPS and added latency per system](bench/chart.png)")
    w("")

    # ---- targets
    w("## Targets from the product brief")
    w("")
    w("| target | measured (this run) | verdict |")
    w("|---|---|---|")
    for line in R["targets"]:
        w(f"| {line['target']} | {line['measured']} | {line['verdict']} |")
    w("")
    w("How each is read: *filter overhead* is llm-gateway's added latency over the mock endpoint its "
      "requests end on, minus plain Envoy's added latency over the mock, with one request in flight "
      "(so it is the filter's own work on the request path, not queueing); *RPS* ratios are at the "
      "fixed concurrency of the main runs; *added TTFT* is the same subtraction for the median time to "
      "first body byte of a stream; *memory flat* compares the gateway Envoy's RSS after N and after "
      f"10N requests (flat = growth ≤ {a['flat_kb'] / 1024:g} MiB).")
    w("")

    # ---- main table
    w(f"## Throughput: {a['connections']} connections, {a['rounds']} × {a['duration']:g} s per scenario")
    w("")
    w(f"wrk, 1 thread, {a['connections']} keep-alive connections. Each system is measured in "
      f"{a['rounds']} round(s) (the systems in rotated order; each started fresh, alone with the mock, "
      f"and stopped again), {a['duration']:g} s per mode per round after a {a['warmup']:g} s warm-up of "
      "the same scenario; before each measured run the orchestrator waits (bounded) until processes "
      "outside the benchmark use under 0.3 cores, and a run during which they used more than "
      f"{a['noisy_cores']:g} cores is measured again (at most {a['max_retries']} more times, within a "
      f"{a['retry_budget']:g} s budget for the whole run), keeping the least disturbed attempt. "
      "*req/s*, *p50*, *p99* are means over the rounds "
      "(per-round req/s shown). *Added* = this system minus the direct-mock baseline of the same mode "
      "in this run. *CPU/req* = user+system CPU time of the system under test's whole process group "
      "(all threads and workers) during the measured runs ÷ requests. *Other load* = CPU used on the "
      "machine during the run by processes outside the benchmark (other people's work), in cores, mean "
      "(max) over the rounds: a row with a high value was measured on a busier machine. *Steal* = CPU "
      "time the hypervisor took from this VM during the run (`/proc/stat` steal), in cores.")
    w("")
    for mode, title in (("nonstream", "Non-streaming"), ("stream", "Streaming (SSE, 2-character chunks)")):
        w(f"### {title}")
        w("")
        w("| system | req/s | req/s per round | p50 | p99 | added p50 | added p99 | CPU/req (SUT) | CPU/req (mock) | errors | other load (cores) | steal (cores) |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in keys:
            r = res[k]
            if r["status"] != "ok":
                w(f"| {labels[k]} | failed | | | | | | | | | | |")
                continue
            x = r[mode]
            p50, p99 = lat(res, k, mode, "50"), lat(res, k, mode, "99")
            b50, b99 = lat(res, "mock", mode, "50"), lat(res, "mock", mode, "99")
            add50 = p50 - b50 if b50 is not None and k != "mock" else None
            add99 = p99 - b99 if b99 is not None and k != "mock" else None
            spread = " / ".join(fmt_num(v) for v in x.get("rps_rounds", []))
            w(f"| {labels[k]} | {fmt_num(x['rps'])} | {spread} | {fmt_us(p50)} | {fmt_us(p99)} | "
              f"{fmt_us(add50) if add50 is not None else '–'} | {fmt_us(add99) if add99 is not None else '–'} | "
              f"{fmt_us(x['cpu']['sut_us_per_req'])} | "
              f"{fmt_us(x['cpu']['mock_us_per_req']) if k != 'mock' else '(is the SUT)'} | "
              f"{x['error_count']} | {x['cpu']['other_cores']:.2f} (max {x['cpu']['other_cores_max']:.2f}) | "
              f"{x['cpu']['steal_cores']:.2f} |")
        w("")

    # ---- latency phase
    LP = R.get("latency") or {}
    w("## Per-request latency and time to first token (interleaved)")
    w("")
    if LP.get("status") != "ok" and not LP.get("c1"):
        w(f"Not measured: {LP.get('error', 'skipped')}")
        w("")
    else:
        w("All systems up at once, one request in flight at a time, the systems visited in turn, so the "
          "shared machine's drifts hit every row alike. *Added* = over the mock endpoint the "
          "system's requests end on (OpenAI, or the mock's native Anthropic/Gemini endpoint for the "
          "translated scenarios), measured in the same interleaved rounds. *vs plain Envoy* = that added "
          "time minus plain Envoy's own added time: for llm-gateway rows it is the **filter's overhead** "
          "(Envoy's proxying cost subtracted).")
        w("")
        w("### Latency with one request in flight (non-streaming)")
        w("")
        w(f"A Python probe (one keep-alive connection per system, a minimal socket HTTP/1.1 client; see "
          f"*Method*): {a['c1_requests']} non-streamed requests per system after 50 warm-up ones, "
          "interleaved request by request across the systems; latency = request sent → last byte of "
          "the response. The client's own cost is in every row alike. LiteLLM and Portkey are probed in "
          "a second group, beside their own run of the direct mock (their ~10 ms per request let the "
          "CPUs fall idle, which would slow the next request to whichever system). Other people's load during "
          f"the probe: {LP.get('c1_other_cores', float('nan')):.2f} cores on average; hypervisor "
          f"steal: {LP.get('c1_steal_cores', float('nan')):.2f} cores.")
        w("")
        w("| system | p50 | p90 | p99 | added p50 | added p99 | p50 vs plain Envoy | p99 vs plain Envoy |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for k, c in LP.get("c1", {}).items():
            d = lat_added(LP, "c1", k)
            w(f"| {LATENCY_LABELS.get(k, k)} | {fmt_us(c['p50_us'])} | {fmt_us(c['p90_us'])} | "
              f"{fmt_us(c['p99_us'])} | {fmt_us(d.get('add50'))} | {fmt_us(d.get('add99'))} | "
              f"{fmt_us(d.get('vs_envoy50'))} | {fmt_us(d.get('vs_envoy99'))} |")
        w("")
        w("### Time to first token (streaming)")
        w("")
        w(f"The same probe: {a['ttft_requests']} "
          "streamed requests per system after 20 warm-up ones, interleaved; TTFT = request sent → first "
          "response body byte; TTLB = → end of stream. The client's own overhead is in every row alike. "
          "*Events* = SSE `data:` events per stream as the client received them (34 content events "
          "upstream, re-encoded by each system). Other people's load during the probe: "
          f"{LP.get('ttft_other_cores', float('nan')):.2f} cores on average; hypervisor steal: "
          f"{LP.get('ttft_steal_cores', float('nan')):.2f} cores.")
        w("")
        w("| system | TTFT p50 | TTFT p99 | added TTFT p50 | TTFT p50 vs plain Envoy | TTLB p50 | TTLB p99 | events |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for k, t in LP.get("ttft", {}).items():
            d = lat_added(LP, "ttft", k)
            w(f"| {LATENCY_LABELS.get(k, k)} | {fmt_us(t['ttft_p50_us'])} | {fmt_us(t['ttft_p99_us'])} | "
              f"{fmt_us(d.get('add50'))} | {fmt_us(d.get('vs_envoy50'))} | {fmt_us(t['ttlb_p50_us'])} | "
              f"{fmt_us(t['ttlb_p99_us'])} | {t['events'] if t['events'] is not None else '–'} |")
        w("")
        for k, e in (LP.get("failed") or {}).items():
            w(f"- {k} did not start for this phase: {e}")
        if LP.get("status") != "ok":
            w(f"- the phase stopped early: {LP.get('error')}")
        w("")

    # ---- memory
    w("### Memory (RSS of the system under test's process group)")
    w("")
    w("| system | processes | RSS at start | RSS after the run | Envoy heap allocated after |")
    w("|---|---:|---:|---:|---:|")
    for k in keys:
        r = res[k]
        if r["status"] != "ok":
            w(f"| {labels[k]} | failed | | | |")
            continue
        heap = (r.get("envoy_memory") or {}).get("allocated")
        w(f"| {labels[k]} | {r['pids_at_end']} | {r['rss_start_kb'] / 1024:,.1f} MiB | "
          f"{r['rss_end_kb'] / 1024:,.1f} MiB | "
          f"{(int(heap) / 1048576):,.1f} MiB |" if heap else
          f"| {labels[k]} | {r['pids_at_end']} | {r['rss_start_kb'] / 1024:,.1f} MiB | "
          f"{r['rss_end_kb'] / 1024:,.1f} MiB | – |")
    w("")
    s = R.get("soak") or {}
    w("### Wasm VM memory flatness")
    w("")
    if s.get("status") == "ok":
        mk = s["marks"]
        w(f"A fresh llm-gateway Envoy under one continuous load ({a['connections']} connections) that "
          "rotates over the three providers (OpenAI passthrough, Anthropic and Gemini translation), "
          "streamed and non-streamed alternately; RSS read when Envoy's request counter passed N and 10N.")
        w("")
        w("| point | requests served | RSS | Envoy heap allocated |")
        w("|---|---:|---:|---:|")
        w(f"| idle, before load | 0 | {s['rss_idle_kb'] / 1024:,.1f} MiB | – |")
        for lbl, name in (("n", "after N"), ("10n", "after 10N")):
            w(f"| {name} | {mk[lbl]['requests']:,} | {mk[lbl]['rss_kb'] / 1024:,.1f} MiB | "
              f"{mk[lbl]['allocated'] / 1048576:,.1f} MiB |")
        w(f"| idle, after load | – | {s['rss_after_kb'] / 1024:,.1f} MiB | – |")
        w("")
        w(f"Growth from N to 10N: **{s['growth_kb'] / 1024:+.2f} MiB** "
          f"({s['growth_bytes_per_req']:+.2f} bytes per additional request); "
          f"responses by status class: {s.get('status_counts')}. Command: `{s['command']}`.")
    else:
        w(f"Not measured: {s.get('error', 'skipped')}")
    w("")

    # ---- ratios
    w("## Ratios (all from this run)")
    w("")
    w("| ratio | non-streaming | streaming |")
    w("|---|---:|---:|")
    for line in R["ratios"]:
        w(f"| {line['name']} | {line['nonstream']} | {line['stream']} |")
    w("")

    # ---- native
    w("## Native micro-benchmarks (same run)")
    w("")
    if R.get("native"):
        w("Output of `cargo bench -q --bench translate` and `cargo bench -q --bench flow` (host build, "
          "not Wasm; medians of several batches). *flow* drives one whole request through the filter's "
          "core (`StreamFlow`: headers, body, response, end of stream) over a host whose calls cost "
          "nothing, with the benchmark's gateway config:")
        w("")
        w(R["native"].strip())
    else:
        w("Not run in this invocation (`bench/run.py --native FILE` embeds the output of "
          "`cargo bench -q --bench translate`; `make bench` does it).")
    w("")

    # ---- instruction counts
    write_profile(w, R)

    # ---- notes written by hand (kept from the file this run replaces)
    if R.get("kept_notes"):
        w(R["kept_notes"])
        w("")

    # ---- setup
    w("## Machine")
    w("")
    w(f"- `nproc`: {m['nproc']}; CPU: {m['cpu_model']}; memory: {m['mem_total_gib']:.1f} GiB; "
      f"kernel {m['kernel']}")
    w(f"- load average when the run started: {' '.join(m['loadavg_start'])} (the machine is shared: "
      "see the *other load* column)")
    w("")
    w("## Versions")
    w("")
    w("| component | version |")
    w("|---|---|")
    w(f"| Envoy | {v['envoy']} |")
    w(f"| llm-gateway | {v['llm_gateway']} (`llm_gateway.wasm`, {v['wasm_bytes']:,} bytes, built "
      f"{v.get('wasm_mtime')}, sha256 `{(v.get('wasm_sha256') or '?')[:16]}…`; V8 runtime) |")
    w(f"| mock-provider | {v['mock_provider']} |")
    w(f"| LiteLLM | {v['litellm']} (`litellm[proxy]`, Python {v['python']}) |")
    w(f"| Portkey gateway | {v['portkey']} (`@portkey-ai/gateway`, `@hono/node-server` {v['hono_node_server']}, "
      f"Node {v['node']}) |")
    w(f"| wrk | {v['wrk']} |")
    w(f"| rustc (native micro-benchmarks) | {v['rustc']} |")
    w("")
    w("## Method")
    w("")
    w(f"- **One mock upstream** (`tools/mock-provider`, `--no-record --threads {a['mock_threads']}`) serves "
      "every system for the whole run. Request: `POST /v1/chat/completions` with a system and a user "
      "message (the body of `bench/chat.lua`); the reply is the mock's 67-character default text, so a "
      f"stream with `x-mock-chunk-chars: {CHUNK_CHARS}` carries 34 content events (plus role, finish and "
      "`[DONE]`).")
    w("- **Phase 1, throughput — one system at a time**: each is started, checked (one streamed and one "
      "non-streamed request must return the exact expected text, and `[DONE]`), warmed up, measured at "
      "fixed concurrency and stopped before the next starts; with more than one round the systems are "
      "visited again in rotated order, so a burst of other people's load does not land on one system "
      "only. Before each measured run the orchestrator waits, within a bounded budget, for other "
      "processes to use under 0.3 cores, and measures a disturbed run again (this machine is shared "
      f"with other engineers' tests; this run spent {R.get('quiet_spent_s', 0):.0f} s waiting and "
      f"{R.get('retry_spent_s', 0):.0f} s measuring again).")
    w("- **Memory soak**: a fresh llm-gateway Envoy alone, RSS after N and 10N requests (below).")
    w("- **Phase 2, latency — interleaved**: every system is up at once but only one request is ever in "
      "flight: a Python probe sends one request to each system in turn (rotating the order every "
      "round), so pairs such as llm-gateway vs plain Envoy are measured microseconds apart, thousands of "
      "times, instead of minutes apart once (1-second wrk rounds were tried first: their p50 moved by "
      "up to 2× from one round to the next on this VM). The mock's native Anthropic and Gemini "
      "endpoints are probed directly too, so a translated scenario's added time is taken over the "
      "endpoint it really ends on. httpx was tried first for the probe: on this VM it costs about 1 ms "
      "per request, with jitter larger than the 100 µs target, so the probe is a plain-socket HTTP/1.1 "
      "keep-alive client (tens of µs of its own) that times the first byte of the decoded body and the "
      "end of the response (chunked or not); the first measured response of each system is decoded "
      "and checked.")
    w(f"- **CPU budget**: this machine has {m['nproc']} cores. Every system under test, the mock and wrk "
      f"are started under `taskset -c {a['cpus']}` (the same budget for all; on a 2-core machine the load "
      "generator and the upstream necessarily share those cores with the system under test, identically "
      "for every system). wrk runs 1 thread. Envoy (plain and with the filter) runs `--concurrency 2`; "
      "LiteLLM runs its default single uvicorn worker, and a second row with `--num_workers 2` (its "
      "documented way to use more cores) so the comparison does not rest on a default alone; Portkey "
      "runs as its npm package starts (one Node.js process).")
    w("- **Per-request logging off everywhere**: Envoy (plain and gateway) without access log "
      "(`envoy.access_log: none`); LiteLLM with uvicorn's access log silenced through `--log_config` "
      "(errors still logged); Portkey with `--headless` (no log UI).")
    w("- **Plain Envoy** is the gateway's own rendered bootstrap with the Wasm filter removed and the "
      "route pointed at the mock cluster, so every other setting (buffer limits, timeouts, stats tags) "
      "is identical and the difference is the filter.")
    w("- **llm-gateway** scenarios use one rendered config with three providers at the mock "
      "(`openai`, `anthropic`, `gemini` types); each scenario is a fresh Envoy and selects its provider "
      "by model name. Clients send no provider key; the filter adds it.")
    w("- **LiteLLM**: `openai/gpt-4o-mini` at the mock's base URL, a random master key, "
      "`LITELLM_LOCAL_MODEL_COST_MAP=True`, `--telemetry False`, no database. LiteLLM does not forward client headers "
      "upstream, so the mock's chunk-size knob is set in the model's `extra_headers`; the *events* column "
      "shows every system streamed the same number of events.")
    w("- **Portkey**: provider `openai` with `x-portkey-custom-host` = the mock's `/v1` and "
      "`x-portkey-forward-headers: x-mock-chunk-chars`. Its server listens on every interface by default "
      "(no host option); `bench/portkey-loopback.mjs`, preloaded with `node --import`, binds its "
      "`listen()` to 127.0.0.1 and changes nothing else.")
    w("- **Latency** percentiles are wrk's (full response, i.e. to the last byte for streams); TTFT comes "
      "from the separate probe. **CPU/req** reads `/proc/<pid>/stat` utime+stime of every process in "
      "the system's process group before and after the measured run (as the kernel reports them, "
      "including the network-stack softirq work done in the process's context). **RSS** is the sum of "
      "`VmRSS` over the group.")
    w("")
    w("## Exact commands")
    w("")
    w("```sh")
    w("make bench   # = scripts/install-deps.sh wrk; bench venv; npm ci in bench/; "
      "cargo bench -q --bench translate; bench/run.py")
    w(f".venv-bench/bin/python bench/run.py {R['argv']}")
    w("```")
    w("")
    w("Processes as started in this run (ports are picked free per run):")
    w("")
    w("```sh")
    for k, c in R["commands"].items():
        w(f"# {k}")
        w(c)
    w("# load, e.g. (headers come from the scenario through BENCH_HEADERS)")
    ex = get(res, "gw-anthropic", "nonstream", "command") or get(res, "mock", "nonstream", "command")
    if ex:
        w(ex)
    w("```")
    w("")
    for name, text in R["configs"].items():
        w(f"<details><summary>{name}</summary>")
        w("")
        w("```yaml")
        w(text.rstrip())
        w("```")
        w("</details>")
        w("")

    failed = [r for r in R["systems"] if r["status"] != "ok"]
    partial = [r for r in R["systems"] if r["status"] == "ok" and r.get("failed_rounds")]
    if failed or partial or (R.get("soak") or {}).get("status") == "failed":
        w("## What failed")
        w("")
        for r in failed:
            w(f"- **{r['label']}**: {r['error']}")
        for r in partial:
            w(f"- **{r['label']}**: {len(r['failed_rounds'])} round(s) failed and are left out of its "
              f"row: {'; '.join(r['failed_rounds'])}")
        if (R.get("soak") or {}).get("status") == "failed":
            w(f"- **memory soak**: {R['soak']['error']}")
        w("")
    w("## Caveats")
    w("")
    w("- One run on a shared 2-core VM: absolute numbers move by tens of percent between runs (see "
      "*other load*); compare rows of this run with each other, not with other runs or machines.")
    w("- Load generator, upstream and system under test share the same two cores, so a system's RPS "
      "here is the throughput of the whole loop; a heavier system also leaves less CPU to wrk and the "
      "mock. CPU/req is the cleaner per-request cost.")
    w("- At fixed concurrency the latency percentiles mostly reflect throughput (Little's law); the "
      "one-request-in-flight table is the per-request latency cost.")
    w("- With one request in flight on a small VM, latency is dominated by thread wake-ups (Envoy "
      "wakes a worker twice per request, the mock once), so those rows move between runs: in the "
      "runs made while this benchmark was developed on this VM, the filter's p50 share moved by up "
      "to 3× from run to run (its verdict never changed). Within one run the interleaving makes the "
      "rows comparable; across runs, compare ratios, not microseconds.")
    w("- The mock answers instantly; real providers take hundreds of milliseconds, beside which every "
      "gateway's added latency is small. This benchmark isolates the gateways' own cost.")
    w("")
    return "\n".join(L) + "\n"


def compute_ratios_and_targets(R: dict) -> None:
    res = {r["key"]: r for r in R["systems"]}
    ratios = []

    def rps(k, mode):
        return get(res, k, mode, "rps")

    def cpu(k, mode):
        return get(res, k, mode, "cpu", "sut_us_per_req")

    def add(name, f, pct_style=False):
        ratios.append({"name": name,
                       "nonstream": fmt_ratio(f("nonstream"), pct_style),
                       "stream": fmt_ratio(f("stream"), pct_style)})

    add("plain Envoy RPS / mock-direct RPS", lambda m: ratio(rps("envoy", m), rps("mock", m)), True)
    gws = [("gw-openai", "OpenAI"), ("gw-anthropic", "Anthropic"), ("gw-gemini", "Gemini")]
    add("floor filter RPS / plain Envoy RPS (the ceiling for a body-routing Wasm filter)",
        lambda m: ratio(rps("floor", m), rps("envoy", m)), True)
    for k, n in gws:
        add(f"llm-gateway → {n} RPS / plain Envoy RPS",
            lambda m, k=k: ratio(rps(k, m), rps("envoy", m)), True)
    for k, n in gws:
        add(f"llm-gateway → {n} RPS / floor filter RPS",
            lambda m, k=k: ratio(rps(k, m), rps("floor", m)), True)
    add("floor twin (llm-gateway's passthrough host calls, no logic) RPS / floor filter RPS",
        lambda m: ratio(rps("floor-twin", m), rps("floor", m)), True)
    add("llm-gateway → OpenAI RPS / floor twin RPS",
        lambda m: ratio(rps("gw-openai", m), rps("floor-twin", m)), True)
    add("floor twin translating (llm-gateway's host calls to Anthropic, no logic) RPS / plain Envoy RPS",
        lambda m: ratio(rps("floor-twin-anthropic", m), rps("envoy", m)), True)
    add("llm-gateway → Anthropic RPS / its floor twin RPS",
        lambda m: ratio(rps("gw-anthropic", m), rps("floor-twin-anthropic", m)), True)
    for k, n in gws:
        add(f"llm-gateway → {n} RPS / LiteLLM (1 worker) RPS",
            lambda m, k=k: ratio(rps(k, m), rps("litellm", m)))
    for k, n in gws:
        add(f"llm-gateway → {n} RPS / LiteLLM (2 workers) RPS",
            lambda m, k=k: ratio(rps(k, m), rps("litellm-2w", m)))
    for k, n in gws:
        add(f"llm-gateway → {n} RPS / Portkey RPS",
            lambda m, k=k: ratio(rps(k, m), rps("portkey", m)))
    add("LiteLLM (2 workers) RPS / LiteLLM (1 worker) RPS",
        lambda m: ratio(rps("litellm-2w", m), rps("litellm", m)))
    for k, n in gws:
        add(f"CPU/req: llm-gateway → {n} / plain Envoy",
            lambda m, k=k: ratio(cpu(k, m), cpu("envoy", m)))
    for other, on in (("litellm", "LiteLLM (1 worker)"), ("litellm-2w", "LiteLLM (2 workers)"),
                      ("portkey", "Portkey")):
        add(f"CPU/req: {on} / llm-gateway → OpenAI",
            lambda m, o=other: ratio(cpu(o, m), cpu("gw-openai", m)))
    LP = R.get("latency") or {}
    for other, on in (("litellm", "LiteLLM (1 worker)"), ("portkey", "Portkey")):
        def f(m, o=other):
            what = "c1" if m == "nonstream" else "ttft"
            x, g = lat_added(LP, what, o).get("add50"), lat_added(LP, what, "gw-openai").get("add50")
            return ratio(x, g) if g and g > 0 else None
        add(f"added latency, {on} / llm-gateway → OpenAI (non-streaming: p50 with one request in "
            f"flight; streaming: TTFT p50)", f)
    R["ratios"] = ratios

    T = []
    LP = R.get("latency") or {}
    # 1. filter overhead on non-streaming translation, concurrency 1, vs plain Envoy
    parts, ok50, ok99, have = [], True, True, False
    for k, n in gws:
        d = lat_added(LP, "c1", k)
        if "vs_envoy50" not in d:
            continue
        if k != "gw-openai":
            have = True
            ok50 &= d["vs_envoy50"] <= 50
            ok99 &= d["vs_envoy99"] <= 250
        txt = f"{n}: p50 {d['vs_envoy50']:+.0f} µs, p99 {d['vs_envoy99']:+.0f} µs"
        parts.append(f"({txt}, passthrough)" if k == "gw-openai" else txt)
    T.append({"target": "filter overhead on non-streaming translation: p50 ≤ 50 µs, p99 ≤ 250 µs "
                        "(concurrency 1, vs plain Envoy)",
              "measured": "; ".join(parts) or "not measured",
              "verdict": ("**met**" if ok50 and ok99 else
                          "**missed** (p50 {}, p99 {})".format("met" if ok50 else "missed",
                                                                "met" if ok99 else "missed"))
              if have else "not measured"})
    # 2. >= 85 % of plain Envoy RPS
    vals = [(f"{n} {'stream' if m == 'stream' else 'non-stream'}", ratio(rps(k, m), rps("envoy", m)))
            for k, n in gws for m in ("nonstream", "stream")]
    vals = [(x, y) for x, y in vals if y is not None]
    floor_vals = [(m, ratio(rps("floor", m), rps("envoy", m))) for m in ("nonstream", "stream")]
    floor_txt = ", ".join(f"{'stream' if m == 'stream' else 'non-stream'} {y * 100:.0f} %"
                          for m, y in floor_vals if y is not None)
    T.append({"target": "≥ 85 % of plain Envoy's RPS",
              "measured": (", ".join(f"{x} {y * 100:.0f} %" for x, y in vals) or "not measured")
              + (f" (the floor filter, body routing only: {floor_txt})" if floor_txt else ""),
              "verdict": ("**met**" if all(y >= 0.85 for _, y in vals) else
                          "**missed** ({} of {} below)".format(sum(y < 0.85 for _, y in vals), len(vals)))
              if vals else "not measured"})
    # 3. >= 20x LiteLLM RPS (default config), also shown against 2 workers
    for lk, ln in (("litellm", "LiteLLM default (1 worker)"), ("litellm-2w", "LiteLLM with 2 workers")):
        vals = [(f"{n} {'stream' if m == 'stream' else 'non-stream'}", ratio(rps(k, m), rps(lk, m)))
                for k, n in gws for m in ("nonstream", "stream")]
        vals = [(x, y) for x, y in vals if y is not None]
        T.append({"target": f"≥ 20× {ln}'s RPS",
                  "measured": ", ".join(f"{x} {y:.1f}×" for x, y in vals) or "not measured",
                  "verdict": ("**met**" if all(y >= 20 for _, y in vals) else
                              "**missed** ({} of {} below)".format(sum(y < 20 for _, y in vals), len(vals)))
                  if vals else f"not measured ({ln} did not run)"})
    # 4. added TTFT <= 100 us (the filter's share: minus plain Envoy's added TTFT)
    vals = []
    for k, n in gws:
        d = lat_added(LP, "ttft", k)
        if "vs_envoy50" in d:
            vals.append((n, d["vs_envoy50"], d["add50"]))
    T.append({"target": "added TTFT ≤ 100 µs (median; filter's share, vs plain Envoy)",
              "measured": ", ".join(f"{n} {d:+.0f} µs ({dm:+.0f} µs incl. Envoy, over the mock endpoint)"
                                    for n, d, dm in vals) or "not measured",
              "verdict": ("**met**" if all(d <= 100 for _, d, _ in vals) else
                          "**missed** ({} of {} above)".format(sum(d > 100 for _, d, _ in vals), len(vals)))
              if vals else "not measured"})
    # 5. memory flat
    s = R.get("soak") or {}
    if s.get("status") == "ok":
        mk = s["marks"]
        T.append({"target": "Wasm VM memory flat (RSS after N vs after 10N requests)",
                  "measured": f"{mk['n']['rss_kb'] / 1024:.1f} MiB after {mk['n']['requests']:,}, "
                              f"{mk['10n']['rss_kb'] / 1024:.1f} MiB after {mk['10n']['requests']:,} "
                              f"({s['growth_kb'] / 1024:+.2f} MiB)",
                  "verdict": "**met**" if s["flat"] else "**missed**"})
    else:
        T.append({"target": "Wasm VM memory flat", "measured": s.get("error", "not run"),
                  "verdict": "not measured"})
    R["targets"] = T


def draw_chart(R: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = {r["key"]: r for r in R["systems"] if r["status"] == "ok"}
    keys = [r["key"] for r in R["systems"] if r["key"] in res]
    LP = R.get("latency") or {}
    short = {"mock": "mock\n(direct)", "envoy": "plain\nEnvoy", "floor": "floor\nfilter",
             "floor-twin": "floor\ntwin", "floor-twin-anthropic": "twin\n→Anthropic", "gw-openai": "gateway\n→OpenAI",
             "gw-anthropic": "gateway\n→Anthropic", "gw-gemini": "gateway\n→Gemini",
             "litellm": "LiteLLM\n(1 worker)", "litellm-2w": "LiteLLM\n(2 workers)",
             "portkey": "Portkey"}
    colors = {"baseline": "#9e9e9e", "envoy": "#607d8b", "gateway": "#1e88e5",
              "litellm": "#e53935", "portkey": "#fb8c00"}
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.4))
    width = 0.4
    xs = list(range(len(keys)))
    series = {
        "rps": (("nonstream", "non-streaming"), ("stream", "streaming (2-char SSE chunks)")),
        "added": (("c1", "non-streaming, 1 request in flight (p50)"), ("ttft", "streaming: time to first token (p50)")),
    }
    for ax, what in zip(axes, ("rps", "added")):
        for j, (mode, label) in enumerate(series[what]):
            vals = []
            for k in keys:
                if what == "rps":
                    vals.append(res[k][mode]["rps"])
                elif k == "mock":
                    vals.append(0.0)
                else:
                    v = lat_added(LP, mode, k).get("add50")
                    vals.append(v / 1000 if v is not None else float("nan"))
            pos = [x + (j - 0.5) * width for x in xs]
            bars = ax.bar(pos, vals, width, color=[colors[res[k]["kind"]] for k in keys],
                          hatch="//" if j else None, edgecolor="white" if j else None, label=label)
            for b, val in zip(bars, vals):
                if what == "added" and keys[list(bars).index(b)] == "mock":
                    ax.annotate("baseline", (b.get_x() + b.get_width() / 2, 0), ha="center",
                                va="bottom", fontsize=6.5, xytext=(0, 1), textcoords="offset points",
                                rotation=90)
                    continue
                if val != val:  # nan: not measured
                    ax.annotate("n/a", (b.get_x() + b.get_width() / 2, 0), ha="center", va="bottom",
                                fontsize=7, xytext=(0, 1), textcoords="offset points")
                    continue
                if what == "rps":
                    txt = f"{val / 1000:.1f}k" if val >= 1000 else f"{val:.0f}"
                else:
                    txt = f"{val * 1000:.0f} µs" if abs(val) < 1 else f"{val:.1f} ms"
                ax.annotate(txt, (b.get_x() + b.get_width() / 2, max(b.get_height(), 0)),
                            ha="center", va="bottom", fontsize=6.5, xytext=(0, 1),
                            textcoords="offset points", rotation=90 if what == "added" else 0)
        ax.set_xticks(xs)
        ax.set_xticklabels([short.get(k, k) for k in keys], fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(fontsize=7.5, loc="upper right")
        if what == "rps":
            ax.set_ylabel("requests / s")
            ax.set_title(f"Throughput, {R['args']['connections']} connections (higher is better)", fontsize=10)
        else:
            ax.set_yscale("symlog", linthresh=0.1)
            from matplotlib.ticker import FixedLocator, FuncFormatter
            ax.yaxis.set_major_locator(FixedLocator([0, 0.1, 1, 10, 100, 1000]))
            ax.yaxis.set_minor_locator(FixedLocator([]))
            ax.yaxis.set_major_formatter(FuncFormatter(
                lambda v, _: "0" if v == 0 else (f"{v * 1000:.0f} µs" if v < 1 else f"{v:.0f} ms")))
            lo, hi = ax.get_ylim()
            ax.set_ylim(min(lo, 0), hi * 6)
            ax.set_ylabel("added over the direct mock (log scale above 100 µs)")
            ax.set_title("Added p50 latency (lower is better)", fontsize=10)
    fig.suptitle(f"llm-gateway vs plain Envoy, LiteLLM, Portkey: same mock upstream, one run "
                 f"({R['started']}, {R['machine']['nproc']} cores, wrk -t1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured scenario")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per scenario")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=None,
                    help="phase-1 rounds: each system is measured this many times, in rotated order")
    ap.add_argument("--quiet-budget", type=float, default=45,
                    help="seconds the run may spend in total waiting for other people's load to drop")
    ap.add_argument("--noisy-cores", type=float, default=0.25,
                    help="a measured run with more load from outside the benchmark is done again")
    ap.add_argument("--max-retries", type=int, default=2, help="extra attempts per measured run")
    ap.add_argument("--retry-budget", type=float, default=100,
                    help="seconds of measuring again the whole run may spend")
    ap.add_argument("--c1-requests", type=int, default=1000,
                    help="non-streamed requests per system in the one-in-flight latency probe")
    ap.add_argument("--ttft-requests", type=int, default=200)
    ap.add_argument("--soak-n", type=int, default=5_000, help="N of the memory check (N vs 10N)")
    ap.add_argument("--soak-timeout", type=float, default=180)
    ap.add_argument("--flat-kb", type=int, default=2048, help="max RSS growth N→10N counted as flat")
    ap.add_argument("--mock-threads", type=int, default=2)
    ap.add_argument("--cpus", default=None, help="taskset CPU list (default: 0,1 or all if fewer)")
    ap.add_argument("--systems", default=",".join(k for k, *_ in SYSTEMS),
                    help="comma-separated subset of: " + ",".join(k for k, *_ in SYSTEMS))
    ap.add_argument("--no-soak", action="store_true")
    ap.add_argument("--no-latency", action="store_true", help="skip the interleaved latency phase")
    ap.add_argument("--profile", type=Path,
                    help="JSON written by bench/profile.py (instructions per request under callgrind)")
    ap.add_argument("--native", type=Path,
                    help="file holding `cargo bench -q --bench translate` (and `--bench flow`) output")
    ap.add_argument("--quick", action="store_true",
                    help="few-second smoke run; writes to target/bench/quick/ unless --out is given")
    ap.add_argument("--out", type=Path, help="markdown report (default BENCHMARKS.md)")
    ap.add_argument("--chart", type=Path, help="PNG chart (default bench/chart.png)")
    ap.add_argument("--results", type=Path, help="raw JSON (default bench/results.json)")
    args = ap.parse_args()
    argv_shown = shlex.join(sys.argv[1:])

    if args.quick:
        args.duration, args.warmup, args.c1_requests = 3, 1, 100
        args.ttft_requests, args.soak_n, args.quiet_budget, args.retry_budget = 30, 1000, 5, 0
        args.rounds = args.rounds or 1
        qdir = ROOT / "target/bench/quick"
        qdir.mkdir(parents=True, exist_ok=True)
        args.out = args.out or qdir / "BENCHMARKS.md"
        args.chart = args.chart or qdir / "chart.png"
        args.results = args.results or qdir / "results.json"
    args.rounds = args.rounds or 2
    args.out = args.out or ROOT / "BENCHMARKS.md"
    args.chart = args.chart or BENCH / "chart.png"
    args.results = args.results or BENCH / "results.json"
    ncpu = os.cpu_count() or 1
    args.cpus = args.cpus or ("0,1" if ncpu >= 2 else "0")

    wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(wanted) - {k for k, *_ in SYSTEMS}
    if unknown:
        ap.error(f"unknown systems: {sorted(unknown)}")
    for exe, hint in ((MOCK, "make tools"), (RENDER, "make tools"), (WASM, "make build"),
                      (Path(ENVOY), "make deps")):
        if not Path(exe).exists():
            ap.error(f"{exe} missing: run `{hint}`")
    if not shutil.which("wrk"):
        ap.error("wrk not found: scripts/install-deps.sh wrk")

    # Ctrl-C, SIGTERM and SIGHUP end the run: the finally below stops everything.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: a background
        signal.signal(sig, on_signal)                            # job may inherit it ignored

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = ROOT / "target/bench" / f"run-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"work dir (configs, logs, raw wrk output): {workdir}")
    ctx = Ctx(args, workdir)
    R: dict = {
        "started": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "argv": argv_shown,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(),
        "versions": versions(),
        "systems": [],
        "commands": ctx.commands,
        "configs": ctx.configs,
    }
    if args.native:
        R["native"] = args.native.read_text()
    if args.profile and args.profile.exists():
        R["profile"] = json.loads(args.profile.read_text())
    t_start = time.time()
    try:
        start_mock(ctx)
        log(f"mock at {ctx.mock_url}")
        chosen = [x for x in SYSTEMS if x[0] in wanted]
        per_round: dict[str, list[dict]] = {x[0]: [] for x in chosen}
        for rnd in range(args.rounds):
            order = chosen[rnd % len(chosen):] + chosen[:rnd % len(chosen)]
            for key, label, starter, kind in order:
                log(f"=== round {rnd + 1}/{args.rounds}: {label}")
                per_round[key].append(bench_system(ctx, key, label, starter, kind, rnd))
                time.sleep(1)
        R["systems"] = [merge_rounds(per_round[k]) for k, *_ in chosen]
        if not args.no_soak:
            log("=== memory soak (N vs 10N)")
            R["soak"] = memory_soak(ctx)
        if not args.no_latency:
            log("=== latency phase (concurrency 1 and TTFT, interleaved)")
            R["latency"] = latency_phase(ctx, wanted)
    except KeyboardInterrupt:
        log("interrupted: stopping every process started")
        stop_all()
        return 130
    finally:
        stop_all()
    R["wall_s"] = time.time() - t_start
    R["quiet_spent_s"], R["retry_spent_s"] = QUIET["spent"], RETRY["spent"]
    R["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]

    compute_ratios_and_targets(R)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    slim = json.loads(json.dumps(R))
    for r in slim["systems"]:
        r.pop("traceback", None)
    args.results.write_text(json.dumps(slim, indent=1) + "\n")
    R["kept_notes"] = kept_notes(args.out)
    args.out.write_text(render_markdown(R))
    try:
        draw_chart(R, args.chart)
    except Exception as e:
        log(f"chart failed: {e}")
        traceback.print_exc()
    log(f"wrote {args.out}, {args.chart}, {args.results} in {R['wall_s']:.0f} s")
    for t in R["targets"]:
        log(f"target: {t['target']}: {t['measured']} → {t['verdict']}")
    failed = [r["key"] for r in R["systems"] if r["status"] != "ok"]
    if failed:
        log(f"systems that failed: {failed} (see {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
