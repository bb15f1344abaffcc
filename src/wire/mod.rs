//! Wire formats: every API the gateway speaks, to clients and to
//! providers. Each format is one edge with both directions over the hub
//! (`hub`), with its own stream framing.

pub mod anthropic;
pub mod gemini;
pub mod hub;
pub mod openai;
pub mod pass_stream;
pub mod responses;
pub mod sse;
pub mod stream;
