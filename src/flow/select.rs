//! Which configured model serves a request, and which of its targets and
//! provider keys: routing rules, the model map, tiers, strategies and
//! health.

use super::StreamFlow;
use crate::config::{Gateway, Model, Provider, Target};
use crate::health;
use crate::host::{Host, SharedStore};
use crate::route_select;
use crate::state::keys;
use crate::wire::openai::ParsedRequest;
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
            let request = self.facts(req).clone();
            let facts = crate::route_select::RuleFacts {
                model: &req.model,
                consumer,
                header: &header,
                prompt_tokens: request.prompt_tokens,
                messages: request.messages,
                last_user_text: &request.last_user_text,
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
        if model.targets.len() == 1 {
            // Nothing to choose, and health would not change the answer
            // (panic routing): no shared-data reads for the target.
            let usable = usable_tier(&gw, model, &|_, _| true);
            let &[only] = usable.as_slice() else {
                return None;
            };
            let provider = &gw.providers[model.targets[only].provider];
            let key = self.pick_key(store, provider, &|| host.now_nanos(), false);
            return Some((only, key));
        }
        let now = host.now_nanos();
        let has_key = |t: &Target| {
            let p = &gw.providers[t.provider];
            p.keys.len() < 2
                || (0..p.keys.len()).any(|k| {
                    !health::is_ejected(
                        store,
                        &keys::provider_key_health(&p.name, &p.keys[k].id),
                        now,
                    )
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
                    self.pick_key(
                        store,
                        &gw.providers[model.targets[i].provider],
                        &|| now,
                        false,
                    ),
                ));
            }
            passed_over.push(i);
        }
        let i = self.pick_in_tier(host, model, &|_, _| true)?;
        Some((
            i,
            self.pick_key(
                store,
                &gw.providers[model.targets[i].provider],
                &|| now,
                true,
            ),
        ))
    }

    /// The pool's strategy (or sticky split) among the lowest usable tier.
    fn pick_in_tier(
        &mut self,
        host: &dyn Host,
        model: &Model,
        healthy: &dyn Fn(usize, &Target) -> bool,
    ) -> Option<usize> {
        let tier = usable_tier(&self.gw, model, healthy);
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
        // Read only when there is a choice (a hostcall in Envoy).
        now: &dyn Fn() -> u64,
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
        let now = now();
        order
            .clone()
            .find(|&k| {
                health::admit(
                    store,
                    &keys::provider_key_health(&p.name, &p.keys[k].id),
                    now,
                )
            })
            .or(Some(start))
    }
}

/// The lowest tier that has a usable target, as indices into
/// `model.targets` (usable: positive weight, provider available, healthy).
fn usable_tier(
    gw: &Gateway,
    model: &Model,
    healthy: &dyn Fn(usize, &Target) -> bool,
) -> Vec<usize> {
    let usable = |i: usize| {
        let t = &model.targets[i];
        t.weight > 0 && gw.providers[t.provider].unavailable.is_none() && healthy(i, t)
    };
    route_select::lowest_usable_tier(model.targets.iter().map(|t| t.priority), &usable)
}

fn target_health_key(gw: &Gateway, t: &Target) -> String {
    keys::target_health(&gw.providers[t.provider].name, &t.model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{compile, PluginConfig};
    use crate::route_select::{Candidate, Rng};

    fn gateway(json: &str, env: &dyn Fn(&str) -> Option<String>) -> Gateway {
        compile(&PluginConfig::from_json(json.as_bytes()).unwrap(), env).unwrap()
    }

    const CFG: &str = r#"{
        "providers": [
            {"name": "a", "type": "openai", "api_key": "env:A"},
            {"name": "b", "type": "openai", "api_key": "k"},
            {"name": "c", "type": "openai", "api_key": "k"}
        ],
        "models": [{"name": "m", "targets": [
            {"provider": "a", "weight": 1},
            {"provider": "b", "weight": 3},
            {"provider": "c", "priority": 1}
        ]}]
    }"#;

    /// Weighted random within the lowest usable tier, as the default
    /// strategy chooses.
    fn pick(
        gw: &Gateway,
        m: &Model,
        rng: &mut Rng,
        healthy: &dyn Fn(usize, &Target) -> bool,
    ) -> Option<usize> {
        let tier = usable_tier(gw, m, healthy);
        let candidates: Vec<Candidate> = tier
            .iter()
            .map(|&i| Candidate::new(i, m.targets[i].weight, &m.targets[i].id))
            .collect();
        route_select::weighted_random(&candidates, rng.next_u64())
    }

    #[test]
    fn weighted_within_lowest_usable_tier() {
        let gw = gateway(CFG, &|_| Some("key".into()));
        let m = gw.model("m").unwrap();
        let mut rng = Rng::new(42);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            let i = pick(&gw, m, &mut rng, &|_, _| true).unwrap();
            counts[m.targets[i].provider] += 1;
        }
        assert_eq!(counts[2], 0, "tier 1 used while tier 0 is usable");
        let share_b = f64::from(counts[1]) / 40_000.0;
        assert!((share_b - 0.75).abs() < 0.015, "b share {share_b}");
    }

    #[test]
    fn skips_unavailable_and_falls_to_next_tier() {
        let gw = gateway(CFG, &|_| None);
        let m = gw.model("m").unwrap();
        let mut rng = Rng::new(7);
        for _ in 0..100 {
            let i = pick(&gw, m, &mut rng, &|_, _| true).unwrap();
            assert_eq!(m.targets[i].provider, 1);
        }
        // An unhealthy target is skipped like an unavailable one.
        let i = pick(&gw, m, &mut rng, &|_, t| t.provider != 1).unwrap();
        assert_eq!(m.targets[i].provider, 2);
        let only_a = r#"{"providers":[{"name":"a","type":"openai","api_key":"env:A"}],
            "models":[{"name":"m","targets":[{"provider":"a"}]}]}"#;
        let gw = gateway(only_a, &|_| None);
        assert!(pick(&gw, gw.model("m").unwrap(), &mut rng, &|_, _| true).is_none());
    }
}
