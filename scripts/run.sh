#!/usr/bin/env bash
# Starts the mock provider and Envoy with the filter for a gateway file, prints
# ready-to-paste examples, and stops both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-config/gateway.yaml}"
envoy_bin="${ENVOY:-.venv/bin/envoy}"
mock_addr="${MOCK_LISTEN:-127.0.0.1:18080}"
wasm=target/wasm32-wasip1/release/llm_gateway.wasm
# Envoy reads the listener, routes, clusters and the filter's configuration
# from files in this directory, which the watcher below rewrites on every
# saved change of the gateway file: no restart.
xds=build/xds
mkdir -p "$xds"
target/release/llm-gateway-render --config "$config" --wasm "$wasm" --out-dir "$xds"
rendered="$xds/bootstrap.yaml"

read -r listen admin < <(.venv/bin/python - "$config" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
l, a = c["listener"], c.get("admin") or {}
host = l.get("address", "127.0.0.1")
host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
print(f"{host}:{l['port']}", f"{a.get('address', '127.0.0.1')}:{a['port']}" if a else "-")
PY
)

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ "${MOCK:-1}" = 1 ]; then
  target/mock/release/mock-provider --listen "$mock_addr" --api-key sk-mock &
  pids+=($!)
fi

"$envoy_bin" -c "$rendered" --concurrency "${CONCURRENCY:-2}" --disable-hot-restart \
  --log-level "${LOG_LEVEL:-warn}" --component-log-level wasm:info &
pids+=($!)

# One line per applied or refused change of the gateway file (or of a
# rebuilt .wasm: `make build` in another terminal upgrades the filter live).
target/release/llm-gateway-render --config "$config" --wasm "$wasm" --out-dir "$xds" --watch &
pids+=($!)

for _ in $(seq 1 100); do
  curl -sf "http://$listen/v1/models" >/dev/null 2>&1 && break
  sleep 0.2
done
if ! curl -sf "http://$listen/v1/models" >/dev/null; then
  echo "error: Envoy did not come up on $listen; see the log above" >&2
  exit 1
fi
models=$(curl -s "http://$listen/v1/models" | .venv/bin/python -c 'import json,sys; print(", ".join(m["id"] for m in json.load(sys.stdin)["data"]))')
model=$(echo "$models" | cut -d, -f1)

cat <<MSG

llm-gateway is up: http://$listen (admin: http://$admin)
Available models: $models

  curl http://$listen/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"$model","messages":[{"role":"user","content":"Hello!"}]}'

  curl -N http://$listen/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"$model","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'

  .venv/bin/python -c '
from openai import OpenAI
client = OpenAI(base_url="http://$listen/v1", api_key="unused")
r = client.chat.completions.create(model="$model", messages=[{"role": "user", "content": "Hello!"}])
print(r.choices[0].message.content)
print(client.responses.create(model="$model", input="Hello!").output_text)'

Anthropic's Messages API, for any model (Claude Code: ANTHROPIC_BASE_URL=http://$listen):

  curl http://$listen/v1/messages -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' \\
    -d '{"model":"$model","max_tokens":256,"messages":[{"role":"user","content":"Hello!"}]}'

Edit $config and save: the change is applied without a restart (one line per change below).
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
