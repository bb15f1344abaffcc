//! The checks behind llm-gateway's fuzz targets.
//!
//! Every fuzz target (`fuzz_targets/<name>.rs`) is one line calling the
//! function of the same name here; the same functions replay the committed
//! corpora (`corpus/<name>/`, `seeds/<name>/`) from a plain `cargo test`
//! (see `replay` below), without cargo-fuzz or sanitizers.
//!
//! A check returns normally when the input is fine (including inputs the
//! gateway rightly rejects) and panics when an invariant is broken; the
//! panic message says which. Checks only use `llm_gateway`'s public API, and
//! each target's entry points are named in one place (its module), so a
//! refactor of `src/` means re-pointing a few paths.

mod alloc_guard;
mod common;
mod config;
mod eventstream;
mod guard_stream;
mod model_map;
mod model_splice;
mod pass_stream;
mod request_client;
mod request_openai;
mod responses_decode;
mod sse_framer;
mod stream;

pub use config::config;
pub use eventstream::eventstream;
pub use guard_stream::guard_stream;
pub use model_map::model_map;
pub use model_splice::model_splice;
pub use pass_stream::pass_stream;
pub use request_client::{request_anthropic, request_responses};
pub use request_openai::request_openai;
pub use responses_decode::responses_decode;
pub use sse_framer::sse_framer;
pub use stream::{stream_anthropic, stream_bedrock, stream_ernie, stream_gemini, stream_openai};

#[global_allocator]
static ALLOC: alloc_guard::Guard = alloc_guard::Guard;

/// A target's check: panics when the input breaks an invariant.
pub type Check = fn(&[u8]);

/// Every target by name, as in `Cargo.toml`'s `[[bin]]`s and the corpus
/// directories.
pub const TARGETS: &[(&str, Check)] = &[
    ("sse_framer", sse_framer),
    ("stream_anthropic", stream_anthropic),
    ("stream_bedrock", stream_bedrock),
    ("stream_ernie", stream_ernie),
    ("stream_gemini", stream_gemini),
    ("stream_openai", stream_openai),
    ("pass_stream", pass_stream),
    ("request_openai", request_openai),
    ("request_anthropic", request_anthropic),
    ("request_responses", request_responses),
    ("responses_decode", responses_decode),
    ("model_splice", model_splice),
    ("model_map", model_map),
    ("config", config),
    ("guard_stream", guard_stream),
    ("eventstream", eventstream),
];

#[cfg(test)]
mod replay;
