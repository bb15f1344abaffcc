"""OpenAI Responses as a client API: the openai SDK's `client.responses`
against the gateway, passed through to a provider that serves Responses
natively (type openai) and translated for the others."""

import json

import openai
import pytest
from openai import OpenAI

from harness import Gateway, scrape, mock_providers

PROMPT = "one two three"
REPLY = "Hello from mock-provider! You said: one two three"
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
TOOL = {"x-mock-tool-call": "get_weather", "x-mock-tool-args": '{"city":"Paris"}'}
# model → the path the mock must see.
TARGETS = {
    "gpt": "/v1/responses",
    "deepseek": "/v1/chat/completions",
    "claude": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
}


@pytest.fixture(scope="module")
def rgw(mock, tmp_path_factory):
    config = {
        "providers": mock_providers(mock),
        "models": [
            {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
            {"name": "deepseek", "targets": [{"provider": "compat", "model": "deepseek-chat"}]},
            {"name": "claude", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5",
                                            "max_tokens": 1024}]},
            {"name": "gemini", "targets": [{"provider": "gem", "model": "gemini-2.5-flash"}]},
        ],
    }
    gw = Gateway(config, tmp_path_factory.mktemp("responses-api"))
    yield gw
    gw.stop()


def client(gw):
    return OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("model", list(TARGETS))
def test_create_from_every_provider(rgw, mock, model):
    r = client(rgw).responses.create(model=model, input=PROMPT, store=False)
    assert r.status == "completed"
    assert r.output_text == REPLY
    assert (r.usage.input_tokens, r.usage.output_tokens) == (3, 8)
    assert mock.last()["path"] == TARGETS[model]


@pytest.mark.parametrize("model", list(TARGETS))
def test_stream_from_every_provider(rgw, model):
    stream = client(rgw).responses.create(
        model=model, input=[{"role": "user", "content": PROMPT}], stream=True,
        extra_headers={"x-mock-chunk-chars": "4", "x-mock-split-bytes": "11"})
    events = list(stream)
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == REPLY
    assert events[-1].response.output_text == REPLY
    assert events[-1].response.usage.output_tokens == 8
    assert [e.sequence_number for e in events] == list(range(len(events)))


@pytest.mark.parametrize("model", list(TARGETS))
def test_function_calling_round_trip(rgw, mock, model):
    c = client(rgw)
    r = c.responses.create(model=model, input=PROMPT, tools=[WEATHER], extra_headers=TOOL)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    follow = [{"role": "user", "content": PROMPT},
              {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather",
               "arguments": calls[0].arguments},
              {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}]
    r = c.responses.create(model=model, input=follow, tools=[WEATHER])
    assert r.status == "completed"
    sent = json.loads(mock.last()["body"])
    if model == "deepseek":
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": calls[0].call_id,
                                        "content": "sunny"}
    elif model == "gpt":
        assert sent["input"][-1]["type"] == "function_call_output"


@pytest.mark.parametrize("model", ["deepseek", "claude", "gemini"])
def test_streamed_function_call(rgw, model):
    stream = client(rgw).responses.create(model=model, input=PROMPT, tools=[WEATHER],
                                          stream=True, extra_headers=TOOL)
    events = list(stream)
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and json.loads(done[0].arguments) == {"city": "Paris"}
    assert events[-1].response.output[-1].type == "function_call"


def test_stateful_requests_are_refused(rgw):
    c = client(rgw)
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model="deepseek", input=PROMPT, previous_response_id="resp_1")
    assert e.value.body["code"] == "unsupported_parameter"
    assert "stateless" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        c.responses.create(model="claude", input=PROMPT, store=True)


@pytest.mark.parametrize("model", ["deepseek", "claude"])
def test_a_stream_error_raises_in_the_sdk(rgw, model):
    with pytest.raises(openai.APIError):
        for _ in client(rgw).responses.create(model=model, input=PROMPT, stream=True,
                                              extra_headers={"x-mock-sse-inject": "error@2"}):
            pass


def test_metrics_name_the_client_api(rgw):
    client(rgw).responses.create(model="claude", input=PROMPT)
    series = [dict(labels) for (name, labels) in scrape(rgw)
              if name == "llm_gateway_requests_total"]
    assert any(s.get("llm_gateway_api") == "openai.responses" and s["gen_ai_request_model"] == "claude"
               for s in series), series
