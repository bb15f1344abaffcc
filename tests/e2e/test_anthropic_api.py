"""Anthropic Messages as a client API: the official `anthropic` SDK against
the gateway's /v1/messages, served by OpenAI-compatible, Gemini and
Anthropic targets (the last one passed through)."""

import json

import anthropic
import httpx
import pytest

from harness import Gateway, raw_http, scrape, mock_providers

PROMPT = [{"role": "user", "content": "one two three"}]
REPLY = "Hello from mock-provider! You said: one two three"
FAIL_OPENAI = {"x-mock-status": "503", "x-mock-status-path-prefix": "/v1/chat/"}
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
# model → the path the mock must see and the provider label in metrics.
TARGETS = {
    "deepseek": ("/v1/chat/completions", "deepseek"),
    "gemini": ("/v1beta/models/gemini-2.5-flash:generateContent", "gcp.gemini"),
    "claude": ("/v1/messages", "anthropic"),
}


@pytest.fixture(scope="module")
def agw(mock, tmp_path_factory):
    config = {
        "providers": mock_providers(mock),
        "models": [
            {"name": "deepseek", "targets": [{"provider": "compat", "model": "deepseek-chat"}]},
            {"name": "gemini", "targets": [{"provider": "gem", "model": "gemini-2.5-flash"}]},
            {"name": "claude", "targets": [{"provider": "claude",
                                            "model": "claude-sonnet-4-5"}]},
            {"name": "pool", "targets": [
                {"provider": "oai", "model": "gpt-4o-mini"},
                {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]},
        ],
        "health": {"consecutive_failures": 1000},
        # Short, so a stalled upload's 408 comes quickly.
        "envoy": {"route_timeout_seconds": 3},
    }
    gw = Gateway(config, tmp_path_factory.mktemp("anthropic-api"))
    yield gw
    gw.stop()


def client(gw, **kw):
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, **kw)


@pytest.mark.parametrize("model", list(TARGETS))
def test_messages_from_every_provider(agw, mock, model):
    r = client(agw).messages.create(model=model, max_tokens=100, messages=PROMPT)
    assert r.type == "message" and r.role == "assistant"
    assert [b.type for b in r.content] == ["text"]
    assert r.content[0].text == REPLY
    assert r.stop_reason == "end_turn"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (3, 8)
    assert mock.last()["path"] == TARGETS[model][0]


@pytest.mark.parametrize("model", list(TARGETS))
def test_streams_from_every_provider(agw, model):
    with client(agw).messages.stream(model=model, max_tokens=100, messages=PROMPT,
                                     extra_headers={"x-mock-chunk-chars": "5"}) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == REPLY
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 8


def raw_events(gw, body, headers=None):
    with httpx.stream("POST", gw.url + "/v1/messages", json=body, timeout=30,
                      headers={"anthropic-version": "2023-06-01", **(headers or {})}) as r:
        return r.status_code, b"".join(r.iter_raw()).decode()


@pytest.mark.parametrize("model", ["deepseek", "gemini"])
def test_translated_streams_have_anthropics_event_sequence(agw, model):
    status, text = raw_events(agw, {"model": model, "max_tokens": 50, "stream": True,
                                    "messages": PROMPT}, {"x-mock-split-bytes": "7"})
    assert status == 200
    names = [l[len("event: "):] for l in text.split("\n") if l.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    for line in text.split("\n"):
        if line.startswith("data: "):
            assert json.loads(line[6:])["type"] in names


@pytest.mark.parametrize("model", list(TARGETS))
def test_tool_use_round_trip(agw, mock, model):
    c = client(agw)
    tool_headers = {"x-mock-tool-call": "get_weather", "x-mock-tool-args": '{"city":"Paris"}'}
    r = c.messages.create(model=model, max_tokens=100, messages=PROMPT, tools=[WEATHER],
                          extra_headers=tool_headers)
    assert r.stop_reason == "tool_use"
    call = r.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == {"city": "Paris"}
    follow = PROMPT + [{"role": "assistant", "content": r.content},
                       {"role": "user", "content": [
                           {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}]
    r = c.messages.create(model=model, max_tokens=100, messages=follow, tools=[WEATHER])
    assert r.stop_reason == "end_turn"
    sent = json.loads(mock.last()["body"])
    if model == "deepseek":
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.id,
                                        "content": "sunny"}
    elif model == "gemini":
        assert sent["contents"][-1]["parts"][0]["functionResponse"]["name"] == "get_weather"
    else:
        assert sent["messages"][-1]["content"][0]["tool_use_id"] == call.id


@pytest.mark.parametrize("model", ["deepseek", "gemini", "claude"])
def test_streamed_tool_use(agw, model):
    headers = {"x-mock-tool-call": "get_weather", "x-mock-tool-args": '{"city":"Paris"}',
               "x-mock-split-bytes": "9"}
    with client(agw).messages.stream(model=model, max_tokens=100, messages=PROMPT,
                                     tools=[WEATHER], extra_headers=headers) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[-1].input == {"city": "Paris"}


def test_reasoning_becomes_thinking(agw):
    r = client(agw).messages.create(
        model="deepseek", max_tokens=2048, messages=PROMPT,
        thinking={"type": "enabled", "budget_tokens": 1024},
        extra_headers={"x-mock-reasoning": "let me think"})
    assert [b.type for b in r.content] == ["thinking", "text"]
    assert r.content[0].thinking == "let me think"


@pytest.mark.parametrize("model", ["deepseek", "claude"])
def test_count_tokens(agw, mock, model):
    n = client(agw).messages.count_tokens(model=model, messages=PROMPT)
    assert n.input_tokens > 0
    if model == "claude":  # Anthropic counts itself
        assert mock.last()["path"] == "/v1/messages/count_tokens"


def test_errors_are_anthropic_shaped(agw):
    c = client(agw)
    with pytest.raises(anthropic.NotFoundError) as e:
        c.messages.create(model="nope", max_tokens=10, messages=PROMPT)
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(model="deepseek", max_tokens=10, messages=[])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.RateLimitError):
        c.messages.create(model="deepseek", max_tokens=10, messages=PROMPT,
                          extra_headers={"x-mock-status": "429"})
    with pytest.raises(anthropic.AuthenticationError):
        c.messages.create(model="gemini", max_tokens=10, messages=PROMPT,
                          extra_headers={"x-mock-status": "401"})
    status, text = raw_events(agw, {"max_tokens": 10, "messages": PROMPT})
    assert status == 400
    assert json.loads(text)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("model", ["deepseek", "gemini"])
def test_a_stream_error_is_an_anthropic_error_event(agw, model):
    with pytest.raises(anthropic.APIStatusError):
        with client(agw).messages.stream(model=model, max_tokens=100, messages=PROMPT,
                                         extra_headers={"x-mock-sse-inject": "error@2"}) as s:
            for _ in s.text_stream:
                pass


def test_failover_serves_an_anthropic_client_from_the_next_provider(agw, mock):
    c = client(agw)
    r = c.messages.create(model="pool", max_tokens=100, messages=PROMPT,
                          extra_headers=FAIL_OPENAI)
    assert r.content[0].text == REPLY
    paths = [q["path"] for q in mock.requests()]
    assert paths == ["/v1/chat/completions", "/v1/messages"]
    with c.messages.stream(model="pool", max_tokens=100, messages=PROMPT,
                           extra_headers=FAIL_OPENAI) as s:
        assert "".join(s.text_stream) == REPLY


def test_envoys_own_replies_are_anthropic_shaped(agw, mock):
    # A stalled upload: Envoy answers before the filter has the body.
    raw = (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"anthropic-version: 2023-06-01\r\nContent-Length: 100\r\n\r\n{\"model\":")
    before = len(mock.requests())
    status, headers, body = raw_http(agw.port, raw, wait=4.5)
    assert status == 408, body
    assert headers["content-type"] == "application/json"
    err = json.loads(body)
    assert err["type"] == "error" and err["error"]["type"] == "timeout_error", err
    assert len(mock.requests()) == before


def test_metrics_name_the_client_api(agw):
    client(agw).messages.create(model="deepseek", max_tokens=100, messages=PROMPT)
    series = [dict(labels) for (name, labels) in scrape(agw)
              if name == "llm_gateway_requests_total"]
    assert any(s.get("llm_gateway_api") == "anthropic.messages" and s["gen_ai_request_model"] == "deepseek"
               for s in series), series


@pytest.fixture(scope="module")
def keyed(mock, tmp_path_factory):
    import hashlib
    digest = hashlib.sha256(b"sk-team-a").hexdigest()
    config = {
        "providers": [{"name": "compat", "type": "deepseek", "base_url": f"{mock.url}/v1",
                       "api_key": "sk-upstream"}],
        "models": [{"name": "deepseek", "targets": [{"provider": "compat",
                                                     "model": "deepseek-chat"}]}],
        "consumers": [{"name": "team-a", "api_keys": [f"sha256:{digest}"]}],
    }
    gw = Gateway(config, tmp_path_factory.mktemp("anthropic-keys"))
    yield gw
    gw.stop()


def test_x_api_key_is_the_consumer_key(keyed):
    r = anthropic.Anthropic(base_url=keyed.url, api_key="sk-team-a", max_retries=0) \
        .messages.create(model="deepseek", max_tokens=100, messages=PROMPT)
    assert r.content[0].text == REPLY
    with pytest.raises(anthropic.AuthenticationError) as e:
        anthropic.Anthropic(base_url=keyed.url, api_key="sk-wrong", max_retries=0) \
            .messages.create(model="deepseek", max_tokens=100, messages=PROMPT)
    assert e.value.body["error"]["type"] == "authentication_error"
