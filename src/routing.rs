//! Choosing a target for a model: the lowest priority tier that has a usable
//! target, then weighted random within that tier.

use crate::config::{Gateway, Model, Target};

/// SplitMix64: small, fast, good enough to spread load; seeded per stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias worth caring about
    /// for weights below 2^32.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The lowest tier that has a usable target, as indices into
/// `model.targets` (usable: positive weight, provider available, healthy).
pub fn tier(gw: &Gateway, model: &Model, healthy: &dyn Fn(usize, &Target) -> bool) -> Vec<usize> {
    let usable = |i: usize, t: &Target| {
        t.weight > 0 && gw.providers[t.provider].unavailable.is_none() && healthy(i, t)
    };
    let Some(tier) = model
        .targets
        .iter()
        .enumerate()
        .find(|(i, t)| usable(*i, t))
        .map(|(_, t)| t.priority)
    else {
        return Vec::new();
    };
    model
        .targets
        .iter()
        .enumerate()
        .filter(|(i, t)| t.priority == tier && usable(*i, t))
        .map(|(i, _)| i)
        .collect()
}

/// Picks a target (its index in `model.targets`) among those `healthy`
/// says may take traffic, or `None` when no target of the model is usable.
pub fn select(
    gw: &Gateway,
    model: &Model,
    rng: &mut Rng,
    healthy: &dyn Fn(usize, &Target) -> bool,
) -> Option<usize> {
    let usable = |(i, t): &(usize, &Target)| {
        t.weight > 0 && gw.providers[t.provider].unavailable.is_none() && healthy(*i, t)
    };
    let tier = model.targets.iter().enumerate().find(usable)?.1.priority;
    let candidates = model
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.priority == tier)
        .filter(usable);
    let total: u64 = candidates.clone().map(|(_, t)| u64::from(t.weight)).sum();
    let mut pick = rng.below(total);
    for (i, t) in candidates {
        let w = u64::from(t.weight);
        if pick < w {
            return Some(i);
        }
        pick -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{compile, PluginConfig};

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

    #[test]
    fn weighted_within_lowest_usable_tier() {
        let gw = gateway(CFG, &|_| Some("key".into()));
        let m = gw.model("m").unwrap();
        let mut rng = Rng::new(42);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            let i = select(&gw, m, &mut rng, &|_, _| true).unwrap();
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
            let i = select(&gw, m, &mut rng, &|_, _| true).unwrap();
            assert_eq!(m.targets[i].provider, 1);
        }
        // An unhealthy target is skipped like an unavailable one.
        let i = select(&gw, m, &mut rng, &|_, t| t.provider != 1).unwrap();
        assert_eq!(m.targets[i].provider, 2);
        let only_a = r#"{"providers":[{"name":"a","type":"openai","api_key":"env:A"}],
            "models":[{"name":"m","targets":[{"provider":"a"}]}]}"#;
        let gw = gateway(only_a, &|_| None);
        assert!(select(&gw, gw.model("m").unwrap(), &mut rng, &|_, _| true).is_none());
    }

    #[test]
    fn rng_below_is_in_range() {
        let mut rng = Rng::new(1);
        for n in [1u64, 2, 3, 1000] {
            for _ in 0..1000 {
                assert!(rng.below(n) < n);
            }
        }
    }
}
