"""Google Vertex AI (Gemini and Claude) behind every client API, through
Envoy: an OAuth access token from a service account's JSON key (a JWT the
filter signs RS256, exchanged at the token endpoint, here the mock's on
another host name so it gets its own Envoy cluster) or from a metadata
server, refreshed by one worker for all, as a bearer token."""

import json
from pathlib import Path

import anthropic
import httpx
import pytest
from openai import OpenAI

from harness import Gateway, Mock, check_refused_token_is_replaced

GREETING = "Hello from mock-provider! You said: "
SA_KEY = (Path(__file__).resolve().parents[1] / "fixtures/vertex/service-account.json").read_text()
GEMINI_PATH = "/v1/projects/llmgw-test/locations/us-central1/publishers/google/models/gemini-2.5-flash"
CLAUDE_PATH = "/v1/projects/llmgw-test/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"


@pytest.fixture(scope="module")
def vmock():
    m = Mock(api_key=None)
    yield m
    m.stop()


def tokens(mock):
    return httpx.get(f"{mock.url}/__mock/google/tokens").json()


@pytest.fixture(scope="module")
def vgw(vmock, tmp_path_factory):
    port = vmock.addr.rsplit(":", 1)[1]
    config = {
        "providers": [
            {"name": "gemini-vertex", "type": "vertex", "base_url": f"{vmock.url}/v1",
             "vertex": {"project": "llmgw-test", "region": "us-central1"},
             # Another host name for the same mock: the token endpoint gets its own cluster.
             "token": {"service_account": "env:GOOGLE_SA_KEY", "url": f"http://localhost:{port}/token"}},
            {"name": "claude-vertex", "type": "vertex-anthropic", "base_url": f"{vmock.url}/v1",
             "vertex": {"project": "llmgw-test", "region": "us-east5"},
             "token": {"url": f"{vmock.url}/computeMetadata/v1/instance/service-accounts/default/token"}},
        ],
        "models": [
            {"name": "gemini", "targets": [{"provider": "gemini-vertex", "model": "gemini-2.5-flash"}]},
            {"name": "claude", "targets": [{"provider": "claude-vertex",
                                            "model": "claude-sonnet-4-5@20250929"}]},
        ],
    }
    gw = Gateway(config, tmp_path_factory.mktemp("vertex"), env={"GOOGLE_SA_KEY": SA_KEY})
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(vgw):
    return OpenAI(base_url=vgw.url + "/v1", api_key="client-key", max_retries=0)


def test_gemini_with_a_service_account_token(client, vmock, vgw):
    r = client.chat.completions.create(model="gemini", messages=[{"role": "user", "content": "hi vertex"}])
    assert r.choices[0].message.content == GREETING + "hi vertex"
    stream = client.chat.completions.create(model="gemini", stream=True,
                                            messages=[{"role": "user", "content": "streamed vertex"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == GREETING + "streamed vertex"
    reqs = vmock.requests()
    grants = [q for q in reqs if q["path"] == "/token"]
    assert len(grants) == 1
    assert "assertion=" in grants[0]["body"]
    calls = [q for q in reqs if q["path"].startswith(GEMINI_PATH)]
    assert [q["path"].rsplit(":", 1)[1] for q in calls] == ["generateContent", "streamGenerateContent"]
    assert calls[0]["headers"]["authorization"].startswith("Bearer ya29.mock-")
    assert "Client" not in calls[0]["headers"].get("authorization", "")
    # The private key never leaves: not in the grant, not upstream.
    assert "PRIVATE KEY" not in json.dumps(reqs)
    assert "fetching an access token (ServiceAccount, request built in" in vgw.logs()


def test_claude_on_vertex_with_a_metadata_server_token(vgw, client, vmock):
    claude = anthropic.Anthropic(base_url=vgw.url, api_key="k", max_retries=0)
    vmock.clear()
    m = claude.messages.create(model="claude", max_tokens=50,
                               messages=[{"role": "user", "content": "from claude code"}])
    assert m.content[0].text == GREETING + "from claude code"
    with claude.messages.stream(model="claude", max_tokens=50,
                                messages=[{"role": "user", "content": "stream"}]) as s:
        assert "".join(s.text_stream) == GREETING + "stream"
    r = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "openai client"}])
    assert r.choices[0].message.content == GREETING + "openai client"
    reqs = [q for q in vmock.requests() if q["path"].startswith(CLAUDE_PATH)]
    assert [q["path"].rsplit(":", 1)[1] for q in reqs] == ["rawPredict", "streamRawPredict", "rawPredict"]
    body = json.loads(reqs[0]["body"])
    assert "model" not in body and body["anthropic_version"] == "vertex-2023-10-16"
    out = client.responses.create(model="gemini", input="responses api")
    assert out.output_text == GREETING + "responses api"


def test_a_revoked_token_is_replaced_and_the_request_sent_again(vgw, vmock):
    """The provider refuses a revoked token: the token is replaced at once
    and the request sent once more; the client sees only the answer."""
    check_refused_token_is_replaced(vgw, f"{vmock.url}/__mock/google/revoke", "gemini",
                                    lambda: tokens(vmock)["issued"])
