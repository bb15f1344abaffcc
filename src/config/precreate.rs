//! Every shared-data key a gateway can touch: the limiters' keys created at
//! configure time so request-time updates always CAS an existing key (see
//! the key lifecycle in [`crate::state`]), and the whole set registered so
//! that a later configuration drops the state of what it removed.

use super::Gateway;
use crate::admission;
use crate::host::SharedStore;
use crate::ratelimit::adaptive;
use crate::replay;
use crate::state::{keys, registry, Contention};
use std::collections::BTreeSet;

impl Gateway {
    /// Creates the keys of every rate-limit rule, consumer quota and
    /// target adaptive limit; returns how many there are.
    pub fn precreate_state(
        &self,
        store: &dyn SharedStore,
        now_ns: u64,
    ) -> Result<usize, Contention> {
        let models: Vec<String> = self.models.iter().map(|m| m.name.clone()).collect();
        let mut created =
            admission::precreate(&self.rules, &self.consumers, &models, store, now_ns)?;
        for m in &self.models {
            for t in &m.targets {
                let p = &self.providers[t.provider];
                if let Some(spec) = &p.adaptive {
                    let key = keys::adaptive(&p.name, &t.model);
                    adaptive::ensure(store, &key, spec, now_ns)?;
                    created += 1;
                }
            }
        }
        if self.consumers.signing() {
            created += replay::precreate(store, self.consumers.nonce_slots)?;
        }
        for source in self.providers.iter().filter_map(|p| p.token.as_ref()) {
            crate::tokens::cache::ensure(store, &source.key)?;
            created += 1;
        }
        if let Some(cache) = &self.cache {
            created += crate::cache::precreate(store, cache)?;
        }
        for m in &self.models {
            if let Some(index) = m.semantic_index() {
                created += index.precreate(store)?;
            }
        }
        Ok(created)
    }

    /// Every key this configuration's state can live under: limiters,
    /// quotas, adaptive limits, passive health of targets and provider
    /// keys, and each pool's routing-strategy state.
    pub fn state_keys(&self) -> BTreeSet<String> {
        let models: Vec<String> = self.models.iter().map(|m| m.name.clone()).collect();
        let mut out: BTreeSet<String> =
            admission::limit_keys(&self.rules, &self.consumers, &models)
                .into_iter()
                .map(|(k, _)| k)
                .collect();
        for p in &self.providers {
            out.extend(
                p.keys
                    .iter()
                    .map(|k| keys::provider_key_health(&p.name, &k.id)),
            );
            // A reload keeps the provider's token (the same credentials'
            // token stays good).
            out.extend(p.token.as_ref().map(|t| t.key.clone()));
        }
        if self.consumers.signing() {
            out.extend(keys::nonce_slots(self.consumers.nonce_slots));
        }
        if let Some(cache) = &self.cache {
            out.extend(crate::cache::state_keys(cache));
        }
        for m in &self.models {
            if let Some(index) = m.semantic_index() {
                out.extend(index.keys());
            }
        }
        for m in &self.models {
            let pool = keys::pool(&m.name);
            out.insert(keys::round_robin(&pool));
            for t in &m.targets {
                let p = &self.providers[t.provider];
                out.insert(keys::target_health(&p.name, &t.model));
                out.insert(keys::adaptive(&p.name, &t.model));
                out.insert(keys::in_flight(&pool, &t.id));
                out.insert(keys::latency(&pool, &t.id));
            }
        }
        out
    }

    /// Registers [`Gateway::state_keys`] and drops the state of keys the
    /// previous configuration had and this one has not; returns how many.
    pub fn forget_removed_state(&self, store: &dyn SharedStore) -> Result<usize, Contention> {
        registry::replace(store, &self.state_keys())
    }
}
