"""Per-provider timeouts answer 504 in OpenAI's shape; clients cannot steer
Envoy's timeouts with x-envoy-* headers."""

import pytest

from harness import Gateway

CHAT = "/v1/chat/completions"
BODY = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def tgw(mock, tmp_path_factory):
    config = {
        "providers": [
            {"name": "quick", "type": "openai", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream", "timeouts": {"first_byte_ms": 300, "connect_ms": 500}},
            {"name": "bounded", "type": "anthropic", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream", "timeouts": {"total_ms": 400}},
        ],
        "models": [
            {"name": "slow", "targets": [{"provider": "quick", "model": "gpt-4o-mini"}]},
            {"name": "claude", "targets": [{"provider": "bounded", "model": "claude-sonnet-4-5"}]},
        ],
    }
    gw = Gateway(config, tmp_path_factory.mktemp("timeouts"))
    yield gw
    gw.stop()


def test_first_byte_timeout_is_a_504(tgw):
    r = tgw.post(CHAT, BODY, headers={"x-mock-first-byte-ms": "1500"})
    assert r.status_code == 504
    err = r.json()["error"]
    assert err["type"] == "timeout_error"
    assert "upstream request timeout" in err["message"]
    assert tgw.post(CHAT, BODY, headers={"x-mock-first-byte-ms": "50"}).status_code == 200


def test_total_timeout_is_a_504(tgw):
    r = tgw.post(CHAT, {**BODY, "model": "claude"}, headers={"x-mock-first-byte-ms": "800"})
    assert r.status_code == 504
    assert r.json()["error"]["type"] == "timeout_error"


def test_clients_cannot_set_envoy_timeouts(tgw):
    r = tgw.post(CHAT, BODY, headers={"x-mock-first-byte-ms": "100",
                                      "x-envoy-upstream-rq-timeout-ms": "1"})
    assert r.status_code == 200
