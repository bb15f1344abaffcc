"""Amazon Bedrock (Converse) behind every client API, through Envoy: each
request and each failover attempt signed with SigV4 (the mock verifies the
signature with its own implementation), streams read from AWS's binary
event stream and translated chunk by chunk."""

import json

import anthropic
import httpx
import openai
import pytest
from openai import OpenAI

from harness import Gateway

GREETING = "Hello from mock-provider! You said: "
CLAUDE_ID = "anthropic.claude-sonnet-4-20250514-v1:0"
NOVA_ID = "us.amazon.nova-pro-v1:0"
CREDS = {"AWS_ACCESS_KEY_ID": "AKIAMOCKEXAMPLE00001",
         "AWS_SECRET_ACCESS_KEY": "mock+secret/KEY0000000000000000000001",
         "STS_KEY_ID": "ASIAMOCKEXAMPLE00002",
         "STS_SECRET": "mock+secret/KEY0000000000000000000002",
         "STS_TOKEN": "mock-session-token-2"}
FAIL_ANTHROPIC = {"x-mock-status": "503", "x-mock-status-path-prefix": "/v1/messages"}
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def bgw(mock, tmp_path_factory):
    def bedrock(name, **aws):
        return {"name": name, "type": "bedrock", "base_url": mock.url,
                "aws": {"region": "us-east-1", **aws}}
    config = {
        "providers": [
            bedrock("bedrock"),
            bedrock("bedrock-sts", access_key_id="env:STS_KEY_ID",
                    secret_access_key="env:STS_SECRET", session_token="env:STS_TOKEN"),
            bedrock("bedrock-wrong", access_key_id="AKIAMOCKEXAMPLE00001",
                    secret_access_key="not-the-secret"),
            {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"},
        ],
        "models": [
            {"name": "claude-bedrock", "targets": [{"provider": "bedrock", "model": CLAUDE_ID}]},
            {"name": "nova", "targets": [{"provider": "bedrock-sts", "model": NOVA_ID}]},
            {"name": "wrong-secret", "targets": [{"provider": "bedrock-wrong", "model": NOVA_ID}]},
            {"name": "claude-then-bedrock", "targets": [
                {"provider": "claude", "model": "claude-sonnet-4-5"},
                {"provider": "bedrock", "model": CLAUDE_ID, "priority": 1}]},
        ],
        "health": {"consecutive_failures": 100},
    }
    gw = Gateway(config, tmp_path_factory.mktemp("bedrock"), env=CREDS)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(bgw):
    return OpenAI(base_url=bgw.url + "/v1", api_key="client-key", max_retries=0)


@pytest.fixture(scope="module")
def claude_client(bgw):
    return anthropic.Anthropic(base_url=bgw.url, api_key="client-key", max_retries=0)


def check_signed(seen, model_id, key_id="AKIAMOCKEXAMPLE00001", stream=False):
    verb = "converse-stream" if stream else "converse"
    assert seen["path"] == f"/model/{model_id.replace(':', '%3A')}/{verb}"
    auth = seen["headers"]["authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={key_id}/"), auth
    assert "/us-east-1/bedrock/aws4_request" in auth
    assert "x-api-key" not in seen["headers"]
    body = json.loads(seen["body"])
    assert "model" not in body and "messages" in body
    return body


def test_chat_completion(client, mock):
    mock.clear()
    r = client.chat.completions.create(
        model="claude-bedrock", max_tokens=200, temperature=0.2,
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "hello bedrock"}])
    assert r.choices[0].message.content == GREETING + "hello bedrock"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == CLAUDE_ID
    assert r.usage.prompt_tokens == 4 and r.usage.completion_tokens > 0
    body = check_signed(mock.last(), CLAUDE_ID)
    assert body["system"] == [{"text": "Be brief."}]
    assert body["inferenceConfig"] == {"maxTokens": 200, "temperature": 0.2}


def test_stream_with_sdk_defaults(client, mock):
    """The SDK asks for gzip; the event stream is cut into 7-byte frames."""
    mock.clear()
    stream = client.chat.completions.create(
        model="claude-bedrock", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream me a reply please"}],
        extra_headers={"x-mock-split-bytes": "7", "x-mock-chunk-chars": "3"})
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    assert text == GREETING + "stream me a reply please"
    assert finish == "stop"
    assert usage.prompt_tokens == 5
    check_signed(mock.last(), CLAUDE_ID, stream=True)


def test_tool_calls_round_trip(client, mock):
    mock.clear()
    headers = {"x-mock-tool-call": "get_weather", "x-mock-tool-args": '{"city":"Paris"}'}
    r = client.chat.completions.create(
        model="claude-bedrock", tools=WEATHER, tool_choice="required",
        messages=[{"role": "user", "content": "weather?"}], extra_headers=headers)
    call = r.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert r.choices[0].finish_reason == "tool_calls"
    body = check_signed(mock.last(), CLAUDE_ID)
    assert body["toolConfig"]["toolChoice"] == {"any": {}}
    # The call's result goes back as a toolResult; the mock checks it answers the toolUse.
    follow = client.chat.completions.create(
        model="claude-bedrock", tools=WEATHER,
        messages=[{"role": "user", "content": "weather?"},
                  {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                  {"role": "tool", "tool_call_id": call.id, "content": "18C"}])
    assert follow.choices[0].message.content.startswith(GREETING)
    sent = json.loads(mock.last()["body"])["messages"]
    assert sent[2]["content"][0]["toolResult"]["toolUseId"] == call.id
    # Streamed, the arguments arrive in pieces.
    stream = client.chat.completions.create(
        model="claude-bedrock", tools=WEATHER, stream=True,
        messages=[{"role": "user", "content": "weather?"}], extra_headers=headers)
    args, name = "", None
    for chunk in stream:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = tc.function.name or name
            args += tc.function.arguments or ""
    assert (name, json.loads(args)) == ("get_weather", {"city": "Paris"})


def test_anthropic_messages_client(claude_client, mock):
    mock.clear()
    m = claude_client.messages.create(
        model="claude-bedrock", max_tokens=100,
        messages=[{"role": "user", "content": "hi from claude code"}])
    assert m.content[0].text == GREETING + "hi from claude code"
    assert m.stop_reason == "end_turn"
    check_signed(mock.last(), CLAUDE_ID)
    with claude_client.messages.stream(
            model="claude-bedrock", max_tokens=100,
            messages=[{"role": "user", "content": "and streaming"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == GREETING + "and streaming"
    assert final.usage.output_tokens > 0
    check_signed(mock.last(), CLAUDE_ID, stream=True)


def test_responses_client(client, mock):
    mock.clear()
    r = client.responses.create(model="nova", input="responses to nova")
    assert r.output_text == GREETING + "responses to nova"
    check_signed(mock.last(), NOVA_ID, key_id="ASIAMOCKEXAMPLE00002")
    assert mock.last()["headers"]["x-amz-security-token"] == "mock-session-token-2"
    events = list(client.responses.create(model="nova", input="streamed", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == GREETING + "streamed"


def test_a_bad_signature_is_the_providers_403_in_each_protocol(bgw, mock):
    r = bgw.post("/v1/chat/completions", {"model": "wrong-secret",
                                           "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert "signature we calculated does not match" in err["message"]
    assert "not-the-secret" not in r.text
    r = bgw.post("/v1/messages", {"model": "wrong-secret", "max_tokens": 10,
                                  "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 403
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "permission_error"


def test_client_aws_headers_do_not_reach_bedrock(bgw, mock):
    mock.clear()
    r = bgw.post("/v1/chat/completions",
                 {"model": "claude-bedrock", "messages": [{"role": "user", "content": "x"}]},
                 headers={"x-amz-security-token": "client-token",
                          "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
                          "authorization": "AWS4-HMAC-SHA256 Credential=EVIL/x"})
    assert r.status_code == 200, r.text
    headers = mock.last()["headers"]
    assert "x-amz-security-token" not in headers
    assert "x-amz-content-sha256" not in headers
    assert "EVIL" not in headers["authorization"]


def test_an_exception_mid_stream_is_an_error_event(client):
    stream = client.chat.completions.create(
        model="claude-bedrock", stream=True,
        messages=[{"role": "user", "content": "one two three four five six"}],
        extra_headers={"x-mock-sse-inject": "error@3", "x-mock-chunk-chars": "4"})
    text = ""
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert text and GREETING.startswith(text[:10])
    assert "Exception" in str(e.value.body) or "exception" in str(e.value).lower()


def test_failover_attempt_is_signed_by_the_upstream_filter(bgw, mock):
    mock.clear()
    r = bgw.post("/v1/chat/completions",
                 {"model": "claude-then-bedrock", "messages": [{"role": "user", "content": "fail over"}]},
                 headers=FAIL_ANTHROPIC)
    assert r.status_code == 200, r.text
    assert r.headers["x-llm-gateway-target"] == f"bedrock/{CLAUDE_ID}"
    assert r.json()["choices"][0]["message"]["content"] == GREETING + "fail over"
    first, second = mock.requests()
    assert first["path"] == "/v1/messages"
    check_signed(second, CLAUDE_ID)
    # Streams fail over too, and stay streams.
    with httpx.stream("POST", bgw.url + "/v1/chat/completions", headers=FAIL_ANTHROPIC, timeout=10,
                      json={"model": "claude-then-bedrock", "stream": True,
                            "messages": [{"role": "user", "content": "fail over"}]}) as s:
        assert s.status_code == 200
        assert s.headers["content-type"].startswith("text/event-stream")
        body = s.read().decode()
    assert body.rstrip().endswith("data: [DONE]")
    assert "fail" in body and "over" in body
