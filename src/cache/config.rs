//! The cache's configuration: the store (`cache:`, shared by every model)
//! and each model's policy (`models[].cache`), as users write them and
//! compiled.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

/// Most entries (shared-data keys) a store may have: each is a key Envoy
/// keeps for the life of the process.
pub const MAX_ENTRIES: u32 = 65_536;
const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_MAX_ENTRY_BYTES: u64 = 256 * 1024;
const DEFAULT_MAX_ENTRIES: u32 = 4096;
const DEFAULT_TTL_SECONDS: u64 = 3600;
const MAX_TTL_SECONDS: u64 = 30 * 24 * 3600;

/// `cache:` — the store every cached model shares.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Bytes all entries together may hold.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Largest answer stored; a larger one is not cached.
    #[serde(default = "default_max_entry_bytes")]
    pub max_entry_bytes: u64,
    /// Entries (slots) at most.
    #[serde(default = "default_max_entries")]
    pub max_entries: u32,
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}
fn default_max_entry_bytes() -> u64 {
    DEFAULT_MAX_ENTRY_BYTES
}
fn default_max_entries() -> u32 {
    DEFAULT_MAX_ENTRIES
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Exact,
    Semantic,
}

/// Who shares an answer: only the consumer that asked (default), or every
/// caller of the model.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Consumer,
    Shared,
}

/// `models[].cache`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelCacheConfig {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    #[serde(default)]
    pub scope: Scope,
    /// Also cache requests that sample (`temperature` absent or not 0).
    #[serde(default)]
    pub nondeterministic: bool,
}

fn default_ttl() -> u64 {
    DEFAULT_TTL_SECONDS
}

/// The compiled store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Store {
    pub max_bytes: u64,
    pub max_entry_bytes: usize,
    pub entries: u32,
}

/// A model's compiled policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub ttl_s: u64,
    pub scope: Scope,
    pub nondeterministic: bool,
}

impl StoreConfig {
    pub fn compile(&self, field: &str) -> Result<Store, ConfigError> {
        if !(1024..=16 * 1024 * 1024).contains(&self.max_entry_bytes) {
            return Err(ConfigError::new(
                format!("{field}.max_entry_bytes"),
                "must be between 1024 and 16777216",
            ));
        }
        if self.max_bytes < self.max_entry_bytes {
            return Err(ConfigError::new(
                format!("{field}.max_bytes"),
                "must be at least max_entry_bytes",
            ));
        }
        if !(1..=MAX_ENTRIES).contains(&self.max_entries) {
            return Err(ConfigError::new(
                format!("{field}.max_entries"),
                format!("must be between 1 and {MAX_ENTRIES}"),
            ));
        }
        Ok(Store {
            max_bytes: self.max_bytes,
            // ≤ 16 MiB, checked above.
            max_entry_bytes: usize::try_from(self.max_entry_bytes).unwrap_or(usize::MAX),
            entries: self.max_entries,
        })
    }
}

impl ModelCacheConfig {
    pub fn compile(&self, field: &str) -> Result<Policy, ConfigError> {
        if self.mode == Mode::Semantic {
            return Err(ConfigError::new(
                format!("{field}.mode"),
                "semantic caching is not available in this version; use 'exact'",
            ));
        }
        if !(1..=MAX_TTL_SECONDS).contains(&self.ttl_seconds) {
            return Err(ConfigError::new(
                format!("{field}.ttl_seconds"),
                format!("must be between 1 and {MAX_TTL_SECONDS}"),
            ));
        }
        Ok(Policy {
            ttl_s: self.ttl_seconds,
            scope: self.scope,
            nondeterministic: self.nondeterministic,
        })
    }
}
