"""Gateway API keys: 401 without a valid key, 403 for models outside a
consumer's allow-list, keys never forwarded, consumers in metrics."""

import hashlib

import httpx
import pytest

from harness import Gateway

CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def cgw(mock, tmp_path_factory):
    config = {
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
        "consumers": [
            {"name": "team-a",
             "api_keys": ["sha256:" + hashlib.sha256(b"sk-team-a").hexdigest()],
             "models": ["gpt"]},
            {"name": "team-b", "api_keys": ["env:LLMGW_TEST_TEAM_B_KEY"]},
        ],
        "metrics": {"consumer_label": True},
    }
    gw = Gateway(config, tmp_path_factory.mktemp("cgw"),
                 env={"LLMGW_TEST_TEAM_B_KEY": "sk-team-b"})
    yield gw
    gw.stop()


def error(r, status, code):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert set(err) == {"message", "type", "param", "code"}
    return err


def test_missing_and_wrong_keys_are_401(cgw, mock):
    error(cgw.post(CHAT, {"model": "gpt", "messages": MSGS}), 401, "missing_api_key")
    error(cgw.post(CHAT, {"model": "gpt", "messages": MSGS},
                   headers={"authorization": "Bearer sk-nope"}), 401, "invalid_api_key")
    error(httpx.get(cgw.url + "/v1/models", timeout=10), 401, "missing_api_key")
    assert mock.requests() == []


def test_consumer_key_is_replaced_upstream(cgw, mock):
    r = cgw.post(CHAT, {"model": "gpt", "messages": MSGS},
                 headers={"authorization": "Bearer sk-team-a"})
    assert r.status_code == 200, r.text
    seen = mock.last()["headers"]
    assert seen["authorization"] == "Bearer sk-upstream"
    assert "sk-team-a" not in str(mock.last())


def test_model_outside_allow_list_is_403(cgw, mock):
    err = error(cgw.post(CHAT, {"model": "sonnet", "messages": MSGS},
                         headers={"authorization": "Bearer sk-team-a"}), 403, "model_not_allowed")
    assert err["param"] == "model" and "team-a" in err["message"]
    assert mock.requests() == []


def test_env_key_and_x_api_key_header(cgw):
    r = cgw.post(CHAT, {"model": "sonnet", "messages": MSGS}, headers={"x-api-key": "sk-team-b"})
    assert r.status_code == 200, r.text


def test_models_list_is_per_consumer(cgw):
    a = httpx.get(cgw.url + "/v1/models", headers={"authorization": "Bearer sk-team-a"}).json()
    b = httpx.get(cgw.url + "/v1/models", headers={"authorization": "Bearer sk-team-b"}).json()
    assert [m["id"] for m in a["data"]] == ["gpt"]
    assert [m["id"] for m in b["data"]] == ["gpt", "sonnet"]


def test_consumer_label_in_metrics(cgw):
    cgw.post(CHAT, {"model": "gpt", "messages": MSGS}, headers={"authorization": "Bearer sk-team-a"})
    text = httpx.get(cgw.admin + "/stats/prometheus").text
    line = next(l for l in text.splitlines() if l.startswith("llm_gateway_requests_total{")
                and 'consumer="team-a"' in l and 'http_response_status_class="2xx"' in l
                and 'gen_ai_operation_name="chat"' in l)
    assert line.endswith(" 2")
