"""Known traffic through a fresh Envoy, then exact Prometheus values and the
access-log fields read back from a real Envoy access-log file."""

import json
import time

import httpx
import pytest

from harness import Gateway, scrape, value

CHAT = "/v1/chat/completions"
PROMPT = [{"role": "user", "content": "one two three"}]  # 3 prompt tokens at the mock
# The mock answers "Hello from mock-provider! You said: one two three": 8 tokens.


@pytest.fixture(scope="module")
def ogw(mock, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("obs")
    access_log = tmp / "access.log"
    config = {
        "envoy": {"access_log": str(access_log)},
        "providers": [
            {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"},
            {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"},
        ],
        "models": [
            {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
            {"name": "sonnet", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]},
        ],
        "pricing": [{"model": "gpt-4o-mini", "input": 1.0, "output": 2.0}],
    }
    gw = Gateway(config, tmp)
    gw.access_log = access_log
    send_known_traffic(gw)
    yield gw
    gw.stop()


def stream(gw, model, include_usage):
    body = {"model": model, "messages": PROMPT, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", gw.url + CHAT, json=body, timeout=30) as r:
        assert r.status_code == 200
        assert b"[DONE]" in b"".join(r.iter_raw())


def send_known_traffic(gw):
    assert gw.post(CHAT, {"model": "gpt", "messages": PROMPT}).status_code == 200
    stream(gw, "gpt", include_usage=True)
    stream(gw, "gpt", include_usage=False)  # no usage reported: no tokens counted
    assert gw.post(CHAT, {"model": "sonnet", "messages": PROMPT},
                   headers={"x-request-id": "req-sonnet-1"}).status_code == 200
    stream(gw, "sonnet", include_usage=False)  # translated: usage always known
    assert gw.post(CHAT, {"model": "nope", "messages": PROMPT}).status_code == 404
    assert gw.post(CHAT, "{bad json").status_code == 400
    assert gw.post(CHAT, {"model": "gpt", "messages": PROMPT},
                   headers={"x-mock-status": "429"}).status_code == 429


CHAT_API = "openai.chat_completions"


def chat(provider, model, **extra):
    return dict(gen_ai_operation_name="chat", gen_ai_provider_name=provider,
                gen_ai_request_model=model, **extra)


def test_request_counters_are_exact(ogw):
    v = scrape(ogw)
    req = "llm_gateway_requests_total"
    ok = dict(http_response_status_class="2xx", error_type="none", llm_gateway_api=CHAT_API)
    assert value(v, req, **chat("openai", "gpt", **ok)) == 3
    assert value(v, req, **chat("anthropic", "sonnet", **ok)) == 2
    assert value(v, req, **chat("openai", "gpt", http_response_status_class="4xx",
                                error_type="rate_limit_error", llm_gateway_api=CHAT_API)) == 1
    assert value(v, req, **chat("none", "unknown", http_response_status_class="4xx",
                                error_type="invalid_request_error",
                                llm_gateway_api=CHAT_API)) == 1
    assert value(v, req, **chat("none", "none", http_response_status_class="4xx",
                                error_type="invalid_request_error",
                                llm_gateway_api=CHAT_API)) == 1
    # The harness's readiness probe: GET /v1/models.
    assert value(v, req, llm_gateway_api="none", gen_ai_operation_name="other",
                 gen_ai_provider_name="none",
                 gen_ai_request_model="none", http_response_status_class="2xx",
                 error_type="none") == 1
    assert sum(x for (n, _), x in v.items() if n == req) == 9


def test_token_and_cost_counters_are_exact(ogw):
    v = scrape(ogw)
    tok = "llm_gateway_tokens_total"
    gpt = chat("openai", "gpt", gen_ai_response_model="gpt-4o-mini")
    sonnet = chat("anthropic", "sonnet", gen_ai_response_model="claude-sonnet-4-5")
    assert value(v, tok, **gpt, gen_ai_token_type="input") == 6
    assert value(v, tok, **gpt, gen_ai_token_type="output") == 16
    assert value(v, tok, **sonnet, gen_ai_token_type="input") == 6
    assert value(v, tok, **sonnet, gen_ai_token_type="output") == 16
    cost = "llm_gateway_cost_micro_usd_total"
    # Configured price: 3 × $1/M + 8 × $2/M = 19 µUSD per request, two requests.
    assert value(v, cost, **gpt) == 38
    # Built-in Claude Sonnet 4 price: 3 × $3/M + 8 × $15/M = 129 µUSD, twice.
    assert value(v, cost, **sonnet) == 258


def test_histograms_after_flush(ogw):
    deadline = time.time() + 15
    while True:
        v = scrape(ogw)
        count = value(v, "gen_ai_server_request_duration_milliseconds_count",
                      **chat("openai", "gpt", error_type="none", llm_gateway_api=CHAT_API))
        if count or time.time() > deadline:  # histograms show after a stats flush
            break
        time.sleep(0.5)
    assert count == 3
    assert value(v, "gen_ai_server_time_to_first_token_milliseconds_count",
                 **chat("openai", "gpt")) == 2
    assert value(v, "gen_ai_server_time_to_first_token_milliseconds_count",
                 **chat("anthropic", "sonnet")) == 1
    assert value(v, "gen_ai_client_token_usage_count",
                 **chat("openai", "gpt", gen_ai_response_model="gpt-4o-mini"),
                 gen_ai_token_type="output") == 2
    # Buckets suit milliseconds: the first duration bound is 25 ms.
    assert value(v, "gen_ai_server_request_duration_milliseconds_bucket",
                 **chat("anthropic", "sonnet", error_type="none", llm_gateway_api=CHAT_API),
                 le="25") is not None


def test_access_log_fields(ogw):
    deadline = time.time() + 10
    lines = []
    while time.time() < deadline and len(lines) < 9:
        text = ogw.access_log.read_text() if ogw.access_log.exists() else ""
        lines = [json.loads(l) for l in text.splitlines() if l.strip()]
        time.sleep(0.3)
    assert len(lines) == 9  # 8 requests and the harness's readiness probe
    sonnet = next(l for l in lines if l["request_id"] == "req-sonnet-1")
    assert sonnet["status"] == 200
    assert sonnet["model"] == "sonnet"
    assert sonnet["provider"] == "claude"
    assert sonnet["upstream_model"] == "claude-sonnet-4-5"
    assert sonnet["target"] == "claude/claude-sonnet-4-5"
    assert (sonnet["tokens_in"], sonnet["tokens_out"]) == ("3", "8")
    assert sonnet["cost_usd"] == "0.000129"
    assert sonnet["attempts"] == 1
    # What the client requested, not the provider path it was rewritten to.
    assert sonnet["path"] == "/v1/chat/completions"
    assert sonnet["api"] == "openai.chat_completions"
    unknown = next(l for l in lines if l["model"] == "unknown")
    assert unknown["status"] == 404 and unknown["error"] == "invalid_request_error"
    streamed = [l for l in lines if l["model"] == "gpt" and l["ttft_ms"] is not None]
    assert len(streamed) == 2


def test_request_id_reaches_the_provider(ogw, mock):
    r = ogw.post(CHAT, {"model": "sonnet", "messages": PROMPT},
                 headers={"x-request-id": "trace-me-42"})
    assert r.status_code == 200
    assert mock.last()["headers"]["x-request-id"] == "trace-me-42"
