"""HTTPS on the listener (a self-signed certificate made here) and CORS for
browser apps, both done by Envoy's own filters in front of the gateway."""

import ssl
import subprocess

import httpx
import pytest

from harness import Gateway

CHAT = "/v1/chat/completions"
ORIGIN = "https://app.example.com"
BODY = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def tgw(mock, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    config = {
        "providers": [{"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1",
                       "api_key": "sk-upstream"}],
        "models": [{"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]}],
        "envoy": {"access_log": "none", "cors": {"allow_origins": [ORIGIN]}},
        "listener_tls": {"cert_file": str(cert), "key_file": str(key)},
    }
    gw = Gateway(config, tmp, scheme="https")
    gw.cert = cert
    yield gw
    gw.stop()


def test_https_with_the_configured_certificate(tgw):
    assert tgw.url.startswith("https://")
    with httpx.Client(verify=ssl.create_default_context(cafile=str(tgw.cert)), timeout=30) as c:
        r = c.post(tgw.url + CHAT, json=BODY)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"]
    # Plain HTTP on the TLS port gets nowhere.
    with pytest.raises(httpx.HTTPError):
        httpx.post(tgw.url.replace("https://", "http://") + CHAT, json=BODY, timeout=5)


def test_cors_preflight_and_answers(tgw):
    with httpx.Client(verify=ssl.create_default_context(cafile=str(tgw.cert)), timeout=30) as c:
        pre = c.options(tgw.url + CHAT, headers={
            "origin": ORIGIN, "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in pre.headers["access-control-allow-headers"]
        # The CORS filter looks the route up before the gateway sets its
        # routing header; the answer comes from the provider only because
        # Envoy chooses the route again after a Wasm filter's header change
        # (the filter makes no clear_route_cache call of its own).
        ok = c.post(tgw.url + CHAT, json=BODY, headers={"origin": ORIGIN})
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"][0]["message"]["content"]
        assert ok.headers["access-control-allow-origin"] == ORIGIN
        assert "x-ratelimit-remaining-requests" in ok.headers["access-control-expose-headers"]
        # The filter's own errors carry the headers too (browsers can read them).
        err = c.post(tgw.url + CHAT, json={"model": "nope", "messages": []},
                     headers={"origin": ORIGIN})
        assert err.status_code in (400, 404)
        assert err.headers["access-control-allow-origin"] == ORIGIN
        other = c.post(tgw.url + CHAT, json=BODY, headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
