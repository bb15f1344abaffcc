"""`/v1/models` from config and embeddings passthrough."""

import json

import httpx


def test_models_lists_only_usable_models(gateway):
    r = httpx.get(gateway.url + "/v1/models", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "mock"},
        {"id": "qwen-plus", "object": "model", "created": 0, "owned_by": "qwen"},
        {"id": "broken", "object": "model", "created": 0, "owned_by": "down"},
        {"id": "text-embedding-3-small", "object": "model", "created": 0, "owned_by": "mock"},
    ]}
    one = httpx.get(gateway.url + "/v1/models/qwen-plus", timeout=10)
    assert one.json()["id"] == "qwen-plus"
    missing = httpx.get(gateway.url + "/v1/models/deepseek-chat", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


def test_embeddings_pass_through(gateway, mock):
    r = gateway.post("/v1/embeddings", {"model": "text-embedding-3-small",
                                        "input": ["a b", "c"]})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "list"
    assert [d["index"] for d in data["data"]] == [0, 1]
    assert len(data["data"][0]["embedding"]) == 8
    seen = mock.last()
    assert seen["path"] == "/v1/embeddings"
    assert json.loads(seen["body"])["model"] == "text-embedding-3-small"


def test_embeddings_validation(gateway, mock):
    r = gateway.post("/v1/embeddings", {"model": "text-embedding-3-small"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "input"
    assert mock.requests() == []
