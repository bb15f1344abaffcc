//! llm-gateway: an AI gateway that runs inside Envoy as a proxy-wasm filter.
//!
//! Everything but `wasm` is a host-independent core that compiles and tests
//! natively; `wasm` is the thin proxy-wasm layer that gathers inputs, calls
//! the core and applies its decision.
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
pub mod routing;
pub mod sse;
pub mod stream;
pub mod telemetry;

#[cfg(test)]
mod flow_tests;

#[cfg(target_arch = "wasm32")]
mod wasm;
