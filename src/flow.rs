//! The life of one HTTP stream through the filter, independent of the proxy:
//! hold the request headers, buffer and validate the body, pick a target,
//! rewrite the request for its provider; on the way back, label the response
//! and turn upstream errors into OpenAI's error shape.

use crate::admission::{self, Facts, Ticket};
use crate::config::{Dialect, Gateway, Model, Provider, Target};
use crate::consumers::{model_not_allowed, presented_key};
use crate::error::{normalize_upstream_error, scrub, ApiError};
use crate::health;
use crate::host::SharedStore;
use crate::host::{Host, LogLevel};
use crate::hub::{ResponseContext, Translator};
use crate::metrics;
use crate::openai::{self, render, to_hub, ParsedRequest};
use crate::providers::{azure, openai_compat, Operation, CLIENT_CREDENTIAL_HEADERS};
use crate::ratelimit::{adaptive, AdaptiveSpec, Outcome};
use crate::routing::{self, Rng};
use crate::stream::StreamTranslation;
use crate::telemetry::Telemetry;
use crate::usage_tap::UsageTap;
use std::rc::Rc;

/// Route header the Envoy route's `cluster_header` reads. Clients cannot set
/// it: the filter removes it from every request it does not route itself.
pub const CLUSTER_HEADER: &str = "x-llm-gateway-cluster";
/// Request headers through which a client could steer Envoy's router.
const ENVOY_CONTROL_HEADERS: &[&str] = &[
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-max-retries",
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-hedge-on-per-try-timeout",
];

/// Carries `operation:model` from the downstream filter to the per-attempt
/// (upstream) filter of a failover pool.
pub const POOL_HEADER: &str = "x-llm-gateway-pool";

/// Where this filter instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
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
    Buffering(Operation),
    /// Rewritten and sent upstream.
    Forwarded,
    /// Answered locally; nothing more to do.
    Answered,
    /// Upstream role on a request that is not a failover attempt.
    Bypass,
}

/// How the response must be treated, decided when the request is sent.
enum Plan {
    /// OpenAI-shaped responses pass through.
    Passthrough,
    /// Translated by `translator`: a whole chat completion, a stream, or
    /// an embeddings list.
    Translate {
        translator: Rc<dyn Translator>,
        ctx: ResponseContext,
        op: Operation,
        stream: bool,
        include_usage: bool,
        /// Embeddings asked for `encoding_format: base64`.
        base64: bool,
    },
}

enum ResponseMode {
    Passthrough,
    /// Buffer the body and rewrite it into an OpenAI error.
    NormalizeError(u16),
    /// Headers held; buffer the whole body and translate it.
    TranslateBody,
    /// Translate each chunk as it arrives.
    TranslateStream(Box<StreamTranslation>),
}

/// Per-stream state; lives in the HTTP context.
pub struct StreamFlow {
    gw: Rc<Gateway>,
    role: Role,
    /// Sent to a failover pool (downstream role).
    pooled: bool,
    /// The pool's model, for an upstream-role attempt.
    pool_model: Option<String>,
    rng: Rng,
    phase: Phase,
    /// Index of the chosen provider, and the upstream model.
    target: Option<(usize, String)>,
    plan: Plan,
    response: ResponseMode,
    telemetry: Telemetry,
    /// Index of the authenticated consumer, if any.
    consumer: Option<usize>,
    /// Rate-limit and quota reservations, settled when the stream ends.
    ticket: Option<Ticket>,
    /// The adaptive-limit slot held on the target: key, spec, taken at.
    adaptive: Option<(String, AdaptiveSpec, u64)>,
    /// Index of the provider key used, in the provider's pool.
    key: Option<usize>,
    /// A 429's `retry-after`, honoured by passive health.
    retry_after_ms: Option<u64>,
    /// In-flight / latency bookkeeping of the pool's strategy.
    strategy_ticket: Option<crate::route_select::Ticket>,
}

impl StreamFlow {
    pub fn new(gw: Rc<Gateway>, seed: u64) -> Self {
        Self::with_role(gw, seed, Role::Downstream)
    }

    pub fn with_role(gw: Rc<Gateway>, seed: u64, role: Role) -> Self {
        Self {
            gw,
            role,
            pooled: false,
            pool_model: None,
            rng: Rng::new(seed),
            phase: Phase::Start,
            target: None,
            plan: Plan::Passthrough,
            response: ResponseMode::Passthrough,
            telemetry: Telemetry::default(),
            consumer: None,
            ticket: None,
            adaptive: None,
            key: None,
            retry_after_ms: None,
            strategy_ticket: None,
        }
    }

    pub fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Verdict {
        if self.role == Role::Upstream {
            return self.attempt_headers(host, end_of_stream);
        }
        self.telemetry.start(host.now_nanos());
        host.set_request_header(CLUSTER_HEADER, None);
        host.set_request_header(POOL_HEADER, None);
        // Envoy obeys these from the request; only the gateway may set them.
        for name in ENVOY_CONTROL_HEADERS {
            host.set_request_header(name, None);
        }
        let method = host.request_header(":method").unwrap_or_default();
        let full_path = host.request_header(":path").unwrap_or_default();
        let path = full_path.split('?').next().unwrap_or_default();
        let op = match path {
            "/v1/chat/completions" => Operation::ChatCompletions,
            "/v1/embeddings" => Operation::Embeddings,
            "/v1/models" if method != "GET" => {
                return self.fail(host, &method_not_allowed(&method, path, "GET"))
            }
            "/v1/models" => {
                if let Err(e) = self.authenticate(host) {
                    return self.fail(host, &e);
                }
                let body = openai::models_list(&self.gw, &|m| self.may_use(m));
                return self.answer(host, 200, &body);
            }
            _ if method == "GET" && path.starts_with("/v1/models/") => {
                if let Err(e) = self.authenticate(host) {
                    return self.fail(host, &e);
                }
                let id = &path["/v1/models/".len()..];
                return match openai::model_retrieve(&self.gw, id, &|m| self.may_use(m)) {
                    Ok(body) => self.answer(host, 200, &body),
                    Err(e) => self.fail(host, &e),
                };
            }
            _ => {
                let e = ApiError::new(
                    404,
                    "invalid_request_error",
                    format!(
                        "Unknown request URL: {method} {path}. This gateway serves POST /v1/chat/completions, POST /v1/embeddings and GET /v1/models."
                    ),
                )
                .with_code("unknown_url");
                return self.fail(host, &e);
            }
        };
        self.telemetry.operation = op.name();
        if method != "POST" {
            return self.fail(host, &method_not_allowed(&method, path, "POST"));
        }
        if let Err(e) = self.authenticate(host) {
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
        self.phase = Phase::Buffering(op);
        Verdict::Pause
    }

    pub fn on_request_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Verdict {
        let Phase::Buffering(op) = self.phase else {
            return if self.phase == Phase::Answered {
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
        match openai::parse_request(op, &body) {
            Ok(parsed) if self.role == Role::Upstream => self.attempt(host, op, parsed),
            Ok(parsed) => self.forward(host, op, parsed),
            Err(e) => self.fail(host, &e),
        }
    }

    /// Upstream role: only failover attempts (marked by the pool header) are
    /// rewritten; everything else was rewritten downstream already.
    fn attempt_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Verdict {
        // `op:model`. Envoy hands every attempt the same header map, so the
        // header stays (it carries no secret): a retry must find it, and each
        // attempt rewrites path, host, credentials and length afresh.
        let pool = host.request_header(POOL_HEADER);
        let Some((op, model)) = pool.as_deref().and_then(|p| p.split_once(':')) else {
            self.phase = Phase::Bypass;
            return Verdict::Continue;
        };
        let op = if op == Operation::Embeddings.name() {
            Operation::Embeddings
        } else {
            Operation::ChatCompletions
        };
        self.pool_model = Some(model.to_string());
        if end_of_stream {
            return self.fail(host, &empty_body());
        }
        self.phase = Phase::Buffering(op);
        Verdict::Pause
    }

    /// One failover attempt: rewrite for the provider Envoy picked.
    fn attempt(&mut self, host: &mut dyn Host, op: Operation, req: ParsedRequest) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let provider_name = host.upstream_provider();
        let target = self
            .pool_model
            .as_deref()
            .and_then(|m| gw.model(m))
            .and_then(|m| {
                m.targets
                    .iter()
                    .find(|t| Some(&gw.providers[t.provider].name) == provider_name.as_ref())
            });
        let Some(target) = target else {
            let e = ApiError::new(
                500,
                "api_error",
                format!(
                    "Failover attempt for model '{}' reached provider {:?}, which is not one of its targets.",
                    self.pool_model.as_deref().unwrap_or_default(),
                    provider_name.unwrap_or_default()
                ),
            );
            return self.fail(host, &e);
        };
        let key = self.pick_key(
            host.store(),
            &gw.providers[target.provider],
            host.now_nanos(),
            false,
        );
        self.rewrite(host, op, req, target, key)
    }

    pub fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Verdict {
        if matches!(self.phase, Phase::Answered | Phase::Bypass) {
            return Verdict::Continue;
        }
        if self.pooled {
            // The attempt's filter named the target that answered.
            self.observe_pool_target(&*host);
        }
        if let Some((provider, model)) = &self.target {
            let label = format!("{}/{}", self.gw.providers[*provider].name, model);
            host.set_response_header(TARGET_HEADER, Some(&label));
        }
        if let Some(ticket) = &self.ticket {
            for (name, value) in admission::rate_limit_headers(ticket) {
                host.set_response_header(&name, Some(&value));
            }
        }
        let status = host
            .response_header(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        self.telemetry.status = status;
        if status == 429 {
            self.retry_after_ms = retry_after_ms(&*host);
        }
        self.record_key_outcome(&*host, status);
        if self.role == Role::Upstream {
            // Envoy may retry this attempt elsewhere: record it now.
            let now = host.now_nanos();
            self.record_target_outcome(host, now);
        }
        if status >= 400 {
            self.telemetry.error_type = Some(crate::error::kind_for_status(status).into());
            self.telemetry.tap = None;
            self.response = ResponseMode::NormalizeError(status);
            host.set_response_header("content-type", Some("application/json"));
            host.set_response_header("content-length", None);
            return Verdict::Continue;
        }
        let Plan::Translate {
            translator,
            ctx,
            stream,
            include_usage,
            ..
        } = &self.plan
        else {
            return Verdict::Continue;
        };
        if !(200..300).contains(&status) {
            return Verdict::Continue;
        }
        host.set_response_header("content-length", None);
        if *stream {
            host.set_response_header("content-type", Some("text/event-stream"));
            host.set_response_header("cache-control", Some("no-cache"));
            let decoder = translator.stream_decoder(ctx);
            self.response = ResponseMode::TranslateStream(Box::new(StreamTranslation::new(
                decoder,
                ctx,
                *include_usage,
            )));
            return Verdict::Continue;
        }
        host.set_response_header("content-type", Some("application/json"));
        self.response = ResponseMode::TranslateBody;
        // Held so a body that cannot be translated can still become a 502.
        if end_of_stream {
            Verdict::Continue
        } else {
            Verdict::Pause
        }
    }

    pub fn on_response_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Verdict {
        if matches!(self.phase, Phase::Answered | Phase::Bypass) {
            return Verdict::Continue;
        }
        self.telemetry.body_chunk(host.now_nanos(), body_size);
        if let Some(tap) = self.telemetry.tap.as_mut() {
            if let Some(chunk) = host.response_body(body_size).filter(|c| !c.is_empty()) {
                tap.observe(&chunk);
            }
        }
        let verdict = self.transform_body(host, body_size, end_of_stream);
        if end_of_stream {
            self.telemetry.end(host.now_nanos());
            self.publish_log_fields(host);
        }
        verdict
    }

    /// Metrics for the finished stream (proxy-wasm `on_log`).
    pub fn on_log(&mut self, host: &mut dyn Host) {
        if self.role == Role::Upstream {
            return;
        }
        let now = host.now_nanos();
        self.telemetry.end(now);
        self.settle(host, now);
        for op in self.telemetry.record(&self.gw, now).ops() {
            host.metric(&op);
        }
    }

    fn publish_log_fields(&self, host: &mut dyn Host) {
        for (key, value) in self.telemetry.log_fields(&self.gw) {
            host.set_log_field(key, &value);
        }
    }

    fn transform_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Verdict {
        match &mut self.response {
            ResponseMode::Passthrough => Verdict::Continue,
            ResponseMode::TranslateStream(st) => {
                let chunk = host.response_body(body_size).unwrap_or_default();
                let mut out = st.feed(&chunk);
                if end_of_stream {
                    out.extend(st.finish());
                    self.telemetry.usage = st.usage();
                }
                self.telemetry.stream_error |= st.failed();
                host.set_response_body(&out);
                Verdict::Continue
            }
            ResponseMode::NormalizeError(_) | ResponseMode::TranslateBody if !end_of_stream => {
                Verdict::Pause
            }
            ResponseMode::NormalizeError(status) => {
                let status = *status;
                let body = host.response_body(body_size).unwrap_or_default();
                let secrets = self
                    .target
                    .as_ref()
                    .map(|(p, _)| self.gw.providers[*p].secrets())
                    .unwrap_or_default();
                let err = match &self.plan {
                    Plan::Translate { translator, .. } => {
                        let mut e = translator.decode_error(status, &body);
                        e.message = scrub(&e.message, &secrets);
                        e
                    }
                    Plan::Passthrough => normalize_upstream_error(status, &body, &secrets),
                };
                host.set_response_body(&err.to_json());
                self.response = ResponseMode::Passthrough;
                Verdict::Continue
            }
            ResponseMode::TranslateBody => {
                let body = host.response_body(body_size).unwrap_or_default();
                let translated = match &self.plan {
                    Plan::Translate {
                        translator,
                        ctx,
                        op: Operation::ChatCompletions,
                        ..
                    } => translator.decode_response(&body, ctx).map(|r| {
                        self.telemetry.usage = r.usage;
                        render::chat_completion(&r)
                    }),
                    Plan::Translate {
                        translator,
                        ctx,
                        op: Operation::Embeddings,
                        base64,
                        ..
                    } => translator.decode_embeddings(&body, ctx).map(|r| {
                        self.telemetry.usage = Some(crate::hub::Usage {
                            prompt_tokens: r.prompt_tokens,
                            total_tokens: r.prompt_tokens,
                            ..Default::default()
                        });
                        render::embeddings(&r, *base64)
                    }),
                    Plan::Passthrough => Ok(body),
                };
                let out = match translated {
                    Ok(out) => out,
                    Err(e) => {
                        host.log(LogLevel::Warn, &e.message);
                        host.set_response_header(":status", Some(&e.status.to_string()));
                        self.telemetry.status = e.status;
                        self.telemetry.error_type = Some(e.kind.to_string());
                        e.to_json()
                    }
                };
                host.set_response_header("content-length", Some(&out.len().to_string()));
                host.set_response_body(&out);
                self.response = ResponseMode::Passthrough;
                Verdict::Continue
            }
        }
    }

    fn forward(&mut self, host: &mut dyn Host, op: Operation, req: ParsedRequest) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let (model, upstream_override) = match self.resolve_model(&*host, &req) {
            Some(found) => found,
            None => {
                self.telemetry.request_model = Some("unknown".into());
                return self.fail(
                    host,
                    &openai::unknown_model(&gw, &req.model, &|m| self.may_use(m)),
                );
            }
        };
        let model = &gw.models[model];
        if let Some(consumer) = self.consumer.and_then(|i| gw.consumers.get(i)) {
            if !consumer.may_use(&model.name) {
                self.telemetry.request_model = Some(model.name.clone());
                return self.fail(host, &model_not_allowed(consumer, &model.name));
            }
        }
        self.telemetry.request_model = Some(model.name.clone());
        self.telemetry.stream = req.stream;
        let Some((target_index, key_index)) = self.choose(&*host, model) else {
            return self.fail(host, &no_target(&gw, model));
        };
        let mut target = model.targets[target_index].clone();
        if let Err(verdict) = self.admit(host, &req, &model.name, &target) {
            return verdict;
        }
        self.strategy_ticket = Some(crate::route_select::on_start(
            model.policy.strategy,
            host.store(),
            &crate::route_select::strategy::pool_key(&model.name),
            &target.id,
            host.now_nanos(),
        ));
        if model.failover {
            return self.send_to_pool(host, model, target_index, req.stream);
        }
        if let Some(upstream) = upstream_override {
            let azure = matches!(gw.providers[target.provider].dialect, Dialect::Azure { .. });
            if azure && !azure::valid_deployment(&upstream) {
                let e = ApiError::invalid_request(format!(
                    "Model '{}' maps to Azure deployment '{upstream}', which is not a valid deployment name.",
                    req.model
                ))
                .with_param("model")
                .with_code("invalid_value");
                return self.fail(host, &e);
            }
            target.model = upstream;
        }
        self.rewrite(host, op, req, &target, key_index)
    }

    /// Which configured model serves the request: a routing rule, else the
    /// exact name, else the model map (with an optional upstream override).
    fn resolve_model(
        &mut self,
        host: &dyn Host,
        req: &ParsedRequest,
    ) -> Option<(usize, Option<String>)> {
        let gw = Rc::clone(&self.gw);
        if !gw.routing_rules.is_empty() {
            let consumer = self
                .consumer
                .and_then(|i| gw.consumers.get(i))
                .map(|c| c.name.as_str());
            let header = |name: &str| host.request_header(name);
            let messages = match req.body.get("messages") {
                Some(serde_json::Value::Array(m)) => m.as_slice(),
                _ => &[],
            };
            let last_user = messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(|r| r.as_str()) == Some("user"))
                .map(message_text)
                .unwrap_or_default();
            let facts = crate::route_select::RuleFacts {
                model: &req.model,
                consumer,
                header: &header,
                prompt_tokens: admission::estimate_prompt_tokens(&req.body),
                messages: messages.len(),
                last_user_text: &last_user,
            };
            if let Some((rule, pool)) = gw.routing_rules.choose(&facts) {
                self.telemetry.rule = Some(rule.to_string());
                return gw.model_position(pool).map(|i| (i, None));
            }
        }
        if let Some(i) = gw.model_position(&req.model) {
            return Some((i, None));
        }
        let resolved = gw.model_map.resolve(&req.model)?;
        let i = gw.model_position(resolved.pool)?;
        Some((i, resolved.upstream_model))
    }

    /// Failover: the request goes, still in OpenAI form, to the model's pool
    /// (an Envoy aggregate cluster starting at the chosen target); the same
    /// filter, running as an upstream filter, rewrites each attempt for the
    /// provider Envoy picked and translates its answer.
    fn send_to_pool(
        &mut self,
        host: &mut dyn Host,
        model: &Model,
        first: usize,
        stream: bool,
    ) -> Verdict {
        let gw = Rc::clone(&self.gw);
        host.set_request_header(CLUSTER_HEADER, Some(&gw.pool_cluster(model, first)));
        let op = self.telemetry.operation;
        host.set_request_header(POOL_HEADER, Some(&format!("{op}:{}", model.name)));
        for name in CLIENT_CREDENTIAL_HEADERS {
            host.set_request_header(name, None);
        }
        self.pooled = true;
        self.telemetry.tap = Some(UsageTap::new(stream));
        self.phase = Phase::Forwarded;
        Verdict::Continue
    }

    /// Rewrites the request for one target: path, host, credentials, body.
    fn rewrite(
        &mut self,
        host: &mut dyn Host,
        op: Operation,
        mut req: ParsedRequest,
        target: &Target,
        key_index: Option<usize>,
    ) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let provider = &gw.providers[target.provider];
        self.key = key_index;
        let prefix = provider.endpoint.path_prefix.as_str();
        let (path, body) = match &provider.dialect {
            Dialect::OpenAi => (
                openai_compat::upstream_path(prefix, op),
                openai_compat::rename_model(&mut req.body, &target.model),
            ),
            Dialect::Azure { api_version } => (
                azure::path(prefix, &target.model, op, api_version),
                openai_compat::rename_model(&mut req.body, &target.model),
            ),
            Dialect::Translated(translator) => {
                match self.translate(host, translator, op, &req, target, prefix) {
                    Ok(pair) => pair,
                    Err(e) => return self.fail(host, &e),
                }
            }
        };

        host.set_request_header(":path", Some(&path));
        host.set_request_header(":authority", Some(&provider.endpoint.authority()));
        if self.role == Role::Downstream {
            host.set_request_header(CLUSTER_HEADER, Some(&provider.cluster));
        }
        for name in CLIENT_CREDENTIAL_HEADERS {
            host.set_request_header(name, None);
        }
        if let Some((name, value)) = key_index
            .and_then(|k| provider.keys.get(k))
            .and_then(|k| k.header.as_ref())
        {
            host.set_request_header(name, Some(value));
        }
        for (name, value) in &provider.extra_headers {
            host.set_request_header(name, Some(value));
        }
        if matches!(self.plan, Plan::Translate { .. }) {
            // Translation reads the body: ask for it uncompressed.
            host.set_request_header("accept-encoding", None);
        }
        host.set_request_header("content-type", Some("application/json"));
        host.set_request_header("content-length", Some(&body.len().to_string()));
        host.set_request_body(&body);
        host.log(
            LogLevel::Debug,
            &format!(
                "{} model={} stream={} -> {}/{}",
                op.name(),
                req.model,
                req.stream,
                provider.name,
                target.model
            ),
        );
        self.telemetry.provider = Some((provider.name.clone(), provider.kind));
        self.telemetry.response_model = Some(target.model.clone());
        if matches!(self.plan, Plan::Passthrough) {
            self.telemetry.tap = Some(UsageTap::new(req.stream));
        }
        self.target = Some((target.provider, target.model.clone()));
        self.phase = Phase::Forwarded;
        Verdict::Continue
    }

    /// Builds the provider's request through the hub and plans the response.
    fn translate(
        &mut self,
        host: &mut dyn Host,
        translator: &Rc<dyn Translator>,
        op: Operation,
        req: &ParsedRequest,
        target: &Target,
        prefix: &str,
    ) -> Result<(String, Vec<u8>), ApiError> {
        let ctx = ResponseContext {
            model: target.model.clone(),
            created: host.now_nanos() / 1_000_000_000,
            request_id: format!("{:016x}", self.rng.next_u64()),
        };
        let (body, stream, include_usage) = match op {
            Operation::ChatCompletions => {
                let mut hub = to_hub::chat_request(&req.body, &target.model)?;
                if hub.max_tokens.is_none() {
                    hub.max_tokens = target.max_tokens;
                }
                (
                    translator.encode_request(&hub)?,
                    hub.stream,
                    hub.include_usage,
                )
            }
            Operation::Embeddings => {
                let hub = to_hub::embeddings_request(&req.body, &target.model)?;
                (translator.encode_embeddings(&hub)?, false, false)
            }
        };
        let path = translator.path(op, prefix, &target.model, stream);
        let base64 = req.body.get("encoding_format").and_then(|v| v.as_str()) == Some("base64");
        self.plan = Plan::Translate {
            translator: Rc::clone(translator),
            ctx,
            op,
            stream,
            include_usage,
            base64,
        };
        Ok((path, body))
    }

    /// Rate limits, quotas and the target's adaptive limit, checked and
    /// reserved before the request can cost anything. `Err` carries the
    /// verdict of the refusal already sent.
    fn admit(
        &mut self,
        host: &mut dyn Host,
        req: &ParsedRequest,
        model: &str,
        target: &Target,
    ) -> Result<(), Verdict> {
        let gw = Rc::clone(&self.gw);
        let now = host.now_nanos();
        let consumer = self
            .consumer
            .and_then(|i| gw.consumers.get(i))
            .map(|c| c.name.as_str());
        let ip = client_ip(&*host, gw.rules.trusted_hops);
        let max_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| req.body.get(*k).and_then(|v| v.as_u64()))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let outcome = {
            let reader: &dyn Host = &*host;
            let header = |name: &str| reader.request_header(name);
            let facts = Facts {
                consumer,
                model,
                route: self.telemetry.operation,
                client_ip: ip.as_deref(),
                header: &header,
                prompt_tokens: admission::estimate_prompt_tokens(&req.body),
                max_tokens,
            };
            admission::admit(&gw.rules, &gw.consumers, reader.store(), &facts, now)
        };
        match outcome {
            Ok(ticket) => self.ticket = Some(ticket),
            Err(refusal) => {
                host.metric(&metrics::rate_limited(&refusal.limit));
                let headers: Vec<(&str, &str)> = refusal
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                return Err(self.fail_with(host, &refusal.error, &headers));
            }
        }
        let provider = &gw.providers[target.provider];
        // A failover request may be served by another target: its attempts
        // are not counted against this one's adaptive limit.
        let pooled = gw.model(model).is_some_and(|m| m.failover);
        let Some(spec) = provider.adaptive.filter(|_| !pooled) else {
            return Ok(());
        };
        let key = adaptive_key(&provider.name, &target.model);
        match adaptive::acquire(host.store(), &key, &spec, now, admission::MAX_CAS_RETRIES) {
            Ok(Some(limit)) => {
                host.metric(&metrics::adaptive_limit(
                    &provider.name,
                    &target.model,
                    limit,
                ));
                self.adaptive = Some((key, spec, now));
                Ok(())
            }
            Err(_) if gw.rules.fail_open => Ok(()),
            Ok(None) | Err(_) => {
                if let Some(ticket) = self.ticket.take() {
                    admission::reconcile(&ticket, host.store(), None, false, now);
                }
                host.metric(&metrics::rate_limited("adaptive_concurrency"));
                let e = ApiError::new(
                    503,
                    "api_error",
                    format!(
                        "Provider '{}' is at its adaptive concurrency limit for model '{}'; retry shortly.",
                        provider.name, target.model
                    ),
                )
                .with_code("target_overloaded");
                Err(self.fail_with(host, &e, &[("retry-after", "1")]))
            }
        }
    }

    /// Picks a target and one of its provider's keys. Targets that are
    /// ejected, or whose keys are all disabled or cooling down, are passed
    /// over while any other is usable; if none is, health is ignored (like
    /// Envoy's panic routing) rather than failing every request.
    fn choose(&mut self, host: &dyn Host, model: &Model) -> Option<(usize, Option<usize>)> {
        let gw = Rc::clone(&self.gw);
        let store = host.store();
        let now = host.now_nanos();
        let has_key = |t: &Target| {
            let p = &gw.providers[t.provider];
            p.keys.len() < 2
                || (0..p.keys.len())
                    .any(|k| !health::is_ejected(store, &health::key_key(&p.name, k), now))
        };
        let mut passed_over: Vec<usize> = Vec::new();
        for _ in 0..model.targets.len() {
            let healthy = |i: usize, t: &Target| {
                !passed_over.contains(&i)
                    && !health::is_ejected(store, &target_health_key(&gw, t), now)
                    && has_key(t)
            };
            let Some(i) = self.pick_in_tier(host, model, &healthy) else {
                break;
            };
            // Half-open targets admit one probe at a time.
            if health::admit(store, &target_health_key(&gw, &model.targets[i]), now) {
                return Some((
                    i,
                    self.pick_key(store, &gw.providers[model.targets[i].provider], now, false),
                ));
            }
            passed_over.push(i);
        }
        let i = self.pick_in_tier(host, model, &|_, _| true)?;
        Some((
            i,
            self.pick_key(store, &gw.providers[model.targets[i].provider], now, true),
        ))
    }

    /// The pool's strategy (or sticky split) among the lowest usable tier.
    fn pick_in_tier(
        &mut self,
        host: &dyn Host,
        model: &Model,
        healthy: &dyn Fn(usize, &Target) -> bool,
    ) -> Option<usize> {
        let tier = routing::tier(&self.gw, model, healthy);
        let candidates: Vec<crate::route_select::Candidate> = tier
            .iter()
            .map(|&i| {
                crate::route_select::Candidate::new(
                    i,
                    model.targets[i].weight,
                    &model.targets[i].id,
                )
            })
            .collect();
        let consumer = self
            .consumer
            .and_then(|i| self.gw.consumers.get(i))
            .map(|c| c.name.as_str());
        let sticky = model
            .policy
            .sticky_value(consumer, &|name| host.request_header(name));
        let pool = crate::route_select::strategy::pool_key(&model.name);
        model.policy.pick(
            host.store(),
            &pool,
            &candidates,
            sticky.as_deref(),
            self.rng.next_u64(),
            host.now_nanos(),
        )
    }

    /// Rotates through the provider's keys from a random start, skipping
    /// disabled and cooling ones (unless `panic`).
    fn pick_key(
        &mut self,
        store: &dyn SharedStore,
        p: &Provider,
        now: u64,
        panic: bool,
    ) -> Option<usize> {
        let n = p.keys.len();
        if n == 0 {
            return None;
        }
        let start = self.rng.below(n as u64) as usize;
        let order = (0..n).map(|k| (start + k) % n);
        if n == 1 || panic {
            return Some(start);
        }
        order
            .clone()
            .find(|&k| health::admit(store, &health::key_key(&p.name, k), now))
            .or(Some(start))
    }

    /// A key answered 401/403 is disabled; 429 cools it down.
    fn record_key_outcome(&self, host: &dyn Host, status: u16) {
        let (Some((provider, _)), Some(k)) = (&self.target, self.key) else {
            return;
        };
        let p = &self.gw.providers[*provider];
        if p.keys.len() < 2 {
            return;
        }
        let outcome = match status {
            401 | 403 => health::Outcome::Disabled,
            429 => health::Outcome::Throttled {
                retry_after_ms: retry_after_ms(host),
            },
            200..=299 => health::Outcome::Success,
            _ => health::Outcome::Neutral,
        };
        let spec = health::HealthSpec::default();
        if health::record(
            host.store(),
            &health::key_key(&p.name, k),
            &spec,
            outcome,
            host.now_nanos(),
        ) {
            host.log(
                LogLevel::Warn,
                &format!(
                    "provider '{}': key #{} taken out of rotation after HTTP {status}",
                    p.name,
                    k + 1
                ),
            );
        }
    }

    /// Settles reservations with what the request really used.
    fn settle(&mut self, host: &mut dyn Host, now: u64) {
        if !self.pooled {
            // Pool attempts record their own outcomes upstream.
            self.record_target_outcome(host, now);
        }
        if let Some(ticket) = self.strategy_ticket.take() {
            let ok = (200..300).contains(&self.telemetry.status);
            let ttfb = self.telemetry.first_byte_ms().filter(|_| ok);
            let _ = crate::route_select::on_finish(host.store(), ticket, ttfb, now);
        }
        let t = &self.telemetry;
        let success = (200..300).contains(&t.status) && !t.stream_error;
        if let Some(ticket) = self.ticket.take() {
            admission::reconcile(&ticket, host.store(), t.usage.as_ref(), success, now);
        }
        if let Some((key, spec, taken)) = self.adaptive.take() {
            let outcome = match t.status {
                429 | 500..=599 => Outcome::Overloaded,
                200..=299 if !t.stream_error => Outcome::Success {
                    latency_ms: t.first_byte_ms().unwrap_or(0),
                },
                _ => Outcome::Ignore,
            };
            let store = host.store();
            let _ = adaptive::release(
                store,
                &key,
                &spec,
                outcome,
                taken,
                now,
                admission::MAX_CAS_RETRIES,
            );
            let limit = adaptive::current_limit(store, &key, &spec);
            if let Some((provider, model)) = &self.target {
                let name = self.gw.providers[*provider].name.clone();
                host.metric(&metrics::adaptive_limit(&name, model, limit));
            }
        }
    }

    /// Fills in provider and model from the header the attempt set.
    fn observe_pool_target(&mut self, host: &dyn Host) {
        let Some(label) = host.response_header(TARGET_HEADER) else {
            return;
        };
        let Some((name, model)) = label.split_once('/') else {
            return;
        };
        if let Some(p) = self.gw.providers.iter().find(|p| p.name == name) {
            self.telemetry.provider = Some((p.name.clone(), p.kind));
            self.telemetry.response_model = Some(model.to_string());
        }
    }

    /// Passive health: failures eject the target, 429 cools it down.
    fn record_target_outcome(&self, host: &mut dyn Host, now: u64) {
        let Some((provider, model)) = &self.target else {
            return;
        };
        let status = self.telemetry.status;
        let outcome = match status {
            200..=299 if !self.telemetry.stream_error => health::Outcome::Success,
            429 => health::Outcome::Throttled {
                retry_after_ms: self.retry_after_ms,
            },
            0 | 500..=599 => health::Outcome::Failure,
            200..=299 => health::Outcome::Failure,
            _ => health::Outcome::Neutral,
        };
        let p = &self.gw.providers[*provider];
        let key = health::target_key(&p.name, model);
        if health::record(host.store(), &key, &self.gw.health, outcome, now) {
            host.metric(&metrics::ejection(p.kind, &p.name, model));
            host.log(
                LogLevel::Warn,
                &format!("target {}/{model} ejected after HTTP {status}", p.name),
            );
        }
    }

    /// Identifies the consumer from the client's key (401 when required and
    /// missing or wrong).
    fn authenticate(&mut self, host: &mut dyn Host) -> Result<(), ApiError> {
        let key = presented_key(
            host.request_header("authorization").as_deref(),
            host.request_header("x-api-key").as_deref(),
            host.request_header("api-key").as_deref(),
        );
        self.consumer = self.gw.consumers.authenticate(key.as_deref())?;
        self.telemetry.consumer = self
            .consumer
            .and_then(|i| self.gw.consumers.get(i))
            .map(|c| c.name.clone());
        Ok(())
    }

    /// Whether the calling consumer (if any) may use a model.
    fn may_use(&self, model: &str) -> bool {
        self.consumer
            .and_then(|i| self.gw.consumers.get(i))
            .is_none_or(|c| c.may_use(model))
    }

    fn answer(&mut self, host: &mut dyn Host, status: u16, body: &[u8]) -> Verdict {
        self.answer_with(host, status, body, &[])
    }

    fn answer_with(
        &mut self,
        host: &mut dyn Host,
        status: u16,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> Verdict {
        self.phase = Phase::Answered;
        self.telemetry.status = status;
        self.telemetry.end(host.now_nanos());
        self.publish_log_fields(host);
        let mut headers = vec![("content-type", "application/json")];
        headers.extend_from_slice(extra);
        host.send_response(status, &headers, body);
        Verdict::Pause
    }

    fn fail(&mut self, host: &mut dyn Host, e: &ApiError) -> Verdict {
        self.fail_with(host, e, &[])
    }

    fn fail_with(
        &mut self,
        host: &mut dyn Host,
        e: &ApiError,
        headers: &[(&str, &str)],
    ) -> Verdict {
        if e.status >= 500 {
            host.log(LogLevel::Warn, &e.message);
        }
        self.telemetry.error_type = Some(e.kind.to_string());
        self.answer_with(host, e.status, &e.to_json(), headers)
    }
}

fn target_health_key(gw: &Gateway, t: &Target) -> String {
    health::target_key(&gw.providers[t.provider].name, &t.model)
}

/// The response's `retry-after`, in ms (seconds form only).
fn retry_after_ms(host: &dyn Host) -> Option<u64> {
    host.response_header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000))
}

/// Text of a message's content (string or text parts).
fn message_text(m: &serde_json::Value) -> String {
    match m.get("content") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Shared-data key of a target's adaptive limit.
pub fn adaptive_key(provider: &str, model: &str) -> String {
    format!("llmgw/adaptive/{provider}/{model}")
}

/// The client's IP: with `trusted_hops` proxies in front of Envoy, the
/// `x-forwarded-for` entry that many from the right; else the TCP peer.
pub(crate) fn client_ip(host: &dyn Host, trusted_hops: u32) -> Option<String> {
    if trusted_hops > 0 {
        let xff = host.request_header("x-forwarded-for").unwrap_or_default();
        let hops: Vec<&str> = xff
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let n = trusted_hops as usize;
        if hops.len() >= n {
            return hops.get(hops.len() - n).map(|h| h.to_string());
        }
    }
    host.client_address()
}

fn method_not_allowed(method: &str, path: &str, allowed: &str) -> ApiError {
    ApiError::new(
        405,
        "invalid_request_error",
        format!("Method {method} is not allowed on {path}; use {allowed}."),
    )
    .with_code("method_not_allowed")
}

fn empty_body() -> ApiError {
    ApiError::invalid_request("The request body is empty; expected a JSON object.")
        .with_code("invalid_json")
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        413,
        "invalid_request_error",
        format!("The request body exceeds this gateway's limit of {limit} bytes."),
    )
    .with_code("request_too_large")
}

fn no_target(gw: &Gateway, model: &crate::config::Model) -> ApiError {
    let mut reasons: Vec<&str> = model
        .targets
        .iter()
        .filter_map(|t| gw.providers[t.provider].unavailable.as_deref())
        .collect();
    reasons.dedup();
    ApiError::new(
        503,
        "api_error",
        format!(
            "No available target for model '{}': {}.",
            model.name,
            if reasons.is_empty() {
                "every target is disabled".to_string()
            } else {
                reasons.join("; ")
            }
        ),
    )
    .with_code("no_available_target")
}
