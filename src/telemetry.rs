//! What one stream records for metrics and access logs, gathered as the
//! request and response pass and turned into a `RequestRecord` at the end.

use crate::config::Gateway;
use crate::metrics::RequestRecord;
use crate::wire::hub::Usage;

#[derive(Default)]
pub struct Telemetry {
    start_ns: u64,
    first_byte_ns: Option<u64>,
    end_ns: Option<u64>,
    /// The client API's name, `none` until the path names one.
    pub api: &'static str,
    pub operation: &'static str,
    /// Configured model name (`unknown` when the client's is not configured).
    pub request_model: Option<String>,
    /// Provider config name and type, once routed.
    pub provider: Option<(String, &'static str)>,
    pub response_model: Option<String>,
    pub status: u16,
    pub error_type: Option<String>,
    pub stream: bool,
    pub usage: Option<Usage>,
    pub stream_error: bool,
    /// The client went away before the response ended.
    pub client_closed: bool,
    pub consumer: Option<String>,
    /// The path the client requested (with query), for the access log.
    pub path: Option<String>,
    /// The routing rule that chose the model, if one did.
    pub rule: Option<String>,
    /// The moderation rule consulted, and its outcome.
    pub moderation: Option<(usize, &'static str)>,
    /// Guardrail hits, `rule:action:direction:count,…` (never the text).
    pub guardrails: Option<String>,
    /// Shadow models, for the access log: `to:<model>` on a request that was
    /// copied, `of:<model>` on the copy.
    pub shadow: Option<String>,
    /// On a shadow copy: the model it copies (its metrics are the shadow's).
    pub shadow_of: Option<String>,
    /// How the model finished, as the client was told (access log).
    pub finish_reason: Option<crate::wire::hub::FinishReason>,
    /// What the response cache did: hit, miss, store, bypass.
    pub cache: Option<&'static str>,
    /// A hit: the usage of the answer served, which no provider was paid for.
    pub cache_saved: Option<Usage>,
    /// A miss: what became of storing its answer.
    pub cache_stored: Option<crate::cache::Stored>,
    /// A semantic model's lookup: hit, miss or failed (no embedding).
    pub cache_semantic: Option<&'static str>,
    /// A semantic hit: how similar the prompts were.
    pub cache_similarity: Option<f32>,
}

impl Telemetry {
    pub fn start(&mut self, now_ns: u64) {
        self.start_ns = now_ns;
        self.api = "none";
        self.operation = "other";
    }

    /// When the request came in, if it was stamped.
    pub fn started_ns(&self) -> Option<u64> {
        (self.start_ns > 0).then_some(self.start_ns)
    }

    pub fn body_chunk(&mut self, now_ns: u64, len: usize) {
        if len > 0 && self.first_byte_ns.is_none() {
            self.first_byte_ns = Some(now_ns);
        }
    }

    pub fn end(&mut self, now_ns: u64) {
        if self.end_ns.is_none() {
            self.end_ns = Some(now_ns);
        }
    }

    /// No response body byte seen yet.
    pub fn awaiting_first_byte(&self) -> bool {
        self.first_byte_ns.is_none()
    }

    /// When the response ended, once it has.
    pub fn end_ns(&self) -> Option<u64> {
        self.end_ns
    }

    /// Time to the first response byte, any response.
    pub fn first_byte_ms(&self) -> Option<u64> {
        self.first_byte_ns.map(|t| self.ms_since_start(t))
    }

    fn ms_since_start(&self, t: u64) -> u64 {
        t.saturating_sub(self.start_ns) / 1_000_000
    }

    fn succeeded(&self) -> bool {
        (200..300).contains(&self.status) && !self.stream_error
    }

    /// Streams only, and only when the answer is a success.
    fn ttft_ms(&self) -> Option<u64> {
        let first = self
            .first_byte_ns
            .filter(|_| self.stream && self.succeeded())?;
        Some(self.ms_since_start(first))
    }

    /// Mean time between output tokens after the first, for streams.
    fn tpot_us(&self) -> Option<u64> {
        let (first, end) = (self.first_byte_ns?, self.end_ns?);
        let tokens = self.usage?.completion_tokens;
        if !self.stream || !self.succeeded() || tokens < 2 {
            return None;
        }
        Some(end.saturating_sub(first) / 1000 / (tokens - 1))
    }

    fn cost(&self, gw: &Gateway) -> Option<u64> {
        gw.prices
            .cost_micro_usd(self.response_model.as_deref()?, self.usage.as_ref()?)
    }

    pub fn record(&self, gw: &Gateway, now_ns: u64) -> RequestRecord {
        let end = self.end_ns.unwrap_or(now_ns);
        RequestRecord {
            api: self.api,
            operation: self.operation,
            provider: self.provider.as_ref().map_or("none".into(), |(_, kind)| {
                crate::metrics::otel_provider(kind).into()
            }),
            request_model: self.request_model.clone().unwrap_or_else(|| "none".into()),
            response_model: self.response_model.clone().unwrap_or_else(|| "none".into()),
            status: self.status,
            error_type: self.error_type.clone().unwrap_or_else(|| "none".into()),
            usage: self.usage,
            cost_micro_usd: self.cost(gw),
            duration_ms: self.ms_since_start(end),
            ttft_ms: self.ttft_ms(),
            tpot_us: self.tpot_us(),
            stream_error: self.stream_error,
            consumer: self.consumer.clone().filter(|_| gw.consumer_label),
            shadow_of: self.shadow_of.clone(),
        }
    }

    /// Access-log fields (Envoy filter state `wasm.llmgw.*`).
    pub fn log_fields(&self, gw: &Gateway) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("llmgw.api", self.api.to_string()),
            ("llmgw.operation", self.operation.to_string()),
        ];
        if let Some(p) = &self.path {
            f.push(("llmgw.path", p.clone()));
        }
        if let Some(m) = &self.request_model {
            f.push(("llmgw.model", m.clone()));
        }
        if let Some(c) = &self.consumer {
            f.push(("llmgw.consumer", c.clone()));
        }
        if let Some(r) = &self.rule {
            f.push(("llmgw.rule", r.clone()));
        }
        if let Some((name, kind)) = &self.provider {
            f.push(("llmgw.provider", name.clone()));
            f.push((
                "llmgw.provider_type",
                crate::metrics::otel_provider(kind).into(),
            ));
        }
        if let Some(m) = &self.response_model {
            f.push(("llmgw.upstream_model", m.clone()));
        }
        if let Some(u) = &self.usage {
            f.push(("llmgw.tokens_in", u.prompt_tokens.to_string()));
            f.push(("llmgw.tokens_out", u.completion_tokens.to_string()));
        }
        if let Some(c) = self.cost(gw) {
            f.push(("llmgw.cost_usd", format!("{:.6}", c as f64 / 1e6)));
        }
        if let Some(t) = self.ttft_ms() {
            f.push(("llmgw.ttft_ms", t.to_string()));
        }
        if let Some(e) = &self.error_type {
            f.push(("llmgw.error", e.clone()));
        }
        if let Some(g) = &self.guardrails {
            f.push(("llmgw.guardrails", g.clone()));
        }
        if let Some(s) = &self.shadow {
            f.push(("llmgw.shadow", s.clone()));
        }
        if let Some(r) = self.finish_reason {
            f.push(("llmgw.finish_reason", r.as_openai().to_string()));
        }
        if let Some(c) = self.cache {
            f.push(("llmgw.cache", c.to_string()));
        }
        if let Some(s) = self.cache_similarity {
            f.push(("llmgw.cache_similarity", format!("{s:.4}")));
        }
        f
    }
}
