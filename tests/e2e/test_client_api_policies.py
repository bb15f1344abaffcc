"""Limits, token accounting and failover work the same for Anthropic
Messages and OpenAI Responses clients as for Chat Completions: refusals in
the client's shape, usage counted from translated and passed-through
streams, a Responses stream that fails over across providers."""

import uuid

import anthropic
import openai
import pytest
from openai import OpenAI

from harness import Gateway, scrape, value, mock_providers

PROMPT = "one two three"
REPLY = "Hello from mock-provider! You said: one two three"
FAIL_RESPONSES = {"x-mock-status": "503", "x-mock-status-path-prefix": "/v1/responses"}


@pytest.fixture(scope="module")
def pgw(mock, tmp_path_factory):
    config = {
        "providers": mock_providers(mock, "oai", "compat", "claude"),
        "models": [
            {"name": "limited", "targets": [{"provider": "compat", "model": "deepseek-chat"}]},
            {"name": "deepseek", "targets": [{"provider": "compat", "model": "deepseek-chat"}]},
            {"name": "claude", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]},
            {"name": "pool", "targets": [
                {"provider": "oai", "model": "gpt-4o-mini"},
                {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]},
        ],
        "health": {"consecutive_failures": 1000},
        "rate_limits": {"rules": [
            # Keyed by a header: each client below sends its own group.
            {"name": "per-group", "by": ["header:x-limit-group"],
             "requests": {"limit": 2, "per": "hour"}},
            {"name": "tokens", "by": ["model"],
             "tokens": {"limit": 5000, "per": "hour", "count": "total"}},
        ]},
    }
    gw = Gateway(config, tmp_path_factory.mktemp("client-api-policies"))
    yield gw
    gw.stop()


def group():
    return {"x-limit-group": uuid.uuid4().hex}


def claude_client(gw):
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0,
                               default_headers=group())


def openai_client(gw):
    return OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0,
                  default_headers=group())


def test_a_request_limit_refuses_a_messages_client_in_anthropics_shape(pgw):
    c = claude_client(pgw)
    for _ in range(2):
        c.messages.create(model="deepseek", max_tokens=50,
                          messages=[{"role": "user", "content": PROMPT}])
    with pytest.raises(anthropic.RateLimitError) as e:
        c.messages.create(model="deepseek", max_tokens=50,
                          messages=[{"role": "user", "content": PROMPT}])
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "rate_limit_error"
    assert int(e.value.response.headers["retry-after"]) > 0
    assert e.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_request_over_the_token_limit_is_refused_for_a_responses_client(pgw):
    with pytest.raises(openai.BadRequestError) as e:
        openai_client(pgw).responses.create(model="limited", input=PROMPT,
                                            max_output_tokens=100_000)
    assert e.value.body["code"] == "request_exceeds_rate_limit"


def tokens(gw, api_model, kind):
    return value(scrape(gw), "llm_gateway_tokens_total", gen_ai_operation_name="chat",
                 gen_ai_provider_name="deepseek", gen_ai_request_model=api_model,
                 gen_ai_response_model="deepseek-chat", gen_ai_token_type=kind) or 0


def test_usage_of_translated_streams_is_counted(pgw):
    # An Anthropic and a Responses client streaming from an OpenAI-compatible
    # provider: the gateway asks the provider for stream usage itself.
    before = (tokens(pgw, "deepseek", "input"), tokens(pgw, "deepseek", "output"))
    with claude_client(pgw).messages.stream(model="deepseek", max_tokens=50,
                                            messages=[{"role": "user", "content": PROMPT}]) as s:
        assert "".join(s.text_stream) == REPLY
    events = list(openai_client(pgw).responses.create(model="deepseek", input=PROMPT, stream=True))
    assert events[-1].type == "response.completed"
    after = (tokens(pgw, "deepseek", "input"), tokens(pgw, "deepseek", "output"))
    # 3 prompt and 8 completion words at the mock, twice.
    assert (after[0] - before[0], after[1] - before[1]) == (6, 16)


def test_a_responses_stream_fails_over_to_another_providers_wire(pgw, mock):
    c = openai_client(pgw)
    events = list(c.responses.create(model="pool", input=PROMPT, stream=True,
                                     extra_headers=FAIL_RESPONSES))
    assert [q["path"] for q in mock.requests()][-2:] == ["/v1/responses", "/v1/messages"]
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == REPLY
    r = c.responses.create(model="pool", input=PROMPT, extra_headers=FAIL_RESPONSES)
    assert r.output_text == REPLY
