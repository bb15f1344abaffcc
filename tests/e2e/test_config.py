"""Shipped Envoy configs validate; bad configs are refused with a clear message."""

import json
import subprocess
from pathlib import Path

import pytest

from harness import ENVOY, RENDER, ROOT, WASM

SHIPPED = sorted([*(ROOT / "envoy").glob("*.yaml"), *(ROOT / "examples").glob("*/envoy*.yaml")])


DOCKER_WASM = "/etc/envoy/llm_gateway.wasm"


@pytest.mark.parametrize("config,rendered,wasm", [
    ("config/gateway.yaml", "envoy/envoy.yaml", "target/wasm32-wasip1/release/llm_gateway.wasm"),
    ("config/gateway.docker.yaml", "envoy/envoy.docker.yaml", DOCKER_WASM),
    ("config/gateway.tracing.yaml", "envoy/envoy.tracing.yaml",
     "target/wasm32-wasip1/release/llm_gateway.wasm"),
    ("config/gateway.local-models.yaml", "envoy/envoy.local-models.yaml",
     "target/wasm32-wasip1/release/llm_gateway.wasm"),
    ("config/gateway.kubernetes.yaml", "envoy/envoy.kubernetes.yaml",
     "target/wasm32-wasip1/release/llm_gateway.wasm"),
])
def test_rendered_envoy_yaml_is_current(tmp_path, config, rendered, wasm):
    out = tmp_path / "envoy.yaml"
    subprocess.run([str(RENDER), "--config", str(ROOT / config), "--wasm", wasm,
                    "--out", str(out)], check=True, cwd=ROOT)
    assert out.read_text() == (ROOT / rendered).read_text(), \
        f"{rendered} is stale: run `make render`"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_envoy_configs_validate(path, tmp_path):
    # Container paths point at the .wasm built here.
    local = tmp_path / path.name
    local.write_text(path.read_text().replace(DOCKER_WASM, str(WASM)))
    r = subprocess.run([ENVOY, "--mode", "validate", "-c", str(local), "--disable-hot-restart"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "llm-gateway: configured" in r.stdout + r.stderr


def test_renderer_rejects_bad_config_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("listener: {port: 10000}\nproviders:\n  - {name: a, type: opneai}\n"
                   "models: [{name: m, targets: [{provider: a}]}]\n")
    r = subprocess.run([str(RENDER), "--config", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "invalid config at providers[0].type: unknown provider type 'opneai'" in r.stderr


def test_filter_refuses_bad_plugin_config(tmp_path):
    """on_configure returns false and logs why; Envoy refuses to start."""
    good = tmp_path / "good.yaml"
    good.write_text(json.dumps({
        "listener": {"port": 1}, "envoy": {"access_log": "none"},
        "providers": [{"name": "a", "type": "openai", "api_key": "k"}],
        "models": [{"name": "m", "targets": [{"provider": "a"}]}]}))
    out = tmp_path / "envoy.yaml"
    subprocess.run([str(RENDER), "--config", str(good), "--wasm", str(WASM), "--out", str(out)],
                   check=True)
    text = out.read_text()
    assert '"type":"openai"' in text
    out.write_text(text.replace('"type":"openai"', '"type":"nope"'))
    r = subprocess.run([ENVOY, "--mode", "validate", "-c", str(out), "--disable-hot-restart"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "invalid config at providers[0].type: unknown provider type 'nope'" in r.stdout + r.stderr


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_readme_config_example_is_valid(tmp_path, readme):
    import re
    text = (ROOT / readme).read_text()
    section = text[text.index("```yaml\nlistener:"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "readme.yaml"
    path.write_text(block)
    r = subprocess.run([str(RENDER), "--config", str(path), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
