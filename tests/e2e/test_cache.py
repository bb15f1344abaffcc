"""The response cache (`models[].cache`) in a real Envoy, with the official
SDKs and their defaults (the openai SDK asks for gzip, and the mock answers
compressed as real providers do): a repeated request is answered from
shared data without reaching the provider, in the client's API and mode."""

import concurrent.futures
import hashlib
import json
import time

import anthropic
import httpx
import pytest
from openai import OpenAI

from harness import Gateway, Mock, scrape, value

KEY_A, KEY_B = "sk-team-a", "sk-team-b"


def digest(key):
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def config(mock, ttl=600):
    return {
        "providers": [
            {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"},
            {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"},
        ],
        "models": [
            {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}],
             "cache": {"ttl_seconds": ttl}},
            {"name": "sonnet", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}],
             "cache": {"ttl_seconds": ttl, "scope": "shared"}},
            {"name": "uncached", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
        ],
        "consumers": [{"name": "team-a", "api_keys": [digest(KEY_A)]},
                      {"name": "team-b", "api_keys": [digest(KEY_B)]}],
        "rate_limits": {"rules": [{"name": "team-rpm", "by": ["consumer", "model"],
                                   "requests": {"limit": 12, "per": "hour"}}]},
        "pricing": [{"model": "gpt-4o-mini", "input": 1.0, "output": 2.0}],
        "cache": {"max_bytes": 1048576, "max_entry_bytes": 65536, "max_entries": 256},
    }


@pytest.fixture
def parts(tmp_path):
    made = []

    def start(ttl=600):
        mock = Mock(extra_args=["--compress"])
        made.append(mock)
        log = tmp_path / "access.log"
        cfg = config(mock, ttl)
        cfg["envoy"] = {"access_log": str(log)}
        gw = Gateway(cfg, tmp_path / f"gw{len(made)}")
        made.append(gw)
        return mock, gw, log
    yield start
    for p in reversed(made):
        p.stop()


def chats(mock):
    return [r for r in mock.requests() if r["path"] == "/v1/chat/completions"]


def openai_client(gw, key=KEY_A):
    return OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def with_headers(client, **kw):
    return client.chat.completions.with_raw_response.create(**kw)


def test_openai_sdk_repeat_is_answered_from_the_cache_whole_and_streamed(parts):
    mock, gw, log = parts()
    client = openai_client(gw)
    ask = dict(model="gpt", temperature=0, messages=[{"role": "user", "content": "cache me"}])
    raw = with_headers(client, **ask)
    assert raw.headers["x-llm-gateway-cache"] == "store"
    first = raw.parse()
    # The provider answered gzip to the SDK's accept-encoding; the filter
    # still read and stored it.
    assert first.choices[0].message.content == "Hello from mock-provider! You said: cache me"
    raw = with_headers(client, **ask)
    assert raw.headers["x-llm-gateway-cache"] == "hit"
    assert raw.headers["x-llm-gateway-target"] == "oai/gpt-4o-mini"
    hit = raw.parse()
    assert hit.choices[0].message.content == first.choices[0].message.content
    assert hit.usage.total_tokens == first.usage.total_tokens
    chunks = list(client.chat.completions.create(
        **ask, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == first.usage.completion_tokens
    assert len(chats(mock)) == 1, "a hit reached the provider"
    time.sleep(0.5)
    m = scrape(gw)
    assert value(m, "llm_gateway_cache_requests_total", gen_ai_request_model="gpt", result="hit") == 2
    assert value(m, "llm_gateway_cache_requests_total", gen_ai_request_model="gpt", result="miss") == 1
    assert value(m, "llm_gateway_cache_stores_total", gen_ai_request_model="gpt", outcome="stored") == 1
    saved = value(m, "llm_gateway_cache_saved_tokens_total", gen_ai_request_model="gpt",
                  gen_ai_token_type="output")
    assert saved == 2 * first.usage.completion_tokens
    assert value(m, "llm_gateway_cache_saved_cost_micro_usd_total", gen_ai_request_model="gpt") > 0
    assert value(m, "llm_gateway_cache_bytes") > 0
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    assert [x["cache"] for x in lines if x["model"] == "gpt"] == ["store", "hit", "hit"]


def test_a_streamed_miss_is_stored_and_tool_calls_replay(parts):
    mock, gw, _ = parts()
    client = openai_client(gw)
    ask = dict(model="gpt", temperature=0, messages=[{"role": "user", "content": "weather?"}],
               tools=[{"type": "function", "function": {
                   "name": "get_weather", "parameters": {"type": "object", "properties": {}}}}])
    hdrs = {"x-mock-tool-call": "get_weather"}
    streamed = list(client.chat.completions.create(**ask, stream=True, extra_headers=hdrs))
    calls = [tc for c in streamed if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"
    time.sleep(0.3)
    whole = client.chat.completions.with_raw_response.create(**ask, extra_headers=hdrs)
    assert whole.headers["x-llm-gateway-cache"] == "hit"
    msg = whole.parse().choices[0]
    assert msg.finish_reason == "tool_calls"
    assert msg.message.tool_calls[0].function.name == "get_weather"
    args = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(msg.message.tool_calls[0].function.arguments) == json.loads(args)
    again = list(client.chat.completions.create(**ask, stream=True, extra_headers=hdrs))
    names = [tc.function.name for c in again if c.choices
             for tc in (c.choices[0].delta.tool_calls or []) if tc.function.name]
    assert names == ["get_weather"]
    assert len(chats(mock)) == 1


def test_anthropic_sdk_hits_as_messages_and_message_streams(parts):
    mock, gw, _ = parts()
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEY_B, max_retries=0)
    # This SDK takes `temperature` only for some models: sent as a body field.
    ask = dict(model="sonnet", max_tokens=100, extra_body={"temperature": 0},
               messages=[{"role": "user", "content": "bonjour"}])
    first = client.messages.create(**ask)
    raw = client.messages.with_raw_response.create(**ask)
    assert raw.headers["x-llm-gateway-cache"] == "hit"
    assert raw.parse().content[0].text == first.content[0].text
    with client.messages.stream(**ask) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == first.content[0].text
    assert final.stop_reason == "end_turn"
    # Shared scope: team-a gets team-b's answer.
    other = anthropic.Anthropic(base_url=gw.url, api_key=KEY_A, max_retries=0)
    assert other.messages.create(**ask).content[0].text == first.content[0].text
    assert len([r for r in mock.requests() if r["path"] == "/v1/messages"]) == 1


def test_responses_api_hits(parts):
    mock, gw, _ = parts()
    client = openai_client(gw)
    first = client.responses.create(model="gpt", temperature=0, input="tell me once")
    raw = client.responses.with_raw_response.create(model="gpt", temperature=0, input="tell me once")
    assert raw.headers["x-llm-gateway-cache"] == "hit"
    assert raw.parse().output_text == first.output_text
    events = list(client.responses.create(model="gpt", temperature=0, input="tell me once",
                                          stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == first.output_text
    assert len(chats(mock)) == 1


def test_scopes_directives_and_sampling(parts):
    mock, gw, _ = parts()
    a, b = openai_client(gw, KEY_A), openai_client(gw, KEY_B)
    ask = dict(model="gpt", temperature=0, messages=[{"role": "user", "content": "mine"}])
    a.chat.completions.create(**ask)
    # Another consumer never gets team-a's answer (scope: consumer).
    assert with_headers(b, **ask).headers["x-llm-gateway-cache"] == "store"
    assert len(chats(mock)) == 2
    r = with_headers(a, **ask, extra_headers={"cache-control": "no-cache"})
    assert r.headers["x-llm-gateway-cache"] == "store"
    r = with_headers(a, **ask, extra_headers={"cache-control": "no-store"})
    assert r.headers["x-llm-gateway-cache"] == "bypass"
    assert len(chats(mock)) == 4
    sampled = dict(ask, temperature=0.7)
    assert with_headers(b, **sampled).headers["x-llm-gateway-cache"] == "bypass"
    plain = dict(ask, model="uncached")
    assert "x-llm-gateway-cache" not in with_headers(a, **plain).headers


def test_hits_take_no_rate_limit_and_ttl_expires(parts):
    mock, gw, _ = parts(ttl=2)
    client = openai_client(gw)
    ask = dict(model="gpt", temperature=0, messages=[{"role": "user", "content": "limits"}])
    client.chat.completions.create(**ask)
    # The rule allows 12 an hour; hits take none of them.
    for _ in range(20):
        assert with_headers(client, **ask).headers["x-llm-gateway-cache"] == "hit"
    time.sleep(2.2)
    assert with_headers(client, **ask).headers["x-llm-gateway-cache"] == "store"
    assert len(chats(mock)) == 2


def test_identical_requests_in_flight_together_all_get_the_answer(parts):
    mock, gw, _ = parts()
    body = {"model": "gpt", "temperature": 0, "messages": [{"role": "user", "content": "together"}]}
    headers = {"authorization": f"Bearer {KEY_A}", "x-mock-first-byte-ms": "300"}

    def one(_):
        with httpx.Client(timeout=30) as c:
            r = c.post(gw.url + "/v1/chat/completions", json=body, headers=headers)
            assert r.status_code == 200, r.text
            return r.status_code, r.headers.get("x-llm-gateway-cache"), \
                r.json()["choices"][0]["message"]["content"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        out = list(pool.map(one, range(8)))
    # No coalescing: each concurrent miss asks the provider, one answer is kept.
    assert {o[0] for o in out} == {200}
    assert {o[2] for o in out} == {"Hello from mock-provider! You said: together"}
    assert {o[1] for o in out} <= {"store", "miss"}
    status, state, _ = one(0)
    assert (status, state) == (200, "hit")


def semantic_config(mock, embed_base=None, similarity=0.9):
    cfg = config(mock)
    embed = {"name": "embedder", "type": "openai",
             "base_url": embed_base or f"{mock.url}/v1", "api_key": "sk-upstream"}
    cfg["providers"].append(embed)
    cfg["models"][0]["cache"] = {"mode": "semantic", "embeddings_model": "embed",
                                 "similarity": similarity, "embeddings_timeout_ms": 2000}
    cfg["models"].append({"name": "embed", "targets": [{"provider": "embedder",
                                                        "model": "text-embedding-3-small"}]})
    return cfg


@pytest.fixture
def semantic_parts(tmp_path):
    made = []

    def start(embed_base=None, similarity=0.9):
        mock = Mock(extra_args=["--compress"])
        made.append(mock)
        cfg = semantic_config(mock, embed_base, similarity)
        gw = Gateway(cfg, tmp_path / f"gw{len(made)}")
        made.append(gw)
        return mock, gw
    yield start
    for p in reversed(made):
        p.stop()


def test_semantic_cache_through_envoy_with_the_mock_embedder(semantic_parts):
    mock, gw = semantic_parts()
    client = openai_client(gw)
    first = client.chat.completions.create(
        model="gpt", temperature=0, messages=[{"role": "user", "content": "same words"}])
    embeds = [r for r in mock.requests() if r["path"] == "/v1/embeddings"]
    assert len(embeds) == 1 and json.loads(embeds[0]["body"])["input"] == ["same words"]
    # Another body (content as parts), the same prompt text: the exact key
    # differs, the embedding does not.
    raw = client.chat.completions.with_raw_response.create(
        model="gpt", temperature=0,
        messages=[{"role": "user", "content": [{"type": "text", "text": "same words"}]}])
    assert raw.headers["x-llm-gateway-cache"] == "hit"
    assert raw.parse().choices[0].message.content == first.choices[0].message.content
    # Other words: the mock's hashed vectors are far apart.
    raw = client.chat.completions.with_raw_response.create(
        model="gpt", temperature=0, messages=[{"role": "user", "content": "other words"}])
    assert raw.headers["x-llm-gateway-cache"] == "store"
    assert len(chats(mock)) == 2
    time.sleep(0.5)
    m = scrape(gw)
    assert value(m, "llm_gateway_cache_semantic_lookups_total", gen_ai_request_model="gpt",
                 outcome="hit") == 1
    assert value(m, "llm_gateway_cache_semantic_lookups_total", gen_ai_request_model="gpt",
                 outcome="miss") == 2


def test_an_embedder_that_is_down_makes_misses_not_errors(semantic_parts, tmp_path):
    from harness import free_port
    mock, gw = semantic_parts(embed_base=f"http://127.0.0.1:{free_port()}/v1")
    client = openai_client(gw)
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt", temperature=0, messages=[{"role": "user", "content": "still served"}])
        assert raw.status_code == 200
    # The second is an exact hit: the embedder is only asked on a miss.
    assert raw.headers["x-llm-gateway-cache"] == "hit"
    assert len(chats(mock)) == 1
    time.sleep(0.5)
    assert value(scrape(gw), "llm_gateway_cache_semantic_lookups_total",
                 gen_ai_request_model="gpt", outcome="failed") == 1


def test_a_failover_pool_answer_is_cached_whichever_provider_gave_it(tmp_path):
    from harness import free_port
    mock = Mock(extra_args=["--compress"])
    try:
        gw = Gateway({
            "providers": [
                # The primary is down: Envoy fails over to the Anthropic target.
                {"name": "oai", "type": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                 "api_key": "sk-upstream"},
                {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"},
            ],
            "models": [{"name": "pooled", "cache": {},
                        "targets": [{"provider": "oai", "model": "gpt-4o-mini"},
                                    {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]}],
        }, tmp_path / "gw")
    except Exception:
        mock.stop()
        raise
    try:
        client = OpenAI(base_url=gw.url + "/v1", api_key="any", max_retries=0)
        ask = dict(model="pooled", temperature=0, messages=[{"role": "user", "content": "fail over"}])
        raw = with_headers(client, **ask)
        assert raw.headers["x-llm-gateway-target"] == "claude/claude-sonnet-4-5"
        assert raw.headers["x-llm-gateway-cache"] == "store"
        first = raw.parse().choices[0].message.content
        chunks = list(client.chat.completions.create(**ask, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == first
        raw = with_headers(client, **ask)
        assert raw.headers["x-llm-gateway-cache"] == "hit"
        assert len([r for r in mock.requests() if r["path"] == "/v1/messages"]) == 1
        # A streamed miss through the pool is stored too.
        ask2 = dict(ask, messages=[{"role": "user", "content": "stream through the pool"}])
        streamed = list(client.chat.completions.create(**ask2, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        time.sleep(0.3)
        hit = with_headers(client, **ask2)
        assert hit.headers["x-llm-gateway-cache"] == "hit"
        assert hit.parse().choices[0].message.content == text
    finally:
        gw.stop()
        mock.stop()
