//! The gateway's `scope: cluster` rules (and, with `cluster.quotas`, its
//! consumers' quotas) as limitador limits.
//!
//! A rule is one limit applying to the descriptors whose `rule` entry names
//! it, counted per `key` entry (the rule's dimension values, which the
//! filter decided); its windows are fixed (limitador's): `limit` per `per`,
//! from the window's first hit. A consumer quota is one limit per consumer
//! and period, applying to descriptors with `quota` = the period and
//! `consumer` = the consumer, counted per `key` = the UTC day or month the
//! filter named, so each calendar window is its own counter.

use limitador::limit::{Expression, Limit, Predicate};
use llm_gateway::admission::cluster::DOMAIN;
use llm_gateway::admission::config::{Measure, RateLimitsConfig, Rule, Rules};
use llm_gateway::consumers::ConsumerConfig;
use llm_gateway::ratelimit::Period;
use std::collections::HashMap;

/// What a limit counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Rule { tokens: bool },
    Quota { period: Period, consumer: String },
}

/// A cluster limit as the service needs it.
#[derive(Debug, Clone)]
pub struct ClusterRule {
    /// The rule's name, or `quota_day` / `quota_month`.
    pub name: String,
    pub kind: Kind,
    pub limit: u64,
    pub seconds: u64,
    pub per: &'static str,
}

impl ClusterRule {
    pub fn tokens(&self) -> bool {
        matches!(self.kind, Kind::Rule { tokens: true } | Kind::Quota { .. })
    }

    /// How a descriptor names this limit.
    pub fn lookup(&self) -> String {
        match &self.kind {
            Kind::Rule { .. } => lookup_rule(&self.name),
            Kind::Quota { period, consumer } => lookup_quota(period.name(), consumer),
        }
    }

    /// Key of its reservation id in the dynamic metadata.
    pub fn metadata_key(&self) -> String {
        match &self.kind {
            Kind::Rule { .. } => format!("rule:{}", self.name),
            Kind::Quota { period, .. } => format!("quota:{}", period.name()),
        }
    }
}

pub fn lookup_rule(name: &str) -> String {
    format!("rule:{name}")
}

pub fn lookup_quota(period: &str, consumer: &str) -> String {
    format!("quota:{period}:{consumer}")
}

/// Reads `rate_limits` (and `consumers`, for cluster quotas) from the
/// gateway's YAML and compiles them with the filter's own code (same
/// validation, same errors).
pub fn load(yaml: &str) -> Result<Vec<ClusterRule>, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).map_err(|e| format!("config: {e}"))?;
    let section = doc
        .get("rate_limits")
        .cloned()
        .ok_or("config: no rate_limits section")?;
    let config: RateLimitsConfig =
        serde_yaml::from_value(section).map_err(|e| format!("config: rate_limits: {e}"))?;
    let rules = Rules::compile(&config).map_err(|e| format!("config: {e}"))?;
    let mut out: Vec<ClusterRule> = rules.cluster().map(from_rule).collect();
    if rules.cluster_quotas() {
        let consumers: Vec<ConsumerConfig> = match doc.get("consumers") {
            Some(v) => {
                serde_yaml::from_value(v.clone()).map_err(|e| format!("config: consumers: {e}"))?
            }
            None => Vec::new(),
        };
        for c in &consumers {
            let safe = !c.name.is_empty()
                && c.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !safe {
                return Err(format!(
                    "config: consumers: '{}' is not a valid consumer name",
                    c.name
                ));
            }
            let Some(q) = &c.quota else { continue };
            for (period, limit) in [
                (Period::Day, q.tokens_per_day),
                (Period::Month, q.tokens_per_month),
            ] {
                if let Some(limit) = limit {
                    out.push(ClusterRule {
                        name: format!("quota_{}", period.name()),
                        kind: Kind::Quota {
                            period,
                            consumer: c.name.clone(),
                        },
                        limit,
                        // Longer than any calendar window: the key changes
                        // with the window; this only cleans up.
                        seconds: match period {
                            Period::Day => 86_400,
                            Period::Month => 31 * 86_400,
                        },
                        per: period.name(),
                    });
                }
            }
        }
    }
    if out.is_empty() {
        return Err("config: no rate_limits rule has scope: cluster (and no cluster quota)".into());
    }
    Ok(out)
}

fn from_rule(r: &Rule) -> ClusterRule {
    let seconds = r.per.seconds() as u64;
    ClusterRule {
        name: r.name.clone(),
        kind: Kind::Rule {
            tokens: matches!(r.measure, Measure::Tokens(_)),
        },
        limit: r.limit,
        seconds,
        per: match seconds {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            _ => "day",
        },
    }
}

/// The limitador limit. Rule and consumer names are `[A-Za-z0-9_.-]`
/// (validated by the filter's config code), safe inside a CEL string.
pub fn limit(rule: &ClusterRule) -> Result<Limit, String> {
    let parse = |c: String| Predicate::parse(c).map_err(|e| format!("rule {}: {e}", rule.name));
    let conditions = match &rule.kind {
        Kind::Rule { .. } => vec![parse(format!("descriptors[0].rule == '{}'", rule.name))?],
        Kind::Quota { period, consumer } => vec![
            parse(format!("descriptors[0].quota == '{}'", period.name()))?,
            parse(format!("descriptors[0].consumer == '{consumer}'"))?,
        ],
    };
    let variable =
        Expression::parse("descriptors[0].key").map_err(|e| format!("rule {}: {e}", rule.name))?;
    let mut limit = Limit::with_id(
        rule.lookup(),
        DOMAIN,
        rule.limit,
        rule.seconds,
        conditions,
        [variable],
    );
    limit.set_name(rule.name.clone());
    Ok(limit)
}

pub fn by_lookup(rules: &[ClusterRule]) -> HashMap<String, ClusterRule> {
    rules.iter().map(|r| (r.lookup(), r.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
providers: []
consumers:
  - {name: team-a, api_keys: ["env:KEY_A"], quota: {tokens_per_day: 500}}
  - {name: team-b, api_keys: ["env:KEY_B"]}
rate_limits:
  cluster: {service: "127.0.0.1:8081"}
  rules:
    - {name: local, by: [consumer], requests: {limit: 5, per: second}}
    - {name: rpm, scope: cluster, by: [consumer, model], requests: {limit: 60, per: minute}}
    - {name: tpm, scope: cluster, by: [consumer], tokens: {limit: 1000, per: hour, count: output}}
"#;

    #[test]
    fn only_cluster_rules_become_limits() {
        let rules = load(CONFIG).expect("loads");
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["rpm", "tpm"]);
        assert_eq!(
            (rules[0].limit, rules[0].seconds, rules[0].tokens()),
            (60, 60, false)
        );
        assert_eq!(
            (rules[1].limit, rules[1].seconds, rules[1].tokens()),
            (1000, 3600, true)
        );
        let l = limit(&rules[0]).expect("limit");
        assert_eq!(l.max_value(), 60);
        assert_eq!(l.seconds(), 60);
        assert!(l.has_variable("descriptors"));
    }

    #[test]
    fn cluster_quotas_become_one_limit_per_consumer_and_period() {
        let with = CONFIG.replace(
            r#"service: "127.0.0.1:8081""#,
            r#"service: "127.0.0.1:8081", quotas: true"#,
        );
        let rules = load(&with).expect("loads");
        let quota = rules
            .iter()
            .find(|r| r.name == "quota_day")
            .expect("team-a's day quota");
        assert_eq!(
            quota.kind,
            Kind::Quota {
                period: Period::Day,
                consumer: "team-a".into()
            }
        );
        assert_eq!(
            (quota.limit, quota.lookup().as_str()),
            (500, "quota:day:team-a")
        );
        assert_eq!(rules.len(), 3);
        assert_eq!(limit(quota).expect("limit").conditions().len(), 2);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = CONFIG.replace("127.0.0.1:8081", "nowhere");
        assert!(load(&bad)
            .unwrap_err()
            .contains("rate_limits.cluster.service"));
        let none = "rate_limits:\n  rules: []\n";
        assert!(load(none).unwrap_err().contains("scope: cluster"));
        let typo = CONFIG.replace(
            "scope: cluster, by: [consumer, model]",
            "scope: galaxy, by: [consumer]",
        );
        assert!(load(&typo).unwrap_err().contains("galaxy"));
    }
}
