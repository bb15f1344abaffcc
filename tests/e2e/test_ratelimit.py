"""Rate limits, quotas and adaptive limits in shared data, through Envoy with
four workers: exact under concurrency, refilled by time, reconciled with real
token usage, bounded under a flood of client-controlled keys."""

import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harness import Gateway

CHAT = "/v1/chat/completions"
PROMPT = [{"role": "user", "content": "one two three"}]  # mock usage: 3 in, 8 out


def gateway(mock, tmp, rate_limits=None, consumers=None, adaptive=None):
    provider = {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1",
                "api_key": "sk-upstream"}
    if adaptive:
        provider["adaptive_concurrency"] = adaptive
    config = {
        "providers": [provider,
                      {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1",
                       "api_key": "sk-upstream"}],
        "models": [{"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
                   {"name": "sonnet", "targets": [{"provider": "claude",
                                                   "model": "claude-sonnet-4-5"}]}],
    }
    if rate_limits:
        config["rate_limits"] = rate_limits
    if consumers:
        config["consumers"] = consumers
    return Gateway(config, tmp, concurrency=4)


def chat(gw, headers=None, **body):
    return gw.post(CHAT, {"model": "gpt", "messages": PROMPT, **body}, headers=headers)


def test_limit_of_n_admits_exactly_n_under_concurrency(mock, tmp_path):
    gw = gateway(mock, tmp_path, {"rules": [
        {"name": "global-rph", "requests": {"limit": 100, "per": "hour"}}]})
    try:
        with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=250)) as client:
            def one(_):
                return client.post(gw.url + CHAT, json={"model": "gpt", "messages": PROMPT})

            with ThreadPoolExecutor(max_workers=200) as pool:
                responses = list(pool.map(one, range(300)))
    finally:
        gw.stop()
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert (len(ok), len(limited)) == (100, 200)
    # Each admitted request saw its own place in the bucket: 99, 98, …, 0.
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in ok)
    assert remaining == list(range(100))
    assert all(r.headers["x-ratelimit-limit-requests"] == "100" for r in ok)
    r = limited[0]
    err = r.json()["error"]
    assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded"
    assert "global-rph" in err["message"]
    assert int(r.headers["retry-after"]) == 36  # one request's worth of 100/hour
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.headers["x-ratelimit-reset-requests"] == "1h0m0s"  # empty → full in an hour


def test_buckets_refill_with_time(mock, tmp_path):
    gw = gateway(mock, tmp_path, {"rules": [
        {"name": "two-per-second", "requests": {"limit": 2, "per": "second"}}]})
    try:
        time.sleep(1.1)  # the readiness probe does not count, but start full anyway
        assert [chat(gw).status_code for _ in range(3)] == [200, 200, 429]
        time.sleep(0.6)  # 1.2 requests' worth refilled
        assert [chat(gw).status_code for _ in range(2)] == [200, 429]
    finally:
        gw.stop()


def test_token_reservations_are_reconciled_with_real_usage(mock, tmp_path):
    gw = gateway(mock, tmp_path, {"default_max_tokens": 100, "rules": [
        {"name": "tpd", "tokens": {"limit": 1000, "per": "day", "count": "total"}}]})
    try:
        # Prompt estimate: 13 bytes / 4 → 4, + 4 for the message = 8; reserve 8 + 100.
        r = chat(gw)
        assert r.headers["x-ratelimit-remaining-tokens"] == "892"
        # It used 11 (3 + 8): the next one sees 1000 - 11 - 108.
        r = chat(gw)
        assert r.headers["x-ratelimit-remaining-tokens"] == "881"
        # Streams: passthrough with usage reported, and translated (Anthropic).
        with httpx.stream("POST", gw.url + CHAT, json={
                "model": "gpt", "messages": PROMPT, "stream": True,
                "stream_options": {"include_usage": True}}, timeout=30) as s:
            assert s.headers["x-ratelimit-remaining-tokens"] == "870"
            s.read()
        with httpx.stream("POST", gw.url + CHAT, json={
                "model": "sonnet", "messages": PROMPT, "stream": True}, timeout=30) as s:
            assert s.headers["x-ratelimit-remaining-tokens"] == "859"
            s.read()
        # 4 × 11 used in all: 956 left, of which the next reserves 108.
        r = chat(gw)
        assert r.headers["x-ratelimit-remaining-tokens"] == "848"
        # A failed upstream call is refunded in full: 5 × 11 used, 945 left,
        # of which the next reserves 108.
        assert chat(gw, headers={"x-mock-status": "500"}).status_code == 500
        assert chat(gw).headers["x-ratelimit-remaining-tokens"] == "837"
        # More than the whole limit at once can never pass: 400, not 429.
        r = chat(gw, max_tokens=5000)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "request_exceeds_rate_limit"
    finally:
        gw.stop()


def test_flood_of_distinct_client_keys_stays_in_bounded_slots(mock, tmp_path):
    gw = gateway(mock, tmp_path, {"rules": [
        {"name": "per-user", "by": ["header:x-user"], "slots": 4,
         "requests": {"limit": 1, "per": "hour"}}]})
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            codes = list(pool.map(
                lambda i: chat(gw, headers={"x-user": f"user-{i}"}).status_code, range(600)))
    finally:
        gw.stop()
    # 600 distinct values share 4 buckets of one request each.
    assert 1 <= codes.count(200) <= 4
    assert codes.count(429) == 600 - codes.count(200)


def test_consumer_quota(mock, tmp_path):
    consumers = [{"name": "team-a",
                  "api_keys": ["sha256:" + hashlib.sha256(b"sk-a").hexdigest()],
                  "quota": {"tokens_per_day": 300}}]
    gw = gateway(mock, tmp_path, {"default_max_tokens": 100}, consumers)
    auth = {"authorization": "Bearer sk-a"}
    try:
        # Each request reserves 108 but uses 11: reservations come back.
        assert [chat(gw, headers=auth).status_code for _ in range(5)] == [200] * 5
        # 55 used; a request reserving 8 + 250 no longer fits the 300.
        r = chat(gw, headers=auth, max_tokens=250)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "insufficient_quota"
        assert int(r.headers["retry-after"]) >= 1
        assert chat(gw, headers=auth, max_tokens=200).status_code == 200
    finally:
        gw.stop()


def gauge(gw):
    text = httpx.get(gw.admin + "/stats/prometheus", timeout=10).text
    m = re.search(r'^llm_gateway_adaptive_concurrency_limit\{[^}]*gen_ai_response_model="gpt-4o-mini"[^}]*\} (\d+)',
                  text, re.M)
    return int(m.group(1)) if m else None


def test_adaptive_limit_shrinks_on_overload_and_recovers(mock, tmp_path):
    gw = gateway(mock, tmp_path, adaptive={"min": 1, "max": 8, "initial": 2})
    try:
        # Two slow requests hold both slots; the rest are turned away.
        slow = {"x-mock-first-byte-ms": "800"}
        with ThreadPoolExecutor(max_workers=6) as pool:
            responses = list(pool.map(lambda _: chat(gw, headers=slow), range(6)))
        codes = [r.status_code for r in responses]
        assert codes.count(200) == 2 and codes.count(503) == 4
        refused = next(r for r in responses if r.status_code == 503)
        assert refused.json()["error"]["code"] == "target_overloaded"
        assert refused.headers["retry-after"] == "1"
        r = chat(gw, headers={"x-mock-first-byte-ms": "0"})
        assert r.status_code == 200
        before = gauge(gw)
        for _ in range(3):
            assert chat(gw, headers={"x-mock-status": "429"}).status_code == 429
        assert gauge(gw) == 1 < before
        for _ in range(3):
            assert chat(gw).status_code == 200
        assert gauge(gw) > 1
    finally:
        gw.stop()
