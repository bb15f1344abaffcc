//! Serde shapes of the route-selection configuration, to embed in
//! `PluginConfig` (`model_map`, `routing_rules`) and `ModelConfig`
//! (`strategy`, `split`). Each is validated by the `compile` of its module:
//! [`super::mapping::ModelMap::compile`], [`super::rules::RuleSet::compile`],
//! [`super::pool::PoolPolicy::compile`].

use serde::{Deserialize, Serialize};

/// One `model_map` entry: exactly one matcher (`alias`, `prefix` or
/// `regex`), the configured model (pool) it maps to, and optionally the
/// upstream model name to send instead of the targets' own.
///
/// ```yaml
/// model_map:
///   - {alias: gpt4, to: gpt-4o}                     # exact name
///   - {prefix: "claude-", to: claude-pool}          # any name starting with "claude-"
///   - {prefix: "openai/", to: oa-pool, model: "$1"} # "openai/gpt-4o" -> upstream "gpt-4o"
///   - {regex: "^qwen-(\\w+)$", to: qwen-pool, model: "qwen-$1"}
/// ```
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct MapEntry {
    /// Matches this exact client model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Matches every client model name that starts with this (case
    /// sensitive). `$1` in `model` is the rest of the name after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Matches client model names this regex finds a match in (unanchored
    /// unless it says `^…$`; `regex-lite` syntax, ASCII classes). `$N` and
    /// `${name}` in `model` are its capture groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// The configured model (pool) the request goes to.
    pub to: String,
    /// Upstream model name sent instead of the targets' configured ones: a
    /// template where `$0` is the whole client name, `$N` / `${N}` /
    /// `${name}` a capture group, `$$` a literal `$`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One `routing_rules` entry: when every condition of `when` holds, the
/// request goes to the model (pool) `pool`. Rules are tried in order; the
/// first that matches wins.
///
/// ```yaml
/// routing_rules:
///   - name: short-prompts-to-cheap
///     when: {model: [chat], max_prompt_tokens: 500}
///     pool: chat-mini
///   - name: beta-testers
///     when: {header: {name: x-beta, equals: "1"}}
///     pool: chat-next
/// ```
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// 1-64 characters of `A-Z a-z 0-9 _ . -`, unique; for logs and metrics.
    pub name: String,
    /// Conditions, all of which must hold; absent or `{}` matches every
    /// request (only sensible as the last rule).
    #[serde(default, skip_serializing_if = "WhenConfig::is_empty")]
    pub when: WhenConfig,
    /// The configured model (pool) the request goes to.
    pub pool: String,
}

/// The conditions of a routing rule. An absent condition always holds; a
/// present one must hold.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct WhenConfig {
    /// Client model names; a trailing `*` makes an entry a prefix
    /// (`"gpt-*"`), a lone `*` matches any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Vec<String>>,
    /// Consumer names (from `consumers`); an anonymous request matches none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<Vec<String>>,
    /// One request header test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderMatchConfig>,
    /// Estimated prompt tokens at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u64>,
    /// Estimated prompt tokens at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_prompt_tokens: Option<u64>,
    /// At most this many messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<usize>,
    /// At least this many messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_messages: Option<usize>,
    /// Any of these substrings (case-insensitive) in the last user message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keywords: Option<Vec<String>>,
}

impl WhenConfig {
    /// No condition at all: matches every request.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A request-header test: exactly one of `equals`, `present`, `prefix`.
/// Values are compared case-sensitively; the name is case-insensitive.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatchConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// `true`: the header is sent (any value); `false`: it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// How a pool chooses among the usable targets of its current priority tier.
///
/// ```yaml
/// models:
///   - name: chat
///     strategy: least_in_flight   # weighted_random (default) | round_robin | least_in_flight | lowest_latency
///     targets: [...]
/// ```
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Random, proportional to the targets' weights (today's behaviour).
    #[default]
    WeightedRandom,
    /// Smooth weighted round-robin (nginx's), one sequence shared by every
    /// Envoy worker.
    RoundRobin,
    /// The target with the fewest requests in flight per unit of weight.
    LeastInFlight,
    /// The target with the lowest moving average of time to first byte,
    /// with warm-up and a little exploration.
    LowestLatency,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Self::WeightedRandom => "weighted_random",
            Self::RoundRobin => "round_robin",
            Self::LeastInFlight => "least_in_flight",
            Self::LowestLatency => "lowest_latency",
        }
    }
}

/// Sticky weighted split (canary / A-B): the weighted choice among a tier's
/// targets is made from a stable hash of the caller's identity instead of
/// at random, so one caller keeps its target while the weights stay.
///
/// ```yaml
/// models:
///   - name: chat
///     split: {sticky_by: consumer}          # or "header:x-user-id"
///     targets:
///       - {provider: openai, model: gpt-4o, weight: 95}
///       - {provider: openai, model: gpt-4.1, weight: 5}   # the canary
/// ```
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// `consumer` (the authenticated consumer's name) or `header:NAME`
    /// (that request header's value).
    pub sticky_by: String,
    /// Mixed into the hash; change it to reshuffle callers. Defaults to the
    /// model's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

/// The per-model routing options, for embedding as two explicit fields:
///
/// ```ignore
/// #[serde(default)] pub strategy: Strategy,
/// #[serde(default)] pub split: Option<SplitConfig>,
/// ```
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct PoolOptions {
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_shape() {
        let e: MapEntry =
            serde_json::from_str(r#"{"regex":"^q-(\\w+)$","to":"p","model":"q-$1"}"#).unwrap();
        assert_eq!(e.regex.as_deref(), Some("^q-(\\w+)$"));
        assert_eq!(e.model.as_deref(), Some("q-$1"));
        let r: RuleConfig = serde_json::from_str(
            r#"{"name":"r","pool":"p","when":{"model":["a*"],"consumer":["c"],
                "header":{"name":"x","present":true},"max_prompt_tokens":5,"min_prompt_tokens":1,
                "max_messages":3,"min_messages":1,"keywords":["k"]}}"#,
        )
        .unwrap();
        assert_eq!(r.when.header.unwrap().present, Some(true));
        let r: RuleConfig = serde_json::from_str(r#"{"name":"r","pool":"p"}"#).unwrap();
        assert!(r.when.is_empty());
        let p: PoolOptions = serde_json::from_str(
            r#"{"strategy":"lowest_latency","split":{"sticky_by":"consumer"}}"#,
        )
        .unwrap();
        assert_eq!(p.strategy, Strategy::LowestLatency);
        assert_eq!(PoolOptions::default().strategy, Strategy::WeightedRandom);
        for s in [
            Strategy::WeightedRandom,
            Strategy::RoundRobin,
            Strategy::LeastInFlight,
            Strategy::LowestLatency,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<Strategy>(&json).unwrap(), s);
        }
    }

    #[test]
    fn rejects_unknown_fields_and_values() {
        for json in [
            r#"{"alias":"a","to":"p","tu":"x"}"#,
            r#"{"alias":"a"}"#,
            r#"{"name":"r","pool":"p","when":{"modle":["a"]}}"#,
            r#"{"name":"r","pool":"p","when":{"header":{"name":"x","equal":"1"}}}"#,
            r#"{"sticky_by":"consumer","sticky":"x"}"#,
            r#"{"strategy":"fastest"}"#,
        ] {
            let map = serde_json::from_str::<MapEntry>(json).is_err();
            let rule = serde_json::from_str::<RuleConfig>(json).is_err();
            let split = serde_json::from_str::<SplitConfig>(json).is_err();
            let pool = serde_json::from_str::<PoolOptions>(json).is_err();
            assert!(map && rule && split && pool, "{json} was accepted");
        }
    }

    #[test]
    fn round_trips_without_noise() {
        let r = RuleConfig {
            name: "r".into(),
            when: WhenConfig::default(),
            pool: "p".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"name":"r","pool":"p"}"#
        );
        let e = MapEntry {
            alias: Some("a".into()),
            to: "p".into(),
            ..MapEntry::default()
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"alias":"a","to":"p"}"#);
        assert_eq!(serde_json::from_str::<MapEntry>(&json).unwrap(), e);
    }
}
