"""Claude Code (the real CLI, pinned in tests/claude-code/) with
ANTHROPIC_BASE_URL at the gateway, served by an OpenAI-compatible model:
it completes a prompt that needs a tool, offline."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness import ROOT, Gateway

CLAUDE = ROOT / "tests/claude-code/node_modules/.bin/claude"


@pytest.fixture(scope="module")
def ccgw(mock, tmp_path_factory):
    if not CLAUDE.exists():
        subprocess.run([str(ROOT / "scripts/install-deps.sh"), "claude-code"], check=True)
    config = {
        "providers": [{
            "name": "local", "type": "vllm", "base_url": f"{mock.url}/v1",
            "api_key": "sk-upstream",
            # The mock calls Bash once, then answers with the tool's output.
            "headers": [{"name": "x-mock-tool-call-once", "value": "Bash"},
                        {"name": "x-mock-tool-args",
                         "value": '{"command":"echo tool-ran-42","description":"Echo"}'}],
        }],
        "models": [{"name": "local-coder", "targets": [{"provider": "local",
                                                        "model": "qwen2.5-coder"}]}],
        # Whatever Claude model name Claude Code asks for, the local model answers.
        "model_map": [{"prefix": "claude-", "to": "local-coder"}],
    }
    gw = Gateway(config, tmp_path_factory.mktemp("claude-code"))
    yield gw
    gw.stop()


def test_claude_code_runs_a_tool_through_an_openai_compatible_model(ccgw, mock, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": ccgw.url,
        "ANTHROPIC_API_KEY": "sk-unused",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    run = subprocess.run(
        [str(CLAUDE), "-p", "Run the echo command and tell me what it printed.",
         "--model", "claude-sonnet-4-5", "--allowedTools", "Bash", "--output-format", "json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr + run.stdout
    result = json.loads(run.stdout)
    assert result["is_error"] is False, result
    assert "Tool result: tool-ran-42" in result["result"]
    chats = [json.loads(r["body"]) for r in mock.requests()
             if r["path"] == "/v1/chat/completions"]
    # The second turn carried Bash's real output back to the model.
    assert any(m.get("role") == "tool" and "tool-ran-42" in str(m.get("content"))
               for c in chats for m in c["messages"]), chats
    assert all(c["model"] == "qwen2.5-coder" for c in chats)
