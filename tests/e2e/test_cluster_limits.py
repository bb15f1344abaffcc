"""`scope: cluster` rate limits: Envoy's rate-limit filter after ours, the
project's Rate Limit Service (limitador over Redis), and two Envoy replicas
with two workers each, all real processes on loopback."""

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from cluster import Cluster

CHAT = "/v1/chat/completions"
PROMPT = [{"role": "user", "content": "one two three"}]  # mock usage: 3 in, 8 out


def config(mock, rules):
    return {
        "providers": [
            {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"},
            {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"}],
        "models": [{"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
                   {"name": "sonnet", "targets": [{"provider": "claude",
                                                   "model": "claude-sonnet-4-5"}]}],
        "rate_limits": {"rules": rules},
    }


def spread(cluster, n, body=None, workers=200, path=CHAT):
    """n concurrent requests, alternating between the replicas."""
    body = body or {"model": "gpt", "messages": PROMPT}
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=workers + 20)) as client:
        def one(i):
            gw = cluster.replicas[i % len(cluster.replicas)]
            return client.post(gw.url + path, json=body)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, range(n)))


def test_cluster_rule_admits_exactly_n_of_200_concurrent_clients_over_two_replicas(mock, tmp_path):
    c = Cluster(config(mock, [
        {"name": "team-rpm", "scope": "cluster", "requests": {"limit": 60, "per": "minute"}}]),
        tmp_path)
    try:
        responses = spread(c, 200)
    finally:
        log = c.stop()
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert (len(ok), len(refused)) == (60, 140), log
    # What the admitted requests were told was left: the first 59, the last
    # 0; in between a count reads low, never high, while units of requests
    # admitted just before are both held and committed.
    remaining = [int(r.headers["x-ratelimit-remaining-requests"]) for r in ok]
    assert min(remaining) == 0 and max(remaining) == 59
    assert {r.headers["x-ratelimit-limit-requests"] for r in ok} == {"60"}
    for r in refused[:5]:
        error = r.json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert "Cluster rate limit 'team-rpm' reached: 60 requests per minute" in error["message"]
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
        # The service's own headers stay inside the gateway.
        assert not any(h.startswith("x-llm-gateway-cluster") for h in r.headers)
    # Both replicas admitted some: one limit for the cluster, not per replica.
    assert "ok 60 over_limit 140" in log


def test_cluster_token_rule_charges_real_usage_and_overshoot_stays_bounded(mock, tmp_path):
    limit = 300
    c = Cluster(config(mock, [
        {"name": "team-tpm", "scope": "cluster", "by": ["model"],
         "tokens": {"limit": limit, "per": "hour"}}]), tmp_path)
    body = {"model": "gpt", "messages": PROMPT, "max_tokens": 8}
    try:
        # Streams and non-streams, 16 at a time over both replicas.
        plain = spread(c, 40, body, workers=16)
        streamed = spread(c, 40, {**body, "stream": True,
                                  "stream_options": {"include_usage": True}}, workers=16)
        time.sleep(0.5)  # the last settlements are sent when streams end
        counters = c.redis.counters("team-tpm")
    finally:
        log = c.stop()
    admitted = [r for r in plain + streamed if r.status_code == 200]
    assert all(r.status_code in (200, 429) for r in plain + streamed)
    for r in streamed:
        if r.status_code == 200:
            assert r.text.rstrip().endswith("data: [DONE]")
    # Each admitted request was charged what it used (11 tokens), not its
    # reservation; the counter never passed the limit: admission reserved
    # each request's estimate, and no request used more than it reserved.
    assert counters == [11 * len(admitted)], (counters, log)
    assert 11 * len(admitted) <= limit
    # Reservations (~19 tokens each) were released as requests settled: far
    # more requests were admitted than limit / reservation.
    assert len(admitted) >= limit // 19
    refusal = next(r for r in plain + streamed if r.status_code == 429).json()["error"]
    assert refusal["code"] == "tokens_rate_limit_exceeded"


def test_instance_rule_beside_a_cluster_rule(mock, tmp_path):
    c = Cluster(config(mock, [
        {"name": "per-replica", "requests": {"limit": 3, "per": "minute"}},
        {"name": "shared", "scope": "cluster", "requests": {"limit": 100, "per": "minute"}}]),
        tmp_path)
    try:
        results = []
        for gw in c.replicas:
            results.append([chat_status(gw) for _ in range(5)])
        first = chat(c.replicas[0])
        counters = c.redis.counters("shared")
    finally:
        c.stop()
    # Each replica's own rule admits 3; what it refused never reached the
    # service, so the cluster counter holds the 6 admitted requests.
    assert results == [[200, 200, 200, 429, 429]] * 2
    assert "per-replica" in first.json()["error"]["message"]
    assert counters == [6]


def test_a_cluster_refusal_gives_back_the_instance_units(mock, tmp_path):
    c = Cluster(config(mock, [
        {"name": "per-replica", "requests": {"limit": 4, "per": "minute"}},
        {"name": "shared", "scope": "cluster", "requests": {"limit": 2, "per": "minute"}}]),
        tmp_path, replicas=1)
    try:
        gw = c.replicas[0]
        responses = [chat(gw) for _ in range(8)]
    finally:
        c.stop()
    assert [r.status_code for r in responses] == [200, 200] + [429] * 6
    # Had the refused requests kept their instance unit, the instance rule
    # (4 per minute) would refuse from the 5th request on.
    for r in responses[2:]:
        assert "'shared'" in r.json()["error"]["message"], r.text
    # The tightest limit of either scope is reported.
    assert responses[1].headers["x-ratelimit-limit-requests"] == "2"
    assert responses[1].headers["x-ratelimit-remaining-requests"] == "0"


def test_an_anthropic_client_refused_by_a_cluster_rule_gets_anthropic_error_json(mock, tmp_path):
    c = Cluster(config(mock, [
        {"name": "shared", "scope": "cluster", "requests": {"limit": 1, "per": "minute"}}]),
        tmp_path, replicas=1)
    body = {"model": "sonnet", "max_tokens": 8, "messages": PROMPT}
    try:
        gw = c.replicas[0]
        first = gw.post("/v1/messages", body, headers={"anthropic-version": "2023-06-01"})
        second = gw.post("/v1/messages", body, headers={"anthropic-version": "2023-06-01"})
    finally:
        c.stop()
    assert first.status_code == 200, first.text
    assert second.status_code == 429
    assert second.json()["type"] == "error"
    assert second.json()["error"]["type"] == "rate_limit_error"
    assert "'shared'" in second.json()["error"]["message"]


def chat(gw, **body):
    return gw.post(CHAT, {"model": "gpt", "messages": PROMPT, **body})


def chat_status(gw):
    return chat(gw).status_code


@pytest.mark.parametrize("mode", ["deny", "allow"])
def test_redis_down_gives_the_failure_mode_and_recovers_without_restart(mock, tmp_path, mode):
    c = Cluster(config(mock, [
        {"name": "shared", "scope": "cluster", "requests": {"limit": 1000, "per": "minute"}}]),
        tmp_path, failure_mode=mode, timeout_ms=300)
    try:
        gw0, gw1 = c.replicas
        assert chat_status(gw0) == 200
        c.redis.stop()
        t0 = time.monotonic()
        down = [chat(gw) for gw in (gw0, gw1, gw0, gw1)]
        elapsed = time.monotonic() - t0
        anthropic = gw1.post("/v1/messages", {"model": "sonnet", "max_tokens": 8, "messages": PROMPT},
                             headers={"anthropic-version": "2023-06-01"})
        errors = sum(c.stat(gw, "ratelimit.llmgw_cluster.error") for gw in c.replicas)
        allowed = sum(c.stat(gw, "ratelimit.llmgw_cluster.failure_mode_allowed")
                      for gw in c.replicas)
        c.redis.start()  # same port: the service reconnects by itself
        deadline = time.time() + 15
        while chat_status(gw1) != 200 and time.time() < deadline:
            time.sleep(0.2)
        back = [chat_status(gw) for gw in (gw0, gw1)]
    finally:
        c.stop()
    seen = (mode, [r.status_code for r in down], elapsed, back, errors, allowed,
            [r.text[:200] for r in down], c.rls_log[-2000:])
    # Within timeout_ms each (and the machine's noise), never a hang.
    assert elapsed < 4 * 0.3 + 4, seen
    assert back == [200, 200], seen
    assert errors >= 4, seen
    if mode == "deny":
        assert [r.status_code for r in down] == [503] * 4, seen
        e = down[0].json()["error"]
        assert e["code"] == "rate_limit_unavailable"
        assert "failure_mode: deny" in e["message"]
        assert anthropic.status_code == 503
        assert anthropic.json()["type"] == "error"
        assert anthropic.json()["error"]["type"] == "api_error"
    else:
        assert [r.status_code for r in down] == [200] * 4
        assert anthropic.status_code == 200
        assert allowed >= 5


def test_a_redis_down_for_seconds_under_traffic_is_used_again_within_a_second(mock, tmp_path):
    # With redis-rs' default reconnects (six tries, backoff to 6.4 s, no
    # response timeout) three seconds down under traffic left every call
    # hanging past Envoy's timeout: 503s for 30 s and more after Redis was back.
    c = Cluster(config(mock, [
        {"name": "shared", "scope": "cluster", "requests": {"limit": 1000, "per": "minute"}}]),
        tmp_path, failure_mode="deny", timeout_ms=300, replicas=1)
    try:
        gw = c.replicas[0]
        assert chat_status(gw) == 200
        c.redis.stop()
        down_until = time.monotonic() + 3
        while time.monotonic() < down_until:
            assert chat_status(gw) == 503
            time.sleep(0.05)
        c.redis.start()
        t0 = time.monotonic()
        while chat_status(gw) != 200 and time.monotonic() < t0 + 10:
            time.sleep(0.05)
        back_after = time.monotonic() - t0
        after = [chat_status(gw) for _ in range(5)]
    finally:
        c.stop()
    assert back_after < 2.5, back_after
    assert after == [200] * 5


def test_a_hung_redis_answers_within_timeout_ms(mock, tmp_path):
    c = Cluster(config(mock, [
        {"name": "shared", "scope": "cluster", "requests": {"limit": 1000, "per": "minute"}}]),
        tmp_path, timeout_ms=250, replicas=1)
    try:
        gw = c.replicas[0]
        assert chat_status(gw) == 200
        os.kill(c.redis.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            r = chat(gw)
            elapsed = time.monotonic() - t0
        finally:
            os.kill(c.redis.proc.pid, signal.SIGCONT)
        time.sleep(1.2)  # the service's own store timeout passes
        after = chat_status(gw)
    finally:
        c.stop()
    assert r.status_code == 503 and r.json()["error"]["code"] == "rate_limit_unavailable"
    assert elapsed < 1.0, elapsed
    assert after == 200


def test_a_failover_pool_settles_the_usage_of_the_target_that_answered(mock, tmp_path):
    from harness import free_port
    cfg = config(mock, [{"name": "pool-tpm", "scope": "cluster", "by": ["model"],
                         "tokens": {"limit": 100000, "per": "hour"}}])
    cfg["providers"].append({"name": "dead", "type": "openai",
                             "base_url": f"http://127.0.0.1:{free_port()}/v1",
                             "api_key": "sk-upstream"})
    cfg["models"].append({"name": "dead-then-claude", "targets": [
        {"provider": "dead", "model": "gpt-4o-mini"},
        {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]})
    cfg["health"] = {"consecutive_failures": 100}
    c = Cluster(cfg, tmp_path, replicas=1)
    try:
        gw = c.replicas[0]
        plain = gw.post(CHAT, {"model": "dead-then-claude", "messages": PROMPT, "max_tokens": 8})
        streamed = gw.post(CHAT, {"model": "dead-then-claude", "messages": PROMPT, "max_tokens": 8,
                                  "stream": True, "stream_options": {"include_usage": True}})
        time.sleep(0.5)
        counters = c.redis.counters("pool-tpm")
    finally:
        c.stop()
    assert plain.status_code == 200 and streamed.status_code == 200
    assert plain.headers["x-llm-gateway-target"] == "claude/claude-sonnet-4-5"
    used = plain.json()["usage"]["total_tokens"]
    # Both requests, answered by the pool's second target, charged what
    # they used (the attempt's filter saw the usage, the downstream one
    # told Envoy's rate-limit filter).
    assert counters == [2 * used], counters


def test_a_consumer_quota_in_cluster_mode_is_one_budget_for_every_replica(mock, tmp_path):
    import hashlib
    cfg = config(mock, [])
    cfg["consumers"] = [{"name": "team-a",
                         "api_keys": ["sha256:" + hashlib.sha256(b"sk-team-a").hexdigest()],
                         "quota": {"tokens_per_day": 100}}]
    cfg["rate_limits"] = {"rules": [], "cluster": {"quotas": True}}
    c = Cluster(cfg, tmp_path)
    key = {"authorization": "Bearer sk-team-a"}
    body = {"model": "gpt", "messages": PROMPT, "max_tokens": 8}
    try:
        statuses = []
        for i in range(16):
            gw = c.replicas[i % 2]
            statuses.append(gw.post(CHAT, body, headers=key))
        counters = c.redis.counters("quota")
    finally:
        c.stop()
    ok = [r for r in statuses if r.status_code == 200]
    refused = [r for r in statuses if r.status_code == 429]
    # 11 tokens a request: 100 per day admits 9 however they are spread
    # (the 10th would need its reservation of ~19 more than is left).
    assert len(ok) + len(refused) == 16
    assert 11 * len(ok) <= 100 and len(ok) >= 8, [r.status_code for r in statuses]
    assert counters == [11 * len(ok)], counters
    e = refused[0].json()["error"]
    assert e["code"] == "insufficient_quota"
    assert "Consumer 'team-a' has used its token quota for this day (100 tokens) across all gateway replicas" in e["message"]
    assert int(refused[0].headers["retry-after"]) <= 86400


def test_the_service_applies_a_changed_gateway_file_without_restart(mock, tmp_path):
    c = Cluster(config(mock, [
        {"name": "shared", "scope": "cluster", "requests": {"limit": 2, "per": "minute"}}]),
        tmp_path, replicas=1)
    try:
        gw = c.replicas[0]
        before = [chat_status(gw) for _ in range(3)]
        # The limit is raised and a rule the Envoys do not send yet is added.
        cfg = json.loads(c.config_path.read_text())
        cfg["rate_limits"]["rules"] = [
            {"name": "shared", "scope": "cluster", "requests": {"limit": 4, "per": "minute"}},
            {"name": "later", "scope": "cluster", "requests": {"limit": 1, "per": "minute"}}]
        c.config_path.write_text(json.dumps(cfg))
        deadline = time.time() + 10
        while "applied" not in c.rls.log_path.read_text() and time.time() < deadline:
            time.sleep(0.1)
        after = [chat_status(gw) for _ in range(3)]
        # A file that does not load keeps the limits in force.
        c.config_path.write_text("rate_limits: {rules: [{name: x, scope: galaxy}]}")
        deadline = time.time() + 10
        while "kept the previous limits" not in c.rls.log_path.read_text() and time.time() < deadline:
            time.sleep(0.1)
        last = chat_status(gw)
    finally:
        log = c.stop()
    assert before == [200, 200, 429], log
    # The counter of the rule that stayed was kept (2 used of the new 4).
    assert after == [200, 200, 429], log
    assert last == 429, log
    assert "applied" in log and "kept the previous limits" in log


def test_descriptors_of_a_rule_the_service_does_not_have_are_let_through(mock, tmp_path):
    c = Cluster(config(mock, [
        {"name": "shared", "scope": "cluster", "requests": {"limit": 100, "per": "minute"}}]),
        tmp_path, replicas=1)
    try:
        # The service restarts with a file that lacks the Envoys' rule (its
        # config is rolled out after theirs): requests are not refused.
        c.rls.stop()
        cfg = json.loads(c.config_path.read_text())
        cfg["rate_limits"]["rules"][0]["name"] = "other"
        c.config_path.write_text(json.dumps(cfg))
        from cluster import RateLimitService
        c.rls = RateLimitService(c.config_path, c.redis, tmp_path / "rls2.log", port=c.rls_port)
        statuses = [chat_status(c.replicas[0]) for _ in range(3)]
    finally:
        log = c.stop()
    assert statuses == [200, 200, 200], log
    assert "unknown 3" in log
