//! Response cache (`cache:` and `models[].cache`): identical requests to
//! the same target are answered from proxy-wasm shared data, which every
//! worker of one Envoy shares, without calling the provider.
//!
//! - `key`: what makes two requests identical (SHA-256 over the client
//!   API, target, scope and the canonical body without delivery fields).
//! - `entry`: a fixed number of slots in shared data, a byte budget with
//!   sampled eviction, TTLs.
//! - answers are kept in hub form (stored as OpenAI JSON), so a hit is
//!   rendered in any client API and mode — a whole response, or a stream
//!   replayed through the API's writer (`wire::collect`); a stream miss is
//!   captured from the events the client was sent.

mod config;
mod entry;
mod key;
pub mod semantic;
#[cfg(test)]
mod tests;

pub use crate::wire::collect::{complete, replay, Capture};
pub use config::{
    Mode, ModelCacheConfig, Policy, Scope, Semantic, Store, StoreConfig, MAX_ENTRIES, MAX_VECTORS,
};
pub use entry::{insert, lookup, precreate, state_keys, Stored};
pub use key::{deterministic, digest, group_digest, Digest32, KeyParts};

/// Response header saying what the cache did: `hit`, `miss` (asked the
/// provider; a whole answer that was then stored says `store`), `bypass`
/// (not cacheable, or the client said `no-store`).
pub const CACHE_HEADER: &str = "x-llm-gateway-cache";

/// What the client's `cache-control` asks of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directives {
    /// `no-cache`: do not answer from the cache (the answer may be stored).
    pub skip_lookup: bool,
    /// `no-store`: neither look up nor store.
    pub no_store: bool,
}

impl Directives {
    pub fn parse(cache_control: Option<&str>) -> Self {
        let mut d = Self::default();
        for token in cache_control.unwrap_or_default().split(',') {
            let token = token.trim();
            if token.eq_ignore_ascii_case("no-cache") {
                d.skip_lookup = true;
            } else if token.eq_ignore_ascii_case("no-store") {
                d.no_store = true;
                d.skip_lookup = true;
            }
        }
        d
    }
}
