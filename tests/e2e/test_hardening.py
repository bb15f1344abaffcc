"""Defects an outside probe found with real clients, each pinned by a test
that fails without its fix: path injection through mapped model names, keys
echoed in error fields, Envoy's own plain-text replies, the chunked 413,
refused requests keeping request units, forged access-log paths, mapped
models lost on failover, pool usage missing from metrics, the pool marker
reaching providers, and passthrough bodies that are not JSON."""

import json
import threading
import time

import httpx
import openai
import pytest
from openai import OpenAI

from harness import Gateway, raw_http, scrape, value

CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "hello there"}]
FAIL_OPENAI = {"x-mock-status": "503", "x-mock-status-path-prefix": "/v1/chat/"}


@pytest.fixture(scope="module")
def hgw(mock, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening")
    access_log = tmp / "access.log"
    oai = {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1",
           "api_key": "sk-upstream"}
    config = {
        "envoy": {"access_log": str(access_log), "route_timeout_seconds": 3},
        "providers": [
            oai,
            {"name": "gem", "type": "gemini", "base_url": f"{mock.url}/v1beta",
             "api_key": "sk-upstream"},
            {"name": "az", "type": "azure", "base_url": mock.url, "api_key": "sk-upstream"},
            {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"},
        ],
        "models": [
            {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
            {"name": "gemini", "targets": [{"provider": "gem", "model": "gemini-2.5-flash"}]},
            {"name": "azure", "targets": [{"provider": "az", "model": "dep-1"}]},
            {"name": "fo", "targets": [
                {"provider": "oai", "model": "gpt-4o-mini"},
                {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]},
        ],
        "model_map": [
            {"prefix": "gem/", "to": "gemini", "model": "$1"},
            {"prefix": "az/", "to": "azure", "model": "$1"},
            {"prefix": "fo/", "to": "fo", "model": "$1"},
            {"prefix": "oai/", "to": "gpt", "model": "$1"},
        ],
        "health": {"consecutive_failures": 1000},
    }
    gw = Gateway(config, tmp)
    gw.access_log = access_log
    yield gw
    gw.stop()


def access_log_lines(gw, request_id, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = gw.access_log.read_text() if gw.access_log.exists() else ""
        lines = [json.loads(l) for l in text.splitlines() if l.strip()]
        found = [l for l in lines if l.get("request_id") == request_id]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no access-log line for {request_id}")


# 1. Client-derived text never reaches an upstream path.

@pytest.mark.parametrize("model", [
    "gem/../../v1/files?key=stolen#",
    "gem/x:streamGenerateContent?alt=sse&",
    "gem/a%2f..%2fb",
    "gem/..",
    "az/dep/../../other",
    "az/x?api-version=1",
])
def test_mapped_names_cannot_inject_into_upstream_urls(hgw, mock, model):
    r = hgw.post(CHAT, {"model": model, "messages": MSGS})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "model" and err["code"] == "invalid_value"
    assert "not a valid model name" in err["message"]
    assert mock.requests() == [], "a hostile model name reached the provider"


def test_mapped_names_that_are_plain_segments_still_work(hgw, mock):
    r = hgw.post(CHAT, {"model": "gem/gemini-2.0-flash", "messages": MSGS})
    assert r.status_code == 200, r.text
    assert mock.last()["path"] == "/v1beta/models/gemini-2.0-flash:generateContent"
    r = hgw.post(CHAT, {"model": "az/dep-2", "messages": MSGS})
    assert r.status_code == 200, r.text
    assert mock.last()["path"] == "/openai/deployments/dep-2/chat/completions"
    # OpenAI-compatible providers take the name in the body only: any
    # printable name passes (JSON-escaped), e.g. a Hugging Face id.
    r = hgw.post(CHAT, {"model": "oai/meta-llama/Llama-3:70b?x", "messages": MSGS})
    assert r.status_code == 200, r.text
    assert json.loads(mock.last()["body"])["model"] == "meta-llama/Llama-3:70b?x"
    assert mock.last()["path"] == "/v1/chat/completions"


# 8. A mapped upstream model is carried into every failover attempt.

def test_mapped_upstream_model_reaches_every_failover_attempt(hgw, mock):
    r = hgw.post(CHAT, {"model": "fo/model-x", "messages": MSGS}, headers=FAIL_OPENAI)
    assert r.status_code == 200, r.text
    assert r.headers["x-llm-gateway-target"] == "claude/model-x"
    first, second = mock.requests()
    assert json.loads(first["body"])["model"] == "model-x"
    assert second["path"] == "/v1/messages"
    assert json.loads(second["body"])["model"] == "model-x"


# 10. The pool marker never leaves Envoy.

def test_failover_attempts_carry_no_gateway_headers(hgw, mock):
    r = hgw.post(CHAT, {"model": "fo", "messages": MSGS}, headers=FAIL_OPENAI)
    assert r.status_code == 200, r.text
    for req in mock.requests():
        leaked = [h for h in req["headers"] if h.startswith("x-llm-gateway")]
        assert leaked == [], leaked


# 9. Usage of streams served through a failover pool reaches the metrics.

def test_streamed_pool_usage_reaches_metrics(hgw):
    before = scrape(hgw)
    client = OpenAI(base_url=hgw.url + "/v1", api_key="x", max_retries=0)
    for _ in range(4):
        chunks = list(client.chat.completions.create(
            model="fo", messages=[{"role": "user", "content": "one two three"}],
            stream=True, extra_headers=FAIL_OPENAI))
        assert chunks[-1].choices[0].finish_reason == "stop"
    after = scrape(hgw)
    labels = dict(gen_ai_operation_name="chat", gen_ai_provider_name="anthropic",
                  gen_ai_request_model="fo", gen_ai_response_model="claude-sonnet-4-5")

    def delta(name, **extra):
        return (value(after, name, **labels, **extra) or 0) - (
            value(before, name, **labels, **extra) or 0)

    # 3 prompt and 8 completion words at the mock, four times.
    assert delta("llm_gateway_tokens_total", gen_ai_token_type="input") == 12
    assert delta("llm_gateway_tokens_total", gen_ai_token_type="output") == 32
    assert delta("llm_gateway_cost_micro_usd_total") == 4 * 129


# 3. Keys echoed by a provider in any error field never reach the client.

def test_keys_are_redacted_from_every_error_field(hgw):
    body = {"error": {"message": "bad key sk-upstream", "type": "sk-upstream",
                      "param": "key=sk-upstream", "code": "sk-upstream"}}
    r = hgw.post(CHAT, {"model": "gpt", "messages": MSGS},
                 headers={"x-mock-status": "401", "x-mock-error-body": json.dumps(body)})
    assert r.status_code == 401
    assert "sk-upstream" not in r.text
    assert r.json()["error"] == {"message": "bad key [redacted]", "type": "[redacted]",
                                 "param": "key=[redacted]", "code": "[redacted]"}


def stream_text(gw, model, headers):
    with gw.client.stream("POST", gw.url + CHAT, json={
            "model": model, "messages": MSGS, "stream": True}, headers=headers) as r:
        return r.status_code, b"".join(r.iter_bytes()).decode()


def test_keys_are_masked_in_passthrough_streams_at_any_split(hgw):
    # The key inside one event, the body cut into HTTP chunks of 1, 3, 7
    # bytes: a key split across chunks is still masked.
    for split in (1, 3, 7):
        status, text = stream_text(hgw, "gpt", {
            "x-mock-content": "the key is sk-upstream, keep it",
            "x-mock-chunk-chars": "1000", "x-mock-split-bytes": str(split)})
        assert status == 200
        assert "sk-upstream" not in text
        content = "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            for line in text.split("\n") if line.startswith("data: {") and '"choices":[{' in line)
        assert content == "the key is ***********, keep it"


@pytest.mark.parametrize("model", ["gpt", "gemini", "fo"])
def test_keys_echoed_in_stream_error_events_are_masked(hgw, model):
    # A provider error event mid-stream that quotes the key: passthrough,
    # translated (Gemini) and through a failover pool (its attempt).
    status, text = stream_text(hgw, model, {
        "x-mock-echo-key": "1", "x-mock-sse-inject": "error@2", "x-mock-split-bytes": "5"})
    assert status == 200
    assert "sk-upstream" not in text
    assert '"error"' in text


def test_keys_are_masked_in_passthrough_bodies(hgw):
    r = hgw.post(CHAT, {"model": "gpt", "messages": MSGS},
                 headers={"x-mock-content": "sk-upstream"})
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "*" * len("sk-upstream")
    assert int(r.headers["content-length"]) == len(r.content)


# 10. A passthrough 200 that is not the API's JSON becomes a clear 502.

@pytest.mark.parametrize("body,needle", [
    ("<html><body>Captive portal</body></html>", "not valid JSON: <html><body>Captive portal"),
    ('{"id":"chatcmpl-1","choices":[{"message":{"content":"cut', "ended before its JSON was complete"),
])
def test_passthrough_body_that_is_not_json_is_a_502(hgw, body, needle):
    r = hgw.post(CHAT, {"model": "gpt", "messages": MSGS},
                 headers={"x-mock-status": "200", "x-mock-error-body": body})
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["type"] == "api_error" and err["code"] == "upstream_invalid_response"
    assert needle in err["message"]


def test_passthrough_stream_answered_with_html_is_a_502(hgw):
    r = hgw.post(CHAT, {"model": "gpt", "messages": MSGS, "stream": True},
                 headers={"x-mock-status": "200", "x-mock-error-body": "<html>maintenance</html>"})
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["code"] == "upstream_invalid_response"
    assert "instead of an event stream" in err["message"]


def test_passthrough_stream_cut_short_ends_with_an_error_event(hgw):
    # A well-framed stream that stops before its finish and [DONE].
    client = OpenAI(base_url=hgw.url + "/v1", api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt", messages=MSGS, stream=True, extra_headers={
            "x-mock-end-after": "2", "x-mock-chunk-chars": "3"})
    seen = []
    with pytest.raises(openai.APIError) as e:
        for c in stream:
            seen.append(c.choices[0].delta.content)
    assert seen == ["", "Hel"]
    assert "ended before it was complete" in str(e.value)


# 4. Over-limit chunked uploads always get the OpenAI-shaped 413.

@pytest.mark.parametrize("chunk", [8192, 65536, 1 << 20, 3 << 20])
def test_chunked_413_is_always_openai_json(hgw, mock, chunk):
    # The default limit (4 MiB); large chunks used to land past Envoy's
    # buffer limit (only 64 KiB above it) before the filter could answer.
    payload = (b'{"model":"gpt","messages":[{"role":"user","content":"'
               + b"y" * (6 << 20) + b'"}]}')

    def chunks():
        for i in range(0, len(payload), chunk):
            yield payload[i:i + chunk]

    for _ in range(3):
        r = httpx.post(hgw.url + CHAT, content=chunks(), timeout=10)
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/json"
        err = r.json()["error"]
        assert err["code"] == "request_too_large"
        assert "4194304 bytes" in err["message"]
    assert mock.requests() == []


# 5. Every reply Envoy sends itself is OpenAI error JSON with the right status.

@pytest.mark.parametrize("raw,status,code", [
    (b"POST /v1/chat/completions HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", 426, "upgrade_required"),
    (b"GET /v1/\x01models HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431,
     "request_header_fields_too_large"),
])
def test_envoy_replies_are_openai_json(hgw, raw, status, code):
    got, headers, body = raw_http(hgw.port, raw)
    assert got == status, body
    assert headers["content-type"] == "application/json"
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code


def test_stalled_upload_is_a_408_that_blames_no_provider(hgw, mock):
    raw = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 100\r\n\r\n{\"model\":")
    status, headers, body = raw_http(hgw.port, raw, wait=4.5)
    assert status == 408, body
    err = json.loads(body)["error"]
    assert err["type"] == "timeout_error" and err["code"] == "request_timeout"
    assert "Upstream" not in err["message"] and "provider" not in err["message"]
    assert mock.requests() == []


# 7. Client x-envoy-* headers steer nothing and forge nothing.

def test_client_envoy_headers_are_stripped_and_the_real_path_logged(hgw, mock):
    r = hgw.post(CHAT, {"model": "gpt", "messages": MSGS}, headers={
        "x-request-id": "forge-1",
        "x-envoy-original-path": "/admin/forged",
        "x-envoy-retriable-status-codes": "200",
        "x-envoy-upstream-rq-timeout-ms": "1",
        "x-llm-gateway-pool": "chat",
    })
    assert r.status_code == 200, r.text
    sent = mock.last()["headers"]
    assert not [h for h in sent if h.startswith("x-envoy-original") or h.startswith("x-llm-gateway")]
    assert "x-envoy-retriable-status-codes" not in sent
    line = access_log_lines(hgw, "forge-1")[0]
    assert line["path"] == "/v1/chat/completions"


# 6. A refused request gives back every unit it took, under concurrency.

@pytest.fixture(scope="module")
def lgw(mock, tmp_path_factory):
    config = {
        "providers": [{"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1",
                       "api_key": "sk-upstream"}],
        "models": [{"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]}],
        "rate_limits": {"rules": [
            {"name": "rpm", "by": ["model"], "requests": {"limit": 20, "per": "minute"}},
            {"name": "tpm", "by": ["model"], "tokens": {"limit": 1000, "per": "minute",
                                                        "count": "total"}},
        ]},
    }
    gw = Gateway(config, tmp_path_factory.mktemp("refunds"), concurrency=4)
    yield gw
    gw.stop()


def test_refused_requests_keep_no_request_units(lgw, mock):
    too_big = {"model": "gpt", "messages": MSGS, "max_tokens": 5000}
    results = []

    def refused():
        r = lgw.post(CHAT, too_big)
        results.append((r.status_code, r.json()["error"]["code"]))

    threads = [threading.Thread(target=refused) for _ in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(400, "request_exceeds_rate_limit")] * 48
    assert mock.requests() == []
    fits = {"model": "gpt", "messages": MSGS, "max_tokens": 5}
    codes = []

    def admitted():
        codes.append(lgw.post(CHAT, fits).status_code)

    threads = [threading.Thread(target=admitted) for _ in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(200) == 20 and codes.count(429) == 5, codes


# Bytes a client may send must never crash the filter's VM.

def test_non_utf8_header_values_do_not_crash_the_vm(hgw):
    body = b'{"model":"gpt","messages":[{"role":"user","content":"hi"}]}'
    evil = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Name: Jos\xe9 \xff\xfe\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)
    for _ in range(6):  # more than the workers, each on a new connection
        status, _, reply = raw_http(hgw.port, evil)
        assert status == 200, reply
    for _ in range(6):
        assert hgw.post(CHAT, {"model": "gpt", "messages": MSGS}).status_code == 200
    assert "panicked" not in hgw.logs()
