//! `scope: cluster` rate limits: Envoy's global rate-limit filter after the
//! Wasm filter, and the gRPC cluster of the Rate Limit Service.
//!
//! The filter decides each rule's descriptor key and amounts and leaves them
//! in filter state (`wasm.llmgw.rl.*`); the actions below read them. Per
//! rule, one descriptor at admission (`rule`, `key`; a token rule reserves
//! its estimate) and, for token rules, one when the stream is done
//! (`rule`, `key`, `reservation` from the service's dynamic metadata) that
//! commits the tokens used. A rule whose filter state is missing (a request
//! the filter answered itself, a cache hit) sends nothing.

use crate::gateway_file::GatewayFile;
use llm_gateway::admission::cluster::{
    hits_value, key_value, quota_value, used_value, DOMAIN, QUOTA_CONSUMER_VALUE, QUOTA_ENTRY,
    RESERVATIONS_METADATA as RESERVATIONS,
};
use llm_gateway::admission::config::{ClusterConfig, FailureMode, Measure, Rule, TokenCount};
use llm_gateway::ratelimit::Period;
use serde_json::{json, Value};

/// The Rate Limit Service's cluster.
pub const CLUSTER: &str = "llmgw_ratelimit";
/// Dynamic metadata namespace of the rate-limit filter (Envoy's default).
const METADATA_NAMESPACE: &str = "envoy.filters.http.ratelimit";

fn settings(gw: &GatewayFile) -> Option<(&ClusterConfig, Vec<&Rule>, Vec<Period>)> {
    let rules = &gw.gateway.rules;
    let c = rules.cluster.as_ref()?;
    let cluster: Vec<&Rule> = rules.cluster().collect();
    let mut periods = Vec::new();
    if c.quotas {
        for consumer in gw.gateway.consumers.all() {
            for (p, _) in consumer.quotas() {
                if !periods.contains(&p) {
                    periods.push(p);
                }
            }
        }
    }
    (!cluster.is_empty() || !periods.is_empty()).then_some((c, cluster, periods))
}

fn filter_state(key: &str) -> Value {
    named_filter_state("key", key)
}

fn named_filter_state(entry: &str, key: &str) -> Value {
    json!({"extension": {
        "name": entry,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.FilterStateInput",
            "key": format!("wasm.{key}")
        }
    }})
}

fn rule_entry(rule: &Rule) -> Value {
    json!({"generic_key": {"descriptor_key": "rule", "descriptor_value": rule.name}})
}

fn plain(value: &str) -> String {
    format!("%FILTER_STATE(wasm.{value}:PLAIN)%")
}

fn descriptors(rule: &Rule) -> Vec<Value> {
    let key = filter_state(&key_value(&rule.name));
    match rule.measure {
        Measure::Requests => vec![json!({"actions": [rule_entry(rule), key]})],
        Measure::Tokens(count) => vec![
            json!({
                "actions": [rule_entry(rule), key.clone()],
                "hits_addend": {"format": plain(&hits_value(count))}
            }),
            json!({
                "apply_on_stream_done": true,
                "actions": [rule_entry(rule), key, {"metadata": {
                    "descriptor_key": "reservation",
                    "metadata_key": {"key": METADATA_NAMESPACE, "path": [
                        {"key": RESERVATIONS}, {"key": format!("rule:{}", rule.name)}
                    ]},
                    "default_value": "-",
                    "source": "DYNAMIC"
                }}],
                "hits_addend": {"format": plain(&used_value(count))}
            }),
        ],
    }
}

/// A consumer quota's descriptors: its period, the consumer, the UTC
/// window; all its tokens reserved, then settled when the stream is done.
fn quota_descriptors(period: Period) -> Vec<Value> {
    let entries = || {
        vec![
            json!({"generic_key": {"descriptor_key": QUOTA_ENTRY, "descriptor_value": period.name()}}),
            named_filter_state("consumer", QUOTA_CONSUMER_VALUE),
            filter_state(&quota_value(period)),
        ]
    };
    let mut settle = entries();
    settle.push(json!({"metadata": {
        "descriptor_key": "reservation",
        "metadata_key": {"key": METADATA_NAMESPACE, "path": [
            {"key": RESERVATIONS}, {"key": format!("quota:{}", period.name())}
        ]},
        "default_value": "-",
        "source": "DYNAMIC"
    }}));
    vec![
        json!({"actions": entries(), "hits_addend": {"format": plain(&hits_value(TokenCount::Total))}}),
        json!({
            "apply_on_stream_done": true,
            "actions": settle,
            "hits_addend": {"format": plain(&used_value(TokenCount::Total))}
        }),
    ]
}

fn seconds(ms: u32) -> String {
    format!("{:.3}s", f64::from(ms) / 1000.0)
}

/// The rate-limit filter, placed right after the Wasm filter; None when no
/// rule has cluster scope.
pub fn filter(gw: &GatewayFile) -> Option<Value> {
    let (c, rules, periods) = settings(gw)?;
    let mut rate_limits: Vec<Value> = rules.iter().flat_map(|r| descriptors(r)).collect();
    rate_limits.extend(periods.into_iter().flat_map(quota_descriptors));
    Some(json!({
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": DOMAIN,
            "stat_prefix": "llmgw_cluster",
            "timeout": seconds(c.timeout_ms),
            "failure_mode_deny": c.failure_mode == FailureMode::Deny,
            "status_on_error": {"code": 503},
            // (No `enable_x_ratelimit_headers`: the filter writes
            // `x-ratelimit-*` from the service's answer and its own rules.)
            "enable_retry_after_header": true,
            "rate_limit_service": {
                "grpc_service": {"envoy_grpc": {"cluster_name": CLUSTER}, "timeout": seconds(c.timeout_ms)},
                "transport_api_version": "V3"
            },
            "rate_limits": rate_limits
        }
    }))
}

/// The Rate Limit Service's gRPC cluster; None without cluster rules.
pub fn cluster(gw: &GatewayFile) -> Option<Value> {
    let (c, _, _) = settings(gw)?;
    let (host, port) = c.service.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    Some(json!({
        "name": CLUSTER,
        "type": if is_ip { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": seconds(c.timeout_ms.max(250)),
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        },
        "load_assignment": {
            "cluster_name": CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": port}
            }}}]}]
        }
    }))
}
