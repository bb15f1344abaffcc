//! `scope: cluster` rules. The filter decides, per request, which counter
//! each rule charges (its descriptor key) and how much; Envoy's rate-limit
//! filter, rendered after this one, sends that to the Rate Limit Service,
//! which keeps the counters in Redis for every replica. The values travel
//! as stream values (Envoy filter state `wasm.<name>`), read by the rendered
//! rate-limit actions: a rule's key at admission, the tokens to reserve,
//! and, when the response ends, the tokens really used.

use super::config::{Measure, Rule, Rules, TokenCount};
use super::{dim_value, reserve, settled, Facts};
use crate::consumers::Consumers;
use crate::ratelimit::{Admission, Period};
use crate::wire::hub::Usage;
use sha2::{Digest, Sha256};

/// The rate-limit domain the filter's descriptors belong to.
pub const DOMAIN: &str = "llm-gateway";
/// Set by the Rate Limit Service on every answer: the tightest cluster
/// request and token limits, `LIMIT,REMAINING,RESET_MS`. The filter merges
/// them into the `x-ratelimit-*` headers and removes them.
pub const REQUESTS_HEADER: &str = "x-llm-gateway-cluster-requests";
pub const TOKENS_HEADER: &str = "x-llm-gateway-cluster-tokens";
/// Set by the Rate Limit Service on a refusal: the rule that refused.
pub const RULE_HEADER: &str = "x-llm-gateway-cluster-rule";
/// Key of the service's dynamic metadata holding each token rule's
/// reservation id, read back by the actions when the stream is done.
pub const RESERVATIONS_METADATA: &str = "llmgw_reservations";

/// Stream value holding a rule's descriptor key.
pub fn key_value(rule: &str) -> String {
    format!("llmgw.rl.{rule}")
}

fn count_name(count: TokenCount) -> &'static str {
    match count {
        TokenCount::Input => "input",
        TokenCount::Output => "output",
        TokenCount::Total => "total",
    }
}

/// Stream value holding the tokens a request reserves for rules counting
/// `count`.
pub fn hits_value(count: TokenCount) -> String {
    format!("llmgw.rl.hits.{}", count_name(count))
}

/// Stream value holding the tokens a request used, for rules counting
/// `count`, set when its response ends.
pub fn used_value(count: TokenCount) -> String {
    format!("llmgw.rl.used.{}", count_name(count))
}

/// Longest dimension value sent as written; longer or unusual values (a
/// client's header, say) are sent as their digest.
const MAX_PLAIN_VALUE: usize = 128;

fn plain(v: &str) -> bool {
    v.len() <= MAX_PLAIN_VALUE
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'|' && b != b'%')
}

/// One descriptor value for a rule's dimension values: readable when it
/// can be, never ambiguous, never longer than a digest.
pub fn descriptor_key(values: &[String]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let parts: Vec<String> = values
        .iter()
        .map(|v| {
            if plain(v) {
                v.clone()
            } else {
                let digest = Sha256::digest(v.as_bytes());
                format!("%{}", crate::secrets::signature::hex(&digest[..16]))
            }
        })
        .collect();
    parts.join("|")
}

/// What an admitted request asked of the cluster rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterHold {
    /// Tokens reserved, per count some cluster token rule uses.
    pub reserved: Vec<(TokenCount, u64)>,
}

/// The descriptor entry naming a consumer quota's period (`day`, `month`).
pub const QUOTA_ENTRY: &str = "quota";
/// Stream value holding the consumer whose quota a request charges.
pub const QUOTA_CONSUMER_VALUE: &str = "llmgw.rl.quota.consumer";

/// Stream value holding the UTC window (day or month) a quota charges:
/// each calendar window is its own counter.
pub fn quota_value(period: Period) -> String {
    format!("llmgw.rl.quota.{}", period.name())
}

/// The stream values that make Envoy's rate-limit filter charge this
/// request to every cluster rule (and, with `cluster.quotas`, to its
/// consumer's quotas), and what the request holds; `None` when nothing is
/// counted in the cluster.
pub fn plan(
    rules: &Rules,
    consumers: &Consumers,
    f: &Facts,
    now_ns: u64,
) -> Option<(Vec<(String, String)>, ClusterHold)> {
    let quotas: Vec<(Period, u64)> = match (rules.cluster_quotas(), f.consumer) {
        (true, Some(name)) => consumers
            .all()
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.quotas().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let cluster: Vec<&Rule> = rules.cluster().collect();
    if cluster.is_empty() && quotas.is_empty() {
        return None;
    }
    let mut values = Vec::with_capacity(cluster.len() + quotas.len() + 7);
    let mut hold = ClusterHold::default();
    let reserve_for = |count: TokenCount, hold: &mut ClusterHold| {
        if !hold.reserved.iter().any(|(c, _)| *c == count) {
            hold.reserved
                .push((count, reserve(count, f, rules.default_max_tokens)));
        }
    };
    for rule in &cluster {
        let dims: Vec<String> = rule.dims.iter().map(|d| dim_value(d, f)).collect();
        values.push((key_value(&rule.name), descriptor_key(&dims)));
        if let Measure::Tokens(count) = rule.measure {
            reserve_for(count, &mut hold);
        }
    }
    if let (false, Some(name)) = (quotas.is_empty(), f.consumer) {
        values.push((QUOTA_CONSUMER_VALUE.into(), name.to_string()));
        for (period, _) in &quotas {
            values.push((quota_value(*period), period.window(now_ns).0.to_string()));
        }
        // Quotas count every token, like the instance ones.
        reserve_for(TokenCount::Total, &mut hold);
    }
    for (count, amount) in &hold.reserved {
        values.push((hits_value(*count), amount.to_string()));
        // Until the response says otherwise, nothing was used: a request
        // that never reaches a provider gives its reservation back.
        values.push((used_value(*count), "0".into()));
    }
    Some((values, hold))
}

/// The stream values that settle the cluster token reservations when the
/// response ends: the tokens used, or — for a success that reported no
/// usage — the reservation; a failure without usage uses nothing.
pub fn settlement(
    hold: &ClusterHold,
    usage: Option<&Usage>,
    success: bool,
) -> Vec<(String, String)> {
    hold.reserved
        .iter()
        .map(|(count, reserved)| {
            let amount = settled(*count, *reserved, usage, success);
            (used_value(*count), amount.to_string())
        })
        .collect()
}

/// Parses `LIMIT,REMAINING,RESET_MS` from the Rate Limit Service.
pub fn parse_status(v: &str) -> Option<Admission> {
    let mut it = v.split(',').map(|p| p.trim().parse::<u64>());
    let (Some(Ok(limit)), Some(Ok(remaining)), Some(Ok(reset)), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    Some(Admission {
        admitted: true,
        never: false,
        limit,
        remaining: remaining.min(limit),
        reset_after_ms: reset,
        retry_after_ms: 0,
    })
}

/// Writes `LIMIT,REMAINING,RESET_MS` (the service side of `parse_status`).
pub fn format_status(limit: u64, remaining: u64, reset_ms: u64) -> String {
    format!("{limit},{remaining},{reset_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_readable_or_digests() {
        assert_eq!(descriptor_key(&[]), "-");
        assert_eq!(
            descriptor_key(&["team-a".into(), "gpt-4o".into()]),
            "team-a|gpt-4o"
        );
        let odd = descriptor_key(&["a|b".into()]);
        assert!(odd.starts_with('%') && odd.len() == 33, "{odd}");
        assert_ne!(odd, descriptor_key(&["a".into(), "b".into()]));
        let long = "x".repeat(MAX_PLAIN_VALUE + 1);
        assert_eq!(descriptor_key(&[long]).len(), 33);
        assert!(descriptor_key(&["ünï".into()]).starts_with('%'));
    }

    #[test]
    fn status_round_trips_and_rejects_garbage() {
        let a = parse_status(&format_status(60, 12, 30_000)).expect("parses");
        assert_eq!((a.limit, a.remaining, a.reset_after_ms), (60, 12, 30_000));
        assert_eq!(parse_status("60,99,1").map(|a| a.remaining), Some(60));
        for bad in ["", "1,2", "1,2,3,4", "a,b,c", "-1,2,3"] {
            assert!(parse_status(bad).is_none(), "{bad}");
        }
    }
}
