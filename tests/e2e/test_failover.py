"""Cross-provider failover through Envoy's own retries: an aggregate cluster
per pool, and the same filter as an upstream filter rewriting each attempt
for the provider Envoy picked — streaming stays streaming."""

import json

import httpx
import openai
import pytest
from openai import OpenAI

from harness import Gateway, free_port

CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "fail over please"}]
FAIL_OPENAI = {"x-mock-status": "503", "x-mock-status-path-prefix": "/v1/chat/"}
FAIL_ANTHROPIC = {"x-mock-status": "503", "x-mock-status-path-prefix": "/v1/messages"}


@pytest.fixture(scope="module")
def fgw(mock, tmp_path_factory):
    oai = {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"}
    claude = {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1",
              "api_key": "sk-upstream"}
    dead = {"name": "dead", "type": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
            "api_key": "sk-upstream"}
    config = {
        "providers": [oai, claude, dead],
        "models": [
            {"name": "gpt-then-claude", "targets": [
                {"provider": "oai", "model": "gpt-4o-mini"},
                {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]},
            {"name": "claude-then-gpt", "targets": [
                {"provider": "claude", "model": "claude-sonnet-4-5"},
                {"provider": "oai", "model": "gpt-4o-mini", "priority": 1}]},
            {"name": "dead-then-claude", "targets": [
                {"provider": "dead", "model": "gpt-4o-mini"},
                {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]},
        ],
        "health": {"consecutive_failures": 100},  # keep ejection out of these tests
    }
    gw = Gateway(config, tmp_path_factory.mktemp("failover"))
    yield gw
    gw.stop()


def test_openai_failure_is_answered_by_anthropic(fgw, mock):
    r = fgw.post(CHAT, {"model": "gpt-then-claude", "messages": MSGS}, headers=FAIL_OPENAI)
    assert r.status_code == 200, r.text
    assert r.headers["x-llm-gateway-target"] == "claude/claude-sonnet-4-5"
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Hello from mock-provider! You said: fail over please"
    first, second = mock.requests()
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["authorization"] == "Bearer sk-upstream"
    assert second["path"] == "/v1/messages"
    # Each attempt carries only its own provider's credentials.
    assert second["headers"]["x-api-key"] == "sk-upstream"
    assert "authorization" not in second["headers"]
    assert json.loads(second["body"])["model"] == "claude-sonnet-4-5"


def test_anthropic_failure_is_answered_by_openai(fgw, mock):
    r = fgw.post(CHAT, {"model": "claude-then-gpt", "messages": MSGS}, headers=FAIL_ANTHROPIC)
    assert r.status_code == 200, r.text
    assert r.headers["x-llm-gateway-target"] == "oai/gpt-4o-mini"
    first, second = mock.requests()
    assert first["path"] == "/v1/messages"
    # The retry re-translated the client's OpenAI body, not the first attempt's.
    sent = json.loads(second["body"])
    assert sent["model"] == "gpt-4o-mini" and sent["messages"] == MSGS
    assert "x-api-key" not in second["headers"]


def test_streaming_survives_failover(fgw):
    client = OpenAI(base_url=fgw.url + "/v1", api_key="x", max_retries=0)
    chunks = list(client.chat.completions.create(
        model="gpt-then-claude", messages=MSGS, stream=True,
        stream_options={"include_usage": True}, extra_headers=FAIL_OPENAI))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from mock-provider! You said: fail over please"
    assert chunks[-1].usage.total_tokens > 0
    assert chunks[0].model == "claude-sonnet-4-5"


def test_connect_failure_fails_over(fgw):
    r = fgw.post(CHAT, {"model": "dead-then-claude", "messages": MSGS})
    assert r.status_code == 200, r.text
    assert r.headers["x-llm-gateway-target"] == "claude/claude-sonnet-4-5"


def test_rate_limited_target_fails_over(fgw):
    r = fgw.post(CHAT, {"model": "gpt-then-claude", "messages": MSGS},
                 headers={"x-mock-status": "429", "x-mock-status-path-prefix": "/v1/chat/"})
    assert r.status_code == 200
    assert r.headers["x-llm-gateway-target"] == "claude/claude-sonnet-4-5"


def test_when_every_target_fails_the_last_error_is_openai_shaped(fgw):
    r = fgw.post(CHAT, {"model": "gpt-then-claude", "messages": MSGS},
                 headers={"x-mock-status": "503"})
    assert r.status_code == 503
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    # The answer is the last attempt's (which one depends on health: the 429
    # above cooled the OpenAI target down, so Claude went first this time).
    assert r.headers["x-llm-gateway-target"] in ("claude/claude-sonnet-4-5", "oai/gpt-4o-mini")


def test_failover_can_be_switched_off(mock, tmp_path):
    config = {
        "providers": [
            {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"},
            {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"}],
        "models": [{"name": "m", "targets": [
            {"provider": "oai", "model": "gpt-4o-mini"},
            {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]}],
        "failover": {"enabled": False},
        "health": {"consecutive_failures": 100},
    }
    gw = Gateway(config, tmp_path)
    try:
        r = gw.post(CHAT, {"model": "m", "messages": MSGS}, headers=FAIL_OPENAI)
        assert r.status_code == 503
        assert r.headers["x-llm-gateway-target"] == "oai/gpt-4o-mini"
    finally:
        gw.stop()
