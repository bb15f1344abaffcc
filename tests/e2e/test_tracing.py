"""OpenTelemetry spans with GenAI attributes, exported by a real Envoy over
OTLP/HTTP to a collector stub that keeps the raw protobuf bodies."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Gateway


class Collector(BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                body += self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    break
        else:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Collector.bodies.append((self.path, self.headers.get("content-type"), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_spans_carry_genai_attributes(mock, collector, tmp_path):
    port = collector.server_address[1]
    config = {
        "envoy": {"access_log": "none",
                  "tracing": {"collector": f"127.0.0.1:{port}", "protocol": "http",
                              "service_name": "llmgw-e2e"}},
        "providers": [{"name": "claude", "type": "anthropic", "base_url": f"{mock.url}/v1",
                       "api_key": "sk-upstream"}],
        "models": [{"name": "sonnet", "targets": [{"provider": "claude",
                                                  "model": "claude-sonnet-4-5"}]}],
    }
    gw = Gateway(config, tmp_path)
    try:
        r = gw.post("/v1/chat/completions",
                    {"model": "sonnet", "messages": [{"role": "user", "content": "one two three"}]})
        assert r.status_code == 200
        deadline = time.time() + 20
        spans = b""
        while time.time() < deadline and b"gen_ai.request.model" not in spans:
            time.sleep(0.5)
            spans = b"".join(body for _, _, body in Collector.bodies)
    finally:
        gw.stop()
    path, content_type, _ = Collector.bodies[0]
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    def attribute_values(key):
        # Protobuf keeps strings verbatim: each attribute key next to its value.
        at, found = spans.find(key), []
        while at >= 0:
            found.append(spans[at + len(key):at + len(key) + 40])
            at = spans.find(key, at + 1)
        return found

    for key, value in [(b"gen_ai.request.model", b"sonnet"),
                       (b"gen_ai.response.model", b"claude-sonnet-4-5"),
                       (b"gen_ai.provider.name", b"anthropic"),
                       (b"gen_ai.operation.name", b"chat"),
                       (b"gen_ai.usage.input_tokens", b"3"),
                       (b"gen_ai.usage.output_tokens", b"8")]:
        assert any(value in v for v in attribute_values(key)), (key, attribute_values(key))
    assert b"llmgw-e2e" in spans
