//! The kind byte every shared-data value starts with: which state wrote it,
//! so a key holding another state's value reads as fresh, never misread.
//! Passive health's values predate kind bytes and start with their version
//! alone (see `health`).

/// A token bucket (`ratelimit::bucket`).
pub const BUCKET: u8 = 0xB1;
/// A calendar quota (`ratelimit::quota`).
pub const QUOTA: u8 = 0xC1;
/// An adaptive concurrency limit (`ratelimit::adaptive`).
pub const ADAPTIVE: u8 = 0xA1;
/// A pool's round-robin weights (`route_select::strategy`).
pub const ROUND_ROBIN: u8 = 0xD1;
/// A target's in-flight count (`route_select::strategy`).
pub const IN_FLIGHT: u8 = 0xD2;
/// A target's latency average (`route_select::strategy`).
pub const LATENCY: u8 = 0xD3;
/// The keys the last configuration used (`state::registry`).
pub const REGISTRY: u8 = 0xE1;
/// A bucket of remembered nonces (`replay`).
pub const NONCES: u8 = 0xF1;
/// A cached answer (`cache`).
pub const CACHE_ENTRY: u8 = 0xCA;
/// The bytes all cached answers hold (`cache`).
pub const CACHE_BYTES: u8 = 0xCB;
/// A page of the semantic cache's index (`cache::semantic`).
pub const CACHE_INDEX: u8 = 0xCC;
/// A provider's access token (`tokens`).
pub const ACCESS_TOKEN: u8 = 0xAB;
