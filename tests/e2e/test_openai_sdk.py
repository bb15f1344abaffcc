"""The official `openai` Python SDK as the client."""

import openai
import pytest
from openai import OpenAI


@pytest.fixture(scope="module")
def client(gateway):
    return OpenAI(base_url=gateway.url + "/v1", api_key="client-key", max_retries=0)


def test_sdk_chat(client):
    r = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello sdk"}])
    assert r.choices[0].message.content == "Hello from mock-provider! You said: hello sdk"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0


def test_sdk_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="qwen-plus", messages=[{"role": "user", "content": "stream please"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from mock-provider! You said: stream please"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_sdk_models_and_embeddings(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["gpt-4o-mini", "qwen-plus", "broken", "text-embedding-3-small"]
    e = client.embeddings.create(model="text-embedding-3-small", input="hi there")
    assert len(e.data[0].embedding) == 8


def test_sdk_errors_are_typed(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert e.value.param == "messages"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-mock-status": "429"})
