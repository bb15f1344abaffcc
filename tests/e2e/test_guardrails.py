"""Guardrails against a real Envoy with the official SDKs: word lists
(Chinese first, from a file) and personal data blocked, masked or logged on
requests and on streamed and whole responses for every client API and
provider wire, terms split across SSE events and body chunks, and the
moderation callout allowed, flagged, failing open and closed, slow and
unreachable."""

import json
import time

import anthropic
import httpx
import openai
import pytest
from openai import OpenAI

from harness import Gateway, free_port, mock_providers, scrape, value

ZH_LIST = "# 示例词表\n机密文件\n内部代号\n"


@pytest.fixture(scope="module")
def ggw(mock, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guardrails")
    (tmp / "zh.txt").write_text(ZH_LIST, encoding="utf-8")
    rules = ["zh-block", "zh-out", "brand", "widget", "watch", "pii"]
    config = {
        "providers": mock_providers(mock, "oai", "compat", "claude", "gem") + [
            {"name": "mod", "type": "openai", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"},
            {"name": "mod-down", "type": "openai",
             "base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key": "sk-upstream"},
        ],
        "guardrails": [
            {"name": "zh-block", "words": [f"file:{tmp / 'zh.txt'}"], "action": "block",
             "apply_to": ["request"]},
            {"name": "zh-out", "words": ["敏感词"], "action": "block", "apply_to": ["response"]},
            {"name": "brand", "words": ["ACME"], "action": "mask"},
            {"name": "widget", "words": ["WIDGET"], "action": "mask", "apply_to": ["response"]},
            {"name": "watch", "words": ["refund"], "action": "log", "apply_to": ["request"]},
            {"name": "pii", "pii": ["cn_id", "cn_mobile", "bank_card", "email", "ipv4"],
             "action": "mask"},
            {"name": "mod", "moderation": {"provider": "mod", "timeout_ms": 1000}},
            {"name": "mod-open", "moderation": {"provider": "mod", "timeout_ms": 1000,
                                                "failure_mode": "open"}},
            {"name": "mod-down", "moderation": {"provider": "mod-down", "timeout_ms": 1000}},
        ],
        "models": [
            {"name": "g-oai", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}],
             "guardrails": rules},
            {"name": "g-compat", "targets": [{"provider": "compat", "model": "deepseek-chat"}],
             "guardrails": rules},
            {"name": "g-claude", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}],
             "guardrails": rules},
            {"name": "g-gem", "targets": [{"provider": "gem", "model": "gemini-2.5-flash"}],
             "guardrails": rules},
            {"name": "g-pool", "guardrails": rules, "targets": [
                {"provider": "oai", "model": "gpt-4o-mini"},
                {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]},
            {"name": "moderated", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}],
             "guardrails": ["mod"]},
            {"name": "moderated-open", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}],
             "guardrails": ["mod-open"]},
            {"name": "moderated-down", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}],
             "guardrails": ["mod-down"]},
        ],
    }
    config["envoy"] = {"access_log": str(tmp / "access.log")}
    gw = Gateway(config, tmp)
    gw.access_log = tmp / "access.log"
    yield gw
    gw.stop()


MODELS = ["g-oai", "g-compat", "g-claude", "g-gem", "g-pool"]


def oai(gw, **headers):
    return OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0,
                  default_headers=headers or None)


def claude(gw, **headers):
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0,
                               default_headers=headers or None)


def user(text):
    return [{"role": "user", "content": text}]


# Requests


@pytest.mark.parametrize("model", MODELS)
def test_a_listed_term_refuses_the_request_in_every_client_api(ggw, model):
    text = "请帮我总结这份機密文件"  # traditional 機 matches the simplified list entry
    with pytest.raises(openai.BadRequestError) as e:
        oai(ggw).chat.completions.create(model=model, messages=user(text))
    assert e.value.body["code"] == "content_policy_violation"
    assert "zh-block" in e.value.body["message"] and "机密" not in e.value.body["message"]
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(ggw).messages.create(model=model, max_tokens=50, messages=user(text))
    assert e.value.body["type"] == "error"
    assert "zh-block" in e.value.body["error"]["message"]
    with pytest.raises(openai.BadRequestError) as e:
        oai(ggw).responses.create(model=model, input=text)
    assert e.value.body["code"] == "content_policy_violation"


def test_full_width_and_case_do_not_hide_a_term(ggw, mock):
    r = oai(ggw).chat.completions.create(model="g-oai", messages=user("ａｃｍｅ and Acme"))
    sent = json.loads(mock.last()["body"])["messages"][0]["content"]
    assert sent == "**** and ****"
    assert "****" in r.choices[0].message.content


@pytest.mark.parametrize("model", ["g-oai", "g-claude", "g-gem"])
def test_personal_data_is_masked_before_the_provider_sees_it(ggw, mock, model):
    text = "身份证11010519491231002X 手机13812345678 邮箱li@example.com"
    r = claude(ggw).messages.create(model=model, max_tokens=200, messages=user(text))
    sent = mock.last()["body"]
    for secret in ["11010519491231002X", "13812345678", "li@example.com"]:
        assert secret not in sent
    assert "******************" in sent and "***********" in sent
    assert "13812345678" not in r.content[0].text


@pytest.mark.parametrize("api", ["chat", "messages", "responses"])
def test_request_masks_and_logs_work_for_every_client_api(ggw, mock, api):
    key = "llm_gateway_guardrail_hits_total"
    watch = dict(list="watch", action="log", direction="request")
    before = value(scrape(ggw), key, **watch) or 0
    text = "ACME refund to li@example.com"
    if api == "chat":
        oai(ggw).chat.completions.create(model="g-oai", messages=user(text))
    elif api == "messages":
        claude(ggw).messages.create(model="g-oai", max_tokens=50, messages=user(text))
    else:
        oai(ggw).responses.create(model="g-oai", input=text)
    sent = mock.last()["body"]
    assert "**** refund to **************" in sent, sent
    assert "ACME" not in sent and "li@example.com" not in sent
    deadline = time.time() + 10
    while (value(scrape(ggw), key, **watch) or 0) - before < 1 and time.time() < deadline:
        time.sleep(0.2)
    assert (value(scrape(ggw), key, **watch) or 0) - before == 1


# Responses


def stream_text(gw, model, text, **headers):
    parts, finish = [], None
    with oai(gw, **headers).chat.completions.create(
            model=model, messages=user(text), stream=True,
            stream_options={"include_usage": True}) as s:
        for chunk in s:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
    return "".join(parts), finish


@pytest.mark.parametrize("model", MODELS)
def test_a_response_term_is_masked_whole_and_streamed(ggw, mock, model):
    r = oai(ggw).chat.completions.create(model=model, messages=user("sell the WIDGET now"))
    # A response-only rule: the provider got the request as written.
    assert "sell the WIDGET now" in mock.last()["body"]
    assert r.choices[0].message.content.endswith("sell the ****** now")
    # One or two characters per event and 3-byte body chunks: the term is
    # split across events and UTF-8 sequences.
    for knobs in [{"x-mock-chunk-chars": "1"}, {"x-mock-chunk-chars": "2", "x-mock-split-bytes": "3"}]:
        text, finish = stream_text(ggw, model, "sell the WIDGET now", **knobs)
        assert text.endswith("sell the ****** now"), text
        assert finish == "stop"


@pytest.mark.parametrize("model", ["g-oai", "g-claude", "g-gem"])
def test_messages_and_responses_streams_are_masked(ggw, model):
    with claude(ggw, **{"x-mock-chunk-chars": "1"}).messages.stream(
            model=model, max_tokens=200, messages=user("buy a WIDGET")) as s:
        text = "".join(s.text_stream)
    assert text.endswith("buy a ******"), text
    with oai(ggw, **{"x-mock-chunk-chars": "2"}).responses.stream(
            model=model, input="buy a WIDGET") as s:
        final = s.get_final_response()
    assert final.output_text.endswith("buy a ******"), final.output_text


@pytest.mark.parametrize("model", MODELS)
def test_a_blocked_response_stream_stops_with_content_filter(ggw, model):
    seen, finish = [], None
    with pytest.raises(openai.APIError) as e:
        with oai(ggw, **{"x-mock-chunk-chars": "1"}).chat.completions.create(
                model=model, messages=user("这是敏感词吗"), stream=True) as s:
            for chunk in s:
                if chunk.choices:
                    seen.append(chunk.choices[0].delta.content or "")
                    finish = chunk.choices[0].finish_reason or finish
    assert "zh-out" in str(e.value)
    assert finish == "content_filter"
    text = "".join(seen)
    assert "敏感" not in text and text.endswith("这是"), text


@pytest.mark.parametrize("model", ["g-oai", "g-claude"])
def test_a_blocked_anthropic_stream_ends_in_refusal_and_an_error(ggw, model):
    body = {"model": model, "max_tokens": 100, "stream": True, "messages": user("这是敏感词吗")}
    with httpx.stream("POST", ggw.url + "/v1/messages", json=body, timeout=30,
                      headers={"x-mock-chunk-chars": "1", "anthropic-version": "2023-06-01"}) as r:
        raw = r.read().decode()
    assert '"stop_reason":"refusal"' in raw, raw
    assert "event: error" in raw and "guardrail 'zh-out'" in raw
    assert "敏感" not in raw.split("event: error")[0]


def test_a_blocked_responses_stream_ends_with_an_error_event(ggw):
    body = {"model": "g-claude", "input": "这是敏感词吗", "stream": True}
    with httpx.stream("POST", ggw.url + "/v1/responses", json=body, timeout=30,
                      headers={"x-mock-chunk-chars": "1"}) as r:
        raw = r.read().decode()
    assert "敏感" not in raw, raw
    head, _, tail = raw.partition("event: error")
    assert '"code":"content_policy_violation"' in tail and "guardrail 'zh-out'" in tail, raw
    assert '"delta":"是"' in head and "response.completed" not in raw
    with pytest.raises(openai.APIError):
        with oai(ggw, **{"x-mock-chunk-chars": "1"}).responses.stream(
                model="g-gem", input="这是敏感词吗") as s:
            for _ in s:
                pass


def test_a_whole_response_is_stopped_with_content_filter(ggw):
    r = oai(ggw).chat.completions.create(model="g-oai", messages=user("敏感词"))
    assert r.choices[0].finish_reason == "content_filter"
    assert r.choices[0].message.content is None
    m = claude(ggw).messages.create(model="g-oai", max_tokens=50, messages=user("敏感词"))
    assert m.stop_reason == "refusal" and m.content == []


def test_hits_are_counted_by_list_action_and_direction(ggw):
    before = scrape(ggw)
    oai(ggw).chat.completions.create(model="g-oai", messages=user("refund refund ACME"))
    labels = dict(list="watch", action="log", direction="request")
    key = "llm_gateway_guardrail_hits_total"
    deadline = time.time() + 10
    while time.time() < deadline:
        after = scrape(ggw)
        if (value(after, key, **labels) or 0) - (value(before, key, **labels) or 0) >= 2:
            break
        time.sleep(0.2)
    assert (value(after, key, **labels) or 0) - (value(before, key, **labels) or 0) == 2
    brand = dict(list="brand", action="mask", direction="request")
    assert (value(after, key, **brand) or 0) - (value(before, key, **brand) or 0) == 1
    # The echo carries the masked text: nothing left to mask on the way back.
    assert value(after, key, list="brand", action="mask", direction="response") \
        == value(before, key, list="brand", action="mask", direction="response")


def test_a_failover_attempts_response_hits_reach_the_metrics(ggw):
    key = "llm_gateway_guardrail_hits_total"
    labels = dict(list="widget", action="mask", direction="response")
    before = value(scrape(ggw), key, **labels) or 0
    r = oai(ggw).chat.completions.create(model="g-pool", messages=user("WIDGET"))
    assert r.choices[0].message.content.endswith("******")
    deadline = time.time() + 10
    while (value(scrape(ggw), key, **labels) or 0) - before < 1 and time.time() < deadline:
        time.sleep(0.2)
    assert (value(scrape(ggw), key, **labels) or 0) - before == 1


def test_the_access_log_names_rules_never_the_text(ggw):
    oai(ggw).chat.completions.create(
        model="g-oai", messages=user("ACME 13812345678"),
        extra_headers={"x-request-id": "guard-log-1"})
    line = None
    deadline = time.time() + 10
    while line is None and time.time() < deadline:
        for l in ggw.access_log.read_text().splitlines():
            if '"guard-log-1"' in l:
                line = json.loads(l)
        time.sleep(0.2)
    assert line is not None
    assert line["guardrails"] == "brand:mask:request:1,pii:mask:request:1"
    assert "13812345678" not in json.dumps(line) and "ACME" not in json.dumps(line)


# Moderation


def test_moderation_lets_a_clean_request_through(ggw, mock):
    r = oai(ggw).chat.completions.create(model="moderated", messages=user("bake bread"))
    assert r.choices[0].message.content.endswith("bake bread")
    paths = [q["path"] for q in mock.requests()[-2:]]
    assert paths == ["/v1/moderations", "/v1/chat/completions"], paths


def test_a_flagged_request_is_refused_in_the_clients_protocol(ggw):
    with pytest.raises(openai.BadRequestError) as e:
        oai(ggw).chat.completions.create(model="moderated", messages=user("[[flag:violence]]"))
    assert e.value.body["code"] == "content_policy_violation"
    assert "violence" in e.value.body["message"]
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(ggw).messages.create(model="moderated", max_tokens=20,
                                    messages=user("[[flag:hate]]"))
    assert "hate" in e.value.body["error"]["message"]


@pytest.mark.parametrize("marker", ["[[moderation:503]]", "[[moderation:garbage]]"])
def test_a_failing_service_fails_closed_or_open(ggw, marker):
    with pytest.raises(openai.APIStatusError) as e:
        oai(ggw).chat.completions.create(model="moderated", messages=user(marker))
    assert e.value.status_code == 503
    assert e.value.body["code"] == "moderation_unavailable"
    r = oai(ggw).chat.completions.create(model="moderated-open", messages=user(marker))
    assert r.choices[0].message.content.endswith(marker)


def test_a_slow_service_is_cut_at_the_timeout(ggw):
    start = time.monotonic()
    with pytest.raises(openai.APIStatusError) as e:
        oai(ggw).chat.completions.create(model="moderated", messages=user("[[moderation:slow]]"))
    took = time.monotonic() - start
    assert e.value.status_code == 503
    assert 0.9 < took < 2.5, took
    start = time.monotonic()
    r = oai(ggw).chat.completions.create(model="moderated-open",
                                         messages=user("[[moderation:slow]]"))
    assert r.choices[0].finish_reason == "stop"
    assert time.monotonic() - start < 2.5


def test_an_unreachable_service_fails_closed_with_a_clear_error(ggw):
    with pytest.raises(openai.APIStatusError) as e:
        oai(ggw).chat.completions.create(model="moderated-down", messages=user("hi"))
    assert e.value.status_code == 503
    assert "mod-down" in e.value.body["message"]
    outcomes = scrape(ggw)
    assert (value(outcomes, "llm_gateway_guardrail_moderation_total",
                  list="mod-down", outcome="failed_closed") or 0) >= 1


def test_a_stream_request_waits_for_moderation(ggw):
    text, finish = stream_text(ggw, "moderated", "stream me")
    assert text.endswith("stream me") and finish == "stop"
