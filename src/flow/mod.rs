//! The life of one HTTP stream through the filter, independent of the proxy:
//! hold the request headers, buffer and validate the body, pick a target,
//! rewrite the request for its provider; on the way back, label the response
//! and turn upstream errors into OpenAI's error shape.
//!
//! The stream's state and the proxy callbacks live here; the work is split
//! by concern:
//! - `request`: path routing, authentication, forwarding and failover
//!   attempts;
//! - `rewrite`: rewriting the request for a target, translating it through
//!   the hub when the provider speaks another dialect;
//! - `select`: which model serves the request, and which target and key;
//! - `guard`: admission (rate limits, quotas, adaptive limits) and the
//!   health and limits recorded once the upstream answers;
//! - `response`: the response body, translated or normalized to OpenAI's
//!   error shape;
//! - `errors`: local answers and the errors the filter raises itself;
//! - `models`: the `/v1/models` answers.

mod cache;
mod errors;
mod guard;
mod guardrails;
pub mod models;
mod request;
mod response;
mod rewrite;
mod select;
#[cfg(test)]
mod tests;
mod token;

use crate::admission::cluster::ClusterHold;
use crate::admission::Reservation;
use crate::config::Gateway;
use crate::host::Host;
use crate::providers::Operation;
use crate::ratelimit::AdaptiveSpec;
use crate::route_select::Rng;
use crate::telemetry::Telemetry;
use crate::wire::hub::{RequestFacts, ResponseContext, Translator};
use crate::wire::openai::ParsedRequest;
use crate::wire::pass_stream::PassStream;
use crate::wire::stream::StreamTranslation;
use crate::wire::Api;
use errors::{empty_body, method_not_allowed, too_large};
use std::rc::Rc;

/// Route header the Envoy route's `cluster_header` reads. Clients cannot set
/// it: the filter removes it from every request it does not route itself.
pub const CLUSTER_HEADER: &str = "x-llm-gateway-cluster";
/// The request headers that carry `x-envoy-` and that Envoy or Istio set
/// before this filter runs; every other `x-envoy-*` header a client sends
/// is removed (they steer Envoy's router, retries and timeouts, or forge
/// what the access log records).
const ENVOY_HEADERS_KEPT: &[&str] = &[
    "x-envoy-internal",
    "x-envoy-external-address",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-peer-metadata",
    "x-envoy-peer-metadata-id",
];

/// Shadow models: a sampled request's copy is mirrored by Envoy (the
/// route's mirror policy names the cluster in `SHADOW_ROUTE_HEADER`) to
/// the gateway's internal listener, whose filter chain is `SHADOW_CHAIN`;
/// there this filter serves it as a request for `SHADOW_MODEL_HEADER`.
pub const SHADOW_CLUSTER: &str = "llmgw_shadow";
pub const SHADOW_CHAIN: &str = "llmgw_shadow";
pub const SHADOW_ROUTE_HEADER: &str = "x-llm-gateway-mirror";
pub const SHADOW_MODEL_HEADER: &str = "x-llm-gateway-shadow-model";
pub const SHADOW_OF_HEADER: &str = "x-llm-gateway-shadow-of";
pub const SHADOW_CONSUMER_HEADER: &str = "x-llm-gateway-shadow-consumer";
pub(crate) const SHADOW_HEADERS: [&str; 4] = [
    SHADOW_ROUTE_HEADER,
    SHADOW_MODEL_HEADER,
    SHADOW_OF_HEADER,
    SHADOW_CONSUMER_HEADER,
];

/// Stream value (Envoy filter state) carrying `api\nmodel[\nupstream]`
/// from the downstream filter to the per-attempt (upstream) filter of a
/// failover pool. Filter state, unlike a header, never leaves Envoy.
pub const POOL_KEY: &str = "llmgw.pool";
/// Stream value in which a pool attempt hands its token usage back to the
/// downstream filter that accounts for the request.
pub const USAGE_KEY: &str = "llmgw.usage";
/// Stream value in which a pool attempt hands back how the model finished.
pub const FINISH_KEY: &str = "llmgw.finish";
/// Stream value carrying a cacheable pooled request's key and TTL
/// (`hex digest\nttl`) to the attempt that stores its answer.
pub const CACHE_KEY: &str = "llmgw.cache_key";
/// Stream value in which the attempt says what became of the store.
pub const CACHE_STORED_KEY: &str = "llmgw.cache_stored";

/// Where this filter instance sits in Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the connection manager: validation, auth, limits, routing.
    Downstream,
    /// In the router's upstream filters: rewrites each attempt of a
    /// failover pool for the provider Envoy picked.
    Upstream,
}

/// Response header naming the target that served the request.
pub const TARGET_HEADER: &str = "x-llm-gateway-target";

/// What the proxy should do after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Hold headers (StopIteration) or buffer body (StopIterationAndBuffer).
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Request headers not seen yet.
    Start,
    /// Headers held, body being buffered.
    Buffering,
    /// The whole request held while a callout (moderation) is out.
    Held,
    /// Rewritten and sent upstream.
    Forwarded,
    /// Answered locally; nothing more to do.
    Answered,
    /// Placed upstream, on a request that is not a failover attempt.
    Bypass,
    /// Rewritten and held until the provider's access token is there, or
    /// until `deadline_ns`.
    AwaitingToken { deadline_ns: u64 },
    /// The provider refused the token: the answer is held until a new
    /// token is there (or `deadline_ns`), to send the request once more.
    RetryAwaitingToken { deadline_ns: u64 },
    /// The request is out again with the new token (a callout).
    RetryCallout,
}

/// How a request and its response cross between the client's wire and the
/// provider's, decided when the request is sent.
enum Exchange {
    /// Same wire on both sides: the client's bytes go (model renamed), the
    /// provider's come back (checked).
    Passthrough,
    /// Translated through the hub by the provider's egress edge and
    /// rendered in the client's wire: a whole response, a stream, or an
    /// embeddings list.
    Translate {
        egress: Rc<dyn Translator>,
        ctx: ResponseContext,
        op: Operation,
        stream: bool,
        include_usage: bool,
        /// Embeddings asked for `encoding_format: base64`.
        base64: bool,
    },
}

enum ResponseMode {
    /// Passed on as it comes (a failover pool's answer: its attempt
    /// already checked and translated it).
    Passthrough,
    /// A stream that already ended in an error frame: the rest is dropped.
    Discard,
    /// A passthrough stream passed on event by event, checked, watched for
    /// usage and for an end that comes too early.
    PassStream(Box<PassStream>),
    /// Headers held; the whole passthrough body must be JSON before it
    /// goes on (a truncated or HTML body becomes a 502).
    CheckBody,
    /// Buffer the body and rewrite it into the client's error shape.
    NormalizeError(u16),
    /// The response cannot be what the client asked for: a 502 saying why,
    /// quoting the start of the body.
    Reject(String),
    /// Headers held; buffer the whole body and translate it.
    TranslateBody,
    /// A stream asked for, a JSON body answered (ERNIE answers a stream's
    /// errors so): read as the provider's error, else a 502.
    StreamAnsweredWithJson,
    /// Translate each chunk as it arrives.
    TranslateStream(Box<StreamTranslation>),
}

impl ResponseMode {
    /// Modes that read the whole body at once, at its end.
    fn buffers(&self) -> bool {
        matches!(
            self,
            Self::CheckBody
                | Self::NormalizeError(_)
                | Self::Reject(_)
                | Self::TranslateBody
                | Self::StreamAnsweredWithJson
        )
    }
}

/// Per-stream state; lives in the HTTP context.
pub struct StreamFlow {
    gw: Rc<Gateway>,
    placement: Placement,
    /// The client API, from the request path (or, for a failover attempt,
    /// from the pool value).
    api: Api,
    /// What the flow knows of the request, once something asked.
    facts: Option<RequestFacts>,
    /// Sent to a failover pool (placed downstream).
    pooled: bool,
    /// The pool's model, for an attempt placed upstream.
    pool_model: Option<String>,
    rng: Rng,
    phase: Phase,
    /// Index of the chosen provider, and the upstream model.
    target: Option<(usize, String)>,
    /// The provider access token the request carries (token providers).
    access_token: Option<String>,
    /// The upstream path a token provider's request goes to (without the
    /// token), and the body sent: kept to send it once more when the
    /// provider refuses the token.
    token_path: Option<String>,
    sent_body: Option<Vec<u8>>,
    /// The request was already sent once more with a new token.
    token_retried: bool,
    retry_token_id: Option<u32>,
    exchange: Exchange,
    response: ResponseMode,
    telemetry: Telemetry,
    /// Index of the authenticated consumer, if any.
    consumer: Option<usize>,
    /// A signing consumer's signature headers, checked with the body.
    signature: Option<SignatureHeaders>,
    /// Rate-limit and quota reservations, settled when the stream ends.
    reservation: Option<Reservation>,
    /// What the request asked of the `scope: cluster` rules.
    cluster: Option<ClusterHold>,
    /// Envoy's rate-limit filter refused the request (a cluster rule, or
    /// the Rate Limit Service could not be asked): it reached no provider.
    cluster_refused: bool,
    /// The adaptive-limit slot held on the target: key, spec, taken at.
    adaptive: Option<(String, AdaptiveSpec, u64)>,
    /// Index of the provider key used, in the provider's pool.
    key: Option<usize>,
    /// A 429's `retry-after`, honoured by passive health.
    retry_after_ms: Option<u64>,
    /// In-flight / latency bookkeeping of the pool's strategy.
    in_flight: Option<crate::route_select::InFlight>,
    /// Decodes a body the provider compressed unasked.
    decoder: Option<crate::content_coding::Decoder>,
    /// Masks the provider's keys in whatever the client receives.
    redactor: Option<crate::redact::Redactor>,
    /// The upstream model a model-map entry chose for a failover pool.
    pool_upstream: Option<String>,
    /// The response's end went by (headers or body with end of stream).
    response_done: bool,
    /// Guardrails checking the response (the request's are applied before
    /// it is routed).
    guard_response: crate::guardrails::GuardSet,
    /// Guardrail hits of the request and its response.
    guard_tally: Rc<std::cell::RefCell<crate::guardrails::Tally>>,
    /// The request, held while a moderation callout is out.
    held: Option<guardrails::Held>,
    /// A guardrail masked the request: the body goes as rewritten.
    body_rewritten: bool,
    /// A failover attempt's guardrail hits were merged.
    guard_hits_taken: bool,
    /// This request is a shadow copy: (shadow model, the model it copies).
    shadow_pass: Option<(String, String)>,
    /// A cacheable request that missed: its key, and the answer once whole.
    cache: Option<cache::Pending>,
    /// The request, held while a semantic model embeds its prompt.
    embedding: Option<cache::Embedding>,
}

impl StreamFlow {
    pub fn new(gw: Rc<Gateway>, seed: u64) -> Self {
        Self::with_placement(gw, seed, Placement::Downstream)
    }

    pub fn with_placement(gw: Rc<Gateway>, seed: u64, placement: Placement) -> Self {
        Self {
            gw,
            placement,
            api: Api::ChatCompletions,
            facts: None,
            pooled: false,
            pool_model: None,
            rng: Rng::new(seed),
            phase: Phase::Start,
            target: None,
            access_token: None,
            token_path: None,
            sent_body: None,
            token_retried: false,
            retry_token_id: None,
            exchange: Exchange::Passthrough,
            response: ResponseMode::Passthrough,
            telemetry: Telemetry::default(),
            consumer: None,
            signature: None,
            reservation: None,
            cluster: None,
            cluster_refused: false,
            adaptive: None,
            key: None,
            retry_after_ms: None,
            in_flight: None,
            decoder: None,
            redactor: None,
            pool_upstream: None,
            response_done: false,
            guard_response: Default::default(),
            guard_tally: Default::default(),
            held: None,
            body_rewritten: false,
            guard_hits_taken: false,
            shadow_pass: None,
            cache: None,
            embedding: None,
        }
    }

    pub fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Verdict {
        if self.placement == Placement::Upstream {
            return self.attempt_headers(host, end_of_stream);
        }
        self.telemetry.start(host.now_nanos());
        // Only a copy on the internal listener is taken for a shadow (its
        // markers, like every client's `x-llm-gateway-*`, go below).
        let shadow_model = host.request_header(SHADOW_MODEL_HEADER);
        let shadow = match shadow_model {
            Some(model) if host.on_shadow_listener() => Some((
                model,
                host.request_header(SHADOW_OF_HEADER).unwrap_or_default(),
                host.request_header(SHADOW_CONSUMER_HEADER),
            )),
            _ => None,
        };
        strip_control_headers(host);
        let method = host.request_header(":method").unwrap_or_default();
        let full_path = host.request_header(":path").unwrap_or_default();
        let path = full_path.split('?').next().unwrap_or_default();
        // What the client asked for, for the access log: `:path` is
        // rewritten for the provider.
        self.telemetry.path = Some(full_path.clone());
        let api = match self.route(host, &method, path) {
            Ok(api) => api,
            Err(verdict) => return verdict,
        };
        self.telemetry.operation = api.operation_name();
        self.telemetry.api = api.name();
        if method != "POST" {
            return self.fail(host, &method_not_allowed(&method, path, "POST"));
        }
        if let Some((model, of, consumer)) = shadow {
            // The original was authenticated; its consumer is named.
            self.consumer = consumer.and_then(|c| self.gw.consumers.position(&c));
            self.telemetry.consumer = self
                .consumer
                .and_then(|i| self.gw.consumers.get(i))
                .map(|c| c.name.clone());
            self.telemetry.shadow = Some(format!("of:{of}"));
            self.telemetry.shadow_of = Some(of.clone());
            self.shadow_pass = Some((model, of));
        } else if let Err(e) = self.authenticate(host) {
            return self.fail(host, &e);
        }
        if end_of_stream {
            return self.fail(host, &empty_body());
        }
        let declared = host
            .request_header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(len) = declared {
            if len > self.gw.max_request_body_bytes as u64 {
                return self.fail(host, &too_large(self.gw.max_request_body_bytes));
            }
        }
        self.phase = Phase::Buffering;
        Verdict::Pause
    }

    pub fn on_request_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Verdict {
        let Phase::Buffering = self.phase else {
            return if matches!(self.phase, Phase::Answered | Phase::Held) {
                Verdict::Pause
            } else {
                Verdict::Continue
            };
        };
        if body_size > self.gw.max_request_body_bytes {
            return self.fail(host, &too_large(self.gw.max_request_body_bytes));
        }
        if !end_of_stream {
            return Verdict::Pause;
        }
        let body = match host.request_body(body_size) {
            Some(b) if !b.is_empty() => b,
            _ => return self.fail(host, &empty_body()),
        };
        if let Err(e) = self.check_signature(host, &body) {
            return self.fail(host, &e);
        }
        match self.api.parse(body) {
            Ok(parsed) if self.placement == Placement::Upstream => self.attempt(host, parsed),
            Ok(parsed) => self.forward(host, parsed),
            Err(e) => self.fail(host, &e),
        }
    }

    /// The request's facts, read from the body once, when first needed.
    fn facts(&mut self, req: &ParsedRequest) -> &RequestFacts {
        let api = self.api;
        self.facts.get_or_insert_with(|| api.facts(req.body()))
    }
    /// Metrics for the finished stream (proxy-wasm `on_log`).
    pub fn on_log(&mut self, host: &mut dyn Host) {
        if self.placement == Placement::Upstream {
            return;
        }
        if self.phase == Phase::Forwarded && !self.response_done {
            self.cut_short(host);
        }
        // The stream's end was stamped with the last body chunk, if any.
        let now = self.telemetry.end_ns().unwrap_or_else(|| host.now_nanos());
        self.telemetry.end(now);
        self.take_pool_usage(host);
        self.settle_cluster(host);
        self.record_guardrails(host);
        self.settle(host, now);
        for op in self
            .telemetry
            .record(&self.gw, now)
            .ops(&self.gw.metric_names)
        {
            host.metric(&op);
        }
        for op in self.cache_metrics() {
            host.metric(&op);
        }
    }

    /// The response never ended: Envoy reset it (the provider reset or
    /// stalled mid-body; the filter gets no callback for that), or the
    /// client went away. Only the first counts against the provider.
    fn cut_short(&mut self, host: &dyn Host) {
        let details = host.response_details().unwrap_or_default();
        if details.starts_with("downstream") {
            self.telemetry.client_closed = true;
            self.telemetry.error_type = Some("client_closed".into());
            return;
        }
        // Envoy may have answered in the provider's place (headers still
        // held by this filter): count what the client got.
        match host.response_code() {
            Some(code) if code != self.telemetry.status && code >= 400 => {
                self.telemetry.status = code;
                self.telemetry.error_type = Some(crate::error::kind_for_status(code).into());
            }
            _ => {
                self.telemetry.stream_error = true;
                self.telemetry.error_type = Some("upstream_incomplete".into());
            }
        }
    }

    fn publish_log_fields(&mut self, host: &mut dyn Host) {
        if !self.gw.log_fields {
            return;
        }
        self.take_pool_guard_hits(&*host);
        self.telemetry.guardrails = self.guardrails_field();
        for (key, value) in self.telemetry.log_fields(&self.gw) {
            host.set_stream_value(key, &value);
        }
    }
}

/// What a signing consumer's request carries besides its key.
pub(super) struct SignatureHeaders {
    timestamp: Option<String>,
    nonce: Option<String>,
    signature: Option<String>,
}

/// Removes the request headers through which a client could steer Envoy
/// (`x-envoy-*` but those Envoy and Istio set themselves) or this filter's
/// routing (`x-llm-gateway-*`).
fn strip_control_headers(host: &mut dyn Host) {
    let control = |name: &str| {
        (name.starts_with("x-envoy-") && !ENVOY_HEADERS_KEPT.contains(&name))
            || name.starts_with("x-llm-gateway-")
    };
    for name in host.request_header_names(&control) {
        host.set_request_header(&name, None);
    }
}
