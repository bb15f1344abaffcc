//! llm-gateway: an AI gateway that runs inside Envoy as a proxy-wasm filter.
//!
//! Everything but `wasm` is a host-independent core that compiles and tests
//! natively; `wasm` is the thin proxy-wasm layer that gathers inputs, calls
//! the core and applies its decision.
//!
//! # Layers
//!
//! A module uses modules of its own layer and of the layers below, never
//! of a layer above (a test, `layering`, checks the source):
//!
//! 1. Foundations: `error` (`ApiError`, `ConfigError`) with `redact`;
//!    `host`, the trait the proxy implements; `state`, everything about
//!    proxy-wasm shared data (codec, compare-and-set loop, kind bytes,
//!    keys); `testing`, the in-memory host and store of tests and benches.
//! 2. Wire formats: `hub` (the internal representation), `openai` (the
//!    ingress edge), `providers`, `sse`, `stream`, `pass_stream`,
//!    `content_coding`, `header_pairs`.
//! 3. Policies, each owning its config section and its `compile`:
//!    `admission` + `ratelimit` (limits and quotas), `health`, `consumers`,
//!    `pricing`, `route_select`, and `metrics` (what a request records).
//! 4. `config`: lists the sections and compiles them, with providers,
//!    models and targets, into the `Gateway`.
//! 5. `flow` (the life of one stream) and `telemetry`.
//! 6. `wasm`: the proxy-wasm layer.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admission;
pub mod anthropic_ingress;
pub mod config;
pub mod consumers;
pub mod content_coding;
pub mod error;
pub mod flow;
pub mod header_pairs;
pub mod health;
pub mod host;
pub mod hub;
pub mod metrics;
pub mod openai;
pub mod pass_stream;
pub mod pricing;
pub mod providers;
pub mod ratelimit;
pub mod redact;
pub mod responses;
pub mod route_select;
pub mod sse;
pub mod state;
pub mod stream;
pub mod telemetry;
pub mod testing;

#[cfg(test)]
mod layering;
#[cfg(target_arch = "wasm32")]
mod wasm;
