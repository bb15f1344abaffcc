"""Shadow models: `models[].shadow` copies a share of a model's requests to
another model, translated for that model's provider. Envoy mirrors the
marked request to the gateway's internal listener, where the filter serves
the copy as a request for the shadow model; the client's answer, latency
and limits are the primary's alone, and the copy's outcome is recorded
under its own metrics and on its own access-log line."""

import hashlib
import json
import statistics
import time

import httpx
import pytest

from harness import DynamicGateway, Gateway, Mock, free_port, scrape, value

PROMPT = [{"role": "user", "content": "compare us"}]
TEAM_KEY = "sha256:" + hashlib.sha256(b"sk-team-1").hexdigest()


def config(mock, shadow_percent=100.0, shadow_provider_headers=None, shadow_base=None, **extra):
    cfg = {
        "providers": [
            {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"},
            {"name": "claude", "type": "anthropic", "base_url": shadow_base or f"{mock.url}/v1",
             "api_key": "sk-upstream", **({"headers": shadow_provider_headers} if shadow_provider_headers else {})},
        ],
        "models": [
            {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}],
             "shadow": {"model": "claude-next", "percent": shadow_percent}},
            {"name": "claude-next", "targets": [{"provider": "claude", "model": "claude-haiku-4-5",
                                                 "max_tokens": 256}]},
        ],
        "pricing": [{"model": "gpt-4o-mini", "input": 1.0, "output": 2.0},
                    {"model": "claude-haiku-4-5", "input": 3.0, "output": 4.0}],
    }
    cfg.update(extra)
    return cfg


@pytest.fixture
def parts(tmp_path):
    made = []

    def start(cfg_fn, mock_args=()):
        mock = Mock(extra_args=mock_args)
        made.append(mock)
        log = tmp_path / "access.log"
        cfg = cfg_fn(mock)
        cfg["envoy"] = {"access_log": str(log)}
        gw = Gateway(cfg, tmp_path / f"gw{len(made)}")
        made.append(gw)
        return mock, gw, log
    yield start
    for p in reversed(made):
        p.stop()


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def by_path(mock):
    reqs = mock.requests()
    return ([r for r in reqs if r["path"] == "/v1/chat/completions"],
            [r for r in reqs if r["path"] == "/v1/messages"])


def log_lines(path):
    # Only whole lines: Envoy may be writing the last one as we read.
    text = path.read_text()
    whole = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in whole.splitlines() if line.strip()]


def test_shadow_copy_reaches_the_shadow_provider_in_its_own_wire(parts):
    mock, gw, log = parts(config)
    r = gw.post("/v1/chat/completions", {"model": "gpt", "messages": PROMPT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
    assert wait_for(lambda: len(by_path(mock)[1]) == 1)
    primary, shadow = by_path(mock)
    assert len(primary) == 1
    # The primary went in OpenAI's wire, the copy in Anthropic's, for the shadow's model.
    sent = json.loads(shadow[0]["body"])
    assert sent["model"] == "claude-haiku-4-5" and sent["max_tokens"] == 256
    assert sent["messages"] == [{"role": "user", "content": "compare us"}]
    assert shadow[0]["headers"]["x-api-key"] == "sk-upstream"
    # No marker reaches a provider.
    for req in primary + shadow:
        assert not [h for h in req["headers"] if h.startswith("x-llm-gateway")], req["headers"]
    # Two access-log lines with the same request id: the primary's and the copy's.
    assert wait_for(lambda: len(log_lines(log)) >= 2)
    lines = log_lines(log)
    first = next(line for line in lines if line["shadow"] == "to:claude-next")
    copy = next(line for line in lines if line["shadow"] == "of:gpt")
    assert first["request_id"] == copy["request_id"]
    assert first["model"] == "gpt" and copy["model"] == "claude-next"
    assert copy["provider"] == "claude" and copy["status"] == 200
    assert copy["tokens_in"] not in ("", None, "-") and copy["cost_usd"] not in ("", None, "-")
    # How each model finished, in one vocabulary whatever the wire.
    assert first["finish_reason"] == "stop" and copy["finish_reason"] == "stop"
    # The copy's metrics are its own, labelled with the model copied.
    metrics = scrape(gw)
    ok = dict(llm_gateway_api="openai.chat_completions", gen_ai_operation_name="chat",
              http_response_status_class="2xx", error_type="none")
    assert value(metrics, "llm_gateway_requests_total", gen_ai_provider_name="openai",
                 gen_ai_request_model="gpt", **ok) == 1
    assert value(metrics, "llm_gateway_shadow_requests_total", gen_ai_provider_name="anthropic",
                 gen_ai_request_model="claude-next", llm_gateway_shadow_of="gpt", **ok) == 1
    assert value(metrics, "llm_gateway_requests_total", gen_ai_provider_name="anthropic",
                 gen_ai_request_model="claude-next", **ok) is None


def test_streamed_requests_are_copied_and_the_client_stream_is_the_primarys(parts):
    mock, gw, log = parts(config)
    with gw.client.stream("POST", gw.url + "/v1/chat/completions",
                          json={"model": "gpt", "messages": PROMPT, "stream": True}) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert text.rstrip().endswith("data: [DONE]") and "chat.completion.chunk" in text
    assert wait_for(lambda: len(by_path(mock)[1]) == 1)
    assert json.loads(by_path(mock)[1][0]["body"])["stream"] is True
    assert wait_for(lambda: any(line.get("shadow") == "of:gpt" and line.get("ttft_ms") not in ("", None, "-")
                                for line in log_lines(log)))
    lines = log_lines(log)
    copy = next(line for line in lines if line.get("shadow") == "of:gpt")
    primary = next(line for line in lines if line.get("shadow") == "to:claude-next")
    assert copy["finish_reason"] == "stop" and primary["finish_reason"] == "stop"


def test_share_of_requests_copied_is_binomial(parts):
    mock, gw, _ = parts(lambda m: config(m, shadow_percent=30))
    n = 300
    for _ in range(n):
        assert gw.post("/v1/chat/completions", {"model": "gpt", "messages": PROMPT}).status_code == 200
    time.sleep(1)
    copies = len(by_path(mock)[1])
    mean, sd = n * 0.3, (n * 0.3 * 0.7) ** 0.5
    assert abs(copies - mean) <= 4 * sd, copies


@pytest.mark.parametrize("kind", ["slow", "failing", "down"])
def test_a_bad_shadow_never_reaches_the_client(parts, kind):
    headers = {"slow": [{"name": "x-mock-first-byte-ms", "value": "1500"}],
               "failing": [{"name": "x-mock-status", "value": "500"}]}.get(kind)
    base = f"http://127.0.0.1:{free_port()}/v1" if kind == "down" else None
    mock, gw, log = parts(lambda m: config(m, shadow_provider_headers=headers, shadow_base=base))
    latencies = []
    for _ in range(10):
        t = time.perf_counter()
        r = gw.post("/v1/chat/completions", {"model": "gpt", "messages": PROMPT})
        latencies.append(time.perf_counter() - t)
        assert r.status_code == 200 and r.json()["object"] == "chat.completion"
    assert statistics.median(latencies) < 0.5, latencies
    status = {"slow": 200, "failing": 500, "down": 503}[kind]
    assert wait_for(lambda: sum(1 for line in log_lines(log) if line.get("shadow") == "of:gpt"
                                and line["status"] == status) == 10, timeout=15), log_lines(log)[-3:]
    cls = f"{status // 100}xx"
    metrics = scrape(gw)
    copies = sum(v for (name, labels), v in metrics.items()
                 if name == "llm_gateway_shadow_requests_total"
                 and ("http_response_status_class", cls) in labels)
    assert copies == 10


def test_copies_take_nothing_from_the_clients_limits(parts):
    def cfg(m):
        c = config(m)
        c["consumers"] = [{"name": "team", "api_keys": [TEAM_KEY]}]
        c["rate_limits"] = {"rules": [{"name": "three-per-hour", "requests": {"limit": 3, "per": "hour"}}]}
        return c
    mock, gw, log = parts(cfg)
    auth = {"authorization": "Bearer sk-team-1"}
    codes = [gw.post("/v1/chat/completions", {"model": "gpt", "messages": PROMPT}, headers=auth).status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert wait_for(lambda: len(by_path(mock)[1]) == 3)
    lines = log_lines(log)
    assert wait_for(lambda: sum(1 for line in log_lines(log) if line.get("shadow") == "of:gpt") == 3)
    lines = log_lines(log)
    assert all(line["consumer"] == "team" for line in lines if line.get("shadow") == "of:gpt")


def test_clients_cannot_forge_a_shadow_copy(parts):
    """The markers only count on the internal listener: a client sending
    them is an ordinary client (authenticated, limited, not a copy)."""
    def cfg(m):
        c = config(m)
        c["consumers"] = [{"name": "team", "api_keys": [TEAM_KEY]}]
        return c
    mock, gw, log = parts(cfg)
    forged = {"x-llm-gateway-shadow-model": "claude-next", "x-llm-gateway-shadow-of": "gpt",
              "x-llm-gateway-mirror": "llmgw_shadow"}
    r = gw.post("/v1/chat/completions", {"model": "gpt", "messages": PROMPT}, headers=forged)
    assert r.status_code == 401
    assert mock.requests() == []


def test_a_shadow_added_to_a_running_gateway_applies_without_restart(tmp_path):
    """`make run`'s dynamic form: the internal listener and the mirror come
    with the change; the Envoy process stays the same."""
    mock = Mock()
    gw = None
    try:
        cfg = config(mock)
        plain = json.loads(json.dumps(cfg))
        del plain["models"][0]["shadow"]
        gw = DynamicGateway(plain, tmp_path)
        pid = gw.proc.pid
        assert gw.post("/v1/chat/completions", {"model": "gpt", "messages": PROMPT}).status_code == 200
        assert by_path(mock)[1] == []
        result = gw.apply(cfg)
        assert result.returncode == 0, result.stderr

        def copied():
            gw.post("/v1/chat/completions", {"model": "gpt", "messages": PROMPT})
            return len(by_path(mock)[1]) > 0
        assert wait_for(copied, timeout=15)
        assert gw.proc.pid == pid and gw.proc.poll() is None
    finally:
        if gw:
            gw.stop()
        mock.stop()
