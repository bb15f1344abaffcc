//! The request side: path routing, authentication, forwarding to a target
//! or a failover pool, and the pool's per-attempt rewrite.

use super::errors::{empty_body, method_not_allowed, no_target};
use super::guardrails::{decode_set, encode_set, GUARD_KEY};
use super::models;
use super::{Phase, SignatureHeaders, StreamFlow, Verdict, CLUSTER_HEADER, POOL_KEY};
use super::{
    SHADOW_CLUSTER, SHADOW_CONSUMER_HEADER, SHADOW_HEADERS, SHADOW_MODEL_HEADER, SHADOW_OF_HEADER,
    SHADOW_ROUTE_HEADER,
};
use crate::config::Model;
use crate::consumers::{model_not_allowed, presented_key};
use crate::error::ApiError;
use crate::host::Host;
use crate::providers::CLIENT_CREDENTIAL_HEADERS;
use crate::replay;
use crate::secrets::signature::{NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::state::keys;
use crate::wire::anthropic::ingress::{models_list, render_count_tokens};
use crate::wire::openai::ParsedRequest;
use crate::wire::{Api, Wire};
use std::rc::Rc;

impl StreamFlow {
    /// Maps the request path to a client API. `/v1/models` and unknown
    /// URLs are answered here: `Err` carries the verdict of the answer sent.
    pub(super) fn route(
        &mut self,
        host: &mut dyn Host,
        method: &str,
        path: &str,
    ) -> Result<Api, Verdict> {
        if let Some(api) = Api::from_path(path) {
            self.api = api;
            return Ok(api);
        }
        // Anthropic's SDKs list models with an `anthropic-version` header.
        let anthropic = host.request_header("anthropic-version").is_some();
        if anthropic {
            self.api = Api::Messages;
        }
        match path {
            "/v1/models" if method != "GET" => {
                Err(self.fail(host, &method_not_allowed(method, path, "GET")))
            }
            "/v1/models" => {
                if let Err(e) = self.authenticate(host) {
                    return Err(self.fail(host, &e));
                }
                let body = if anthropic {
                    let cards = models::cards(&self.gw, &|m| self.may_use(m));
                    let pairs: Vec<(&str, &str)> = cards.iter().map(|c| (c.id, c.id)).collect();
                    models_list(&pairs)
                } else {
                    models::list(&self.gw, &|m| self.may_use(m))
                };
                Err(self.answer(host, 200, &body))
            }
            _ if method == "GET" && path.starts_with("/v1/models/") => {
                if let Err(e) = self.authenticate(host) {
                    return Err(self.fail(host, &e));
                }
                let id = &path["/v1/models/".len()..];
                Err(match models::retrieve(&self.gw, id, &|m| self.may_use(m)) {
                    Ok(body) => self.answer(host, 200, &body),
                    Err(e) => self.fail(host, &e),
                })
            }
            _ => {
                let e = ApiError::new(
                    404,
                    "invalid_request_error",
                    format!(
                        "Unknown request URL: {method} {path}. This gateway serves POST /v1/chat/completions, POST /v1/embeddings, POST /v1/messages, POST /v1/messages/count_tokens, POST /v1/responses and GET /v1/models."
                    ),
                )
                .with_code("unknown_url");
                Err(self.fail(host, &e))
            }
        }
    }

    /// Identifies the consumer from the client's key (401 when required and
    /// missing or wrong).
    pub(super) fn authenticate(&mut self, host: &mut dyn Host) -> Result<(), ApiError> {
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
        let signs = self
            .consumer
            .and_then(|i| self.gw.consumers.get(i))
            .is_some_and(|c| c.signing.is_some());
        if signs {
            // Read now, checked with the body; they never reach a provider.
            let mut read = |name: &str| {
                let v = host.request_header(name);
                if v.is_some() {
                    host.set_request_header(name, None);
                }
                v
            };
            self.signature = Some(SignatureHeaders {
                timestamp: read(TIMESTAMP_HEADER),
                nonce: read(NONCE_HEADER),
                signature: read(SIGNATURE_HEADER),
            });
        }
        Ok(())
    }

    /// A signing consumer's request: timestamp, signature over the body,
    /// nonce not seen before (`replay`).
    pub(super) fn check_signature(&self, host: &dyn Host, body: &[u8]) -> Result<(), ApiError> {
        let (Some(h), Some(c)) = (
            &self.signature,
            self.consumer.and_then(|i| self.gw.consumers.get(i)),
        ) else {
            return Ok(());
        };
        let method = host.request_header(":method").unwrap_or_default();
        let path = self.telemetry.path.clone().unwrap_or_default();
        let req = replay::Signed {
            method: &method,
            path: &path,
            timestamp: h.timestamp.as_deref(),
            nonce: h.nonce.as_deref(),
            signature: h.signature.as_deref(),
            body,
        };
        let consumers = &self.gw.consumers;
        let now_s = host.now_nanos() / 1_000_000_000;
        replay::admit(
            host.store(),
            c,
            &req,
            consumers.signature_window_s,
            consumers.nonce_slots,
            now_s,
        )
    }

    /// Whether the calling consumer (if any) may use a model.
    fn may_use(&self, model: &str) -> bool {
        self.consumer
            .and_then(|i| self.gw.consumers.get(i))
            .is_none_or(|c| c.may_use(model))
    }

    /// Placed upstream: only failover attempts (marked by the pool value the
    /// downstream filter left in the stream's filter state) are rewritten;
    /// everything else was rewritten downstream already.
    pub(super) fn attempt_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Verdict {
        // `api\nmodel[\nupstream]`. Every attempt (a retry too) finds it and
        // rewrites path, host, credentials and length afresh.
        let pool = host.stream_value(POOL_KEY).unwrap_or_default();
        let mut parts = pool.split('\n');
        let (Some(api), Some(model)) = (parts.next().and_then(Api::from_name), parts.next()) else {
            self.phase = Phase::Bypass;
            return Verdict::Continue;
        };
        self.api = api;
        self.pool_model = Some(model.to_string());
        self.pool_upstream = parts.next().map(String::from);
        if let Some(set) = host.stream_value(GUARD_KEY) {
            self.guard_response = decode_set(&set);
        }
        self.take_cache_from_pool(&*host);
        if end_of_stream {
            return self.fail(host, &empty_body());
        }
        self.phase = Phase::Buffering;
        Verdict::Pause
    }

    /// One failover attempt: rewrite for the provider Envoy picked.
    pub(super) fn attempt(&mut self, host: &mut dyn Host, req: ParsedRequest) -> Verdict {
        // A copy's markers are for the mirror, never for a provider. Not
        // earlier: the router reads them (for the copy) after the attempt's
        // headers passed this filter, and this filter shares its headers.
        for name in SHADOW_HEADERS {
            host.set_request_header(name, None);
        }
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
            &|| host.now_nanos(),
            false,
        );
        let mut target = target.clone();
        if let Some(upstream) = self.pool_upstream.take() {
            target.model = upstream;
        }
        self.rewrite(host, req, &target, key)
    }

    pub(super) fn forward(&mut self, host: &mut dyn Host, mut req: ParsedRequest) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let shadow_model = self.shadow_pass.as_ref().map(|(m, _)| m.clone());
        let resolved = match &shadow_model {
            Some(m) => gw.model_position(m).map(|i| (i, None)),
            None => self.resolve_model(&*host, &req),
        };
        let (model, upstream_override) = match resolved {
            Some(found) => found,
            None => {
                self.telemetry.request_model = Some("unknown".into());
                return self.fail(
                    host,
                    &models::not_found(&gw, &req.model, &|m| self.may_use(m)),
                );
            }
        };
        let model = &gw.models[model];
        let consumer = self.consumer.filter(|_| shadow_model.is_none());
        if let Some(consumer) = consumer.and_then(|i| gw.consumers.get(i)) {
            if !consumer.may_use(&model.name) {
                self.telemetry.request_model = Some(model.name.clone());
                return self.fail(host, &model_not_allowed(consumer, &model.name));
            }
        }
        self.telemetry.request_model = Some(model.name.clone());
        self.telemetry.stream = req.stream;
        let model_index = model.index;
        if let Err(verdict) = self.screen_request(host, &mut req, model_index) {
            return verdict;
        }
        match self.moderation_rule(model_index) {
            Some(rule) => self.moderate(host, req, model_index, upstream_override, rule),
            None => self.proceed(host, req, model_index, upstream_override),
        }
    }

    /// The request, checked, goes to a target: limits, then the rewrite
    /// (or the failover pool).
    pub(super) fn proceed(
        &mut self,
        host: &mut dyn Host,
        req: ParsedRequest,
        model_index: usize,
        upstream_override: Option<String>,
    ) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let model = &gw.models[model_index];
        let Some((target_index, key_index)) = self.choose(&*host, model) else {
            return self.fail(host, &no_target(&gw, model));
        };
        let target = &model.targets[target_index];
        if self.api == Api::CountTokens && gw.providers[target.provider].wire != Wire::Anthropic {
            // Only Anthropic counts tokens itself; others get the estimate
            // the gateway also reserves rate limits with.
            let n = self.facts(&req).prompt_tokens;
            return self.answer(host, 200, &render_count_tokens(n));
        }
        let chosen = Chosen {
            model: model_index,
            target: target_index,
            key: key_index,
            upstream: upstream_override,
        };
        match self.cache_lookup(host, req, &chosen) {
            Ok(req) => self.proceed_to(host, req, chosen),
            Err(verdict) => verdict,
        }
    }

    /// The request goes to the chosen target: limits, then the rewrite (or
    /// the failover pool).
    pub(super) fn proceed_to(
        &mut self,
        host: &mut dyn Host,
        req: ParsedRequest,
        chosen: Chosen,
    ) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let model = &gw.models[chosen.model];
        let (target_index, key_index, upstream_override) =
            (chosen.target, chosen.key, chosen.upstream);
        let mut target = model.targets[target_index].clone();
        // A shadow copy takes nothing from the limits clients are held to.
        if self.shadow_pass.is_none() {
            if let Err(verdict) = self.admit(host, &req, &model.name, &target) {
                return verdict;
            }
        }
        // A strategy's bookkeeping only matters where it has a choice.
        self.in_flight = (model.targets.len() > 1).then(|| {
            crate::route_select::on_start(
                model.policy.strategy,
                host.store(),
                &keys::pool(&model.name),
                &target.id,
                host.now_nanos(),
            )
        });
        if let Some(upstream) = &upstream_override {
            if let Err(e) = check_upstream_model(&gw, model, &req.model, upstream) {
                return self.fail(host, &e);
            }
        }
        let shadowed = self.sample_shadow(host, model);
        if model.failover || shadowed {
            if self.body_rewritten {
                host.set_request_header("content-length", Some(&req.raw.len().to_string()));
                host.set_request_body(&req.raw);
            }
            // A copied request leaves in the client's form (the copy is
            // served as a client request); each attempt is rewritten upstream.
            let upstream = upstream_override.or_else(|| shadowed.then(|| target.model.clone()));
            return self.send_to_pool(host, model, target_index, upstream);
        }
        if let Some(upstream) = upstream_override {
            target.model = upstream;
        }
        self.rewrite(host, req, &target, key_index)
    }

    /// Whether this request is copied to the model's shadow; if so, marks it
    /// for the route's mirror policy and for the copy's own filter pass.
    fn sample_shadow(&mut self, host: &mut dyn Host, model: &Model) -> bool {
        let Some(shadow) = &model.shadow else {
            return false;
        };
        if self.shadow_pass.is_some() || self.rng.below(10_000) >= u64::from(shadow.per_10k) {
            return false;
        }
        let gw = Rc::clone(&self.gw);
        let to = &gw.models[shadow.model].name;
        host.set_request_header(SHADOW_ROUTE_HEADER, Some(SHADOW_CLUSTER));
        host.set_request_header(SHADOW_MODEL_HEADER, Some(to));
        host.set_request_header(SHADOW_OF_HEADER, Some(&model.name));
        let consumer = self.consumer.and_then(|i| gw.consumers.get(i));
        host.set_request_header(SHADOW_CONSUMER_HEADER, consumer.map(|c| c.name.as_str()));
        self.telemetry.shadow = Some(format!("to:{to}"));
        true
    }

    /// Failover: the request goes, still in the client's form, to the model's pool
    /// (an Envoy aggregate cluster starting at the chosen target); the same
    /// filter, running as an upstream filter, rewrites each attempt for the
    /// provider Envoy picked and translates its answer.
    fn send_to_pool(
        &mut self,
        host: &mut dyn Host,
        model: &Model,
        first: usize,
        upstream: Option<String>,
    ) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let cluster = if model.failover {
            gw.pool_cluster(model, first)
        } else {
            gw.providers[model.targets[first].provider].cluster.clone()
        };
        host.set_request_header(CLUSTER_HEADER, Some(&cluster));
        host.clear_route_cache();
        // Neither part can hold a line break (both are checked).
        let mut pool = format!("{}\n{}", self.api.name(), model.name);
        if let Some(u) = &upstream {
            pool.push('\n');
            pool.push_str(u);
        }
        host.set_stream_value(POOL_KEY, &pool);
        self.hand_cache_to_attempts(host);
        if !self.guard_response.is_empty() {
            host.set_stream_value(GUARD_KEY, &encode_set(self.guard_response));
        }
        for name in CLIENT_CREDENTIAL_HEADERS {
            host.set_request_header(name, None);
        }
        // Providers are asked for plain bodies (see `rewrite`).
        host.set_request_header("accept-encoding", None);
        self.pooled = true;
        self.phase = Phase::Forwarded;
        Verdict::Continue
    }
}

/// What serves a request, once chosen.
#[derive(Clone)]
pub(super) struct Chosen {
    pub model: usize,
    pub target: usize,
    pub key: Option<usize>,
    /// The upstream model a model-map entry chose, if one did.
    pub upstream: Option<String>,
}

/// An upstream model a model-map entry captured from the client's model
/// name goes into the provider's URL for some provider types (Gemini,
/// Azure): it must be a plain path segment for every target it may reach.
fn check_upstream_model(
    gw: &crate::config::Gateway,
    model: &Model,
    requested: &str,
    upstream: &str,
) -> Result<(), ApiError> {
    let mut names = model
        .targets
        .iter()
        .map(|t| gw.providers[t.provider].model_names);
    let rule = names.find(|n| !n.accepts(upstream));
    let valid = rule.is_none();
    if valid {
        return Ok(());
    }
    Err(ApiError::invalid_request(format!(
        "Model '{requested}' maps to upstream model '{upstream}', which is not a valid model name for this model's provider ({})."
    , rule.map_or("", |r| r.rule())))
    .with_param("model")
    .with_code("invalid_value"))
}
