"""Every client error is an OpenAI error JSON with the right status."""

import httpx
import pytest

CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]


def assert_error(r, status, type_="invalid_request_error", param=None, code=None, needle=""):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == type_
    assert err["param"] == param
    if code is not None:
        assert err["code"] == code
    assert needle in err["message"], err["message"]
    return err


@pytest.mark.parametrize("body,param,code,needle", [
    ("{not json", None, "invalid_json", "could not parse the JSON body"),
    ("[]", None, "invalid_type", "expected a JSON object"),
    ({"messages": MSGS}, "model", "missing_required_parameter", "'model'"),
    ({"model": 4, "messages": MSGS}, "model", "invalid_type", "expected a string"),
    ({"model": "gpt-4o-mini"}, "messages", "missing_required_parameter", "'messages'"),
    ({"model": "gpt-4o-mini", "messages": {}}, "messages", "invalid_type", "expected an array"),
    ({"model": "gpt-4o-mini", "messages": []}, "messages", "empty_array", "empty array"),
    ({"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]},
     "messages[0].role", "invalid_value", "'robot'"),
    ({"model": "gpt-4o-mini", "messages": MSGS, "stream": "yes"}, "stream", "invalid_type", "boolean"),
    ({"model": "gpt-4o-mini", "messages": MSGS, "temperature": 9}, "temperature", "invalid_value", "out of range"),
    ({"model": "gpt-4o-mini", "messages": MSGS, "max_tokens": 0}, "max_tokens",
     "integer_below_min_value", ">= 1"),
])
def test_invalid_bodies_are_400(gateway, mock, body, param, code, needle):
    assert_error(gateway.post(CHAT, body), 400, param=param, code=code, needle=needle)
    assert mock.requests() == [], "an invalid request reached the provider"


def test_empty_body_is_400(gateway):
    r = httpx.post(gateway.url + CHAT, timeout=10)
    assert_error(r, 400, code="invalid_json", needle="body is empty")


def test_unknown_model_is_404_naming_available_models(gateway):
    err = assert_error(gateway.post(CHAT, {"model": "gpt-5-ultra", "messages": MSGS}), 404,
                       param="model", code="model_not_found")
    assert err["message"] == (
        "The model 'gpt-5-ultra' does not exist or is not served by this gateway. "
        "Available models: gpt-4o-mini, qwen-plus, broken, text-embedding-3-small.")


def test_model_without_usable_target_is_503(gateway):
    err = assert_error(gateway.post(CHAT, {"model": "deepseek-chat", "messages": MSGS}), 503,
                       type_="api_error", code="no_available_target")
    assert "LLMGW_TEST_UNSET_KEY is not set" in err["message"]


def test_body_over_limit_is_413(gateway, mock):
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 70000}]}
    assert_error(gateway.post(CHAT, big), 413, code="request_too_large", needle="65536 bytes")

    def chunks():  # no content-length: the limit applies while buffering
        payload = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' + b"y" * 70000 + b'"}]}'
        for i in range(0, len(payload), 8192):
            yield payload[i:i + 8192]

    r = httpx.post(gateway.url + CHAT, content=chunks(), timeout=10)
    assert_error(r, 413, code="request_too_large")
    assert mock.requests() == []


def test_unknown_path_and_wrong_method(gateway):
    assert_error(gateway.post("/v1/completions", {"model": "x"}), 404, code="unknown_url",
                 needle="Unknown request URL: POST /v1/completions")
    assert_error(httpx.get(gateway.url + CHAT, timeout=10), 405, code="method_not_allowed")
    assert_error(gateway.post("/v1/models", {}), 405, code="method_not_allowed")
