//! The response cache in the flow: looked up once the target is chosen
//! (before limits: a hit takes nothing from them), answered in the
//! client's API and mode; a miss is sent translated (the answer is read in
//! hub form on its way back) and stored when it ends complete.

use super::{StreamFlow, Verdict, TARGET_HEADER};
use crate::cache::{self, Directives, KeyParts, Scope, CACHE_HEADER};
use crate::config::{Model, Target};
use crate::host::{Host, MetricOp};
use crate::metrics;
use crate::redact::Redactor;
use crate::wire::hub::{ChatResponse, ResponseContext};
use crate::wire::openai::ParsedRequest;
use crate::wire::{Api, Wire};
use std::rc::Rc;

/// A request whose answer may be stored.
pub(super) struct Pending {
    digest: cache::Digest32,
    ttl_s: u64,
    /// The answer, once it ended complete.
    pub(super) answer: Option<ChatResponse>,
}

impl StreamFlow {
    /// Looks the request up; `Some` is the verdict of a hit answered here.
    /// A request that may be stored leaves `self.cache` set.
    pub(super) fn cache_lookup(
        &mut self,
        host: &mut dyn Host,
        req: &ParsedRequest,
        model: &Model,
        target: &Target,
        upstream: &str,
    ) -> Option<Verdict> {
        let policy = model.cache?;
        let store = self.gw.cache?;
        let chat = matches!(
            self.api,
            Api::ChatCompletions | Api::Messages | Api::Responses
        );
        let directives = Directives::parse(host.request_header("cache-control").as_deref());
        if !chat
            || directives.no_store
            || !(policy.nondeterministic || cache::deterministic(&req.body))
        {
            self.telemetry.cache = Some("bypass");
            return None;
        }
        let consumer = self.consumer.and_then(|i| self.gw.consumers.get(i));
        let scope = match policy.scope {
            Scope::Consumer => consumer.map_or("", |c| c.name.as_str()),
            Scope::Shared => "",
        };
        let provider = &self.gw.providers[target.provider];
        let parts = KeyParts {
            api: self.api.name(),
            provider: &provider.name,
            upstream_model: upstream,
            scope,
        };
        let digest = cache::digest(&parts, &req.body);
        let now_s = host.now_nanos() / 1_000_000_000;
        if !directives.skip_lookup {
            if let Some(body) = cache::lookup(host.store(), &store, &digest, now_s) {
                if let Some(v) = self.serve_hit(host, req, target, upstream, &body) {
                    return Some(v);
                }
            }
        }
        self.telemetry.cache = Some("miss");
        self.cache = Some(Pending {
            digest,
            ttl_s: policy.ttl_s,
            answer: None,
        });
        None
    }

    /// Answers from a stored body; None if it no longer reads.
    fn serve_hit(
        &mut self,
        host: &mut dyn Host,
        req: &ParsedRequest,
        target: &Target,
        upstream: &str,
        stored: &[u8],
    ) -> Option<Verdict> {
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
                .body
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
        let provider = &self.gw.providers[target.provider];
        let label = format!("{}/{}", provider.name, upstream);
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

    /// The response ended: stores a complete answer. Returns whether it was
    /// stored.
    pub(super) fn cache_finish(&mut self, host: &mut dyn Host) -> bool {
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
        if matches!(outcome, cache::Stored::Yes { .. }) {
            self.telemetry.cache = Some("store");
            return true;
        }
        false
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
