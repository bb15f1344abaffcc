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


# One provider of each wire on the mock, by name.
MOCK_PROVIDERS = {
    "oai": ("openai", "/v1"),
    "compat": ("deepseek", "/v1"),
    "claude": ("anthropic", "/v1"),
    "gem": ("gemini", "/v1beta"),
}


def mock_providers(mock, *names):
    """Providers (all of MOCK_PROVIDERS without names) on the mock."""
    return [{"name": n, "type": MOCK_PROVIDERS[n][0], "base_url": f"{mock.url}{MOCK_PROVIDERS[n][1]}",
             "api_key": "sk-upstream"} for n in (names or MOCK_PROVIDERS)]



class Gateway:
    """Envoy + the filter for a gateway config (a dict without listener/admin)."""

    def __init__(self, config, tmp: Path, concurrency=2, env=None, scheme="http"):
        require_binaries()
        self.port, self.admin_port = free_port(), free_port()
        full = dict(config)
        tls = full.pop("listener_tls", None)  # HTTPS: {cert_file, key_file}
        full["listener"] = {"address": "127.0.0.1", "port": self.port}
        if tls:
            full["listener"]["tls"] = tls
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
        self._start(self.envoy_path, tmp, concurrency, env, scheme)

    def _start(self, bootstrap, tmp, concurrency, env, scheme="http"):
        """Starts Envoy on `bootstrap` and waits until it serves."""
        self.log_path = Path(tmp) / "envoy.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [ENVOY, "-c", str(bootstrap), "--concurrency", str(concurrency),
             "--disable-hot-restart", "--log-level", "warn",
             # Access-log files are read back by tests: flush them often.
             "--file-flush-interval-msec", "200",
             "--component-log-level", "wasm:info"],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        _live.append(self.proc)
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        # One pooled client: a new one per request costs ~30 ms of setup.
        self.client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64),
                                   verify=scheme == "http")
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.admin}/ready", timeout=1).status_code == 200:
                    httpx.get(f"{self.url}/v1/models", timeout=2, verify=False)
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


def check_refused_token_is_replaced(gw, revoke_url, model, issued):
    """Revokes the provider's tokens (`revoke_url`, a mock admin endpoint),
    then expects a chat request and a streamed one to be answered as if
    nothing happened — the gateway replaces the token and sends each again —
    with `issued()` (the mock's count of tokens issued) grown."""
    greeting = "Hello from mock-provider! You said: after revoke"
    before = issued()
    httpx.post(revoke_url)
    body = {"model": model, "messages": [{"role": "user", "content": "after revoke"}]}
    r = gw.post("/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == greeting
    assert issued() == before + 1
    # Streams too (their refusal is a JSON body or a 401, not a stream).
    httpx.post(revoke_url)
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=10,
                      json={**body, "stream": True}) as s:
        assert s.status_code == 200
        text = s.read().decode()
    assert text.rstrip().endswith("data: [DONE]"), text
    deltas = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    said = "".join(d["choices"][0]["delta"].get("content") or "" for d in deltas if d["choices"])
    assert said == greeting, text
    assert issued() == before + 2


def parse_headers(head):
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines)}


def write_atomically(path: Path, text):
    """Replaces `path` the way a careful editor or a config manager does: a
    temporary file in the same directory renamed over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = text.encode() if isinstance(text, str) else text
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Watcher:
    """`llm-gateway-render --watch` as a subprocess; its stdout lines are
    collected (with the time each arrived) for tests to wait on."""

    def __init__(self, args):
        import queue
        import threading
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        _live.append(self.proc)
        self.lines = []  # (time.time(), line), every line so far
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self.proc.stdout:
            item = (time.time(), line.rstrip("\n"))
            self.lines.append(item)
            self._queue.put(item)

    def next_line(self, timeout=5.0):
        """The next line not yet returned: (arrival time, text), or None."""
        import queue
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, pattern, timeout=5.0):
        """Skips lines until one matches the regex; returns (time, line) or None."""
        deadline = time.time() + timeout
        while (left := deadline - time.time()) > 0:
            item = self.next_line(left)
            if item and re.search(pattern, item[1]):
                return item
        return None

    def ready(self, timeout=10.0):
        """Waits for the `watching …` line; returns the lines before it (what
        the initial apply did). A save while the watcher starts could be
        missed, so a moment more passes before this returns."""
        before = []
        deadline = time.time() + timeout
        while (left := deadline - time.time()) > 0:
            item = self.next_line(left)
            if item is None:
                break
            if "llm-gateway-render: watching " in item[1]:
                time.sleep(0.3)
                return before
            before.append(item[1])
        raise RuntimeError(f"the watcher did not start: {before}")

    def drain(self):
        """Every line not yet returned."""
        import queue
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def stop(self):
        stop(self.proc)
        self._thread.join(timeout=5)


class DynamicGateway(Gateway):
    """Envoy started from the files `llm-gateway-render --out-dir` writes, so
    the gateway file can change while it runs: `apply(config)` writes the
    gateway file atomically and runs the renderer once; `watch()` starts
    `llm-gateway-render --watch` instead."""

    def __init__(self, config, tmp: Path, concurrency=2, env=None, wasm=None, render=None):
        require_binaries()
        self.render_bin = Path(render or RENDER)
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port, self.admin_port = free_port(), free_port()
        self.out_dir = self.tmp / "xds"
        self.config_path = self.tmp / "gateway.yaml"
        self.wasm = Path(wasm or WASM)
        self.watcher = None
        result = self.apply(config)
        if result.returncode != 0:
            raise RuntimeError(f"render failed: {result.stderr}")
        self._start(self.out_dir / "bootstrap.yaml", self.tmp, concurrency, env)

    def gateway_text(self, config):
        """The gateway file for `config` (a dict without listener/admin)."""
        full = dict(config)
        full["listener"] = {"address": "127.0.0.1", "port": self.port}
        full["admin"] = {"address": "127.0.0.1", "port": self.admin_port}
        full.setdefault("envoy", {"access_log": "none"})
        return json.dumps(full, indent=1)  # YAML is a superset of JSON

    def write(self, config, path=None):
        write_atomically(path or self.config_path, self.gateway_text(config))

    def render(self, config_path=None, wasm=None):
        """Runs the renderer once on the gateway file: the CompletedProcess."""
        return subprocess.run(
            [str(self.render_bin), "--config", str(config_path or self.config_path),
             "--wasm", str(wasm or self.wasm), "--out-dir", str(self.out_dir)],
            capture_output=True, text=True, timeout=60)

    def apply(self, config, wasm=None):
        """Writes the gateway file and renders it once; with `wasm`, that
        filter from now on. Returns the renderer's CompletedProcess."""
        if wasm:
            self.wasm = Path(wasm)
        self.write(config)
        return self.render()

    def watch(self, config_path=None, interval_ms=None):
        """Starts `--watch` on the gateway file (or `config_path`). Its first
        lines (the initial apply, then `watching …`) are left for the caller:
        see `Watcher.ready()`."""
        self.stop_watch()
        args = [str(self.render_bin), "--config", str(config_path or self.config_path),
                "--wasm", str(self.wasm), "--out-dir", str(self.out_dir), "--watch"]
        if interval_ms:
            args += ["--interval-ms", str(interval_ms)]
        self.watcher = Watcher(args)
        return self.watcher

    def stop_watch(self):
        if self.watcher:
            self.watcher.stop()
            self.watcher = None

    def stats(self, pattern):
        """Admin counters and gauges whose name matches the regex: {name: int}."""
        text = httpx.get(self.admin + "/stats", params={"filter": pattern}, timeout=10).text
        out = {}
        for line in text.splitlines():
            name, sep, v = line.partition(": ")
            if sep and v.strip().lstrip("-").isdigit():
                out[name] = int(v)
        return out

    def stat(self, name):
        """One admin counter or gauge (0 when absent)."""
        return self.stats("^" + re.escape(name) + "$").get(name, 0)

    def rss_kb(self):
        """Envoy's resident set size (VmRSS) in kB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self):
        self.stop_watch()
        super().stop()


class ChatLoad:
    """A bounded background load of chat completions on one model — streams
    and non-streams alternating — paced to `rate` requests/s over `threads`
    threads, recording every response: (start, end, stream, status, ok, why),
    where ok means a 200 whose JSON was complete (non-stream) or whose stream
    carried the whole reply and ended with `data: [DONE]`."""

    REPLY = "Hello from mock-provider! You said: "

    def __init__(self, gw, model, headers=None, rate=64.0, threads=14, max_seconds=600,
                 header_fn=None):
        import threading
        self.gw, self.model, self.headers = gw, model, dict(headers or {})
        self.rate, self.threads, self.max_seconds = rate, threads, max_seconds
        self.header_fn = header_fn or (lambda tid, k: {})
        self.results = []
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]
        self.started = self.stopped = None

    def start(self):
        self.started = time.time()
        for w in self._workers:
            w.start()
        return self

    def stop(self):
        self._stop.set()
        for w in self._workers:
            w.join(timeout=60)
        self.stopped = time.time()

    def _run(self, tid):
        period = self.threads / self.rate
        next_at = self.started + tid * period / self.threads
        k = 0
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set() and time.time() - self.started < self.max_seconds:
                delay = next_at - time.time()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_at = max(next_at + period, time.time() - period)
                stream = k % 2 == 1
                text = f"load {tid}-{k}"
                headers = {"content-type": "application/json", **self.headers,
                           **self.header_fn(tid, k)}
                t0 = time.time()
                try:
                    status, ok, why = (self._stream if stream else self._plain)(client, text, headers)
                except Exception as e:  # a reset, a timeout: a failure like any other
                    status, ok, why = 0, False, f"{type(e).__name__}: {e}"
                self.results.append((t0, time.time(), stream, status, ok, why))
                k += 1

    def _plain(self, client, text, headers):
        body = {"model": self.model, "messages": [{"role": "user", "content": text}]}
        r = client.post(self.gw.url + "/v1/chat/completions", json=body,
                        headers={**headers, "x-mock-first-byte-ms": "20"})
        if r.status_code != 200:
            return r.status_code, False, r.text[:200]
        try:
            doc = r.json()
            choice = doc["choices"][0]
            ok = (choice["message"]["content"] == self.REPLY + text
                  and choice["finish_reason"] == "stop" and doc["usage"]["total_tokens"] > 0)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return 200, False, f"incomplete JSON: {e}: {r.text[:200]}"
        return 200, ok, "" if ok else f"unexpected answer: {r.text[:200]}"

    def _stream(self, client, text, headers):
        body = {"model": self.model, "messages": [{"role": "user", "content": text}],
                "stream": True, "stream_options": {"include_usage": True}}
        knobs = {"x-mock-chunk-delay-ms": "20", "x-mock-chunk-chars": "8"}
        with client.stream("POST", self.gw.url + "/v1/chat/completions", json=body,
                           headers={**headers, **knobs}) as r:
            if r.status_code != 200:
                return r.status_code, False, r.read()[:200].decode("utf-8", "replace")
            raw = b"".join(r.iter_bytes()).decode()
        data = [l[len("data: "):] for l in raw.split("\n") if l.startswith("data: ")]
        if not data or data[-1] != "[DONE]":
            return 200, False, f"stream without [DONE]: {raw[-200:]!r}"
        content, finish = "", None
        try:
            for d in data[:-1]:
                for c in json.loads(d)["choices"]:
                    content += c["delta"].get("content") or ""
                    finish = c.get("finish_reason") or finish
        except (ValueError, KeyError, TypeError) as e:
            return 200, False, f"bad event: {e}"
        ok = content == self.REPLY + text and finish == "stop"
        return 200, ok, "" if ok else f"stream content {content!r} finish {finish!r}"

    def mark(self):
        return len(self.results)

    def since(self, mark=0):
        return self.results[mark:]

    def failures(self, mark=0):
        return [r for r in self.since(mark) if not r[4]]

    def summary(self, mark=0):
        rs = self.since(mark)
        if not rs:
            return {"requests": 0}
        span = max(r[1] for r in rs) - min(r[0] for r in rs)
        lat = sorted(r[1] - r[0] for r in rs)
        return {"requests": len(rs), "streams": sum(1 for r in rs if r[2]),
                "failed": sum(1 for r in rs if not r[4]), "seconds": round(span, 1),
                "rps": round(len(rs) / span, 1) if span > 0 else 0.0,
                "p50_ms": round(1000 * lat[len(lat) // 2]), "p99_ms": round(1000 * lat[int(len(lat) * 0.99)]),
                "max_ms": round(1000 * lat[-1])}
