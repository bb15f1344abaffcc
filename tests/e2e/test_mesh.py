"""The mesh emulation (see mesh.py): the rendered istio/ objects configure
Envoy the way istiod configures an Istio gateway and a mesh client's
sidecar, running the same .wasm against the mock. The filter delivered by
ECDS routes and translates; the canary split holds within binomial
tolerance and the header pins; mirrored requests reach the canary while
the client gets the stable version's answer, also when the canary is slow,
failing or down."""

import json
import statistics
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

import mesh
from harness import RENDER, ROOT, WASM, Mock, _live, free_port, require_binaries, scrape, stop, value
from harness import ENVOY

CONFIG = ROOT / "config/gateway.kubernetes.yaml"
KEYS = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY",
        "DASHSCOPE_API_KEY", "MOONSHOT_API_KEY", "ZHIPU_API_KEY"]


class Envoy:
    def __init__(self, bootstrap: dict, work: Path, name: str, env=None):
        require_binaries()
        self.admin = f"http://127.0.0.1:{bootstrap['admin']['address']['socket_address']['port_value']}"
        port = bootstrap["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]
        self.url = f"http://127.0.0.1:{port}"
        path = work / f"{name}.json"
        path.write_text(json.dumps(bootstrap))
        self.log_path = work / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [ENVOY, "-c", str(path), "--concurrency", "1", "--disable-hot-restart",
             "--log-level", "warn", "--base-id", str(free_port())],
            stdout=self.log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin", **(env or {})})
        _live.append(self.proc)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_path.read_text()[-3000:])
            try:
                if httpx.get(self.admin + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("envoy not ready: " + self.log_path.read_text()[-3000:])

    def counter(self, name):
        text = httpx.get(self.admin + "/stats", params={"filter": f"^{name}$"}).text
        for line in text.splitlines():
            n, _, v = line.partition(": ")
            if n == name:
                return int(v)
        return 0

    def stop(self):
        stop(self.proc)
        self.log.close()


def tree_for(tmp: Path, name: str, mutate=None):
    cfg = yaml.safe_load(CONFIG.read_text())
    if mutate:
        mutate(cfg)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp / name
    subprocess.run([str(RENDER), "istio", "--config", str(path), "--out", str(out)],
                   check=True, capture_output=True, timeout=60)
    return out


KEY_ENV = {k: "sk-upstream" for k in KEYS}
CHAT = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def started():
    items = []
    yield items
    for it in reversed(items):
        it.stop()


def gateway(tree, mode_dir, filter_file, tmp, upstream, started, name):
    port, admin = free_port(), free_port()
    b = mesh.gateway_bootstrap(tree, mode_dir, filter_file, tmp, WASM, port, admin, upstream)
    g = Envoy(b, tmp, name, KEY_ENV)
    started.append(g)
    return g


def test_gateway_mode_routes_and_translates_through_the_ecds_filter(tmp_path, started):
    """The EnvoyFilter-delivered filter in an Istio gateway: each model goes
    to its provider's mesh cluster in that provider's own wire format."""
    mock = Mock()
    started.append(mock)
    tree = tree_for(tmp_path, "tree")
    gw = gateway(tree, "gateway", "envoyfilter.yaml", tmp_path, mock.addr, started, "gateway")
    cases = [("gpt-4o-mini", "/v1/chat/completions", "authorization", "Bearer sk-upstream", "outbound|80||api.openai.com"),
             ("claude-sonnet-4-5", "/v1/messages", "x-api-key", "sk-upstream", "outbound|80||api.anthropic.com"),
             ("gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:generateContent", "x-goog-api-key", "sk-upstream",
              "outbound|80||generativelanguage.googleapis.com"),
             ("deepseek-chat", "/chat/completions", "authorization", "Bearer sk-upstream", "outbound|80||api.deepseek.com")]
    for model, path, key_header, key, cluster in cases:
        before = gw.counter(f"cluster.{cluster}.upstream_rq_completed")
        r = httpx.post(gw.url + "/v1/chat/completions", json={"model": model, **CHAT}, timeout=10)
        assert r.status_code == 200, (model, r.text)
        assert r.json()["object"] == "chat.completion"
        last = mock.last()
        assert last["path"].endswith(path), (model, last["path"])
        assert last["headers"].get(key_header) == key
        assert "x-llm-gateway-cluster" not in last["headers"]
        assert gw.counter(f"cluster.{cluster}.upstream_rq_completed") == before + 1
    # Anthropic Messages clients too, and the filter's own errors.
    r = httpx.post(gw.url + "/v1/messages", json={"model": "gpt-4o-mini", "max_tokens": 50, **CHAT}, timeout=10)
    assert r.status_code == 200 and r.json()["type"] == "message"
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "nope", **CHAT}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    # The EnvoyFilter's bootstrap patch turns the metric name segments into labels.
    metrics = scrape(gw)
    assert value(metrics, "llm_gateway_requests_total", llm_gateway_api="openai.chat_completions",
                 gen_ai_operation_name="chat", gen_ai_provider_name="anthropic",
                 gen_ai_request_model="claude-sonnet-4-5", http_response_status_class="2xx",
                 error_type="none") == 1


def test_sidecar_mode_the_apps_own_sidecar_routes_and_translates(tmp_path, started):
    """An application calling the sidecar host through its own sidecar (the
    sidecar EnvoyFilter, outbound): each model reaches its provider in that
    provider's wire, through the provider host's routes (the filter sets
    the authority); another caller of a provider host is not disturbed."""
    mock = Mock()
    started.append(mock)
    tree = tree_for(tmp_path, "tree")
    side = gateway(tree, "sidecar", "envoyfilter.yaml", tmp_path, mock.addr, started, "app-sidecar")
    host = yaml.safe_load((tree / "sidecar/serviceentry.yaml").read_text().split("\n", 1)[1])["spec"]["hosts"][0]
    assert host == "llm-gateway.mesh.internal"
    with httpx.Client(timeout=10, headers={"host": host}) as c:
        r = c.post(side.url + "/v1/chat/completions", json={"model": "claude-sonnet-4-5", **CHAT})
        assert r.status_code == 200, r.text
        assert r.json()["object"] == "chat.completion"
        assert mock.last()["path"] == "/v1/messages"
        r = c.post(side.url + "/v1/messages", json={"model": "gpt-4o-mini", "max_tokens": 20, **CHAT})
        assert r.status_code == 200 and r.json()["type"] == "message"
        assert mock.last()["path"].endswith("/chat/completions")
    assert side.counter("cluster.outbound|80||api.anthropic.com.upstream_rq_completed") == 1
    # The app's other traffic crosses the same connection manager: the
    # filter is off there (a provider host's own callers included).
    n = len(mock.requests())
    r = httpx.post(side.url + "/v1/messages", headers={"host": "api.anthropic.com", "x-api-key": "sk-upstream",
                                                        "anthropic-version": "2023-06-01"},
                   json={"model": "claude-direct", "max_tokens": 20, **CHAT}, timeout=10)
    assert r.status_code == 200, r.text
    assert len(mock.requests()) == n + 1
    assert json.loads(mock.last()["body"])["model"] == "claude-direct"


def test_a_wasmplugin_would_hang_body_routing(tmp_path, started):
    """Why the filter is attached by an EnvoyFilter: the ECDS resource
    istiod builds from a WasmPlugin has no `allow_on_headers_stop_iteration`,
    so holding the headers stops the body too and the request never
    proceeds (requests without a body, answered at the headers, still work)."""
    mock = Mock()
    started.append(mock)
    tree = tree_for(tmp_path, "tree")
    port, admin = free_port(), free_port()
    b = mesh.gateway_bootstrap(tree, "gateway", "envoyfilter.yaml", tmp_path, WASM, port, admin,
                               mock.addr, as_wasmplugin=True)
    gw = Envoy(b, tmp_path, "wasmplugin", KEY_ENV)
    started.append(gw)
    assert httpx.get(gw.url + "/v1/models", timeout=5).status_code == 200
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gw.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", **CHAT}, timeout=3)
    assert mock.requests() == []


def binomial_ok(hits, n, p, sigmas=4.0):
    mean, sd = n * p, (n * p * (1 - p)) ** 0.5
    return abs(hits - mean) <= sigmas * sd


def test_canary_split_is_weighted_and_the_header_pins(tmp_path, started):
    mock_stable, mock_canary = Mock(), Mock()
    started += [mock_stable, mock_canary]
    tree = tree_for(tmp_path, "tree", lambda c: c["kubernetes"]["canary"].update(mirror_percent=0))
    stable = gateway(tree, "gateway", "envoyfilter.yaml", tmp_path, mock_stable.addr, started, "stable")
    canary = gateway(tree, "canary", "envoyfilter.yaml", tmp_path, mock_canary.addr, started, "canary")
    port, admin = free_port(), free_port()
    side = Envoy(mesh.sidecar_bootstrap(tree, port, admin, stable.url[7:], canary.url[7:]), tmp_path, "sidecar")
    started.append(side)
    n = 1000
    with httpx.Client(timeout=10) as c:
        for _ in range(n):
            assert c.get(side.url + "/v1/models").status_code == 200
        hits = canary.counter("http.0.0.0.0_8080.downstream_rq_completed")
        assert stable.counter("http.0.0.0.0_8080.downstream_rq_completed") + hits == n
        percent = yaml.safe_load((tree / "canary/virtualservice.yaml").read_text().split("\n", 1)[1])
        weight = percent["spec"]["http"][1]["route"][1]["weight"] / 100
        assert weight == 0.10
        assert binomial_ok(hits, n, weight), f"{hits} of {n} to the canary"
        for _ in range(50):
            r = c.post(side.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", **CHAT},
                       headers={"x-llm-gateway-canary": "me"})
            assert r.status_code == 200
    assert canary.counter("http.0.0.0.0_8080.downstream_rq_completed") == hits + 50
    assert len(mock_canary.requests()) == 50


def mirror_setup(tmp_path, started, canary_mutation=None, canary_up=True, percent=50.0):
    mock_stable, mock_canary = Mock(), Mock()
    started += [mock_stable, mock_canary]

    def stable_cfg(c):
        c["kubernetes"]["canary"].update(percent=0, mirror_percent=percent)
    tree = tree_for(tmp_path, "tree", stable_cfg)
    stable = gateway(tree, "gateway", "envoyfilter.yaml", tmp_path, mock_stable.addr, started, "stable")
    canary_addr = f"127.0.0.1:{free_port()}"
    canary = None
    if canary_up:
        def canary_cfg(c):
            stable_cfg(c)
            if canary_mutation:
                canary_mutation(c)
        ctree = tree_for(tmp_path, "canary-tree", canary_cfg)
        canary = gateway(ctree, "canary", "envoyfilter.yaml", tmp_path, mock_canary.addr, started, "canary")
        canary_addr = canary.url[7:]
    side = Envoy(mesh.sidecar_bootstrap(tree, free_port(), free_port(), stable.url[7:], canary_addr),
                 tmp_path, "sidecar")
    started.append(side)
    return side, stable, canary, mock_stable, mock_canary


def send(side, n, model="claude-sonnet-4-5"):
    latencies, bodies = [], []
    with httpx.Client(timeout=10) as c:
        for i in range(n):
            t = time.perf_counter()
            r = c.post(side.url + "/v1/chat/completions",
                       json={"model": model, "messages": [{"role": "user", "content": f"q{i}"}]})
            latencies.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
            bodies.append(r.json())
    return latencies, bodies


def test_mirror_copies_a_share_to_the_canary_in_the_providers_wire(tmp_path, started):
    side, stable, canary, mock_stable, mock_canary = mirror_setup(tmp_path, started)
    n = 200
    _, bodies = send(side, n)
    assert all(b["object"] == "chat.completion" for b in bodies)
    assert len(mock_stable.requests()) == n
    deadline = time.time() + 5
    while time.time() < deadline and len(mock_canary.requests()) < 60:
        time.sleep(0.1)
    mirrored = mock_canary.requests()
    assert binomial_ok(len(mirrored), n, 0.5), f"{len(mirrored)} of {n} mirrored"
    # The canary gateway translated its copy for Anthropic, as the stable one did.
    assert all(r["path"] == "/v1/messages" for r in mirrored)
    assert all(r["headers"]["x-api-key"] == "sk-upstream" for r in mirrored)
    assert {json.loads(r["body"])["messages"][0]["content"] for r in mirrored} <= {f"q{i}" for i in range(n)}


@pytest.mark.parametrize("canary", ["slow", "failing", "down"])
def test_a_bad_canary_never_reaches_the_client(tmp_path, started, canary):
    headers = {"slow": [{"name": "x-mock-first-byte-ms", "value": "1500"}],
               "failing": [{"name": "x-mock-status", "value": "500"}]}.get(canary)

    def mutate(c):
        for p in c["providers"]:
            p["headers"] = headers
    side, stable, _, mock_stable, mock_canary = mirror_setup(
        tmp_path, started, mutate if headers else None, canary_up=canary != "down", percent=100.0)
    latencies, bodies = send(side, 20)
    assert all(b["object"] == "chat.completion" and b["choices"][0]["finish_reason"] for b in bodies)
    assert len(mock_stable.requests()) == 20
    # The client never waits for the copy (a slow canary takes 1.5 s).
    assert statistics.median(latencies) < 0.5, latencies
    if canary != "down":
        deadline = time.time() + 10
        while time.time() < deadline and len(mock_canary.requests()) < 20:
            time.sleep(0.1)
        assert len(mock_canary.requests()) == 20
