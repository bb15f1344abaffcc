#!/usr/bin/env bash
# `make run-cluster`: Redis, the Rate Limit Service and two Envoy replicas
# with the filter, on loopback, for a gateway file with `scope: cluster`
# rate limits. Prints their addresses; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-config/gateway.cluster.yaml}"
envoy_bin="${ENVOY:-.venv/bin/envoy}"
wasm=target/wasm32-wasip1/release/llm_gateway.wasm
redis_port="${REDIS_PORT:-16379}"
mock_addr="${MOCK_LISTEN:-127.0.0.1:18080}"
out=build/cluster
mkdir -p "$out"

# Each replica gets the gateway file with its own listener and admin port.
read -r rls listen0 listen1 admin0 admin1 < <(.venv/bin/python - "$config" "$out" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
rls = c["rate_limits"]["cluster"]["service"]
ports = []
for i in (0, 1):
    r = dict(c)
    r["listener"] = dict(c["listener"], port=c["listener"]["port"] + i)
    r["admin"] = dict(c["admin"], port=c["admin"]["port"] + i)
    open(f"{sys.argv[2]}/gateway-{i}.yaml", "w").write(yaml.safe_dump(r, sort_keys=False))
    ports.append((f"127.0.0.1:{r['listener']['port']}", f"127.0.0.1:{r['admin']['port']}"))
print(rls, ports[0][0], ports[1][0], ports[0][1], ports[1][1])
PY
)

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$out/redis.log" 2>&1 &
pids+=($!)
target/rls/release/llm-gateway-rls --config "$config" --listen "$rls" \
  --redis "redis://127.0.0.1:$redis_port" &
pids+=($!)
if [ "${MOCK:-1}" = 1 ]; then
  target/mock/release/mock-provider --listen "$mock_addr" --api-key sk-mock &
  pids+=($!)
fi
for i in 0 1; do
  target/release/llm-gateway-render --config "$out/gateway-$i.yaml" --wasm "$wasm" --out "$out/envoy-$i.yaml"
  "$envoy_bin" -c "$out/envoy-$i.yaml" --concurrency "${CONCURRENCY:-2}" --disable-hot-restart \
    --base-id "$((i + 7))" --log-level "${LOG_LEVEL:-warn}" &
  pids+=($!)
done

for listen in "$listen0" "$listen1"; do
  for _ in $(seq 1 100); do
    curl -sf "http://$listen/v1/models" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -sf "http://$listen/v1/models" >/dev/null || { echo "error: Envoy did not come up on $listen" >&2; exit 1; }
done

cat <<MSG

llm-gateway cluster is up:
  replica 1:            http://$listen0 (admin: http://$admin0)
  replica 2:            http://$listen1 (admin: http://$admin1)
  Rate Limit Service:   $rls (gRPC)
  Redis:                127.0.0.1:$redis_port

The rules with scope: cluster in $config count requests to both replicas together:

  for i in \$(seq 1 40); do for r in $listen0 $listen1; do
    curl -s -o /dev/null -w '%{http_code} ' http://\$r/v1/chat/completions -H 'authorization: Bearer sk-team-a' \\
      -H 'content-type: application/json' -d '{"model":"mock-gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'
  done; done; echo

Envoy's rate-limit counters: curl -s http://$admin0/stats | grep ratelimit.llmgw_cluster
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
