"""Passive health: failing targets are ejected (traffic moves to the next
tier) with backoff, probed when the cooldown ends, and recover; a 429's
Retry-After is honoured; provider key pools rotate and drop a rejected key."""

import time

import httpx
import pytest

from harness import Gateway, Mock

CHAT = "/v1/chat/completions"
BODY = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def rgw(mock, tmp_path_factory):
    config = {
        "providers": [
            {"name": "primary", "type": "openai", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"},
            {"name": "backup", "type": "anthropic", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"},
        ],
        "models": [{"name": "chat", "targets": [
            {"provider": "primary", "model": "gpt-4o-mini"},
            {"provider": "backup", "model": "claude-sonnet-4-5", "priority": 1}]}],
        "health": {"consecutive_failures": 2, "base_ejection_ms": 1500, "max_ejection_ms": 6000},
        # Failover would hide the failures these tests count (see test_failover).
        "failover": {"enabled": False},
    }
    gw = Gateway(config, tmp_path_factory.mktemp("resilience"))
    yield gw
    gw.stop()


def target(gw, **headers):
    r = gw.post(CHAT, BODY, headers=headers)
    return r.status_code, r.headers.get("x-llm-gateway-target")


def test_ejection_backoff_probe_and_recovery(rgw):
    assert target(rgw) == (200, "primary/gpt-4o-mini")
    assert target(rgw, **{"x-mock-status": "500"}) == (500, "primary/gpt-4o-mini")
    assert target(rgw, **{"x-mock-status": "503"}) == (503, "primary/gpt-4o-mini")
    # Two failures in a row: primary is out, the next tier answers (translated).
    assert target(rgw) == (200, "backup/claude-sonnet-4-5")
    text = httpx.get(rgw.admin + "/stats/prometheus").text
    assert any(l.startswith("llm_gateway_target_ejections_total{") and 'llm_gateway_provider="primary"' in l
               and l.endswith(" 1") for l in text.splitlines())
    time.sleep(1.6)
    # Cooldown over: a probe goes to primary and succeeds; it is back.
    assert target(rgw) == (200, "primary/gpt-4o-mini")
    assert target(rgw) == (200, "primary/gpt-4o-mini")


def test_retry_after_is_honoured(rgw):
    status, t = target(rgw, **{"x-mock-status": "429", "x-mock-retry-after": "2"})
    assert (status, t) == (429, "primary/gpt-4o-mini")
    assert target(rgw) == (200, "backup/claude-sonnet-4-5")
    time.sleep(1.0)
    assert target(rgw) == (200, "backup/claude-sonnet-4-5")
    time.sleep(1.2)
    assert target(rgw) == (200, "primary/gpt-4o-mini")


def test_a_lone_unhealthy_target_still_gets_traffic(mock, tmp_path):
    """With nowhere else to go, health is ignored rather than failing everyone."""
    config = {"providers": [{"name": "only", "type": "openai", "base_url": f"{mock.url}/v1",
                             "api_key": "sk-upstream"}],
              "models": [{"name": "chat", "targets": [{"provider": "only", "model": "m"}]}],
              "health": {"consecutive_failures": 1}}
    gw = Gateway(config, tmp_path)
    try:
        assert target(gw, **{"x-mock-status": "500"})[0] == 500
        assert target(gw) == (200, "only/m")
    finally:
        gw.stop()


def test_key_pool_rotates_and_drops_a_rejected_key(tmp_path):
    open_mock = Mock(api_key=None)
    config = {"providers": [{"name": "pool", "type": "openai", "base_url": f"{open_mock.url}/v1",
                             "api_keys": ["sk-pool-one", "sk-pool-two"]}],
              "models": [{"name": "chat", "targets": [{"provider": "pool", "model": "m"}]}]}
    gw = Gateway(config, tmp_path)
    try:
        for _ in range(30):
            assert target(gw)[0] == 200
        used = [r["headers"]["authorization"] for r in open_mock.requests()]
        assert set(used) == {"Bearer sk-pool-one", "Bearer sk-pool-two"}
        open_mock.clear()
        r = gw.post(CHAT, BODY, headers={"x-mock-status": "401"})
        assert r.status_code == 401
        rejected = open_mock.last()["headers"]["authorization"]
        assert "sk-pool" not in r.text  # keys never echoed
        open_mock.clear()
        for _ in range(20):
            assert target(gw)[0] == 200
        used = {r["headers"]["authorization"] for r in open_mock.requests()}
        assert used == {"Bearer sk-pool-one", "Bearer sk-pool-two"} - {rejected}
        assert "sk-pool" not in gw.logs()  # nor logged
    finally:
        gw.stop()
        open_mock.stop()
