#!/usr/bin/env bash
# Builds the release .wasm. Uses rustup's wasm32-wasip1 target when it can be
# had; otherwise Debian's rustc-web toolchain with -Zbuild-std.
# WASM_TOOLCHAIN=rustup|debian forces one route.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${WASM_TOOLCHAIN:-auto}"
subcmd="${1:-build}" # build | clippy
pkg="${2:-llm-gateway}" # the workspace package (its library) to build
lib="${pkg//-/_}"

have_rustup_target() {
  command -v rustup >/dev/null 2>&1 || return 1
  rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 && return 0
  echo "==> rustup target add wasm32-wasip1"
  timeout 180 rustup target add wasm32-wasip1 >/dev/null 2>&1
}

if [ "$mode" = rustup ] || { [ "$mode" = auto ] && have_rustup_target; }; then
  if [ "$subcmd" = clippy ]; then
    exec cargo clippy --lib -p "$pkg" --release --target wasm32-wasip1 -- -D warnings
  fi
  exec cargo build --lib -p "$pkg" --release --target wasm32-wasip1
fi

echo "==> rustup has no wasm32-wasip1 target; using Debian's rustc-web toolchain"
scripts/install-deps.sh wasm-debian
export PATH="/usr/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-C linker=wasm-ld-19 -C link-self-contained=no -L /usr/lib/wasm32-wasi"
args=(--lib -p "$pkg" --release --target wasm32-wasip1 -Zbuild-std=std,panic_abort)
# A separate target dir keeps the two toolchains from rebuilding each other.
export CARGO_TARGET_DIR="target/debian"
if [ "$subcmd" = clippy ]; then
  /usr/bin/cargo clippy "${args[@]}" -- -D warnings
else
  /usr/bin/cargo build "${args[@]}"
  mkdir -p target/wasm32-wasip1/release
  cp "target/debian/wasm32-wasip1/release/$lib.wasm" "target/wasm32-wasip1/release/$lib.wasm"
fi
