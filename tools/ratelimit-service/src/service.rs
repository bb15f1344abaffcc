//! Envoy's `ShouldRateLimit`, answered with limitador.
//!
//! Admission (descriptors without a `reservation` entry): every descriptor
//! reserves its hits (1 for a request rule, the filter's estimate for a
//! token rule); all or nothing — a refusal releases what the call already
//! reserved. Request units are committed at once; token reservations stay
//! until the stream is done, their ids handed to Envoy as dynamic metadata.
//! Settlement (a `reservation` entry, sent when the stream is done): the
//! tokens really used are committed and the reservation released.
//!
//! Reservations are limitador's one atomic check-and-take on Redis (one
//! script), so replicas never admit more than a limit together; its plain
//! check-and-update reads and then writes, which two replicas can race.

use crate::rules::{self, ClusterRule, Kind};
use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::{value::Kind as ValueKind, Struct, Value};
use limitador::counter::Counter;
use limitador::limit::Context;
use limitador::reservation::{ReservationId, ReserveResult};
use limitador::AsyncRateLimiter;
use llm_gateway::admission::cluster::{
    format_status, REQUESTS_HEADER, RESERVATIONS_METADATA as RESERVATIONS, RULE_HEADER,
    TOKENS_HEADER,
};
use llm_gateway::admission::reset_string;
use llm_gateway::ratelimit::Period;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tonic::{Request, Response, Status};

const NO_RESERVATION: &str = "-";
const MAX_DESCRIPTORS: usize = 64;
const MAX_VALUE_BYTES: usize = 512;
const RECHECK_AFTER: Duration = Duration::from_millis(2);

pub struct Limits {
    pub limiter: AsyncRateLimiter,
    /// By `ClusterRule::lookup`; swapped whole when the config file changes.
    pub rules: RwLock<HashMap<String, ClusterRule>>,
    pub namespace: limitador::limit::Namespace,
    pub reservation_ttl: Duration,
    /// Bound on each Redis round trip: a hung Redis fails the call (Envoy
    /// then applies its failure mode) instead of piling up waiters.
    pub store_timeout: Duration,
    pub stats: Arc<Stats>,
}

#[derive(Default)]
pub struct Stats {
    pub ok: AtomicU64,
    pub over_limit: AtomicU64,
    pub settled: AtomicU64,
    pub errors: AtomicU64,
    /// Descriptors naming a limit this service does not have (the filter's
    /// config ran ahead of the service's): let through, like
    /// envoyproxy/ratelimit does with descriptors it has no rule for.
    pub unknown: AtomicU64,
}

/// One descriptor as the filter's actions build it: a rule's (`rule`,
/// `key`) or a consumer quota's (`quota`, `consumer`, `key`); `reservation`
/// when the stream is done.
#[derive(Debug, PartialEq)]
pub struct Ask<'a> {
    pub rule: Option<&'a str>,
    pub quota: Option<&'a str>,
    pub consumer: Option<&'a str>,
    pub key: &'a str,
    pub reservation: Option<&'a str>,
    pub hits: u64,
}

impl Ask<'_> {
    /// The limit it names (see `rules::ClusterRule::lookup`).
    pub fn lookup(&self) -> String {
        match (self.rule, self.quota, self.consumer) {
            (Some(rule), _, _) => rules::lookup_rule(rule),
            (None, Some(period), Some(consumer)) => rules::lookup_quota(period, consumer),
            _ => String::new(),
        }
    }
}

/// Reads a descriptor; `Err` names what is wrong (the caller answers
/// INVALID_ARGUMENT, which Envoy treats as a service error).
pub fn parse(d: &RateLimitDescriptor, request_hits: u32) -> Result<Ask<'_>, String> {
    let (mut rule, mut quota, mut consumer, mut key, mut reservation) =
        (None, None, None, None, None);
    for e in &d.entries {
        if e.value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "descriptor entry '{}' is longer than {MAX_VALUE_BYTES} bytes",
                e.key
            ));
        }
        let slot = match e.key.as_str() {
            "rule" => &mut rule,
            "quota" => &mut quota,
            "consumer" => &mut consumer,
            "key" => &mut key,
            "reservation" => &mut reservation,
            other => return Err(format!("unknown descriptor entry '{other}'")),
        };
        *slot = Some(e.value.as_str());
    }
    let Some(key) = key else {
        return Err("a descriptor needs a 'key' entry".into());
    };
    match (rule, quota, consumer) {
        (Some(_), None, None) | (None, Some(_), Some(_)) => {}
        _ => return Err("a descriptor names a 'rule', or a 'quota' and its 'consumer'".into()),
    }
    // Envoy's rule: the descriptor's own hits_addend, else the request's,
    // else 1.
    let hits = match (&d.hits_addend, request_hits) {
        (Some(h), _) => h.value,
        (None, 0) => 1,
        (None, n) => u64::from(n),
    };
    Ok(Ask {
        rule,
        quota,
        consumer,
        key,
        reservation,
        hits,
    })
}

/// Every limit's conditions read `rule`, `quota` and `consumer`: all are
/// bound (empty when absent), so no condition meets a missing key.
fn context(ask: &Ask) -> Context<'static> {
    let mut ctx = Context::default();
    let entries = HashMap::from([
        ("rule".to_string(), ask.rule.unwrap_or_default().to_string()),
        (
            "quota".to_string(),
            ask.quota.unwrap_or_default().to_string(),
        ),
        (
            "consumer".to_string(),
            ask.consumer.unwrap_or_default().to_string(),
        ),
        ("key".to_string(), ask.key.to_string()),
    ]);
    ctx.list_binding("descriptors".into(), vec![entries]);
    ctx
}

fn header(key: &str, value: String) -> HeaderValue {
    HeaderValue {
        key: key.into(),
        value,
        ..Default::default()
    }
}

/// The tightest counter of a kind: fewest units left.
#[derive(Clone, Copy)]
struct Tightest {
    limit: u64,
    remaining: u64,
    reset_ms: u64,
}

fn tighter(current: Option<Tightest>, counters: &[Counter]) -> Option<Tightest> {
    counters.iter().fold(current, |best, c| {
        let t = Tightest {
            limit: c.max_value(),
            remaining: c.remaining().unwrap_or(c.max_value()),
            reset_ms: c
                .expires_in()
                .map_or(c.window().as_millis() as u64, |d| d.as_millis() as u64),
        };
        match best {
            Some(b) if b.remaining <= t.remaining => Some(b),
            _ => Some(t),
        }
    })
}

/// The OpenAI error the client gets when a cluster limit refuses.
pub fn refusal_body(rule: &ClusterRule, hits: u64, reset_ms: u64) -> String {
    let what = if rule.tokens() { "tokens" } else { "requests" };
    let (message, code) = match &rule.kind {
        Kind::Quota { period, consumer } => (
            format!(
                "Consumer '{consumer}' has used its token quota for this {} ({} tokens) across all gateway replicas; it resets in {}.",
                period.name(),
                rule.limit,
                reset_string(reset_ms)
            ),
            "insufficient_quota",
        ),
        Kind::Rule { .. } if hits > rule.limit => (
            format!(
                "This request needs {hits} tokens, more than cluster rate limit '{}' allows per {} ({}); lower max_tokens or shorten the prompt.",
                rule.name, rule.per, rule.limit
            ),
            "request_exceeds_rate_limit",
        ),
        Kind::Rule { tokens } => (
            format!(
                "Cluster rate limit '{}' reached: {} {what} per {} across all gateway replicas; retry after {}.",
                rule.name,
                rule.limit,
                rule.per,
                reset_string(reset_ms)
            ),
            if *tokens { "tokens_rate_limit_exceeded" } else { "rate_limit_exceeded" },
        ),
    };
    serde_json::json!({"error": {
        "message": message,
        "type": if code == "insufficient_quota" { "insufficient_quota" } else { "rate_limit_error" },
        "param": null,
        "code": code
    }})
    .to_string()
}

/// Milliseconds until a quota's UTC window ends.
fn quota_reset_ms(period: Period) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let end = period.window(now).1;
    (end.saturating_sub(u128::from(now)) / 1_000_000) as u64
}

fn store_error(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("rate-limit store: {e}"))
}

impl Limits {
    async fn timed<T, E: std::fmt::Display>(
        &self,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(self.store_timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(store_error(e)),
            Err(_) => Err(store_error("timed out")),
        }
    }

    /// The limit a descriptor names; None (counted) when there is none.
    fn rule(&self, ask: &Ask) -> Option<ClusterRule> {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner());
        let found = rules.get(&ask.lookup()).cloned();
        if found.is_none() {
            self.stats.unknown.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Replaces the limits (a changed config file); counters of limits
    /// that stay are kept.
    pub async fn replace(&self, rules: &[ClusterRule]) -> Result<(), String> {
        let mut limits = Vec::with_capacity(rules.len());
        for r in rules {
            limits.push(crate::rules::limit(r)?);
        }
        self.timed(self.limiter.configure_with(limits))
            .await
            .map_err(|e| e.message().to_string())?;
        let mut current = self.rules.write().unwrap_or_else(|p| p.into_inner());
        *current = crate::rules::by_lookup(rules);
        Ok(())
    }

    async fn settle(&self, asks: &[Ask<'_>]) -> Result<RateLimitResponse, Status> {
        for ask in asks {
            if self.rule(ask).is_none() {
                continue;
            }
            let id = ask
                .reservation
                .filter(|r| *r != NO_RESERVATION)
                .map(|r| ReservationId::from(r.to_string()));
            let ctx = context(ask);
            self.timed(self.limiter.commit_reservation(
                &self.namespace,
                &ctx,
                id.as_ref(),
                ask.hits,
            ))
            .await?;
        }
        self.stats.settled.fetch_add(1, Ordering::Relaxed);
        Ok(RateLimitResponse {
            overall_code: Code::Ok as i32,
            statuses: asks.iter().map(|_| ok_status()).collect(),
            ..Default::default()
        })
    }

    async fn reserve(&self, ctx: &Context<'_>, hits: u64) -> Result<ReserveResult, Status> {
        self.timed(
            self.limiter
                .reserve(&self.namespace, ctx, hits, Some(self.reservation_ttl)),
        )
        .await
    }

    /// Gives back what an admission call reserved before it failed.
    async fn undo(&self, held: &[(Ask<'_>, ClusterRule, Option<ReservationId>)]) {
        for (ask, _, id) in held {
            if let Some(id) = id {
                let ctx = context(ask);
                let _ = self
                    .timed(
                        self.limiter
                            .commit_reservation(&self.namespace, &ctx, Some(id), 0),
                    )
                    .await;
            }
        }
    }

    async fn admit(self: &Arc<Self>, asks: Vec<Ask<'_>>) -> Result<RateLimitResponse, Status> {
        let descriptors = asks.len();
        let mut held: Vec<(Ask, ClusterRule, Option<ReservationId>)> =
            Vec::with_capacity(descriptors);
        let mut requests = None;
        let mut tokens = None;
        for ask in asks {
            let Some(rule) = self.rule(&ask) else {
                continue;
            };
            let ctx = context(&ask);
            let mut reserved = self.reserve(&ctx, ask.hits).await;
            if reserved.as_ref().is_ok_and(|r| r.limited) {
                // A commit elsewhere adds its units before it releases its
                // hold: for that instant a unit counts twice. Ask once more
                // after it, so the last units of a window are not refused.
                tokio::time::sleep(RECHECK_AFTER).await;
                reserved = self.reserve(&ctx, ask.hits).await;
            }
            let result = match reserved {
                Ok(r) => r,
                Err(e) => {
                    self.undo(&held).await;
                    return Err(e);
                }
            };
            if result.limited {
                self.undo(&held).await;
                self.stats.over_limit.fetch_add(1, Ordering::Relaxed);
                let reset_ms = match &rule.kind {
                    Kind::Quota { period, .. } => quota_reset_ms(*period),
                    Kind::Rule { .. } => {
                        tighter(None, &result.counters).map_or(rule.seconds * 1000, |t| t.reset_ms)
                    }
                };
                return Ok(over_limit(&rule, ask.hits, reset_ms));
            }
            // Quotas are budgets, not rates: not in `x-ratelimit-*`.
            match rule.kind {
                Kind::Rule { tokens: true } => tokens = tighter(tokens, &result.counters),
                Kind::Rule { tokens: false } => requests = tighter(requests, &result.counters),
                Kind::Quota { .. } => {}
            }
            held.push((ask, rule, result.reservation_id));
        }
        // Request units are spent; token reservations wait for the tokens
        // used. Until its commit lands a unit is held, which counts the
        // same: the commits go on after the answer, off Envoy's path.
        let mut reservations = BTreeMap::new();
        let mut commits = Vec::new();
        for (ask, rule, id) in &held {
            match (rule.tokens(), id) {
                (true, Some(id)) => {
                    reservations.insert(rule.metadata_key(), id.as_str().to_string());
                }
                (true, None) => {}
                (false, _) => commits.push(Owned::of(ask, id.clone())),
            }
        }
        if !commits.is_empty() {
            let limits = Arc::clone(self);
            tokio::spawn(async move {
                for c in commits {
                    let ctx = context(&c.ask());
                    let done = limits
                        .timed(limits.limiter.commit_reservation(
                            &limits.namespace,
                            &ctx,
                            c.id.as_ref(),
                            c.hits,
                        ))
                        .await;
                    if done.is_err() {
                        limits.stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        self.stats.ok.fetch_add(1, Ordering::Relaxed);
        let mut headers = Vec::new();
        for (name, t) in [(REQUESTS_HEADER, requests), (TOKENS_HEADER, tokens)] {
            if let Some(t) = t {
                headers.push(header(
                    name,
                    format_status(t.limit, t.remaining, t.reset_ms),
                ));
            }
        }
        Ok(RateLimitResponse {
            overall_code: Code::Ok as i32,
            statuses: (0..descriptors).map(|_| ok_status()).collect(),
            response_headers_to_add: headers,
            dynamic_metadata: (!reservations.is_empty()).then(|| metadata(reservations)),
            ..Default::default()
        })
    }
}

/// An admitted ask's commit, done after the answer.
struct Owned {
    rule: Option<String>,
    quota: Option<String>,
    consumer: Option<String>,
    key: String,
    id: Option<ReservationId>,
    hits: u64,
}

impl Owned {
    fn of(ask: &Ask, id: Option<ReservationId>) -> Self {
        Self {
            rule: ask.rule.map(str::to_string),
            quota: ask.quota.map(str::to_string),
            consumer: ask.consumer.map(str::to_string),
            key: ask.key.to_string(),
            id,
            hits: ask.hits,
        }
    }

    fn ask(&self) -> Ask<'_> {
        Ask {
            rule: self.rule.as_deref(),
            quota: self.quota.as_deref(),
            consumer: self.consumer.as_deref(),
            key: &self.key,
            reservation: None,
            hits: self.hits,
        }
    }
}

fn ok_status() -> DescriptorStatus {
    DescriptorStatus {
        code: Code::Ok as i32,
        ..Default::default()
    }
}

fn over_limit(rule: &ClusterRule, hits: u64, reset_ms: u64) -> RateLimitResponse {
    RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![DescriptorStatus {
            code: Code::OverLimit as i32,
            limit_remaining: 0,
            duration_until_reset: Some(envoy_types::pb::google::protobuf::Duration {
                seconds: reset_ms.div_ceil(1000) as i64,
                nanos: 0,
            }),
            ..Default::default()
        }],
        response_headers_to_add: vec![
            header("content-type", "application/json".into()),
            header(RULE_HEADER, rule.name.clone()),
            header("retry-after", reset_ms.div_ceil(1000).max(1).to_string()),
        ]
        .into_iter()
        .chain(match rule.kind {
            Kind::Rule { tokens } => Some(header(
                if tokens {
                    TOKENS_HEADER
                } else {
                    REQUESTS_HEADER
                },
                format_status(rule.limit, 0, reset_ms),
            )),
            Kind::Quota { .. } => None,
        })
        .collect(),
        raw_body: refusal_body(rule, hits, reset_ms).into_bytes(),
        ..Default::default()
    }
}

fn metadata(reservations: BTreeMap<String, String>) -> Struct {
    let inner = Struct {
        fields: reservations
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    Value {
                        kind: Some(ValueKind::StringValue(v)),
                    },
                )
            })
            .collect(),
    };
    Struct {
        fields: [(
            RESERVATIONS.to_string(),
            Value {
                kind: Some(ValueKind::StructValue(inner)),
            },
        )]
        .into_iter()
        .collect(),
    }
}

pub struct Service(pub Arc<Limits>);

#[tonic::async_trait]
impl RateLimitService for Service {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let req = request.into_inner();
        let limits = &self.0;
        if req.domain != llm_gateway::admission::cluster::DOMAIN {
            return Err(Status::invalid_argument(format!(
                "unknown domain '{}'",
                req.domain
            )));
        }
        if req.descriptors.len() > MAX_DESCRIPTORS {
            return Err(Status::invalid_argument("too many descriptors"));
        }
        let asks = req
            .descriptors
            .iter()
            .map(|d| parse(d, req.hits_addend))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Status::invalid_argument)?;
        let settling = asks.iter().any(|a| a.reservation.is_some());
        let answer = if settling {
            limits.settle(&asks).await
        } else {
            limits.admit(asks).await
        };
        if answer.is_err() {
            limits.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        answer.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
    use envoy_types::pb::google::protobuf::UInt64Value;

    fn descriptor(entries: &[(&str, &str)], hits: Option<u64>) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            hits_addend: hits.map(|value| UInt64Value { value }),
            ..Default::default()
        }
    }

    #[test]
    fn descriptors_parse_with_envoys_hits_rules() {
        let d = descriptor(&[("rule", "rpm"), ("key", "team-a")], None);
        let ask = parse(&d, 0).unwrap();
        assert_eq!(
            (ask.rule, ask.key, ask.reservation, ask.hits),
            (Some("rpm"), "team-a", None, 1)
        );
        assert_eq!(ask.lookup(), "rule:rpm");
        assert_eq!(parse(&d, 7).unwrap().hits, 7);
        let d = descriptor(
            &[("rule", "tpm"), ("key", "-"), ("reservation", "abc")],
            Some(0),
        );
        let ask = parse(&d, 3).unwrap();
        assert_eq!((ask.hits, ask.reservation), (0, Some("abc")));
        let d = descriptor(
            &[("quota", "day"), ("consumer", "team-a"), ("key", "20426")],
            Some(9),
        );
        let ask = parse(&d, 0).unwrap();
        assert_eq!((ask.lookup().as_str(), ask.hits), ("quota:day:team-a", 9));
    }

    #[test]
    fn bad_descriptors_are_refused() {
        for entries in [
            &[("rule", "rpm")][..],
            &[("key", "x")],
            &[("rule", "r"), ("key", "k"), ("path", "/")],
            &[("quota", "day"), ("key", "1")],
            &[
                ("rule", "r"),
                ("quota", "day"),
                ("consumer", "c"),
                ("key", "1"),
            ],
        ] {
            assert!(parse(&descriptor(entries, None), 0).is_err(), "{entries:?}");
        }
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(parse(&descriptor(&[("rule", "r"), ("key", &long)], None), 0).is_err());
    }

    #[test]
    fn refusals_are_openai_errors_naming_the_limit() {
        let rule = ClusterRule {
            name: "tpm".into(),
            kind: Kind::Rule { tokens: true },
            limit: 100,
            seconds: 60,
            per: "minute",
        };
        let v: serde_json::Value = serde_json::from_str(&refusal_body(&rule, 10, 30_000)).unwrap();
        assert_eq!(v["error"]["code"], "tokens_rate_limit_exceeded");
        assert!(v["error"]["message"].as_str().unwrap().contains("'tpm'"));
        assert!(v["error"]["message"].as_str().unwrap().contains("30s"));
        let v: serde_json::Value = serde_json::from_str(&refusal_body(&rule, 101, 1)).unwrap();
        assert_eq!(v["error"]["code"], "request_exceeds_rate_limit");
        let quota = ClusterRule {
            name: "quota_day".into(),
            kind: Kind::Quota {
                period: Period::Day,
                consumer: "team-a".into(),
            },
            limit: 500,
            seconds: 86_400,
            per: "day",
        };
        let v: serde_json::Value =
            serde_json::from_str(&refusal_body(&quota, 10, 3_600_000)).unwrap();
        assert_eq!(v["error"]["code"], "insufficient_quota");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Consumer 'team-a'"));
        assert!(v["error"]["message"].as_str().unwrap().contains("1h0m0s"));
    }
}
