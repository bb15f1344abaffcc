//! A model's `strategy` and `split`, compiled together: the one call the
//! flow makes per tier to choose a target.
//!
//! `split` is a sticky form of weighted random, so it combines with
//! `strategy: weighted_random` (the default) only; with another strategy it
//! is a config error, since the two would disagree about who chooses.
//! Requests without a sticky value (anonymous, header absent) are chosen by
//! weighted random.

use super::config::{PoolOptions, SplitConfig, Strategy};
use super::split::Split;
use super::strategy::{self, Candidate};
use crate::error::ConfigError;
use crate::host::SharedStore;

/// How one configured model (pool) chooses among a tier's targets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolPolicy {
    pub strategy: Strategy,
    pub split: Option<Split>,
}

impl PoolOptions {
    /// See [`PoolPolicy::compile`].
    pub fn compile(&self, model: &str, field: &str) -> Result<PoolPolicy, ConfigError> {
        PoolPolicy::compile(self.strategy, self.split.as_ref(), model, field)
    }
}

impl PoolPolicy {
    /// Validates a model's `strategy` and `split`; `model` is its name (the
    /// split's default salt), `field` its path (e.g. `models[2]`).
    pub fn compile(
        strategy: Strategy,
        split: Option<&SplitConfig>,
        model: &str,
        field: &str,
    ) -> Result<Self, ConfigError> {
        let split = match split {
            None => None,
            Some(_) if strategy != Strategy::WeightedRandom => {
                return Err(ConfigError::new(
                    format!("{field}.split"),
                    format!(
                        "a sticky split is a weighted random choice; it cannot be combined with strategy {}",
                        strategy.name()
                    ),
                ))
            }
            Some(cfg) => Some(Split::compile(cfg, model, &format!("{field}.split"))?),
        };
        Ok(Self { strategy, split })
    }

    /// This request's sticky value, when the pool is split.
    pub fn sticky_value(
        &self,
        consumer: Option<&str>,
        header: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        self.split
            .as_ref()
            .and_then(|s| s.sticky_value(consumer, header))
    }

    /// Chooses among `candidates` (one tier's usable targets): the sticky
    /// choice when the pool is split and `sticky` is given, else the
    /// strategy's. Returns the chosen candidate's `index`.
    pub fn pick(
        &self,
        store: &dyn SharedStore,
        pool_key: &str,
        candidates: &[Candidate<'_>],
        sticky: Option<&str>,
        rand: u64,
        now_ns: u64,
    ) -> Option<usize> {
        if let (Some(split), Some(value)) = (&self.split, sticky) {
            if let Some(i) = split.pick(candidates, value) {
                return Some(i);
            }
        }
        strategy::pick(self.strategy, store, pool_key, candidates, rand, now_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route_select::split::StickyBy;
    use crate::testing::MemStore;

    #[test]
    fn compiles_and_refuses_split_with_other_strategies() {
        let split = SplitConfig {
            sticky_by: "consumer".into(),
            salt: None,
        };
        let p = PoolPolicy::compile(Strategy::WeightedRandom, Some(&split), "chat", "models[1]")
            .unwrap();
        assert_eq!(p.split.as_ref().unwrap().by, StickyBy::Consumer);
        assert_eq!(p.split.as_ref().unwrap().salt, "chat");
        for s in [
            Strategy::RoundRobin,
            Strategy::LeastInFlight,
            Strategy::LowestLatency,
        ] {
            let e = PoolPolicy::compile(s, Some(&split), "chat", "models[1]").unwrap_err();
            assert_eq!(e.field, "models[1].split");
            assert!(e.problem.contains(s.name()), "{e}");
            assert!(PoolPolicy::compile(s, None, "chat", "models[1]").is_ok());
        }
        let bad = SplitConfig {
            sticky_by: "cookie".into(),
            salt: None,
        };
        let e = PoolPolicy::compile(Strategy::WeightedRandom, Some(&bad), "chat", "models[1]")
            .unwrap_err();
        assert_eq!(e.field, "models[1].split.sticky_by");
        let opts: PoolOptions =
            serde_json::from_str(r#"{"split":{"sticky_by":"header:x-user"}}"#).unwrap();
        let p = opts.compile("chat", "models[0]").unwrap();
        assert_eq!(p.split.unwrap().by, StickyBy::Header("x-user".to_string()));
        assert_eq!(PoolPolicy::default().strategy, Strategy::WeightedRandom);
    }

    #[test]
    fn sticky_callers_keep_their_target_and_anonymous_ones_are_random() {
        let store = MemStore::default();
        let split = SplitConfig {
            sticky_by: "consumer".into(),
            salt: None,
        };
        let p = PoolPolicy::compile(Strategy::WeightedRandom, Some(&split), "chat", "m").unwrap();
        let c = [
            Candidate::new(0, 95, "0:oa/gpt-4o"),
            Candidate::new(1, 5, "1:oa/gpt-4.1"),
        ];
        let none = |_: &str| None;
        let mut rng = crate::route_select::Rng::new(9);
        let mut canary = 0;
        for u in 0..2000 {
            let name = format!("team-{u}");
            let v = p.sticky_value(Some(&name), &none);
            let first = p.pick(&store, "k", &c, v.as_deref(), rng.next_u64(), 0);
            for _ in 0..5 {
                assert_eq!(
                    p.pick(&store, "k", &c, v.as_deref(), rng.next_u64(), 0),
                    first
                );
            }
            canary += usize::from(first == Some(1));
        }
        assert!((40..160).contains(&canary), "{canary}");
        // Anonymous: the strategy (weighted random) decides per request.
        let v = p.sticky_value(None, &none);
        assert_eq!(v, None);
        let picks: std::collections::HashSet<_> = (0..2000)
            .map(|_| p.pick(&store, "k", &c, None, rng.next_u64(), 0))
            .collect();
        assert_eq!(picks.len(), 2);
        // Not split: a sticky value is ignored.
        let plain = PoolPolicy::default();
        assert_eq!(plain.sticky_value(Some("team-1"), &none), None);
        assert_eq!(plain.pick(&store, "k", &[], Some("x"), 0, 0), None);
    }
}
