"""Encrypted provider keys (`enc:v1:`, opened by the filter with the master
key from Envoy's environment) and signed requests (HMAC with a timestamp
and a nonce, each nonce admitted once), against a real Envoy."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import threading
import time

import httpx
import pytest

from harness import RENDER, Gateway, Mock

CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
UPSTREAM_KEY = "sk-upstream-secret-0042"
CLIENT_KEY = "sk-team-signer"
SIGNING_SECRET = "signing-secret-of-the-team-7f3a"


def new_master():
    return base64.b64encode(os.urandom(32)).decode()


def encrypt(master, plain, provider=None, consumer=None):
    who = ["--provider", provider] if provider else ["--consumer", consumer]
    out = subprocess.run([str(RENDER), "keys", "encrypt", *who], input=plain, text=True,
                         capture_output=True, env={**os.environ, "LLMGW_MASTER_KEY": master},
                         check=True)
    return out.stdout.strip()


def sign(secret, method, path, body: bytes, ts=None, nonce=None):
    """The client side, as the README shows it."""
    ts = str(int(time.time()) if ts is None else ts)
    nonce = nonce or secrets.token_urlsafe(24)
    message = "\n".join([method, path, ts, nonce, hashlib.sha256(body).hexdigest()])
    sig = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {"x-llmgw-timestamp": ts, "x-llmgw-nonce": nonce, "x-llmgw-signature": sig}


@pytest.fixture(scope="module")
def keyed_mock():
    m = Mock(api_key=UPSTREAM_KEY)
    yield m
    m.stop()


def config(mock, api_key):
    return {
        "providers": [
            {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1", "api_key": api_key},
        ],
        "models": [{"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]}],
        "consumers": [
            {"name": "plain", "api_keys": ["sha256:" + hashlib.sha256(b"sk-plain").hexdigest()]},
            {"name": "signer", "api_keys": ["sha256:" + hashlib.sha256(CLIENT_KEY.encode()).hexdigest()],
             "signing_secret": "env:LLMGW_TEST_SIGNING_SECRET"},
        ],
        "envoy": {"access_log": "none"},
    }


@pytest.fixture(scope="module")
def sgw(keyed_mock, tmp_path_factory):
    master = new_master()
    sealed = encrypt(master, UPSTREAM_KEY, provider="oai")
    tmp = tmp_path_factory.mktemp("secrets")
    cfg = config(keyed_mock, sealed)
    cfg["envoy"]["access_log"] = str(tmp / "access.log")
    gw = Gateway(cfg, tmp, concurrency=4,
                 env={"LLMGW_MASTER_KEY": master, "LLMGW_TEST_SIGNING_SECRET": SIGNING_SECRET})
    gw.sealed = sealed
    gw.access_log = tmp / "access.log"
    yield gw
    gw.stop()


def signed_post(gw, body: dict, path=CHAT, key=CLIENT_KEY, secret=SIGNING_SECRET, **kw):
    raw = json.dumps(body).encode()
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json",
               **sign(secret, "POST", path, raw, **kw)}
    return gw.client.post(gw.url + path, content=raw, headers=headers), headers


def test_encrypted_key_reaches_the_provider_as_plaintext(sgw, keyed_mock):
    assert sgw.sealed.startswith("enc:v1:") and UPSTREAM_KEY not in sgw.sealed
    r = sgw.post(CHAT, {"model": "gpt", "messages": MSGS},
                 headers={"authorization": "Bearer sk-plain"})
    # The mock accepts exactly UPSTREAM_KEY.
    assert r.status_code == 200, r.text
    assert keyed_mock.last()["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_the_key_shows_nowhere(sgw, keyed_mock):
    # An upstream error that echoes the key in every field, and a success.
    r = sgw.post(CHAT, {"model": "gpt", "messages": MSGS},
                 headers={"authorization": "Bearer sk-plain", "x-mock-status": "401",
                          "x-mock-echo-key": "1"})
    assert r.status_code == 401
    assert UPSTREAM_KEY not in r.text
    sgw.post(CHAT, {"model": "gpt", "messages": MSGS}, headers={"authorization": "Bearer sk-plain"})
    dump = httpx.get(f"{sgw.admin}/config_dump", timeout=10).text
    assert sgw.sealed in dump  # the ciphertext is what Envoy holds
    stats = httpx.get(f"{sgw.admin}/stats", timeout=10).text
    time.sleep(0.5)
    for where, text in [("config_dump", dump), ("stats", stats), ("envoy log", sgw.logs()),
                        ("access log", sgw.access_log.read_text()),
                        ("signing secret in config_dump", dump)]:
        assert UPSTREAM_KEY not in text, where
        assert SIGNING_SECRET not in text, where


def test_a_tampered_key_fails_configuration_naming_the_field(keyed_mock, tmp_path):
    master = new_master()
    sealed = encrypt(master, UPSTREAM_KEY, provider="oai")
    raw = bytearray(base64.b64decode(sealed.removeprefix("enc:v1:")))
    raw[-1] ^= 1
    tampered = "enc:v1:" + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(RuntimeError) as e:
        Gateway(config(keyed_mock, tampered), tmp_path, env={"LLMGW_MASTER_KEY": master})
    text = str(e.value)
    assert "providers[0].api_key: cannot be decrypted with the configured master key" in text
    assert UPSTREAM_KEY not in text
    # Sealed for another provider name: does not open as this one's.
    other = encrypt(master, UPSTREAM_KEY, provider="someone-else")
    with pytest.raises(RuntimeError) as e:
        Gateway(config(keyed_mock, other), tmp_path / "b", env={"LLMGW_MASTER_KEY": master})
    assert "providers[0].api_key: cannot be decrypted" in str(e.value)


def test_signed_requests_pass_once(sgw):
    body = {"model": "gpt", "messages": MSGS}
    r, headers = signed_post(sgw, body)
    assert r.status_code == 200, r.text
    again = sgw.client.post(sgw.url + CHAT, content=json.dumps(body).encode(), headers=headers)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "request_replayed"


@pytest.mark.parametrize("how, code", [
    ("skewed", "timestamp_out_of_window"),
    ("wrong secret", "invalid_signature"),
    ("unsigned", "invalid_signature"),
    ("bad nonce", "invalid_signature"),
])
def test_bad_signatures_are_refused(sgw, how, code):
    body = {"model": "gpt", "messages": MSGS}
    if how == "skewed":
        r, _ = signed_post(sgw, body, ts=int(time.time()) - 400)
    elif how == "wrong secret":
        r, _ = signed_post(sgw, body, secret="not-the-secret")
    elif how == "bad nonce":
        r, _ = signed_post(sgw, body, nonce="short")
    else:
        r = sgw.post(CHAT, body, headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == code


def test_anthropic_clients_get_anthropic_errors(sgw):
    r = sgw.post("/v1/messages", {"model": "gpt", "max_tokens": 8, "messages": MSGS},
                 headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"})
    assert r.status_code == 401
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "authentication_error"


def test_one_signed_request_sent_by_50_clients_at_once_is_admitted_once(sgw):
    body = json.dumps({"model": "gpt", "messages": MSGS}).encode()
    headers = {"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json",
               **sign(SIGNING_SECRET, "POST", CHAT, body)}
    statuses = []
    start = threading.Barrier(50)

    def send():
        with httpx.Client(timeout=30) as c:  # its own connection
            start.wait()
            statuses.append(c.post(sgw.url + CHAT, content=body, headers=headers).status_code)

    threads = [threading.Thread(target=send) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [401] * 49, statuses
