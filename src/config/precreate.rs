//! Every shared-data key a gateway can touch, created at configure time so
//! request-time updates always CAS an existing key (see the key lifecycle
//! in [`crate::state`]).

use super::Gateway;
use crate::admission;
use crate::host::SharedStore;
use crate::ratelimit::adaptive;
use crate::state::{keys, Contention};

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
        Ok(created)
    }
}
