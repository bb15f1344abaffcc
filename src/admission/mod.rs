//! Admission control for one request: every matching rate-limit rule and the
//! consumer's quotas are checked (and reserved) before the request may cost
//! money; at the end, token reservations are reconciled with real usage.

pub mod cluster;
pub mod config;
mod headers;

pub use config::{RateLimitsConfig, Rules};
pub use headers::{limit_headers, rate_limit_headers, reset_string};

use crate::consumers::Consumers;
use crate::error::ApiError;
use crate::host::SharedStore;
use crate::providers::Operation;
use crate::ratelimit::{bucket, quota, Admission, BucketSpec, Period};
use crate::state::{keys, Contention};
use crate::wire::hub::Usage;
use config::{Dim, Measure, Rule, TokenCount};

/// CAS attempts before a contended update counts as `Contention`.
pub const MAX_CAS_RETRIES: u32 = 16;

/// What admission needs to know about a request.
pub struct Facts<'a> {
    pub consumer: Option<&'a str>,
    /// The configured model name.
    pub model: &'a str,
    /// The API: `chat` or `embeddings`.
    pub route: &'a str,
    pub client_ip: Option<&'a str>,
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// The request's `max_tokens`, if it set one.
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone)]
struct Hold {
    key: String,
    spec: BucketSpec,
    /// None for a request rule (one unit per request).
    count: Option<TokenCount>,
    reserved: u64,
}

#[derive(Debug, Clone)]
struct QuotaHold {
    key: String,
    period: Period,
    reserved: u64,
}

/// What an admitted request holds until it ends.
#[derive(Debug, Clone, Default)]
pub struct Reservation {
    holds: Vec<Hold>,
    quotas: Vec<QuotaHold>,
    /// The tightest request and token limits, for response headers.
    pub requests: Option<Admission>,
    pub tokens: Option<Admission>,
}

/// A refused request: the 429 (or 400), its headers, and which limit.
#[derive(Debug)]
pub struct Refusal {
    pub error: ApiError,
    pub headers: Vec<(String, String)>,
    /// The rule's name, or `quota_day` / `quota_month`.
    pub limit: String,
}

const ANONYMOUS: &str = "-";

fn dim_value(d: &Dim, f: &Facts) -> String {
    match d {
        Dim::Consumer => f.consumer.unwrap_or(ANONYMOUS).to_string(),
        Dim::Model => f.model.to_string(),
        Dim::Route => f.route.to_string(),
        Dim::ClientIp => f.client_ip.unwrap_or(ANONYMOUS).to_string(),
        Dim::Header(h) => (f.header)(h).unwrap_or_else(|| ANONYMOUS.to_string()),
    }
}

fn rule_key(rule: &Rule, f: &Facts) -> String {
    let values: Vec<String> = rule.dims.iter().map(|d| dim_value(d, f)).collect();
    match rule.slots {
        Some(slots) => keys::rate_limit_slot(&rule.name, &values.join("\u{1f}"), slots),
        None => keys::rate_limit(&rule.name, &values),
    }
}

fn reserve(count: TokenCount, f: &Facts, default_max: u32) -> u64 {
    let output = u64::from(f.max_tokens.unwrap_or(default_max));
    match count {
        TokenCount::Input => f.prompt_tokens,
        TokenCount::Output => output,
        TokenCount::Total => f.prompt_tokens.saturating_add(output),
    }
}

fn used(count: TokenCount, u: &Usage) -> u64 {
    match count {
        TokenCount::Input => u.prompt_tokens,
        TokenCount::Output => u.completion_tokens,
        TokenCount::Total => u
            .total_tokens
            .max(u.prompt_tokens.saturating_add(u.completion_tokens)),
    }
}

/// Keeps the admission with the fewest units left.
fn tighter(current: Option<Admission>, new: Admission) -> Option<Admission> {
    match current {
        Some(c) if c.remaining <= new.remaining => Some(c),
        _ => Some(new),
    }
}

fn too_many(message: String, code: &'static str) -> ApiError {
    ApiError::new(429, "rate_limit_error", message).with_code(code)
}

/// The state a rule or quota keeps under one key.
pub enum LimitState<'a> {
    Bucket(&'a BucketSpec),
    Quota(Period),
}

/// Every key the rate-limit rules and consumer quotas can use: each
/// rule's buckets (one per combination of its static dimension values, or
/// its slots) and each consumer's quota windows.
pub fn limit_keys<'a>(
    rules: &'a Rules,
    consumers: &'a Consumers,
    models: &[String],
) -> Vec<(String, LimitState<'a>)> {
    let mut out = Vec::new();
    let mut consumer_names: Vec<String> = consumers.all().iter().map(|c| c.name.clone()).collect();
    consumer_names.push(ANONYMOUS.into());
    let routes: Vec<String> = [Operation::ChatCompletions, Operation::Embeddings]
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    for rule in rules.instance() {
        match rule.slots {
            Some(slots) => {
                for key in keys::rate_limit_slots(&rule.name, slots) {
                    out.push((key, LimitState::Bucket(&rule.spec)));
                }
            }
            None => {
                let mut combos: Vec<Vec<String>> = vec![Vec::new()];
                for d in &rule.dims {
                    let values: &[String] = match d {
                        Dim::Consumer => &consumer_names,
                        Dim::Route => &routes,
                        _ => models,
                    };
                    combos = combos
                        .iter()
                        .flat_map(|c| {
                            values.iter().map(move |v| {
                                let mut next = c.clone();
                                next.push(v.clone());
                                next
                            })
                        })
                        .collect();
                }
                for values in combos {
                    out.push((
                        keys::rate_limit(&rule.name, &values),
                        LimitState::Bucket(&rule.spec),
                    ));
                }
            }
        }
    }
    for c in consumers.all().iter().filter(|_| !rules.cluster_quotas()) {
        for (period, _) in c.quotas() {
            out.push((
                keys::quota(&c.name, period.name()),
                LimitState::Quota(period),
            ));
        }
    }
    out
}

/// Creates every key of [`limit_keys`], so request-time updates always CAS
/// an existing key (see `ratelimit`); returns how many there are. Runs at
/// configure.
pub fn precreate(
    rules: &Rules,
    consumers: &Consumers,
    models: &[String],
    store: &dyn SharedStore,
    now_ns: u64,
) -> Result<usize, Contention> {
    let keys = limit_keys(rules, consumers, models);
    for (key, state) in &keys {
        match state {
            LimitState::Bucket(spec) => bucket::ensure(store, key, spec, now_ns)?,
            LimitState::Quota(period) => quota::ensure(store, key, *period, now_ns)?,
        }
    }
    Ok(keys.len())
}

/// Checks and reserves every rule and quota, or refuses with a 429 and
/// gives back what it had already reserved.
pub fn admit(
    rules: &Rules,
    consumers: &Consumers,
    store: &dyn SharedStore,
    f: &Facts,
    now_ns: u64,
) -> Result<Reservation, Box<Refusal>> {
    let mut reservation = Reservation::default();
    for rule in rules.instance() {
        let key = rule_key(rule, f);
        let (amount, count) = match rule.measure {
            Measure::Requests => (1, None),
            Measure::Tokens(c) => (reserve(c, f, rules.default_max_tokens), Some(c)),
        };
        let outcome = match bucket::take(store, &key, &rule.spec, amount, now_ns, MAX_CAS_RETRIES) {
            Ok(a) => a,
            Err(_) if rules.fail_open => continue,
            Err(_) => {
                release(&reservation, store, now_ns);
                return Err(contended(
                    &format!("Rate limit '{}'", rule.name),
                    &rule.name,
                ));
            }
        };
        match count {
            None => reservation.requests = tighter(reservation.requests, outcome),
            Some(_) => reservation.tokens = tighter(reservation.tokens, outcome),
        }
        if !outcome.admitted {
            release(&reservation, store, now_ns);
            let what = match rule.measure {
                Measure::Requests => "requests",
                Measure::Tokens(_) => "tokens",
            };
            let error = if outcome.never {
                ApiError::invalid_request(format!(
                    "This request needs {amount} tokens, more than rate limit '{}' allows at once ({}); lower max_tokens or shorten the prompt.",
                    rule.name, outcome.limit
                ))
                .with_param("max_tokens")
                .with_code("request_exceeds_rate_limit")
            } else {
                too_many(
                    format!(
                        "Rate limit '{}' reached: {} {what} per window; retry after {}.",
                        rule.name,
                        outcome.limit,
                        reset_string(outcome.retry_after_ms)
                    ),
                    if what == "requests" {
                        "rate_limit_exceeded"
                    } else {
                        "tokens_rate_limit_exceeded"
                    },
                )
            };
            let mut headers = rate_limit_headers(&reservation);
            headers.push((
                "retry-after".into(),
                retry_after_secs(outcome.retry_after_ms),
            ));
            return Err(Box::new(Refusal {
                error,
                headers,
                limit: rule.name.clone(),
            }));
        }
        reservation.holds.push(Hold {
            key,
            spec: rule.spec,
            count,
            reserved: amount,
        });
    }
    let quotas_here = !rules.cluster_quotas();
    if let Some(consumer) = f
        .consumer
        .filter(|_| quotas_here)
        .and_then(|n| consumers.all().iter().find(|c| c.name == n))
    {
        let amount = reserve(TokenCount::Total, f, rules.default_max_tokens);
        for (period, limit) in consumer.quotas() {
            let key = keys::quota(&consumer.name, period.name());
            let outcome =
                match quota::take(store, &key, limit, period, amount, now_ns, MAX_CAS_RETRIES) {
                    Ok(o) => o,
                    Err(_) if rules.fail_open => continue,
                    Err(_) => {
                        release(&reservation, store, now_ns);
                        return Err(contended("The quota", quota_name(period)));
                    }
                };
            if !outcome.admitted {
                release(&reservation, store, now_ns);
                let window = period.name();
                return Err(Box::new(Refusal {
                    error: too_many(
                        format!(
                            "Consumer '{}' has used its token quota for this {window} ({limit} tokens); it resets in {}.",
                            consumer.name,
                            reset_string(outcome.reset_after_ms)
                        ),
                        "insufficient_quota",
                    ),
                    headers: vec![("retry-after".into(), retry_after_secs(outcome.reset_after_ms))],
                    limit: quota_name(period).into(),
                }));
            }
            reservation.quotas.push(QuotaHold {
                key,
                period,
                reserved: amount,
            });
        }
    }
    Ok(reservation)
}

/// 503 when shared data stays contended and the rules fail closed.
fn contended(what: &str, limit: &str) -> Box<Refusal> {
    Box::new(Refusal {
        error: ApiError::new(
            503,
            "api_error",
            format!("{what} could not be checked (shared data contention); try again."),
        )
        .with_code("rate_limit_unavailable"),
        headers: vec![("retry-after".into(), "1".into())],
        limit: limit.into(),
    })
}

fn quota_name(period: Period) -> &'static str {
    match period {
        Period::Day => "quota_day",
        Period::Month => "quota_month",
    }
}

fn retry_after_secs(ms: u64) -> String {
    if ms == u64::MAX {
        return "86400".into();
    }
    ms.div_ceil(1000).max(1).to_string()
}

/// Gives back everything the reservation took, request units included: the
/// request was refused or answered before it reached a provider.
pub fn release(reservation: &Reservation, store: &dyn SharedStore, now_ns: u64) {
    for h in &reservation.holds {
        let _ = bucket::adjust(
            store,
            &h.key,
            &h.spec,
            h.reserved as i64,
            now_ns,
            MAX_CAS_RETRIES,
        );
    }
    for q in &reservation.quotas {
        let _ = quota::adjust(
            store,
            &q.key,
            q.period,
            q.reserved as i64,
            now_ns,
            MAX_CAS_RETRIES,
        );
    }
}

/// What a token reservation of `reserved` settles at: the usage reported,
/// else the reservation on success (unknown usage is charged as estimated)
/// and nothing on failure.
pub(crate) fn settled(
    count: TokenCount,
    reserved: u64,
    usage: Option<&Usage>,
    success: bool,
) -> u64 {
    match (usage, success) {
        (Some(u), _) => used(count, u),
        (None, true) => reserved,
        (None, false) => 0,
    }
}

/// Settles the token reservations of a request that reached a provider
/// against what it really used: a refund when it used less, an extra charge
/// when more. `usage` None on success keeps the reservation (unknown usage
/// is charged as estimated); a failed request (`success` false) without
/// usage is refunded in full. Request units stay taken: the request was
/// made.
pub fn reconcile(
    reservation: &Reservation,
    store: &dyn SharedStore,
    usage: Option<&Usage>,
    success: bool,
    now_ns: u64,
) {
    let actual = |count, reserved| settled(count, reserved, usage, success);
    for h in &reservation.holds {
        let Some(count) = h.count else {
            continue;
        };
        let delta = h.reserved as i64 - actual(count, h.reserved) as i64;
        if delta != 0 {
            let _ = bucket::adjust(store, &h.key, &h.spec, delta, now_ns, MAX_CAS_RETRIES);
        }
    }
    for q in &reservation.quotas {
        let delta = q.reserved as i64 - actual(TokenCount::Total, q.reserved) as i64;
        if delta != 0 {
            let _ = quota::adjust(store, &q.key, q.period, delta, now_ns, MAX_CAS_RETRIES);
        }
    }
}

#[cfg(test)]
mod tests;
