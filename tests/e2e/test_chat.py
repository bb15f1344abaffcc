"""Chat completions through Envoy + the filter to an OpenAI-compatible mock."""

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

CHAT = "/v1/chat/completions"


def user(text):
    return [{"role": "user", "content": text}]


def test_non_streaming_chat_is_routed_and_rewritten(gateway, mock):
    body = {"model": "gpt-4o-mini", "messages": user("ping"), "logprobs": False,
            "x_vendor_extension": {"keep": True}}
    r = gateway.post(CHAT, body, headers={"authorization": "Bearer client-key",
                                          "x-llm-gateway-cluster": "llmgw_down"})
    assert r.status_code == 200, r.text
    assert r.headers["x-llm-gateway-target"] == "mock/gpt-4o-mini-2024-07-18"
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "gpt-4o-mini-2024-07-18"
    assert data["choices"][0]["message"] == {
        "role": "assistant", "content": "Hello from mock-provider! You said: ping",
        "refusal": None}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + \
        data["usage"]["completion_tokens"]

    seen = mock.last()
    assert seen["method"] == "POST"
    assert seen["path"] == "/v1/chat/completions"
    headers = seen["headers"]
    assert headers["authorization"] == "Bearer sk-upstream"  # client key replaced
    assert headers["host"] == mock.addr
    assert headers["content-type"] == "application/json"
    assert "x-llm-gateway-cluster" not in headers
    sent = json.loads(seen["body"])
    assert sent == {"model": "gpt-4o-mini-2024-07-18", "messages": user("ping"),
                    "logprobs": False, "x_vendor_extension": {"keep": True}}
    assert int(headers["content-length"]) == len(seen["body"].encode())


def test_streaming_passes_through_byte_for_byte(gateway, mock):
    body = {"model": "gpt-4o-mini", "messages": user("tell me a story"), "stream": True,
            "stream_options": {"include_usage": True}}
    headers = {"x-mock-chunk-chars": "3", "x-mock-split-bytes": "7"}
    with httpx.stream("POST", gateway.url + CHAT, json=body, headers=headers,
                      timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        via_gateway = b"".join(r.iter_raw())
    # The same request straight to the mock (model already renamed).
    direct = httpx.post(mock.url + CHAT, json={**body, "model": "gpt-4o-mini-2024-07-18"},
                        headers={**headers, "authorization": "Bearer sk-upstream"},
                        timeout=30).content

    def normalize(raw):  # ids and timestamps differ per response
        out = []
        for line in raw.decode().split("\n"):
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                chunk.pop("id"), chunk.pop("created")
                line = json.dumps(chunk, sort_keys=True)
            out.append(line)
        return out

    assert normalize(via_gateway) == normalize(direct)
    assert via_gateway.endswith(b"data: [DONE]\n\n")
    text = "".join(json.loads(l[6:])["choices"][0]["delta"].get("content") or ""
                   for l in via_gateway.decode().split("\n")
                   if l.startswith("data: {") and json.loads(l[6:])["choices"])
    assert text == "Hello from mock-provider! You said: tell me a story"


def test_preset_path_prefix_and_env_key(gateway, mock):
    r = gateway.post(CHAT, {"model": "qwen-plus", "messages": user("hi")})
    assert r.status_code == 200, r.text
    assert r.headers["x-llm-gateway-target"] == "qwen/qwen-plus"
    seen = mock.last()
    assert seen["path"] == "/compatible-mode/v1/chat/completions"
    # The key came from the host environment via host_env_keys.
    assert seen["headers"]["authorization"] == "Bearer sk-upstream"


def test_upstream_errors_keep_status_in_openai_shape(gateway, mock):
    r = gateway.post(CHAT, {"model": "gpt-4o-mini", "messages": user("hi")},
                     headers={"x-mock-status": "429", "x-mock-retry-after": "7"})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == "rate_limit_exceeded"

    r = gateway.post(CHAT, {"model": "gpt-4o-mini", "messages": user("hi")},
                     headers={"x-mock-status": "502", "x-mock-error-body": "<html>bad gateway</html>"})
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == {
        "message": "Upstream returned HTTP 502: <html>bad gateway</html>",
        "type": "api_error", "param": None, "code": None}


def test_unreachable_provider_is_an_openai_503(gateway):
    r = gateway.post(CHAT, {"model": "broken", "messages": user("hi")})
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["type"] == "api_error"
    assert "upstream connect error" in err["message"]
    assert r.headers["x-llm-gateway-target"] == "down/broken"


def test_concurrent_requests_keep_their_own_state(gateway):
    def one(i):
        r = gateway.post(CHAT, {"model": "gpt-4o-mini" if i % 2 else "qwen-plus",
                                "messages": user(f"request number {i}")})
        return i, r.status_code, r.json()["choices"][0]["message"]["content"], \
            r.headers["x-llm-gateway-target"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(200)))
    for i, status, content, target in results:
        assert status == 200
        assert content == f"Hello from mock-provider! You said: request number {i}"
        assert target.startswith("mock/" if i % 2 else "qwen/")
