//! Metric names and what one finished request records. Names follow the
//! OpenTelemetry GenAI semantic conventions mapped to Prometheus-legal names;
//! labels travel as `;label=value` name segments that Envoy's `stats_tags`
//! (rendered by the renderer from `LABELS`) turn into Prometheus labels.

use crate::host::{MetricName, MetricOp};
use crate::wire::hub::Usage;
use std::cell::RefCell;
use std::rc::Rc;

/// Requests by client API, operation, provider, model, status class and
/// error type.
pub const REQUESTS: &str = "llm_gateway_requests_total";
/// `gen_ai.client.token.usage`: tokens per request, by `gen_ai_token_type`.
pub const TOKEN_USAGE: &str = "gen_ai_client_token_usage";
/// Exact token totals (histogram sums are approximate in Envoy).
pub const TOKENS: &str = "llm_gateway_tokens_total";
/// Cost in millionths of a USD, from the price table.
pub const COST: &str = "llm_gateway_cost_micro_usd_total";
/// `gen_ai.server.request.duration`, milliseconds.
pub const DURATION: &str = "gen_ai_server_request_duration_milliseconds";
/// `gen_ai.server.time_to_first_token`, milliseconds (streams).
pub const TTFT: &str = "gen_ai_server_time_to_first_token_milliseconds";
/// `gen_ai.server.time_per_output_token`, microseconds (streams).
pub const TPOT: &str = "gen_ai_server_time_per_output_token_microseconds";
/// Streams that ended in an error event.
pub const STREAM_ERRORS: &str = "llm_gateway_stream_errors_total";

/// A shadow copy's metrics (`models[].shadow`): the same measures under
/// their own names, labelled with the model copied, so they never mix with
/// the traffic clients see.
pub const SHADOW_REQUESTS: &str = "llm_gateway_shadow_requests_total";
pub const SHADOW_TOKEN_USAGE: &str = "llm_gateway_shadow_token_usage";
pub const SHADOW_TOKENS: &str = "llm_gateway_shadow_tokens_total";
pub const SHADOW_COST: &str = "llm_gateway_shadow_cost_micro_usd_total";
pub const SHADOW_DURATION: &str = "llm_gateway_shadow_request_duration_milliseconds";
pub const SHADOW_TTFT: &str = "llm_gateway_shadow_time_to_first_token_milliseconds";
pub const SHADOW_TPOT: &str = "llm_gateway_shadow_time_per_output_token_microseconds";
pub const SHADOW_STREAM_ERRORS: &str = "llm_gateway_shadow_stream_errors_total";

/// Every label the filter emits; the renderer makes one tag regex each.
pub const LABELS: &[&str] = &[
    "llm_gateway_shadow_of",
    "llm_gateway_api",
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "gen_ai_token_type",
    "http_response_status_class",
    "error_type",
    "consumer",
    "rate_limit",
    "llm_gateway_provider",
    "list",
    "action",
    "direction",
    "outcome",
    "result",
];

const DURATION_BUCKETS: &[f64] = &[
    25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 120000.0,
    300000.0,
];
const TTFT_BUCKETS: &[f64] = &[
    10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 12800.0,
];
const TPOT_BUCKETS: &[f64] = &[
    500.0, 1000.0, 2500.0, 5000.0, 10000.0, 20000.0, 40000.0, 80000.0, 160000.0,
];
const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
];

/// Histograms and the bucket bounds that suit their unit.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (DURATION, DURATION_BUCKETS),
    (TTFT, TTFT_BUCKETS),
    (TPOT, TPOT_BUCKETS),
    (TOKEN_USAGE, TOKEN_BUCKETS),
    (SHADOW_DURATION, DURATION_BUCKETS),
    (SHADOW_TTFT, TTFT_BUCKETS),
    (SHADOW_TPOT, TPOT_BUCKETS),
    (SHADOW_TOKEN_USAGE, TOKEN_BUCKETS),
];

/// Current adaptive admission limit of a target.
pub const ADAPTIVE_LIMIT: &str = "llm_gateway_adaptive_concurrency_limit";
/// Requests refused by a rate limit or quota.
pub const RATE_LIMITED: &str = "llm_gateway_rate_limited_total";

/// A gauge update for a target's adaptive limit.
pub fn adaptive_limit(provider: &str, model: &str, limit: u32) -> MetricOp {
    MetricOp::Gauge {
        name: name(
            ADAPTIVE_LIMIT,
            &[
                ("gen_ai_provider_name", provider),
                ("gen_ai_response_model", model),
            ],
        ),
        value: u64::from(limit),
    }
}

/// Passive-health ejections of a target.
pub const EJECTIONS: &str = "llm_gateway_target_ejections_total";

pub fn ejection(kind: &str, provider: &str, model: &str) -> MetricOp {
    MetricOp::Counter {
        name: name(
            EJECTIONS,
            &[
                ("gen_ai_provider_name", otel_provider(kind)),
                ("llm_gateway_provider", provider),
                ("gen_ai_response_model", model),
            ],
        ),
        delta: 1,
    }
}

/// A refused request, by the limit's name (bounded by config).
pub fn rate_limited(rule: &str) -> MetricOp {
    MetricOp::Counter {
        name: name(RATE_LIMITED, &[("rate_limit", rule)]),
        delta: 1,
    }
}

/// Guardrail matches, by rule (bounded by config), action and direction.
pub const GUARDRAIL_HITS: &str = "llm_gateway_guardrail_hits_total";
/// Moderation callouts, by rule and outcome (allowed, flagged,
/// failed_open, failed_closed).
pub const MODERATION: &str = "llm_gateway_guardrail_moderation_total";

pub fn guardrail_hits(rule: &str, action: &str, direction: &str, count: u64) -> MetricOp {
    MetricOp::Counter {
        name: name(
            GUARDRAIL_HITS,
            &[("list", rule), ("action", action), ("direction", direction)],
        ),
        delta: count,
    }
}

pub fn moderation(rule: &str, outcome: &str) -> MetricOp {
    MetricOp::Counter {
        name: name(MODERATION, &[("list", rule), ("outcome", outcome)]),
        delta: 1,
    }
}

/// Response-cache lookups by model and result (hit, miss, bypass).
pub const CACHE_REQUESTS: &str = "llm_gateway_cache_requests_total";
/// Attempts to store an answer, by outcome (stored, too_large, full, raced).
/// Semantic lookups by outcome (hit, miss, failed: no embedding).
pub const CACHE_SEMANTIC: &str = "llm_gateway_cache_semantic_lookups_total";
/// Attempts to store an answer, by outcome (stored, too_large, full, raced).
pub const CACHE_STORES: &str = "llm_gateway_cache_stores_total";
/// Live answers removed to make room.
pub const CACHE_EVICTIONS: &str = "llm_gateway_cache_evictions_total";
/// Bytes all cached answers hold (shared by the process's workers).
pub const CACHE_BYTES: &str = "llm_gateway_cache_bytes";
/// Tokens and cost of the answers served from the cache (not paid again).
pub const CACHE_SAVED_TOKENS: &str = "llm_gateway_cache_saved_tokens_total";
pub const CACHE_SAVED_COST: &str = "llm_gateway_cache_saved_cost_micro_usd_total";

/// A cache metric update: `labels` come from config or fixed sets.
pub fn cache_counter(base: &'static str, labels: &[(&str, &str)], delta: u64) -> MetricOp {
    MetricOp::Counter {
        name: name(base, labels),
        delta,
    }
}

pub fn cache_bytes(value: u64) -> MetricOp {
    MetricOp::Gauge {
        name: name(CACHE_BYTES, &[]),
        value,
    }
}

/// The facts of one finished request. Every label value comes from config
/// or a fixed set, so label cardinality is bounded whatever clients send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRecord {
    /// The client API (`openai.chat_completions`, `anthropic.messages`,
    /// ...), `none` for paths that are not one.
    pub api: &'static str,
    /// `chat`, `embeddings`, `count_tokens`, or `other` (models list,
    /// unknown paths).
    pub operation: &'static str,
    /// Provider type in OTel spelling where one exists; `none` if unrouted.
    pub provider: String,
    /// A configured model name, `unknown` for others, `none` if absent.
    pub request_model: String,
    /// The upstream model of the chosen target.
    pub response_model: String,
    pub status: u16,
    /// OpenAI error type of the answer; `none` on success.
    pub error_type: String,
    pub usage: Option<Usage>,
    pub cost_micro_usd: Option<u64>,
    pub duration_ms: u64,
    pub ttft_ms: Option<u64>,
    pub tpot_us: Option<u64>,
    pub stream_error: bool,
    /// Set only when the consumer label is switched on.
    pub consumer: Option<String>,
    /// A shadow copy: the model it copies.
    pub shadow_of: Option<String>,
}

/// A label value made safe for an Envoy stat name segment.
pub fn label_value(v: &str) -> String {
    let mut out: String = v
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

fn name(base: &str, labels: &[(&str, &str)]) -> Rc<MetricName> {
    let mut n = base.to_string();
    for (k, v) in labels {
        n.push(';');
        n.push_str(k);
        n.push('=');
        n.push_str(&label_value(v));
    }
    MetricName::new(n)
}

/// OTel `gen_ai.provider.name` for a provider type.
pub fn otel_provider(kind: &str) -> &str {
    match kind {
        "gemini" => "gcp.gemini",
        "azure" => "azure.ai.openai",
        "qwen" => "alibaba.dashscope",
        "mistral" => "mistral_ai",
        "groq" => "groq",
        other => other,
    }
}

/// The names of every metric one finished request can touch, for one set
/// of label values. Built once per label set and reused (`NameCache`), so a
/// request formats no names.
#[derive(Debug)]
pub struct RecordNames {
    requests: Rc<MetricName>,
    duration: Rc<MetricName>,
    /// Histogram, by token type: input, output.
    token_usage: [Rc<MetricName>; 2],
    /// Counters, by token type: input, output, cached_input, reasoning.
    tokens: [Rc<MetricName>; 4],
    cost: Rc<MetricName>,
    ttft: Rc<MetricName>,
    tpot: Rc<MetricName>,
    stream_errors: Rc<MetricName>,
}

const TOKEN_TYPES: [&str; 4] = ["input", "output", "cached_input", "reasoning"];

impl RecordNames {
    fn new(r: &RequestRecord) -> Self {
        let op = r.operation;
        let provider = r.provider.as_str();
        let model = r.request_model.as_str();
        let class = status_class(r.status);
        let mut consumer: Vec<(&str, &str)> = r
            .consumer
            .as_deref()
            .map(|c| ("consumer", c))
            .into_iter()
            .collect();
        let shadow: Vec<(&str, &str)> = r
            .shadow_of
            .as_deref()
            .map(|m| ("llm_gateway_shadow_of", m))
            .into_iter()
            .collect();
        consumer.extend(&shadow);
        let family = if shadow.is_empty() {
            [
                REQUESTS,
                DURATION,
                TOKEN_USAGE,
                TOKENS,
                COST,
                TTFT,
                TPOT,
                STREAM_ERRORS,
            ]
        } else {
            [
                SHADOW_REQUESTS,
                SHADOW_DURATION,
                SHADOW_TOKEN_USAGE,
                SHADOW_TOKENS,
                SHADOW_COST,
                SHADOW_TTFT,
                SHADOW_TPOT,
                SHADOW_STREAM_ERRORS,
            ]
        };
        let [requests, duration, token_usage, tokens, cost, ttft, tpot, stream_errors] = family;
        let mut request_labels = vec![
            ("llm_gateway_api", r.api),
            ("gen_ai_operation_name", op),
            ("gen_ai_provider_name", provider),
            ("gen_ai_request_model", model),
            ("http_response_status_class", class),
            ("error_type", r.error_type.as_str()),
        ];
        request_labels.extend(&consumer);
        let mut base = vec![
            ("gen_ai_operation_name", op),
            ("gen_ai_provider_name", provider),
            ("gen_ai_request_model", model),
            ("gen_ai_response_model", r.response_model.as_str()),
        ];
        base.extend(&consumer);
        let typed = |metric: &str, kind: &str| {
            let mut labels = base.clone();
            labels.push(("gen_ai_token_type", kind));
            name(metric, &labels)
        };
        let mut short = base[..3].to_vec();
        short.extend(&shadow);
        let mut duration_labels = vec![
            ("llm_gateway_api", r.api),
            ("gen_ai_operation_name", op),
            ("gen_ai_provider_name", provider),
            ("gen_ai_request_model", model),
            ("error_type", r.error_type.as_str()),
        ];
        duration_labels.extend(&shadow);
        Self {
            requests: name(requests, &request_labels),
            duration: name(duration, &duration_labels),
            token_usage: [typed(token_usage, "input"), typed(token_usage, "output")],
            tokens: TOKEN_TYPES.map(|kind| typed(tokens, kind)),
            cost: name(cost, &base),
            ttft: name(ttft, &short),
            tpot: name(tpot, &short),
            stream_errors: name(stream_errors, &short),
        }
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

/// The label values that pick a `RecordNames`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LabelSet {
    api: &'static str,
    operation: &'static str,
    provider: String,
    request_model: String,
    response_model: String,
    status_class: &'static str,
    error_type: String,
    consumer: Option<String>,
    shadow_of: Option<String>,
}

impl LabelSet {
    fn matches(&self, r: &RequestRecord) -> bool {
        self.shadow_of == r.shadow_of
            && self.api == r.api
            && self.operation == r.operation
            && self.provider == r.provider
            && self.request_model == r.request_model
            && self.response_model == r.response_model
            && self.status_class == status_class(r.status)
            && self.error_type == r.error_type
            && self.consumer == r.consumer
    }
}

/// Most label sets one VM keeps names for; past it the cache starts over
/// (the upstream's response model is not bounded by config).
const NAME_CACHE_LIMIT: usize = 512;

/// Metric names by label set, per VM (lives in the compiled `Gateway`).
#[derive(Debug, Clone, Default)]
pub struct NameCache {
    sets: RefCell<Vec<(LabelSet, Rc<RecordNames>)>>,
}

impl NameCache {
    /// The names for this request's label values, built on first use.
    pub fn names(&self, r: &RequestRecord) -> Rc<RecordNames> {
        let mut sets = self.sets.borrow_mut();
        // Most recently used first: a VM sees few label sets, mostly the same.
        if let Some(i) = sets.iter().position(|(k, _)| k.matches(r)) {
            if i > 0 {
                let hit = sets.remove(i);
                sets.insert(0, hit);
            }
            return Rc::clone(&sets[0].1);
        }
        if sets.len() >= NAME_CACHE_LIMIT {
            sets.clear();
        }
        let names = Rc::new(RecordNames::new(r));
        let key = LabelSet {
            api: r.api,
            operation: r.operation,
            provider: r.provider.clone(),
            request_model: r.request_model.clone(),
            response_model: r.response_model.clone(),
            status_class: status_class(r.status),
            error_type: r.error_type.clone(),
            consumer: r.consumer.clone(),
            shadow_of: r.shadow_of.clone(),
        };
        sets.insert(0, (key, Rc::clone(&names)));
        names
    }
}

impl RequestRecord {
    /// The metric updates this request makes, named from `cache`.
    pub fn ops(&self, cache: &NameCache) -> Vec<MetricOp> {
        let names = cache.names(self);
        let mut ops = Vec::with_capacity(10);
        ops.push(MetricOp::Counter {
            name: Rc::clone(&names.requests),
            delta: 1,
        });
        ops.push(MetricOp::Histogram {
            name: Rc::clone(&names.duration),
            value: self.duration_ms,
        });
        if let Some(u) = &self.usage {
            let counts = [
                u.prompt_tokens,
                u.completion_tokens,
                u.cached_tokens.unwrap_or(0),
                u.reasoning_tokens.unwrap_or(0),
            ];
            for (i, tokens) in counts.into_iter().enumerate() {
                if let Some(histogram) = names.token_usage.get(i) {
                    ops.push(MetricOp::Histogram {
                        name: Rc::clone(histogram),
                        value: tokens,
                    });
                }
                if tokens > 0 {
                    ops.push(MetricOp::Counter {
                        name: Rc::clone(&names.tokens[i]),
                        delta: tokens,
                    });
                }
            }
        }
        if let Some(cost) = self.cost_micro_usd.filter(|c| *c > 0) {
            ops.push(MetricOp::Counter {
                name: Rc::clone(&names.cost),
                delta: cost,
            });
        }
        if let Some(ttft) = self.ttft_ms {
            ops.push(MetricOp::Histogram {
                name: Rc::clone(&names.ttft),
                value: ttft,
            });
        }
        if let Some(tpot) = self.tpot_us {
            ops.push(MetricOp::Histogram {
                name: Rc::clone(&names.tpot),
                value: tpot,
            });
        }
        if self.stream_error {
            ops.push(MetricOp::Counter {
                name: Rc::clone(&names.stream_errors),
                delta: 1,
            });
        }
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_chat_records_everything() {
        let r = RequestRecord {
            api: "openai.chat_completions",
            operation: "chat",
            provider: "anthropic".into(),
            request_model: "claude".into(),
            response_model: "claude-sonnet-4-5".into(),
            status: 200,
            error_type: "none".into(),
            usage: Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                total_tokens: 15,
                cached_tokens: Some(4),
                ..Usage::default()
            }),
            cost_micro_usd: Some(120),
            duration_ms: 900,
            ttft_ms: Some(150),
            tpot_us: Some(20_000),
            stream_error: false,
            consumer: None,
            shadow_of: None,
        };
        let cache = NameCache::default();
        let ops = r.ops(&cache);
        let labels = ";gen_ai_operation_name=chat;gen_ai_provider_name=anthropic;gen_ai_request_model=claude";
        assert_eq!(
            ops[0],
            MetricOp::Counter {
                name: MetricName::new(format!(
                    "{REQUESTS};llm_gateway_api=openai.chat_completions{labels};http_response_status_class=2xx;error_type=none"
                )),
                delta: 1
            }
        );
        let full = format!("{labels};gen_ai_response_model=claude-sonnet-4-5");
        assert!(ops.contains(&MetricOp::Counter {
            name: MetricName::new(format!("{TOKENS}{full};gen_ai_token_type=cached_input")),
            delta: 4
        }));
        assert!(ops.contains(&MetricOp::Histogram {
            name: MetricName::new(format!("{TOKEN_USAGE}{full};gen_ai_token_type=output")),
            value: 5
        }));
        assert!(ops.contains(&MetricOp::Counter {
            name: MetricName::new(format!("{COST}{full}")),
            delta: 120
        }));
        assert!(ops.contains(&MetricOp::Histogram {
            name: MetricName::new(format!("{TTFT}{labels}")),
            value: 150
        }));
        assert!(ops.contains(&MetricOp::Histogram {
            name: MetricName::new(format!("{TPOT}{labels}")),
            value: 20_000
        }));
        let with_consumer = RequestRecord {
            consumer: Some("team-a".into()),
            ..r.clone()
        };
        let MetricOp::Counter { name, .. } = &with_consumer.ops(&cache)[0] else {
            panic!()
        };
        assert!(name.ends_with(";error_type=none;consumer=team-a"), "{name}");
        // A shadow copy: its own names, labelled with the model it copies.
        let shadow = RequestRecord {
            shadow_of: Some("gpt".into()),
            ..r.clone()
        };
        let shadow_ops = shadow.ops(&cache);
        assert_eq!(
            shadow_ops[0],
            MetricOp::Counter {
                name: MetricName::new(format!(
                    "{SHADOW_REQUESTS};llm_gateway_api=openai.chat_completions{labels};http_response_status_class=2xx;error_type=none;llm_gateway_shadow_of=gpt"
                )),
                delta: 1
            }
        );
        assert!(shadow_ops.contains(&MetricOp::Histogram {
            name: MetricName::new(format!("{SHADOW_TTFT}{labels};llm_gateway_shadow_of=gpt")),
            value: 150
        }));
        assert!(shadow_ops.iter().all(|o| match o {
            MetricOp::Counter { name, .. } | MetricOp::Histogram { name, .. } =>
                name.starts_with("llm_gateway_shadow_"),
            _ => true,
        }));
        // No reasoning tokens: no zero counter.
        assert!(!ops
            .iter()
            .any(|o| matches!(o, MetricOp::Counter { name, .. } if name.ends_with("=reasoning"))));
    }

    #[test]
    fn names_are_built_once_per_label_set() {
        let cache = NameCache::default();
        let ok = RequestRecord {
            api: "openai.chat_completions",
            operation: "chat",
            provider: "openai".into(),
            request_model: "m".into(),
            response_model: "gpt".into(),
            status: 200,
            error_type: "none".into(),
            ..RequestRecord::default()
        };
        let first = cache.names(&ok);
        let again = cache.names(&RequestRecord {
            status: 201,
            duration_ms: 7,
            ..ok.clone()
        });
        assert!(Rc::ptr_eq(&first, &again), "same labels, same names");
        let failed = RequestRecord {
            status: 503,
            error_type: "api_error".into(),
            ..ok.clone()
        };
        let MetricOp::Counter { name, .. } = &failed.ops(&cache)[0] else {
            panic!()
        };
        assert!(
            name.ends_with("status_class=5xx;error_type=api_error"),
            "{name}"
        );
        let other_model = cache.names(&RequestRecord {
            response_model: "gpt-2".into(),
            ..ok.clone()
        });
        assert!(!Rc::ptr_eq(&first, &other_model));
        assert_eq!(cache.sets.borrow().len(), 3);
        // Unbounded upstream model names cannot grow the cache for ever.
        for i in 0..NAME_CACHE_LIMIT + 10 {
            cache.names(&RequestRecord {
                response_model: format!("m{i}"),
                ..ok.clone()
            });
        }
        assert!(cache.sets.borrow().len() <= NAME_CACHE_LIMIT);
        assert!(
            !Rc::ptr_eq(&first, &cache.names(&ok)),
            "rebuilt after the reset"
        );
    }

    #[test]
    fn label_values_cannot_break_names() {
        assert_eq!(label_value("a;b=c d"), "a_b_c_d");
        assert_eq!(label_value(""), "none");
        assert_eq!(label_value(&"x".repeat(100)).len(), 64);
        assert_eq!(label_value("llama3:8b/v1.2"), "llama3:8b/v1.2");
        let r = RequestRecord {
            api: "none",
            operation: "other",
            status: 0,
            ..RequestRecord::default()
        };
        let MetricOp::Counter { name, .. } = &r.ops(&NameCache::default())[0] else {
            panic!()
        };
        assert!(name.contains("http_response_status_class=none"));
    }
}
