//! Which configured model serves a request, and which of its targets and
//! provider keys: routing rules, the model map, tiers, strategies and
//! health.

use super::StreamFlow;
use crate::admission;
use crate::config::{Gateway, Model, Provider, Target};
use crate::health;
use crate::host::{Host, SharedStore};
use crate::openai::ParsedRequest;
use crate::routing;
use crate::state::keys;
use std::rc::Rc;

impl StreamFlow {
    /// Which configured model serves the request: a routing rule, else the
    /// exact name, else the model map (with an optional upstream override).
    pub(super) fn resolve_model(
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

    /// Picks a target and one of its provider's keys. Targets that are
    /// ejected, or whose keys are all disabled or cooling down, are passed
    /// over while any other is usable; if none is, health is ignored (like
    /// Envoy's panic routing) rather than failing every request.
    pub(super) fn choose(
        &mut self,
        host: &dyn Host,
        model: &Model,
    ) -> Option<(usize, Option<usize>)> {
        let gw = Rc::clone(&self.gw);
        let store = host.store();
        let now = host.now_nanos();
        if model.targets.len() == 1 {
            // Nothing to choose, and health would not change the answer
            // (panic routing): no shared-data reads for the target.
            let usable = routing::tier(&gw, model, &|_, _| true);
            let &[only] = usable.as_slice() else {
                return None;
            };
            let key = self.pick_key(
                store,
                &gw.providers[model.targets[only].provider],
                now,
                false,
            );
            return Some((only, key));
        }
        let has_key = |t: &Target| {
            let p = &gw.providers[t.provider];
            p.keys.len() < 2
                || (0..p.keys.len()).any(|k| {
                    !health::is_ejected(store, &keys::provider_key_health(&p.name, k), now)
                })
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
        let pool = keys::pool(&model.name);
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
    pub(super) fn pick_key(
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
            .find(|&k| health::admit(store, &keys::provider_key_health(&p.name, k), now))
            .or(Some(start))
    }
}

fn target_health_key(gw: &Gateway, t: &Target) -> String {
    keys::target_health(&gw.providers[t.provider].name, &t.model)
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
