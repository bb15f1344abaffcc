//! Plugin configuration: [`PluginConfig`] lists the sections users write,
//! [`compile`] validates them into the [`Gateway`] the filter uses per
//! request. Providers, models and their targets are compiled here; every
//! policy section (`health`, `rate_limits`, `consumers`, `pricing`, routing)
//! is owned by its policy module, shape and `compile` both.

mod compiled;
mod endpoint;
mod precreate;

pub use compiled::{
    cluster_name, compile, Egress, Gateway, Model, Provider, ProviderKey, Target, ANTHROPIC_VERSION,
};
pub use endpoint::{Endpoint, Scheme};

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

/// The filter's JSON configuration. The user's `gateway.yaml` is this plus the
/// Envoy-level sections (`listener`, `admin`, `envoy`) the renderer consumes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub providers: Vec<ProviderConfig>,
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// USD per 1M tokens by upstream model, for the cost metric; common
    /// models have built-in defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pricing: Vec<crate::pricing::PriceConfig>,
    /// Gateway API keys and what each consumer may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<crate::consumers::ConsumerConfig>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub auth: crate::consumers::AuthConfig,
    #[serde(default, skip_serializing_if = "is_default")]
    pub metrics: MetricsConfig,
    /// Client model names mapped onto configured models: aliases, prefixes,
    /// regexes with captures; tried in order after the exact names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_map: Vec<crate::route_select::MapEntry>,
    /// Rules that send a request to a model by what it is (cost-aware
    /// routing); first match wins, before the client's model name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing_rules: Vec<crate::route_select::RuleConfig>,
    /// Cross-provider failover for models with targets on several providers.
    #[serde(default, skip_serializing_if = "is_default")]
    pub failover: FailoverConfig,
    /// Passive health: when targets are ejected and for how long.
    #[serde(default, skip_serializing_if = "is_default")]
    pub health: crate::health::HealthConfig,
    /// Request and token rate limits.
    #[serde(default, skip_serializing_if = "is_default")]
    pub rate_limits: crate::admission::RateLimitsConfig,
    /// Write each request's fields (model, provider, tokens, cost, …) to
    /// Envoy filter state `wasm.llmgw.*` for access logs and trace tags.
    /// Default on; the renderer turns it off when its bootstrap has neither
    /// an access log nor tracing (nothing would read them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_fields: Option<bool>,
    /// Word lists, personal-data detectors and moderation, by name; models
    /// and consumers say which apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<crate::guardrails::GuardrailConfig>,
    /// The response cache's store (used by models with `cache`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::cache::StoreConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// Retry a failed attempt (connect error, reset, 5xx, 429) on the next
    /// target before any response byte reached the client.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Attempts in all, the first included.
    #[serde(default = "three")]
    pub max_attempts: u32,
}

fn yes() -> bool {
    true
}
fn three() -> u32 {
    3
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Adds a `consumer` label to request, token and cost metrics (bounded
    /// by the configured consumers).
    #[serde(default)]
    pub consumer_label: bool,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name; also names the Envoy cluster (`llmgw_<name>`).
    pub name: String,
    /// Provider type: `anthropic`, `gemini`, `azure`, or a preset of the
    /// OpenAI-compatible family (`openai`, `deepseek`, `qwen`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// SDK-style base URL including the API path prefix, e.g.
    /// `https://api.deepseek.com/v1`. Defaults to the preset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// API key: a literal, or `env:NAME` to read host env var NAME at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// More keys for a rotated pool: a key answered 401/403 is disabled, one
    /// answered 429 cools down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<String>,
    /// Overrides the preset's auth style: `bearer`, `none`, or `header:NAME`
    /// (the raw key in header NAME).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Azure `api-version` query value, or Anthropic's `anthropic-version`
    /// header; each type has a default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Envoy active health checking of the provider's endpoint (useful for
    /// self-hosted models; hosted APIs need a key the probe cannot carry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    /// Per-provider timeouts; a timeout answers 504 in OpenAI's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<TimeoutsConfig>,
    /// Per-target admission limit that shrinks when the provider answers
    /// 429/5xx or slows down and grows back when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive_concurrency: Option<crate::ratelimit::AdaptiveConfig>,
    /// Extra headers sent upstream on every request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    /// Amazon Bedrock: the region and the credentials each request is
    /// signed with (SigV4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<crate::providers::aws::AwsConfig>,
    /// What is exchanged for access tokens (ERNIE v1: API Key and Secret
    /// Key; Vertex AI: a service account, or a metadata server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<crate::tokens::TokenConfig>,
    /// Vertex AI: the project and region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertex: Option<crate::providers::vertex::VertexConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Path probed with GET, e.g. `/health` (vLLM) or `/api/tags` (Ollama).
    pub path: String,
    #[serde(default = "default_hc_interval")]
    pub interval_ms: u64,
    #[serde(default = "default_hc_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_hc_threshold")]
    pub unhealthy_threshold: u32,
    #[serde(default = "default_hc_threshold")]
    pub healthy_threshold: u32,
}

fn default_hc_interval() -> u64 {
    5_000
}
fn default_hc_timeout() -> u64 {
    2_000
}
fn default_hc_threshold() -> u32 {
    2
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// TCP (and TLS) connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
    /// Longest silence from the provider once the request is sent: before
    /// the first byte, and between stream chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<u64>,
    /// The whole exchange, streams included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderConfig {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model name clients send.
    pub name: String,
    pub targets: Vec<TargetConfig>,
    /// How a tier's targets share traffic.
    #[serde(default, skip_serializing_if = "is_default")]
    pub strategy: crate::route_select::Strategy,
    /// Canary / A-B: the weighted choice made sticky per consumer or header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<crate::route_select::SplitConfig>,
    /// Guardrails (by name) applied to this model's requests and responses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<String>,
    /// A copy of a share of this model's requests goes to another model
    /// (translated for its provider); the client never sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::cache::ModelCacheConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// The model that gets the copies (a configured model name).
    pub model: String,
    /// Share of requests copied, 0.01 to 100.
    pub percent: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub provider: String,
    /// Upstream model name (the deployment name on Azure); defaults to the
    /// client's model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `max_tokens` sent when the client sets none (Anthropic requires one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Lower tiers are used first; a higher tier only when no lower one is usable.
    #[serde(default)]
    pub priority: u32,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body; larger ones get 413.
    #[serde(default = "default_max_body")]
    pub max_request_body_bytes: u64,
    /// Largest non-streamed response the gateway holds to check or
    /// translate (Envoy's buffer limit); a larger one is a 500.
    #[serde(default = "default_max_response")]
    pub max_response_body_bytes: u64,
}

pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 4 * 1024 * 1024;
pub const DEFAULT_MAX_RESPONSE_BODY_BYTES: u64 = 32 * 1024 * 1024;

fn default_max_body() -> u64 {
    DEFAULT_MAX_REQUEST_BODY_BYTES
}

fn default_max_response() -> u64 {
    DEFAULT_MAX_RESPONSE_BODY_BYTES
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            max_response_body_bytes: DEFAULT_MAX_RESPONSE_BODY_BYTES,
        }
    }
}

impl PluginConfig {
    /// Parses the JSON the filter receives; errors name the offending field.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        serde_json::from_slice(bytes).map_err(|e| ConfigError::new("configuration", e.to_string()))
    }
}
