"""Starts the mock provider and a real Envoy running the filter, on free
loopback ports, and stops them whatever happens."""

import atexit
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "target/wasm32-wasip1/release/llm_gateway.wasm"
RENDER = ROOT / "target/release/llm-gateway-render"
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
    def __init__(self, api_key="sk-upstream"):
        require_binaries()
        key_args = ["--api-key", api_key] if api_key else []
        self.proc = subprocess.Popen(
            [str(MOCK), "--listen", "127.0.0.1:0", *key_args],
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
