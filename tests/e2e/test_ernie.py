"""Baidu ERNIE v1 behind every client API, through Envoy: the API Key and
Secret Key are exchanged for an access token by one refresher across all
workers (the root context's timer, a compare-and-set claim in shared data),
refreshed ahead of its expiry, and added to each request's query; requests
that arrive before it wait for it."""

import json
import time
from urllib.parse import parse_qs

import anthropic
import httpx
import pytest
from openai import OpenAI

from harness import ChatLoad, Gateway, Mock, check_refused_token_is_replaced

GREETING = "Hello from mock-provider! You said: "
PREFIX = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat"
CREDS = {"ERNIE_AK": "mock-ernie-ak", "ERNIE_SK": "mock-ernie-sk"}


def ernie_config(mock, **token):
    return {
        "providers": [{"name": "ernie", "type": "ernie", "base_url": f"{mock.url}{PREFIX}",
                       "token": {"client_id": "env:ERNIE_AK", "client_secret": "env:ERNIE_SK",
                                 **token}}],
        "models": [{"name": "ernie-4", "targets": [{"provider": "ernie", "model": "ernie-4.0-8k"}]}],
    }


def tokens(mock):
    import httpx
    return httpx.get(f"{mock.url}/__mock/ernie/tokens").json()


def chat_requests(mock):
    return [r for r in mock.requests() if r["path"].startswith(PREFIX)]


def token_requests(mock):
    return [r for r in mock.requests() if r["path"] == "/oauth/2.0/token"]


@pytest.fixture(scope="module")
def emock():
    m = Mock(api_key=None)
    yield m
    m.stop()


@pytest.fixture(scope="module")
def egw(emock, tmp_path_factory):
    gw = Gateway(ernie_config(emock), tmp_path_factory.mktemp("ernie"), env=CREDS)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(egw):
    return OpenAI(base_url=egw.url + "/v1", api_key="client-key", max_retries=0)


def test_the_first_request_waits_for_the_token_then_all_share_it(client, emock):
    r = client.chat.completions.create(model="ernie-4", messages=[
        {"role": "system", "content": "简短回答"}, {"role": "user", "content": "你好 ERNIE"}])
    assert r.choices[0].message.content == GREETING + "你好 ERNIE"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0
    for _ in range(5):
        client.chat.completions.create(model="ernie-4", messages=[{"role": "user", "content": "again"}])
    sent = chat_requests(emock)
    assert len(sent) == 6
    used = {parse_qs(s["query"])["access_token"][0] for s in sent}
    assert len(used) == 1, used
    assert tokens(emock)["issued"] == 1
    body = json.loads(sent[0]["body"])
    assert body["system"] == "简短回答" and body["messages"] == [{"role": "user", "content": "你好 ERNIE"}]
    assert sent[0]["path"] == f"{PREFIX}/ernie-4.0-8k"
    # The credentials never reach the chat endpoint, the token never the client.
    assert "mock-ernie-sk" not in json.dumps(sent)


def test_streams_and_every_client_api(egw, client, emock):
    stream = client.chat.completions.create(
        model="ernie-4", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "流式 回答 请"}], extra_headers={"x-mock-chunk-chars": "2"})
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text == GREETING + "流式 回答 请"
    assert usage.completion_tokens > 0
    claude = anthropic.Anthropic(base_url=egw.url, api_key="k", max_retries=0)
    m = claude.messages.create(model="ernie-4", max_tokens=100,
                               messages=[{"role": "user", "content": "from claude"}])
    assert m.content[0].text == GREETING + "from claude"
    with claude.messages.stream(model="ernie-4", max_tokens=100,
                                messages=[{"role": "user", "content": "streamed"}]) as s:
        assert "".join(s.text_stream) == GREETING + "streamed"
    r = client.responses.create(model="ernie-4", input="responses api")
    assert r.output_text == GREETING + "responses api"


def test_function_calls(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "天气",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    r = client.chat.completions.create(
        model="ernie-4", tools=tools, messages=[{"role": "user", "content": "北京天气"}],
        extra_headers={"x-mock-tool-call": "get_weather", "x-mock-tool-args": r'{"city":"\u5317\u4eac"}'})
    call = r.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "北京"})
    assert r.choices[0].finish_reason == "tool_calls"


def test_errors_ernie_sends_with_200_get_their_status(egw):
    r = egw.post("/v1/chat/completions", {"model": "ernie-4", "temperature": 0.5,
                                          "messages": [{"role": "user", "content": "x"}]},
                 headers={"x-mock-status": "429"})
    assert r.status_code == 429, r.text
    # A stream the provider answers with a JSON error: that error, not a 502.
    r = egw.post("/v1/chat/completions", {"model": "ernie-4", "stream": True,
                                          "messages": [{"role": "user", "content": "x"}],
                                          "penalty_score": 5})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "ernie_336003"


def test_a_revoked_token_is_replaced_and_the_request_sent_again(egw, emock):
    """The provider refuses a revoked token: the token is replaced at once
    and the request sent once more; the client sees only the answer."""
    check_refused_token_is_replaced(egw, f"{emock.url}/__mock/ernie/revoke", "ernie-4",
                                    lambda: tokens(emock)["issued"])


def test_bad_credentials_fail_fast_with_the_providers_reason(emock, tmp_path_factory):
    gw = Gateway(ernie_config(emock, wait_ms=3000), tmp_path_factory.mktemp("ernie-bad"),
                 env={"ERNIE_AK": "mock-ernie-ak", "ERNIE_SK": "wrong"})
    try:
        r = gw.post("/v1/messages", {"model": "ernie-4", "max_tokens": 10,
                                     "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 503, r.text
        assert r.json()["type"] == "error"
        msg = r.json()["error"]["message"]
        assert "Provider 'ernie' has no access token" in msg, msg
        assert "wrong" not in r.text
        assert "Client authentication failed" in gw.logs()
    finally:
        gw.stop()


def test_refresh_under_load_is_one_call_per_expiry_and_loses_no_request(tmp_path_factory):
    """Four workers, tokens living 3 s (refreshed 1 s ahead): for 12 s of
    steady load, one token call per refresh and every request answered."""
    mock = Mock(api_key=None, extra_args=["--ernie-token-ttl", "3"])
    gw = Gateway(ernie_config(mock), tmp_path_factory.mktemp("ernie-load"), concurrency=4, env=CREDS)
    try:
        load = ChatLoad(gw, "ernie-4", rate=40.0, threads=8, max_seconds=12).start()
        time.sleep(12.5)
        load.stop()
        failed = [r for r in load.results if not r[4]]
        assert len(load.results) > 300
        assert not failed, failed[:3]
        issued = tokens(mock)["issued"]
        print(f"ernie refresh under load: {len(load.results)} requests, {len(failed)} failed, "
              f"{issued} tokens issued")
        # The first token, then one per 2 s of life: never two for one expiry.
        assert 5 <= issued <= 8, issued
        assert issued == len(token_requests(mock))
    finally:
        gw.stop()
        mock.stop()
