//! The gateway's `scope: cluster` rules as limitador limits.
//!
//! Each rule is one limit in the `llm-gateway` namespace: it applies to the
//! descriptors whose `rule` entry names it, and counts per `key` entry (the
//! rule's dimension values, which the filter decided). Windows are fixed
//! (limitador's): `limit` per `per`, starting at the first hit.

use limitador::limit::{Expression, Limit, Predicate};
use llm_gateway::admission::cluster::DOMAIN;
use llm_gateway::admission::config::{Measure, RateLimitsConfig, Rule, Rules};
use std::collections::HashMap;

/// A cluster rule as the service needs it.
#[derive(Debug, Clone)]
pub struct ClusterRule {
    pub name: String,
    pub tokens: bool,
    pub limit: u64,
    pub seconds: u64,
    pub per: &'static str,
}

/// Reads `rate_limits` from the gateway's YAML and compiles it with the
/// filter's own rules (same validation, same errors).
pub fn load(yaml: &str) -> Result<Vec<ClusterRule>, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).map_err(|e| format!("config: {e}"))?;
    let section = doc
        .get("rate_limits")
        .cloned()
        .ok_or("config: no rate_limits section")?;
    let config: RateLimitsConfig =
        serde_yaml::from_value(section).map_err(|e| format!("config: rate_limits: {e}"))?;
    let rules = Rules::compile(&config).map_err(|e| format!("config: {e}"))?;
    let cluster: Vec<ClusterRule> = rules.cluster().map(from_rule).collect();
    if cluster.is_empty() {
        return Err("config: no rate_limits rule has scope: cluster".into());
    }
    Ok(cluster)
}

fn from_rule(r: &Rule) -> ClusterRule {
    let seconds = r.per.seconds() as u64;
    ClusterRule {
        name: r.name.clone(),
        tokens: matches!(r.measure, Measure::Tokens(_)),
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

/// The limitador limit of a rule. Rule names are `[A-Za-z0-9_-]`, safe
/// inside a CEL string.
pub fn limit(rule: &ClusterRule) -> Result<Limit, String> {
    let condition = Predicate::parse(format!("descriptors[0].rule == '{}'", rule.name))
        .map_err(|e| format!("rule {}: {e}", rule.name))?;
    let variable =
        Expression::parse("descriptors[0].key").map_err(|e| format!("rule {}: {e}", rule.name))?;
    let mut limit = Limit::with_id(
        rule.name.clone(),
        DOMAIN,
        rule.limit,
        rule.seconds,
        [condition],
        [variable],
    );
    limit.set_name(rule.name.clone());
    Ok(limit)
}

pub fn by_name(rules: &[ClusterRule]) -> HashMap<String, ClusterRule> {
    rules.iter().map(|r| (r.name.clone(), r.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
providers: []
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
            (rules[0].limit, rules[0].seconds, rules[0].tokens),
            (60, 60, false)
        );
        assert_eq!(
            (rules[1].limit, rules[1].seconds, rules[1].tokens),
            (1000, 3600, true)
        );
        let l = limit(&rules[0]).expect("limit");
        assert_eq!(l.max_value(), 60);
        assert_eq!(l.seconds(), 60);
        assert!(l.has_variable("descriptors"));
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
