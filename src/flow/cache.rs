//! The response cache in the flow: looked up once the target is chosen
//! (before limits: a hit takes nothing from them), answered in the
//! client's API and mode; a miss is sent translated (the answer is read in
//! hub form on its way back) and stored when it ends complete. A semantic
//! model first asks its embeddings model (a callout, the request held) and
//! looks for a similar prompt.

use super::request::Chosen;
use super::{Phase, Placement, StreamFlow, Verdict, CACHE_KEY, CACHE_STORED_KEY, TARGET_HEADER};
use crate::cache::{self, Directives, KeyParts, Scope, CACHE_HEADER};
use crate::host::{Host, LogLevel, MetricOp};
use crate::metrics;
use crate::providers::Operation;
use crate::redact::Redactor;
use crate::wire::hub::{ChatResponse, EmbeddingsRequest, ResponseContext, Role};
use crate::wire::openai::ParsedRequest;
use crate::wire::{Api, Wire};
use std::rc::Rc;

/// Longest prompt text sent to be embedded (embedding models read only
/// the start of a long text anyway).
const MAX_EMBED_CHARS: usize = 8192;

/// A request whose answer may be stored.
pub(super) struct Pending {
    digest: cache::Digest32,
    ttl_s: u64,
    /// Semantic models: the prompt's group and quantized embedding.
    semantic: Option<(u64, (Vec<i8>, f32))>,
    /// The answer, once it ended complete.
    pub(super) answer: Option<ChatResponse>,
}

/// A request held while its prompt is embedded.
pub(super) struct Embedding {
    req: ParsedRequest,
    chosen: Chosen,
    group: u64,
    skip_lookup: bool,
}

impl StreamFlow {
    /// Looks the request up. `Ok`: go on to the provider (a request that
    /// may be stored leaves `self.cache` set); `Err`: answered from the
    /// cache, or held for its embedding.
    pub(super) fn cache_lookup(
        &mut self,
        host: &mut dyn Host,
        req: ParsedRequest,
        chosen: &Chosen,
    ) -> Result<ParsedRequest, Verdict> {
        let gw = Rc::clone(&self.gw);
        let model = &gw.models[chosen.model];
        let (Some(policy), Some(store)) = (&model.cache, gw.cache) else {
            return Ok(req);
        };
        let chat = matches!(
            self.api,
            Api::ChatCompletions | Api::Messages | Api::Responses
        );
        let directives = Directives::parse(host.request_header("cache-control").as_deref());
        let samples = !(policy.nondeterministic || cache::deterministic(req.body()));
        if !chat || directives.no_store || samples {
            self.telemetry.cache = Some("bypass");
            return Ok(req);
        }
        let target = &model.targets[chosen.target];
        let upstream = chosen.upstream.as_deref().unwrap_or(&target.model);
        let consumer = self.consumer.and_then(|i| gw.consumers.get(i));
        // A failover pool's answer may come from any of its targets.
        let (provider, upstream_key) = match model.failover {
            true => ("pool", model.name.as_str()),
            false => (gw.providers[target.provider].name.as_str(), upstream),
        };
        let parts = KeyParts {
            api: self.api.name(),
            provider,
            upstream_model: upstream_key,
            scope: match policy.scope {
                Scope::Consumer => consumer.map_or("", |c| c.name.as_str()),
                Scope::Shared => "",
            },
        };
        let digest = cache::digest(&parts, req.body());
        let now_s = host.now_nanos() / 1_000_000_000;
        if !directives.skip_lookup {
            if let Some(body) = cache::lookup(host.store(), &store, &digest, now_s) {
                if let Some(v) = self.serve_hit(host, &req, chosen, &body) {
                    return Err(v);
                }
            }
        }
        self.telemetry.cache = Some("miss");
        self.cache = Some(Pending {
            digest,
            ttl_s: policy.ttl_s,
            semantic: None,
            answer: None,
        });
        let Some(semantic) = &policy.semantic else {
            return Ok(req);
        };
        let Some((text, turns)) = self.prompt_text(&req, upstream) else {
            return Ok(req);
        };
        let group = cache::group_digest(&parts, req.body(), turns);
        match self.embed(host, chosen.model, &text, semantic.timeout_ms) {
            Ok(()) => {
                self.phase = Phase::Held;
                self.embedding = Some(Embedding {
                    req,
                    chosen: chosen.clone(),
                    group,
                    skip_lookup: directives.skip_lookup,
                });
                Err(Verdict::Pause)
            }
            Err(why) => {
                self.semantic_failed(host, &why);
                Ok(req)
            }
        }
    }

    /// What a semantic model embeds — the system prompt and the last user
    /// message — and the number of turns.
    fn prompt_text(&self, req: &ParsedRequest, upstream: &str) -> Option<(String, usize)> {
        let hub = self.api.to_hub(req.body(), upstream).ok()?;
        let mut text = String::new();
        for m in hub.messages.iter().filter(|m| m.role == Role::System) {
            text.push_str(&m.text());
            text.push('\n');
        }
        let last = hub.messages.iter().rev().find(|m| m.role == Role::User)?;
        text.push_str(&last.text());
        if let Some((cut, _)) = text.char_indices().nth(MAX_EMBED_CHARS) {
            text.truncate(cut);
        }
        let text = text.trim();
        (!text.is_empty()).then(|| (text.to_string(), hub.messages.len()))
    }

    /// Sends `text` to the model's embeddings model.
    fn embed(
        &mut self,
        host: &mut dyn Host,
        model: usize,
        text: &str,
        timeout_ms: u64,
    ) -> Result<(), String> {
        let gw = Rc::clone(&self.gw);
        let (provider, upstream) = gw.models[model]
            .cache_embedder
            .as_ref()
            .ok_or("no embeddings model")?;
        let p = &gw.providers[*provider];
        let egress = &p.egress.0;
        let body = egress
            .encode_embeddings(&EmbeddingsRequest {
                model: upstream.clone(),
                inputs: vec![text.to_string()],
                ..Default::default()
            })
            .map_err(|e| e.message)?;
        let path = egress.path(
            Operation::Embeddings,
            &p.endpoint.path_prefix,
            upstream,
            false,
        );
        let authority = p.endpoint.authority();
        let len = body.len().to_string();
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":path", &path),
            (":authority", authority),
            ("content-type", "application/json"),
            ("content-length", &len),
        ];
        if let Some((name, value)) = p.keys.first().and_then(|k| k.header.as_ref()) {
            headers.push((name.as_str(), value.as_str()));
        }
        for (name, value) in &p.extra_headers {
            headers.push((name.as_str(), value.as_str()));
        }
        host.dispatch_call(&p.cluster, &headers, &body, timeout_ms)
            .map(|_| ())
    }

    /// Whether a held request waits for its embedding.
    pub(super) fn awaits_embedding(&self) -> bool {
        self.embedding.is_some()
    }

    /// The embeddings model answered (or failed, or timed out).
    pub(super) fn on_embedding(&mut self, host: &mut dyn Host, status: Option<u16>, body: &[u8]) {
        let Some(held) = self.embedding.take() else {
            return;
        };
        let gw = Rc::clone(&self.gw);
        let model = &gw.models[held.chosen.model];
        let vector = match status {
            Some(200) => self.decode_embedding(held.chosen.model, body),
            Some(s) => Err(format!("the embeddings model answered HTTP {s}")),
            None => Err("the embeddings call failed or timed out".into()),
        };
        let semantic = model.cache.as_ref().and_then(|p| p.semantic.as_ref());
        match (vector, semantic.zip(model.semantic_index())) {
            (Ok(q), Some((s, index))) => {
                let now_s = host.now_nanos() / 1_000_000_000;
                let found = (!held.skip_lookup)
                    .then(|| index.nearest(host.store(), held.group, &q, s.threshold, now_s))
                    .flatten();
                let stored = found.and_then(|(d, sim)| {
                    let store = gw.cache?;
                    Some((cache::lookup(host.store(), &store, &d, now_s)?, sim))
                });
                if let Some((answer, sim)) = stored {
                    self.telemetry.cache_semantic = Some("hit");
                    self.telemetry.cache_similarity = Some(sim);
                    if self
                        .serve_hit(host, &held.req, &held.chosen, &answer)
                        .is_some()
                    {
                        return;
                    }
                }
                self.telemetry.cache_semantic = Some("miss");
                if let Some(p) = self.cache.as_mut() {
                    p.semantic = Some((held.group, q));
                }
            }
            (Err(why), _) => self.semantic_failed(host, &why),
            (Ok(_), None) => {}
        }
        let verdict = self.proceed_to(host, held.req, held.chosen);
        if verdict == Verdict::Continue {
            host.resume_request();
        }
    }

    fn decode_embedding(&self, model: usize, body: &[u8]) -> Result<(Vec<i8>, f32), String> {
        let (provider, upstream) = self.gw.models[model]
            .cache_embedder
            .as_ref()
            .ok_or("no embeddings model")?;
        let ctx = ResponseContext {
            model: upstream.clone(),
            created: 0,
            request_id: String::new(),
            input_tokens_estimate: 0,
        };
        let r = self.gw.providers[*provider]
            .egress
            .0
            .decode_embeddings(body, &ctx)
            .map_err(|e| e.message)?;
        let v = r.vectors.first().ok_or("no vector in the answer")?;
        cache::semantic::quantize(v).ok_or_else(|| "an empty or invalid vector".into())
    }

    /// No embedding: the request is an exact-cache miss, never an error.
    fn semantic_failed(&mut self, host: &dyn Host, why: &str) {
        self.telemetry.cache_semantic = Some("failed");
        host.log(
            LogLevel::Warn,
            &format!("semantic cache: {why}; served as a miss"),
        );
    }

    /// Answers from a stored body; None if it no longer reads.
    fn serve_hit(
        &mut self,
        host: &mut dyn Host,
        req: &ParsedRequest,
        chosen: &Chosen,
        stored: &[u8],
    ) -> Option<Verdict> {
        let gw = Rc::clone(&self.gw);
        let target = &gw.models[chosen.model].targets[chosen.target];
        let upstream = chosen.upstream.as_deref().unwrap_or(&target.model);
        let input_tokens_estimate = match self.api.wire() {
            Wire::Anthropic => self.facts(req).prompt_tokens,
            _ => 0,
        };
        let ctx = ResponseContext {
            model: upstream.to_string(),
            created: host.now_nanos() / 1_000_000_000,
            request_id: format!("{:016x}", self.rng.next_u64()),
            input_tokens_estimate,
        };
        let mut answer = crate::wire::openai::egress::decode_completion(stored, &ctx).ok()?;
        answer.created = ctx.created;
        let wire = self.api.wire();
        let (body, content_type) = if req.stream {
            let include_usage = req
                .body()
                .get("stream_options")
                .and_then(|o| o.get("include_usage"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            let mut writer = wire.writer(&ctx, include_usage);
            let mut out = Vec::new();
            for event in cache::replay(&answer) {
                writer.write(&event, &mut out);
            }
            writer.finish(&mut out);
            (out, "text/event-stream")
        } else {
            (
                wire.render_response(&answer, &ctx).ok()?,
                "application/json",
            )
        };
        let provider = &gw.providers[target.provider];
        let label = format!("{}/{}", provider.name, upstream);
        self.cache = None;
        self.telemetry.cache = Some("hit");
        self.telemetry.cache_saved = answer.usage;
        self.telemetry.provider = Some((provider.name.clone(), provider.kind));
        self.telemetry.response_model = Some(upstream.to_string());
        self.telemetry.stream = req.stream;
        self.telemetry.finish_reason = answer.choices.first().and_then(|c| c.finish_reason);
        let mut headers = vec![
            ("content-type", content_type),
            (CACHE_HEADER, "hit"),
            (TARGET_HEADER, label.as_str()),
        ];
        if req.stream {
            headers.push(("cache-control", "no-cache"));
        }
        Some(self.answer_with(host, 200, &body, &headers))
    }

    /// A pooled request: its key goes to the attempts (the attempt that
    /// answers stores the answer it translated).
    pub(super) fn hand_cache_to_attempts(&self, host: &mut dyn Host) {
        if let Some(p) = &self.cache {
            let hex: String = p.digest.iter().map(|b| format!("{b:02x}")).collect();
            host.set_stream_value(CACHE_KEY, &format!("{hex}\n{}", p.ttl_s));
        }
    }

    /// An attempt of a cacheable pooled request.
    pub(super) fn take_cache_from_pool(&mut self, host: &dyn Host) {
        let Some(value) = host.stream_value(CACHE_KEY) else {
            return;
        };
        let (hex, ttl) = value.split_once('\n').unwrap_or_default();
        let mut digest = [0u8; 32];
        let parsed = hex.len() == 64
            && digest.iter_mut().enumerate().all(|(i, b)| {
                u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("x"), 16)
                    .map(|v| *b = v)
                    .is_ok()
            });
        if let (true, Ok(ttl_s)) = (parsed, ttl.parse::<u64>()) {
            self.cache = Some(Pending {
                digest,
                ttl_s,
                semantic: None,
                answer: None,
            });
        }
    }

    /// Downstream of a pool: what the attempt stored, and the prompt
    /// indexed for it.
    fn take_pool_store(&mut self, host: &mut dyn Host) -> bool {
        let Some(value) = host.stream_value(CACHE_STORED_KEY) else {
            return false;
        };
        let mut parts = value.split(':');
        let outcome = match parts.next() {
            Some("stored") => {
                let bytes_in_use = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                let evicted = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                cache::Stored::Yes {
                    evicted,
                    bytes_in_use,
                }
            }
            Some("too_large") => cache::Stored::TooLarge,
            Some("full") => cache::Stored::Full,
            _ => cache::Stored::Raced,
        };
        self.telemetry.cache_stored = Some(outcome);
        let stored = matches!(outcome, cache::Stored::Yes { .. });
        if stored {
            self.telemetry.cache = Some("store");
            self.index_prompt(host);
        }
        stored
    }

    /// A semantic model's stored answer: its prompt goes into the index.
    fn index_prompt(&mut self, host: &mut dyn Host) {
        let Some(pending) = self.cache.as_mut() else {
            return;
        };
        let (digest, ttl_s) = (pending.digest, pending.ttl_s);
        let Some((group, q)) = pending.semantic.take() else {
            return;
        };
        let index = self
            .telemetry
            .request_model
            .as_deref()
            .and_then(|m| self.gw.model(m))
            .and_then(|m| m.semantic_index());
        let now_s = host.now_nanos() / 1_000_000_000;
        if let Some(index) = index {
            if index
                .insert(host.store(), group, &digest, q, now_s, ttl_s)
                .is_err()
            {
                host.log(
                    LogLevel::Warn,
                    "semantic cache: the prompt could not be indexed",
                );
            }
        }
    }

    /// The response ended: stores a complete answer (and indexes its
    /// prompt for a semantic model). Returns whether it was stored.
    pub(super) fn cache_finish(&mut self, host: &mut dyn Host) -> bool {
        if self.pooled && self.cache.is_some() {
            return self.take_pool_store(host);
        }
        let Some(pending) = self.cache.as_mut() else {
            return false;
        };
        let answer = pending.answer.take();
        let ok = (200..300).contains(&self.telemetry.status) && !self.telemetry.stream_error;
        let (Some(answer), Some(store), true) = (answer, self.gw.cache, ok) else {
            return false;
        };
        if !cache::complete(&answer) {
            return false;
        }
        let mut body = crate::wire::openai::render::chat_completion(&answer);
        if let Some((p, _)) = &self.target {
            let secrets = &self.gw.providers[*p].secrets;
            if !secrets.is_empty() {
                if let Some(masked) = Redactor::new(Rc::clone(secrets)).feed(&body, true) {
                    body = masked;
                }
            }
        }
        let now_s = host.now_nanos() / 1_000_000_000;
        let (digest, ttl_s) = (pending.digest, pending.ttl_s);
        let outcome = cache::insert(host.store(), &store, &digest, &body, now_s, ttl_s);
        self.telemetry.cache_stored = Some(outcome);
        if self.placement == Placement::Upstream {
            let said = match outcome {
                cache::Stored::Yes {
                    evicted,
                    bytes_in_use,
                } => format!("stored:{bytes_in_use}:{evicted}"),
                cache::Stored::TooLarge => "too_large".into(),
                cache::Stored::Full => "full".into(),
                cache::Stored::Raced => "raced".into(),
            };
            host.set_stream_value(CACHE_STORED_KEY, &said);
        }
        if !matches!(outcome, cache::Stored::Yes { .. }) {
            return false;
        }
        self.telemetry.cache = Some("store");
        self.index_prompt(host);
        true
    }
}

impl StreamFlow {
    /// The cache's metrics for this request (at `on_log`).
    pub(super) fn cache_metrics(&self) -> Vec<MetricOp> {
        let Some(state) = self.telemetry.cache else {
            return Vec::new();
        };
        let model = self.telemetry.request_model.as_deref().unwrap_or("none");
        let result = if state == "store" { "miss" } else { state };
        let mut ops = vec![metrics::cache_counter(
            metrics::CACHE_REQUESTS,
            &[("gen_ai_request_model", model), ("result", result)],
            1,
        )];
        if let Some(outcome) = self.telemetry.cache_semantic {
            ops.push(metrics::cache_counter(
                metrics::CACHE_SEMANTIC,
                &[("gen_ai_request_model", model), ("outcome", outcome)],
                1,
            ));
        }
        if let Some(stored) = self.telemetry.cache_stored {
            let outcome = match stored {
                cache::Stored::Yes { .. } => "stored",
                cache::Stored::TooLarge => "too_large",
                cache::Stored::Full => "full",
                cache::Stored::Raced => "raced",
            };
            ops.push(metrics::cache_counter(
                metrics::CACHE_STORES,
                &[("gen_ai_request_model", model), ("outcome", outcome)],
                1,
            ));
            if let cache::Stored::Yes {
                evicted,
                bytes_in_use,
            } = stored
            {
                if evicted > 0 {
                    ops.push(metrics::cache_counter(
                        metrics::CACHE_EVICTIONS,
                        &[],
                        u64::from(evicted),
                    ));
                }
                ops.push(metrics::cache_bytes(bytes_in_use));
            }
        }
        if let Some(u) = &self.telemetry.cache_saved {
            for (kind, n) in [("input", u.prompt_tokens), ("output", u.completion_tokens)] {
                ops.push(metrics::cache_counter(
                    metrics::CACHE_SAVED_TOKENS,
                    &[("gen_ai_request_model", model), ("gen_ai_token_type", kind)],
                    n,
                ));
            }
            let upstream = self.telemetry.response_model.as_deref().unwrap_or_default();
            if let Some(usd) = self.gw.prices.cost_micro_usd(upstream, u) {
                ops.push(metrics::cache_counter(
                    metrics::CACHE_SAVED_COST,
                    &[("gen_ai_request_model", model)],
                    usd,
                ));
            }
        }
        ops
    }
}
