"""Anthropic, Gemini and Azure OpenAI behind the unified API, through Envoy,
with the official `openai` SDK as the client and the mock asserting what it
received."""

import json

import httpx
import openai
import pytest
from openai import OpenAI

from harness import Gateway

GREETING = "Hello from mock-provider! You said: "
PROVIDERS = ["claude", "gemini-flash", "azure-gpt"]
WEATHER_TOOL = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


@pytest.fixture(scope="module")
def tgw(mock, tmp_path_factory):
    config = {
        "providers": [
            {"name": "anthropic", "type": "anthropic", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"},
            {"name": "gemini", "type": "gemini", "base_url": f"{mock.url}/v1beta",
             "api_key": "sk-upstream"},
            {"name": "azure", "type": "azure", "base_url": mock.url, "api_key": "sk-upstream"},
        ],
        "models": [
            {"name": "claude", "targets": [{"provider": "anthropic",
                                            "model": "claude-sonnet-4-5", "max_tokens": 512}]},
            {"name": "gemini-flash", "targets": [{"provider": "gemini",
                                                  "model": "gemini-2.5-flash"}]},
            {"name": "azure-gpt", "targets": [{"provider": "azure", "model": "gpt4o-deploy"}]},
            {"name": "gemini-embed", "targets": [{"provider": "gemini",
                                                  "model": "text-embedding-004"}]},
            {"name": "azure-embed", "targets": [{"provider": "azure", "model": "emb-deploy"}]},
        ],
    }
    gw = Gateway(config, tmp_path_factory.mktemp("tgw"))
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(tgw):
    return OpenAI(base_url=tgw.url + "/v1", api_key="client-key", max_retries=0)


def ask(text, system=None):
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": text}]


def check_upstream(model, seen, stream=False):
    """What each provider must have received."""
    body = json.loads(seen["body"])
    headers = seen["headers"]
    assert "authorization" not in headers  # the client's key never leaves
    if model == "claude":
        assert seen["path"] == "/v1/messages"
        assert headers["x-api-key"] == "sk-upstream"
        assert headers["anthropic-version"] == "2023-06-01"
        assert body["model"] == "claude-sonnet-4-5"
        assert body["max_tokens"] == 512
        assert body.get("stream", False) == stream
    elif model == "gemini-flash":
        verb = "streamGenerateContent" if stream else "generateContent"
        assert seen["path"] == f"/v1beta/models/gemini-2.5-flash:{verb}"
        assert ("alt=sse" in seen["query"]) == stream
        assert headers["x-goog-api-key"] == "sk-upstream"
        assert "contents" in body and "model" not in body
    else:
        assert seen["path"] == "/openai/deployments/gpt4o-deploy/chat/completions"
        assert seen["query"] == "api-version=2024-10-21"
        assert headers["api-key"] == "sk-upstream"
        assert body["model"] == "gpt4o-deploy"
    return body


@pytest.mark.parametrize("model", PROVIDERS)
def test_non_streaming(client, mock, model):
    r = client.chat.completions.create(model=model, messages=ask("bonjour", system="Be nice."))
    assert r.choices[0].message.content == GREETING + "bonjour"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion"
    u = r.usage
    assert u.prompt_tokens == 3 and u.completion_tokens == 6 and u.total_tokens == 9
    body = check_upstream(model, mock.last())
    if model == "claude":
        assert body["system"] in ("Be nice.", [{"type": "text", "text": "Be nice."}])
        assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "bonjour"}]}] \
            or body["messages"] == [{"role": "user", "content": "bonjour"}]
    if model == "gemini-flash":
        assert body["systemInstruction"]["parts"] == [{"text": "Be nice."}]


@pytest.mark.parametrize("split", [None, "1", "7"])
@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("model", PROVIDERS)
def test_streaming(client, mock, model, include_usage, split):
    headers = {"x-mock-chunk-chars": "5"}
    if split:
        headers["x-mock-split-bytes"] = split
    stream = client.chat.completions.create(
        model=model, messages=ask("stream me 你好 🌍"), stream=True,
        stream_options={"include_usage": True} if include_usage else None,
        extra_headers=headers)
    chunks = list(stream)
    content = [c for c in chunks if c.choices]
    assert content[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in content)
    assert text == GREETING + "stream me 你好 🌍"
    assert [c.choices[0].finish_reason for c in content if c.choices[0].finish_reason] == ["stop"]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    if include_usage:
        assert chunks[-1].choices == []
        assert chunks[-1].usage.completion_tokens == 9
        assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + 9
    else:
        assert all(c.choices for c in chunks)
    check_upstream(model, mock.last(), stream=True)


@pytest.mark.parametrize("model", PROVIDERS)
def test_tool_calls(client, mock, model):
    headers = {"x-mock-tool-call": "get_weather", "x-mock-tool-args": '{"city":"Paris"}'}
    r = client.chat.completions.create(model=model, messages=ask("weather in Paris?"),
                                       tools=WEATHER_TOOL, tool_choice="auto",
                                       extra_headers=headers)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id
    body = check_upstream(model, mock.last())
    if model == "claude":
        assert body["tools"][0]["name"] == "get_weather"
        assert body["tools"][0]["input_schema"]["required"] == ["city"]
    if model == "gemini-flash":
        decl = body["tools"][0]["functionDeclarations"][0]
        assert decl["name"] == "get_weather"

    # The tool result goes back; the provider sees a well-formed turn.
    follow = ask("weather in Paris?") + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        {"role": "user", "content": "thanks"}]
    r = client.chat.completions.create(model=model, messages=follow, tools=WEATHER_TOOL)
    assert r.choices[0].message.content == GREETING + "thanks"


@pytest.mark.parametrize("model", PROVIDERS)
def test_streamed_tool_calls(client, model):
    headers = {"x-mock-tool-call": "get_weather", "x-mock-tool-args": '{"city":"Paris"}',
               "x-mock-split-bytes": "3"}
    chunks = list(client.chat.completions.create(
        model=model, messages=ask("weather?"), tools=WEATHER_TOOL, stream=True,
        extra_headers=headers))
    calls = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            entry = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
            entry["id"] = tc.id or entry["id"]
            entry["name"] += (tc.function.name or "") if tc.function else ""
            entry["args"] += (tc.function.arguments or "") if tc.function else ""
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert json.loads(calls[0]["args"]) == {"city": "Paris"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


@pytest.mark.parametrize("model", PROVIDERS)
def test_provider_errors_keep_status_and_message(client, model):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=model, messages=ask("x"),
                                       extra_headers={"x-mock-status": "429"})
    assert e.value.status_code == 429
    assert e.value.body["message"]
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=model, messages=ask("x"),
                                       extra_headers={"x-mock-status": "401"})


def test_anthropic_refuses_what_it_cannot_do(client, mock):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="claude", messages=ask("x"), n=2)
    assert e.value.param == "n"
    assert "anthropic" in e.value.message.lower()
    assert mock.requests() == []


def test_stream_reset_mid_way_is_never_silent(client):
    for model in PROVIDERS:
        with pytest.raises((openai.APIError, httpx.HTTPError)):
            stream = client.chat.completions.create(
                model=model, messages=ask("a rather long message to stream"), stream=True,
                extra_headers={"x-mock-reset-after": "3", "x-mock-chunk-chars": "2"})
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            # Reaching here means the stream "ended": it must not look complete.
            raise AssertionError(f"{model}: truncated stream looked complete: {text!r}")


def test_embeddings(client, mock):
    e = client.embeddings.create(model="gemini-embed", input=["one", "two"])
    assert [d.index for d in e.data] == [0, 1]
    assert len(e.data[0].embedding) == 8
    seen = mock.last()
    assert seen["path"] == "/v1beta/models/text-embedding-004:batchEmbedContents"
    e = client.embeddings.create(model="azure-embed", input="one")
    assert len(e.data) == 1
    seen = mock.last()
    assert seen["path"] == "/openai/deployments/emb-deploy/embeddings"
