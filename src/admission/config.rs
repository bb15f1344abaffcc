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
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
    pub fail_open: bool,
    pub trusted_hops: u32,
    pub default_max_tokens: u32,
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
            let (measure, spec) = match (&r.requests, &r.tokens) {
                (Some(q), None) if q.limit > 0 => (Measure::Requests, spec(q.limit, q.per)),
                (None, Some(t)) if t.limit > 0 => (Measure::Tokens(t.count), spec(t.limit, t.per)),
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
            let dynamic = dims.iter().any(|d| !d.is_static());
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
                spec,
                slots: dynamic.then_some(r.slots),
            });
        }
        if c.default_max_tokens == 0 {
            return Err(ConfigError::new(
                "rate_limits.default_max_tokens",
                "must be at least 1",
            ));
        }
        Ok(Self {
            rules,
            fail_open: c.fail_open,
            trusted_hops: c.trusted_hops,
            default_max_tokens: c.default_max_tokens,
        })
    }
}
