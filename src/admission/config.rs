//! Rate-limit rules as users write them, and their compiled form.

use crate::error::ConfigError;
use crate::ratelimit::BucketSpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Admit (true) or refuse (false) when shared data stays contended
    /// after the bounded CAS retries.
    #[serde(default)]
    pub fail_open: bool,
    /// Proxies in front of Envoy that append to `x-forwarded-for`; the
    /// client is the entry this many from the right. 0 trusts no header and
    /// uses the connection's peer address.
    #[serde(default)]
    pub trusted_hops: u32,
    /// Output tokens reserved when a request sets no `max_tokens`.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u32,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// The Rate Limit Service that keeps `scope: cluster` rules for every
    /// replica (read by the renderer; the filter only needs to know it is
    /// there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The Rate Limit Service's gRPC address, `HOST:PORT`.
    pub service: String,
    /// How long Envoy waits for the service before `failure_mode` applies.
    #[serde(default = "default_cluster_timeout_ms")]
    pub timeout_ms: u32,
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// Consumer quotas (`consumers[].quota`) counted for every replica too,
    /// per UTC day and month, instead of per instance.
    #[serde(default)]
    pub quotas: bool,
}

fn default_cluster_timeout_ms() -> u32 {
    100
}

/// What a request gets when the Rate Limit Service (or its Redis) does not
/// answer in time.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Refuse with a 503 in the client's protocol.
    #[default]
    Deny,
    /// Admit; only the instance rules apply.
    Allow,
}

/// Where a rule's counters live.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This Envoy's shared data: exact across its workers, per replica.
    #[default]
    Instance,
    /// The Rate Limit Service's Redis: one count for every replica.
    Cluster,
}

fn default_max_tokens() -> u32 {
    1024
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            fail_open: false,
            trusted_hops: 0,
            default_max_tokens: default_max_tokens(),
            rules: Vec::new(),
            cluster: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// Dimensions the limit is counted per: `consumer`, `model`, `route`
    /// (the API: chat or embeddings), `client_ip`, `header:NAME`; none = one
    /// global limit.
    #[serde(default)]
    pub by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<RateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenRateConfig>,
    /// Buckets for client-controlled dimensions (IP, header): a flood of
    /// distinct values shares this many, so memory stays bounded.
    #[serde(default = "default_slots")]
    pub slots: u32,
    #[serde(default, skip_serializing_if = "is_instance")]
    pub scope: Scope,
}

fn is_instance(s: &Scope) -> bool {
    *s == Scope::Instance
}

fn default_slots() -> u32 {
    1024
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub limit: u64,
    pub per: Per,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenRateConfig {
    pub limit: u64,
    pub per: Per,
    /// Which tokens count: `input`, `output` or `total` (default).
    #[serde(default)]
    pub count: TokenCount,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Second,
    Minute,
    Hour,
    Day,
}

impl Per {
    pub fn seconds(self) -> f64 {
        match self {
            Self::Second => 1.0,
            Self::Minute => 60.0,
            Self::Hour => 3600.0,
            Self::Day => 86400.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TokenCount {
    Input,
    Output,
    #[default]
    Total,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Consumer,
    Model,
    Route,
    ClientIp,
    Header(String),
}

impl Dim {
    fn is_static(&self) -> bool {
        matches!(self, Self::Consumer | Self::Model | Self::Route)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    Requests,
    Tokens(TokenCount),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub dims: Vec<Dim>,
    pub measure: Measure,
    pub spec: BucketSpec,
    /// Some(n) when a dimension is client-controlled: keys hash into n slots.
    pub slots: Option<u32>,
    pub scope: Scope,
    /// The per-window limit as written (cluster rules count fixed windows).
    pub limit: u64,
    pub per: Per,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
    pub fail_open: bool,
    pub trusted_hops: u32,
    pub default_max_tokens: u32,
    /// Set when a Rate Limit Service keeps the `scope: cluster` rules.
    pub cluster: Option<ClusterConfig>,
}

impl Rules {
    pub fn instance(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.scope == Scope::Instance)
    }

    pub fn cluster(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.scope == Scope::Cluster)
    }

    /// Whether consumer quotas are kept by the Rate Limit Service.
    pub fn cluster_quotas(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.quotas)
    }
}

fn spec(limit: u64, per: Per) -> BucketSpec {
    BucketSpec {
        capacity: limit,
        refill_per_sec: limit as f64 / per.seconds(),
    }
}

impl Rules {
    pub fn compile(c: &RateLimitsConfig) -> Result<Self, ConfigError> {
        let mut rules = Vec::new();
        for (i, r) in c.rules.iter().enumerate() {
            let field = format!("rate_limits.rules[{i}]");
            let valid = !r.name.is_empty()
                && r.name.len() <= 48
                && r.name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'));
            if !valid {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    format!(
                        "'{}' must be 1-48 characters of a-z, A-Z, 0-9, '-', '_'",
                        r.name
                    ),
                ));
            }
            if c.rules[..i].iter().any(|o| o.name == r.name) {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    format!("duplicate rule name '{}'", r.name),
                ));
            }
            let mut dims = Vec::with_capacity(r.by.len());
            for (j, d) in r.by.iter().enumerate() {
                let dim = match d.as_str() {
                    "consumer" => Dim::Consumer,
                    "model" => Dim::Model,
                    "route" => Dim::Route,
                    "client_ip" => Dim::ClientIp,
                    other => match other.strip_prefix("header:") {
                        Some(h) if crate::providers::is_header_name(h) => {
                            Dim::Header(h.to_ascii_lowercase())
                        }
                        _ => {
                            return Err(ConfigError::new(
                                format!("{field}.by[{j}]"),
                                format!("'{d}' is not a dimension; use consumer, model, route, client_ip or header:NAME"),
                            ))
                        }
                    },
                };
                dims.push(dim);
            }
            let (measure, limit, per) = match (&r.requests, &r.tokens) {
                (Some(q), None) if q.limit > 0 => (Measure::Requests, q.limit, q.per),
                (None, Some(t)) if t.limit > 0 => (Measure::Tokens(t.count), t.limit, t.per),
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        field,
                        "set either 'requests' or 'tokens', not both (use two rules)",
                    ))
                }
                (None, None) => {
                    return Err(ConfigError::new(field, "needs 'requests' or 'tokens'"))
                }
                _ => {
                    return Err(ConfigError::new(
                        format!("{field}.limit"),
                        "must be at least 1",
                    ))
                }
            };
            if r.scope == Scope::Cluster && c.cluster.is_none() {
                return Err(ConfigError::new(
                    format!("{field}.scope"),
                    "'cluster' needs rate_limits.cluster (the Rate Limit Service's address)",
                ));
            }
            // Cluster counters are Redis keys that expire with their window:
            // no slots needed.
            let dynamic = r.scope == Scope::Instance && dims.iter().any(|d| !d.is_static());
            if dynamic && !(1..=65536).contains(&r.slots) {
                return Err(ConfigError::new(
                    format!("{field}.slots"),
                    "must be between 1 and 65536",
                ));
            }
            rules.push(Rule {
                name: r.name.clone(),
                dims,
                measure,
                spec: spec(limit, per),
                slots: dynamic.then_some(r.slots),
                scope: r.scope,
                limit,
                per,
            });
        }
        if c.default_max_tokens == 0 {
            return Err(ConfigError::new(
                "rate_limits.default_max_tokens",
                "must be at least 1",
            ));
        }
        if let Some(cl) = &c.cluster {
            check_cluster(cl)?;
        }
        Ok(Self {
            rules,
            fail_open: c.fail_open,
            trusted_hops: c.trusted_hops,
            default_max_tokens: c.default_max_tokens,
            cluster: c.cluster.clone(),
        })
    }
}

fn check_cluster(c: &ClusterConfig) -> Result<(), ConfigError> {
    let port_ok = c
        .service
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        return Err(ConfigError::new(
            "rate_limits.cluster.service",
            format!("'{}' must be HOST:PORT", c.service),
        ));
    }
    if !(1..=60_000).contains(&c.timeout_ms) {
        return Err(ConfigError::new(
            "rate_limits.cluster.timeout_ms",
            "must be between 1 and 60000",
        ));
    }
    Ok(())
}
