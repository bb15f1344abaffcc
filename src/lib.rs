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
//!    `bytes` (short byte searches without a searcher per call);
//!    `calendar` (UTC dates);
//!    `secrets` (encrypted keys, request signatures, wiped buffers);
//!    `host`, the trait the proxy implements; `state`, everything about
//!    proxy-wasm shared data (codec, compare-and-set loop, kind bytes,
//!    keys); `testing`, the in-memory host and store of tests and benches.
//! 2. Wire formats: `wire` (the hub, and one edge per API — OpenAI Chat,
//!    Anthropic Messages, Gemini, OpenAI Responses — each both directions,
//!    with SSE framing, stream translation and passthrough checks),
//!    `content_coding`, `header_pairs`.
//! 3. `providers`: the provider type table (each type's wire, URL, auth,
//!    and egress translator).
//! 4. Policies, each owning its config section and its `compile`:
//!    `admission` + `ratelimit` (limits and quotas), `health`, `consumers`,
//!    `pricing`, `route_select`, `replay` (signed requests and their
//!    nonces), `guardrails` (word lists, personal data, moderation),
//!    `cache` (the response cache), `tokens` (providers' access tokens), and
//!    `metrics` (what a request records).
//! 5. `config`: lists the sections and compiles them, with providers,
//!    models and targets, into the `Gateway`.
//! 6. `flow` (the life of one stream) and `telemetry`.
//! 7. `wasm`: the proxy-wasm layer.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admission;
pub mod bytes;
pub mod cache;
pub mod calendar;
pub mod config;
pub mod consumers;
pub mod content_coding;
pub mod error;
pub mod flow;
pub mod guardrails;
pub mod header_pairs;
pub mod health;
pub mod host;
pub mod metrics;
pub mod pricing;
pub mod providers;
pub mod ratelimit;
pub mod redact;
pub mod replay;
pub mod route_select;
pub mod secrets;
pub mod state;
pub mod telemetry;
pub mod testing;
pub mod tokens;
pub mod wire;

#[cfg(test)]
mod layering;
#[cfg(target_arch = "wasm32")]
mod wasm;
