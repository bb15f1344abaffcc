"""The fault suite: upstreams that misbehave, one test per row of the
README's fault table. Each row checks what the client gets (status, body,
SSE error event), what the metrics and the access log say, and that nothing
hangs (every request has a deadline well below any configured timeout)."""

import gzip
import json
import ssl
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import openai
import pytest
from openai import OpenAI

from harness import Gateway, Mock, scrape, value

CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "one two three"}]
# Nothing a fault row does may take longer than this (the slowest row waits
# for a 0.5 s first-byte timeout).
DEADLINE = 5.0


@pytest.fixture(scope="module")
def fault_mock():
    # Closes every keep-alive connection after one request, unannounced.
    m = Mock(api_key="sk-upstream", extra_args=["--max-requests-per-connection", "1"])
    yield m
    m.stop()


@pytest.fixture(scope="module")
def tls_upstream(tmp_path_factory):
    """An https server with a self-signed certificate no CA vouches for."""
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def fgw(mock, fault_mock, tls_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    access_log = tmp / "access.log"
    config = {
        "envoy": {"access_log": str(access_log), "connect_timeout_seconds": 2},
        "providers": [
            {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"},
            {"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"},
            {"name": "gem", "type": "gemini", "base_url": f"{mock.url}/v1beta",
             "api_key": "sk-upstream"},
            {"name": "slow", "type": "openai", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream", "timeouts": {"first_byte_ms": 500}},
            {"name": "closing", "type": "openai", "base_url": f"{fault_mock.url}/v1",
             "api_key": "sk-upstream"},
            {"name": "nodns", "type": "openai", "base_url": "http://llm-gateway-test.invalid/v1",
             "api_key": "sk-upstream"},
            {"name": "badtls", "type": "openai",
             "base_url": f"https://127.0.0.1:{tls_upstream}/v1", "api_key": "sk-upstream"},
        ],
        "models": [
            {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
            {"name": "claude", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]},
            {"name": "gemini", "targets": [{"provider": "gem", "model": "gemini-2.5-flash"}]},
            {"name": "slow", "targets": [{"provider": "slow", "model": "gpt-4o-mini"}]},
            {"name": "closing", "targets": [{"provider": "closing", "model": "gpt-4o-mini"}]},
            {"name": "nodns", "targets": [{"provider": "nodns", "model": "gpt-4o-mini"}]},
            {"name": "badtls", "targets": [{"provider": "badtls", "model": "gpt-4o-mini"}]},
        ],
        "health": {"consecutive_failures": 3, "base_ejection_ms": 200},
    }
    gw = Gateway(config, tmp)
    gw.access_log = access_log
    yield gw
    gw.stop()


_ids = iter(range(1_000_000))


def rid():
    return f"fault-{next(_ids)}"


def log_line(gw, request_id):
    deadline = time.time() + 15  # Envoy flushes its access log file every second or so
    while time.time() < deadline:
        text = gw.access_log.read_text() if gw.access_log.exists() else ""
        for line in text.splitlines():
            if line.strip() and json.loads(line).get("request_id") == request_id:
                return json.loads(line)
        time.sleep(0.1)
    raise AssertionError(f"no access-log line for {request_id}")


def post(gw, model, headers=None, stream=False, **body):
    request_id = rid()
    start = time.time()
    r = gw.client.post(gw.url + CHAT, json={"model": model, "messages": MSGS, "stream": stream,
                                            **body},
                       headers={"x-request-id": request_id, **(headers or {})}, timeout=DEADLINE)
    assert time.time() - start < DEADLINE
    return r, request_id


def error_of(r, status, type_=None, code=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    if type_:
        assert err["type"] == type_
    if code:
        assert err["code"] == code
    return err


def sse_events(text):
    """(data payloads, error payload or None) of an OpenAI-shaped stream."""
    datas, error = [], None
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: "):]
            if data == "[DONE]":
                datas.append(data)
                continue
            v = json.loads(data)
            if "error" in v:
                error = v["error"]
            else:
                datas.append(v)
    return datas, error


def stream_raw(gw, model, headers):
    """The whole stream as text; the second item is the transport error
    that ended it, if any."""
    request_id = rid()
    start = time.time()
    body = b""
    failure = None
    try:
        with gw.client.stream("POST", gw.url + CHAT, json={
                "model": model, "messages": MSGS, "stream": True},
                headers={"x-request-id": request_id, **headers}, timeout=DEADLINE) as r:
            status = r.status_code
            for part in r.iter_raw():
                body += part
    except httpx.HTTPError as e:
        failure = e
    assert time.time() - start < DEADLINE, "the stream hung"
    return status, body.decode(errors="replace"), failure, request_id


def requests_total(gw, model, provider, status_class, error_type):
    return value(scrape(gw), "llm_gateway_requests_total",
                 llm_gateway_api="openai.chat_completions", gen_ai_operation_name="chat",
                 gen_ai_provider_name=provider, gen_ai_request_model=model,
                 http_response_status_class=status_class, error_type=error_type) or 0


def stream_errors(gw, model, provider):
    return value(scrape(gw), "llm_gateway_stream_errors_total", gen_ai_operation_name="chat",
                 gen_ai_provider_name=provider, gen_ai_request_model=model) or 0


# --- connection faults --------------------------------------------------------

def test_reset_before_headers(fgw):
    before = requests_total(fgw, "gpt", "openai", "5xx", "api_error")
    r, request_id = post(fgw, "gpt", {"x-mock-reset-before-headers": "1"})
    err = error_of(r, 503, "api_error")
    assert "reset" in err["message"] or "connection termination" in err["message"]
    line = log_line(fgw, request_id)
    assert line["status"] == 503 and "UC" in line["flags"]
    assert requests_total(fgw, "gpt", "openai", "5xx", "api_error") == before + 1


def test_reset_mid_body(fgw):
    # The provider's headers (200) went by, then the connection died. The
    # filter still held the headers (it checks the whole body first), so
    # Envoy can still answer: a 502 instead of a cut-off body.
    before = requests_total(fgw, "gpt", "openai", "5xx", "api_error")
    r, request_id = post(fgw, "gpt", {"x-mock-reset-mid-body": "10"})
    err = error_of(r, 502, "api_error", "bad_gateway")
    assert "reset" in err["message"]
    line = log_line(fgw, request_id)
    assert line["status"] == 502 and "UPE" in line["flags"], line
    assert requests_total(fgw, "gpt", "openai", "5xx", "api_error") == before + 1


@pytest.mark.parametrize("model,provider", [("gpt", "openai"), ("claude", "anthropic")])
def test_reset_mid_stream(fgw, model, provider):
    before = stream_errors(fgw, model, provider)
    status, text, failure, request_id = stream_raw(fgw, model, {"x-mock-reset-after": "3"})
    assert status == 200
    assert failure is not None, "a reset stream must not look complete"
    assert "[DONE]" not in text
    log_line(fgw, request_id)
    assert stream_errors(fgw, model, provider) == before + 1


def test_upstream_closing_keep_alive_connections(fgw, fault_mock):
    # Every request finds the previous connection closed by the provider.
    codes = [post(fgw, "closing")[0].status_code for _ in range(40)]
    assert codes == [200] * 40


def test_dns_failure(fgw):
    r, request_id = post(fgw, "nodns")
    err = error_of(r, 503, "api_error")
    assert "no healthy upstream" in err["message"]
    assert log_line(fgw, request_id)["flags"] == "UH"


def test_tls_failure_self_signed_upstream(fgw):
    r, request_id = post(fgw, "badtls")
    err = error_of(r, 503, "api_error")
    assert "TLS" in err["message"] or "CERTIFICATE_VERIFY_FAILED" in err["message"], err
    assert "UF" in log_line(fgw, request_id)["flags"]


# --- status storms and timeouts ----------------------------------------------

def test_5xx_storm(fgw):
    ejections = "llm_gateway_target_ejections_total"
    before = sum(v for (n, _), v in scrape(fgw).items() if n == ejections)
    for _ in range(10):
        # The provider's own error type (OpenAI's is `server_error`).
        err = error_of(post(fgw, "gpt", {"x-mock-status": "500"})[0], 500)
        assert err["message"]
    after = sum(v for (n, _), v in scrape(fgw).items() if n == ejections)
    assert after > before, "a storm of 5xx ejects the target"
    time.sleep(0.5)  # the ejection ends; the target recovers
    assert post(fgw, "gpt")[0].status_code == 200


def test_429_storm_with_retry_after(fgw):
    for _ in range(5):
        r, request_id = post(fgw, "gpt", {"x-mock-status": "429", "x-mock-retry-after": "7"})
        err = error_of(r, 429)
        assert r.headers["retry-after"] == "7"
        assert err["code"] == "rate_limit_exceeded"
    assert log_line(fgw, request_id)["status"] == 429
    time.sleep(0.3)


def test_slow_first_byte_is_a_504(fgw):
    start = time.time()
    r, request_id = post(fgw, "slow", {"x-mock-first-byte-ms": "3000"})
    assert time.time() - start < 2
    error_of(r, 504, "timeout_error")
    assert "UT" in log_line(fgw, request_id)["flags"]


def test_stalled_stream_is_cut_after_the_idle_timeout(fgw):
    start = time.time()
    status, text, failure, request_id = stream_raw(fgw, "slow", {"x-mock-stall-after": "2"})
    assert time.time() - start < 2
    assert status == 200 and failure is not None
    datas, _ = sse_events(text.rsplit("\n\n", 1)[0] + "\n\n")
    assert len(datas) == 2
    assert "UT" in log_line(fgw, request_id)["flags"]


# --- bodies that are not what the API sends ----------------------------------

@pytest.mark.parametrize("model,provider", [("gpt", "openai"), ("claude", "anthropic"),
                                            ("gemini", "gcp.gemini")])
@pytest.mark.parametrize("kind,needle", [("badjson", "not valid JSON"),
                                         ("badutf8", "UTF-8")])
def test_malformed_sse(fgw, model, provider, kind, needle):
    before = stream_errors(fgw, model, provider)
    status, text, failure, _ = stream_raw(fgw, model, {"x-mock-sse-inject": f"{kind}@3"})
    assert status == 200 and failure is None
    datas, error = sse_events(text)
    assert error is not None and error["type"] == "api_error", text
    assert needle in error["message"], error
    assert "[DONE]" not in datas
    assert stream_errors(fgw, model, provider) == before + 1
    # The SDK raises the error event.
    client = OpenAI(base_url=fgw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(
                model=model, messages=MSGS, stream=True,
                extra_headers={"x-mock-sse-inject": f"{kind}@3"}):
            pass


def test_oversize_event(fgw):
    # Passthrough: a 2 MB event goes on unchecked, the stream completes.
    status, text, failure, _ = stream_raw(fgw, "gpt", {"x-mock-oversize-event": "2000000"})
    assert status == 200 and failure is None
    assert text.endswith("data: [DONE]\n\n")
    # Translated: past the 1 MiB event limit, an error event ends the stream.
    status, text, failure, _ = stream_raw(fgw, "claude", {"x-mock-oversize-event": "2000000"})
    assert status == 200 and failure is None
    _, error = sse_events(text)
    assert error and "buffer limit" in error["message"], text[-300:]


@pytest.mark.parametrize("model", ["gpt", "claude", "gemini"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compressed_bodies(fgw, model, encoding):
    # A provider that compresses although asked for identity.
    r, request_id = post(fgw, model, {"x-mock-encoding": encoding})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"].endswith("one two three")
    assert log_line(fgw, request_id)["tokens_in"] == "3"
    status, text, failure, _ = stream_raw(fgw, model, {"x-mock-encoding": encoding,
                                                       "x-mock-split-bytes": "7"})
    datas, error = sse_events(text)
    assert status == 200 and failure is None and error is None, text[-300:]
    assert datas[-1] == "[DONE]"
    err = error_of(post(fgw, model, {"x-mock-encoding": encoding, "x-mock-status": "401"})[0], 401)
    assert err["message"] and "sk-upstream" not in err["message"]


def test_sdk_defaults_get_plain_answers_and_usage(fgw, mock):
    # The openai SDK sends accept-encoding: gzip, deflate. A real provider
    # would compress; the gateway asks for identity, so errors keep their
    # type and usage is counted.
    client = OpenAI(base_url=fgw.url + "/v1", api_key="x", max_retries=0)
    before = value(scrape(fgw), "llm_gateway_tokens_total", gen_ai_operation_name="chat",
                   gen_ai_provider_name="openai", gen_ai_request_model="gpt",
                   gen_ai_response_model="gpt-4o-mini", gen_ai_token_type="input") or 0
    r = client.chat.completions.create(model="gpt", messages=MSGS,
                                       extra_headers={"x-mock-encoding": "auto"})
    assert r.usage.prompt_tokens == 3
    assert "accept-encoding" not in mock.last()["headers"]
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt", messages=MSGS, extra_headers={
            "x-mock-encoding": "auto", "x-mock-status": "401"})
    after = value(scrape(fgw), "llm_gateway_tokens_total", gen_ai_operation_name="chat",
                  gen_ai_provider_name="openai", gen_ai_request_model="gpt",
                  gen_ai_response_model="gpt-4o-mini", gen_ai_token_type="input")
    assert after == before + 3
    # Clients that accept gzip get it from Envoy's compressor.
    big = fgw.client.post(fgw.url + CHAT, json={"model": "gpt", "messages": MSGS},
                          headers={"accept-encoding": "gzip", "x-mock-content": "x" * 4000})
    assert big.headers.get("content-encoding") == "gzip"
    assert big.json()["choices"][0]["message"]["content"] == "x" * 4000


def test_wrong_content_type(fgw):
    r, request_id = post(fgw, "gpt", {"x-mock-content-type": "application/json"}, stream=True)
    err = error_of(r, 502, "api_error", "upstream_invalid_response")
    assert "instead of an event stream" in err["message"]
    assert log_line(fgw, request_id)["status"] == 502


@pytest.mark.parametrize("model", ["gpt", "claude", "gemini"])
def test_truncated_json(fgw, model):
    r, _ = post(fgw, model, {"x-mock-truncate-body": "40"})
    err = error_of(r, 502, "api_error")
    assert err["message"]


def test_client_gzip_request_bodies_are_inflated(fgw):
    body = gzip.compress(json.dumps({"model": "gpt", "messages": MSGS}).encode())
    r = fgw.client.post(fgw.url + CHAT, content=body, headers={
        "content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    deflated = zlib.compress(json.dumps({"model": "gpt", "messages": MSGS}).encode())
    r = fgw.client.post(fgw.url + CHAT, content=deflated, headers={
        "content-type": "application/json", "content-encoding": "deflate"})
    error_of(r, 400)
