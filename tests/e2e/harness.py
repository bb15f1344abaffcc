"""Starts the mock provider and a real Envoy running the filter, on free
loopback ports, and stops them whatever happens."""

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Another build can be tested with the same suite (e.g. the last release, to
# see which tests fail without a fix).
WASM = Path(os.environ.get("LLMGW_WASM") or ROOT / "target/wasm32-wasip1/release/llm_gateway.wasm")
RENDER = Path(os.environ.get("LLMGW_RENDER") or ROOT / "target/release/llm-gateway-render")
MOCK = ROOT / "target/mock/release/mock-provider"
ENVOY = os.environ.get("ENVOY") or str(ROOT / ".venv/bin/envoy")

_live = []


def _stop_all():
    for proc in list(_live):
        stop(proc)


atexit.register(_stop_all)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in _live:
        _live.remove(proc)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_binaries():
    missing = [str(p) for p in (WASM, RENDER, MOCK) if not p.exists()]
    if missing:
        raise RuntimeError(f"missing {missing}: run `make test` (it builds them)")


class Mock:
    def __init__(self, api_key="sk-upstream", extra_args=()):
        require_binaries()
        key_args = ["--api-key", api_key] if api_key else []
        self.proc = subprocess.Popen(
            [str(MOCK), "--listen", "127.0.0.1:0", *key_args, *extra_args],
            stdout=subprocess.PIPE,
            text=True,
        )
        _live.append(self.proc)
        line = self.proc.stdout.readline().strip()
        prefix = "mock-provider listening on "
        if not line.startswith(prefix):
            stop(self.proc)
            raise RuntimeError(f"mock did not start: {line!r}")
        self.addr = line[len(prefix):]
        self.url = f"http://{self.addr}"
        self.api_key = api_key

    def requests(self):
        return httpx.get(f"{self.url}/__mock/requests").json()

    def clear(self):
        httpx.delete(f"{self.url}/__mock/requests")

    def last(self):
        reqs = self.requests()
        assert reqs, "the mock received no request"
        return reqs[-1]

    def stop(self):
        stop(self.proc)


class Gateway:
    """Envoy + the filter for a gateway config (a dict without listener/admin)."""

    def __init__(self, config, tmp: Path, concurrency=2, env=None):
        require_binaries()
        self.port, self.admin_port = free_port(), free_port()
        full = dict(config)
        full["listener"] = {"address": "127.0.0.1", "port": self.port}
        full["admin"] = {"address": "127.0.0.1", "port": self.admin_port}
        full.setdefault("envoy", {"access_log": "none"})
        tmp.mkdir(parents=True, exist_ok=True)
        self.config_path = tmp / "gateway.yaml"
        # YAML is a superset of JSON.
        self.config_path.write_text(json.dumps(full, indent=1))
        self.envoy_path = tmp / "envoy.yaml"
        subprocess.run(
            [str(RENDER), "--config", str(self.config_path), "--wasm", str(WASM),
             "--out", str(self.envoy_path)],
            check=True,
        )
        self.log_path = tmp / "envoy.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [ENVOY, "-c", str(self.envoy_path), "--concurrency", str(concurrency),
             "--disable-hot-restart", "--log-level", "warn",
             # Access-log files are read back by tests: flush them often.
             "--file-flush-interval-msec", "200",
             "--component-log-level", "wasm:info"],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        _live.append(self.proc)
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        # One pooled client: a new one per request costs ~30 ms of setup.
        self.client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64))
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.admin}/ready", timeout=1).status_code == 200:
                    httpx.get(f"{self.url}/v1/models", timeout=2)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("envoy did not become ready in 30 s")

    def post(self, path, body=None, headers=None, **kw):
        content = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.client.post(self.url + path, content=content,
                                headers={"content-type": "application/json", **(headers or {})},
                                **kw)

    def logs(self):
        self.log.flush()
        return self.log_path.read_text()

    def stop(self):
        self.client.close()
        stop(self.proc)
        self.log.close()


def scrape(gw):
    """The gateway's own metrics from Envoy's Prometheus endpoint:
    {(name, frozenset(labels)): value}."""
    text = httpx.get(gw.admin + "/stats/prometheus", timeout=10).text
    values = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if m and (m.group(1).startswith("llm_gateway") or m.group(1).startswith("gen_ai")):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            values[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return values


def value(values, name, **labels):
    return values.get((name, frozenset(labels.items())))


def raw_http(port, data, wait=0.3, timeout=10):
    """Sends raw bytes to the listener and returns (status, headers, body)
    of the answer: for requests no HTTP client library would send."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        time.sleep(wait)
        reply = b""
        while True:
            try:
                part = s.recv(65536)
            except socket.timeout:
                break
            if not part:
                break
            reply += part
            head, sep, body = reply.partition(b"\r\n\r\n")
            if sep:
                headers = parse_headers(head)
                length = int(headers.get("content-length", "-1"))
                if length >= 0 and len(body) >= length:
                    break
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, parse_headers(head), body


def parse_headers(head):
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines)}
