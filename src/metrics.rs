//! Metric names and what one finished request records. Names follow the
//! OpenTelemetry GenAI semantic conventions mapped to Prometheus-legal names;
//! labels travel as `;label=value` name segments that Envoy's `stats_tags`
//! (rendered by the renderer from `LABELS`) turn into Prometheus labels.

use crate::hub::Usage;

/// Requests by operation, provider, model, status class and error type.
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

/// Every label the filter emits; the renderer makes one tag regex each.
pub const LABELS: &[&str] = &[
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
];

/// Histograms and the bucket bounds that suit their unit.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (
        DURATION,
        &[
            25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
            120000.0, 300000.0,
        ],
    ),
    (
        TTFT,
        &[
            10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 12800.0,
        ],
    ),
    (
        TPOT,
        &[
            500.0, 1000.0, 2500.0, 5000.0, 10000.0, 20000.0, 40000.0, 80000.0, 160000.0,
        ],
    ),
    (
        TOKEN_USAGE,
        &[
            1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
        ],
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricOp {
    Counter { name: String, delta: u64 },
    Histogram { name: String, value: u64 },
    Gauge { name: String, value: u64 },
}

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

/// The facts of one finished request. Every label value comes from config
/// or a fixed set, so label cardinality is bounded whatever clients send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRecord {
    /// `chat`, `embeddings`, or `other` (models list, unknown paths).
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

fn name(base: &str, labels: &[(&str, &str)]) -> String {
    let mut n = base.to_string();
    for (k, v) in labels {
        n.push(';');
        n.push_str(k);
        n.push('=');
        n.push_str(&label_value(v));
    }
    n
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

impl RequestRecord {
    /// The metric updates this request makes.
    pub fn ops(&self) -> Vec<MetricOp> {
        let op = self.operation;
        let provider = self.provider.as_str();
        let model = self.request_model.as_str();
        let class = match self.status {
            100..=599 => format!("{}xx", self.status / 100),
            _ => "none".to_string(),
        };
        let consumer: Vec<(&str, &str)> = self
            .consumer
            .as_deref()
            .map(|c| ("consumer", c))
            .into_iter()
            .collect();
        let mut request_labels = vec![
            ("gen_ai_operation_name", op),
            ("gen_ai_provider_name", provider),
            ("gen_ai_request_model", model),
            ("http_response_status_class", class.as_str()),
            ("error_type", self.error_type.as_str()),
        ];
        request_labels.extend(&consumer);
        let mut ops = vec![MetricOp::Counter {
            name: name(REQUESTS, &request_labels),
            delta: 1,
        }];
        ops.push(MetricOp::Histogram {
            name: name(
                DURATION,
                &[
                    ("gen_ai_operation_name", op),
                    ("gen_ai_provider_name", provider),
                    ("gen_ai_request_model", model),
                    ("error_type", &self.error_type),
                ],
            ),
            value: self.duration_ms,
        });
        let mut base = vec![
            ("gen_ai_operation_name", op),
            ("gen_ai_provider_name", provider),
            ("gen_ai_request_model", model),
            ("gen_ai_response_model", self.response_model.as_str()),
        ];
        base.extend(&consumer);
        if let Some(u) = &self.usage {
            for (kind, tokens, in_histogram) in [
                ("input", u.prompt_tokens, true),
                ("output", u.completion_tokens, true),
                ("cached_input", u.cached_tokens.unwrap_or(0), false),
                ("reasoning", u.reasoning_tokens.unwrap_or(0), false),
            ] {
                let mut labels = base.to_vec();
                labels.push(("gen_ai_token_type", kind));
                if in_histogram {
                    ops.push(MetricOp::Histogram {
                        name: name(TOKEN_USAGE, &labels),
                        value: tokens,
                    });
                }
                if tokens > 0 {
                    ops.push(MetricOp::Counter {
                        name: name(TOKENS, &labels),
                        delta: tokens,
                    });
                }
            }
        }
        if let Some(cost) = self.cost_micro_usd.filter(|c| *c > 0) {
            ops.push(MetricOp::Counter {
                name: name(COST, &base),
                delta: cost,
            });
        }
        let short = &base[..3];
        if let Some(ttft) = self.ttft_ms {
            ops.push(MetricOp::Histogram {
                name: name(TTFT, short),
                value: ttft,
            });
        }
        if let Some(tpot) = self.tpot_us {
            ops.push(MetricOp::Histogram {
                name: name(TPOT, short),
                value: tpot,
            });
        }
        if self.stream_error {
            ops.push(MetricOp::Counter {
                name: name(STREAM_ERRORS, short),
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
        };
        let ops = r.ops();
        let labels = ";gen_ai_operation_name=chat;gen_ai_provider_name=anthropic;gen_ai_request_model=claude";
        assert_eq!(
            ops[0],
            MetricOp::Counter {
                name: format!("{REQUESTS}{labels};http_response_status_class=2xx;error_type=none"),
                delta: 1
            }
        );
        let full = format!("{labels};gen_ai_response_model=claude-sonnet-4-5");
        assert!(ops.contains(&MetricOp::Counter {
            name: format!("{TOKENS}{full};gen_ai_token_type=cached_input"),
            delta: 4
        }));
        assert!(ops.contains(&MetricOp::Histogram {
            name: format!("{TOKEN_USAGE}{full};gen_ai_token_type=output"),
            value: 5
        }));
        assert!(ops.contains(&MetricOp::Counter {
            name: format!("{COST}{full}"),
            delta: 120
        }));
        assert!(ops.contains(&MetricOp::Histogram {
            name: format!("{TTFT}{labels}"),
            value: 150
        }));
        assert!(ops.contains(&MetricOp::Histogram {
            name: format!("{TPOT}{labels}"),
            value: 20_000
        }));
        let with_consumer = RequestRecord {
            consumer: Some("team-a".into()),
            ..r.clone()
        };
        let MetricOp::Counter { name, .. } = &with_consumer.ops()[0] else {
            panic!()
        };
        assert!(name.ends_with(";error_type=none;consumer=team-a"), "{name}");
        // No reasoning tokens: no zero counter.
        assert!(!ops
            .iter()
            .any(|o| matches!(o, MetricOp::Counter { name, .. } if name.ends_with("=reasoning"))));
    }

    #[test]
    fn label_values_cannot_break_names() {
        assert_eq!(label_value("a;b=c d"), "a_b_c_d");
        assert_eq!(label_value(""), "none");
        assert_eq!(label_value(&"x".repeat(100)).len(), 64);
        assert_eq!(label_value("llama3:8b/v1.2"), "llama3:8b/v1.2");
        let r = RequestRecord {
            operation: "other",
            status: 0,
            ..RequestRecord::default()
        };
        let MetricOp::Counter { name, .. } = &r.ops()[0] else {
            panic!()
        };
        assert!(name.contains("http_response_status_class=none"));
    }
}
