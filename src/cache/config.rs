//! The cache's configuration: the store (`cache:`, shared by every model)
//! and each model's policy (`models[].cache`), as users write them and
//! compiled.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

/// Most entries (shared-data keys) a store may have: each is a key Envoy
/// keeps for the life of the process.
pub const MAX_ENTRIES: u32 = 65_536;
/// Most prompts one model's semantic index may hold.
pub const MAX_VECTORS: u32 = 16_384;
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
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
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
    /// `mode: semantic`: the gateway model (served by a provider that
    /// embeds) whose embeddings compare prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings_model: Option<String>,
    /// `mode: semantic`: the least cosine similarity that counts as the
    /// same prompt.
    #[serde(default = "default_similarity")]
    pub similarity: f64,
    /// `mode: semantic`: how long the embeddings call may take (then the
    /// request is a miss).
    #[serde(default = "default_embeddings_timeout")]
    pub embeddings_timeout_ms: u64,
    /// `mode: semantic`: prompts indexed for this model at most.
    #[serde(default = "default_max_vectors")]
    pub max_vectors: u32,
}

fn default_ttl() -> u64 {
    DEFAULT_TTL_SECONDS
}
fn default_similarity() -> f64 {
    0.95
}
fn default_embeddings_timeout() -> u64 {
    500
}
fn default_max_vectors() -> u32 {
    1024
}

/// The compiled store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Store {
    pub max_bytes: u64,
    pub max_entry_bytes: usize,
    pub entries: u32,
}

/// A model's compiled policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub ttl_s: u64,
    pub scope: Scope,
    pub nondeterministic: bool,
    pub semantic: Option<Semantic>,
}

/// `mode: semantic`, compiled; the config resolves `embeddings_model`.
#[derive(Debug, Clone, PartialEq)]
pub struct Semantic {
    pub embeddings_model: String,
    pub threshold: f32,
    pub timeout_ms: u64,
    /// Pages of the index (`max_vectors` / 32, rounded up).
    pub pages: u32,
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
        let semantic = match (self.mode, &self.embeddings_model) {
            (Mode::Exact, None) => None,
            (Mode::Exact, Some(_)) => {
                return Err(ConfigError::new(
                    format!("{field}.embeddings_model"),
                    "only for mode: semantic",
                ))
            }
            (Mode::Semantic, None) => {
                return Err(ConfigError::new(
                    format!("{field}.embeddings_model"),
                    "mode: semantic needs the gateway model that embeds prompts",
                ))
            }
            (Mode::Semantic, Some(m)) => Some(self.semantic(m, field)?),
        };
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
            semantic,
        })
    }

    fn semantic(&self, model: &str, field: &str) -> Result<Semantic, ConfigError> {
        if !(0.5..=1.0).contains(&self.similarity) {
            return Err(ConfigError::new(
                format!("{field}.similarity"),
                "must be between 0.5 and 1.0",
            ));
        }
        if !(10..=10_000).contains(&self.embeddings_timeout_ms) {
            return Err(ConfigError::new(
                format!("{field}.embeddings_timeout_ms"),
                "must be between 10 and 10000",
            ));
        }
        if !(1..=MAX_VECTORS).contains(&self.max_vectors) {
            return Err(ConfigError::new(
                format!("{field}.max_vectors"),
                format!("must be between 1 and {MAX_VECTORS}"),
            ));
        }
        Ok(Semantic {
            embeddings_model: model.to_string(),
            threshold: self.similarity as f32,
            timeout_ms: self.embeddings_timeout_ms,
            pages: self
                .max_vectors
                .div_ceil(super::semantic::PAGE_VECTORS as u32),
        })
    }
}
