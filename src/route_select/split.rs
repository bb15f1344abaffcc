//! Sticky weighted split (canary / A-B): the weighted choice among a tier's
//! targets is made from a stable hash of the caller's identity instead of
//! the RNG.
//!
//! The choice is weighted rendezvous hashing (HRW, Schindelhauer & Schomaker
//! 2005): each target gets the score `-ln(u) / weight`, where `u ∈ (0, 1)`
//! is a stable hash of (salt, sticky value, target identity), and the lowest
//! score wins. `-ln(u)` is exponentially distributed, so target `i` wins
//! with probability `weight_i / Σ weights` over callers, and:
//!
//! * the same caller gets the same target while the candidates and their
//!   weights stay the same (in every worker, process and build: the hash is
//!   keyless FNV-1a + MurmurHash3 / SplitMix finalizers, never std's
//!   per-process `RandomState`);
//! * when a target leaves (ejected, weight 0), only its callers move, spread
//!   over the others by weight; when it returns they move back;
//! * raising one target's weight (a canary ramp 5 → 10 → 50 %) only moves
//!   callers *to* it, never between the other targets.
//!
//! Callers without a sticky value (no consumer, header not sent) are not
//! split by this; the pool's strategy chooses for them.

use super::config::SplitConfig;
use super::strategy::Candidate;
use super::{mix64, stable_hash};
use crate::error::ConfigError;
use crate::providers::is_header_name;

/// Longest header value used as a sticky key (longer ones are hashed by
/// their first this-many bytes).
const MAX_STICKY_LEN: usize = 1024;

/// Where the sticky value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyBy {
    /// The authenticated consumer's name.
    Consumer,
    /// A request header's value (lowercase name).
    Header(String),
}

/// A compiled `split`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub by: StickyBy,
    pub salt: String,
}

impl Split {
    /// Validates a model's `split` (errors at `{field}.sticky_by`, …);
    /// `model` is the default salt.
    pub fn compile(cfg: &SplitConfig, model: &str, field: &str) -> Result<Self, ConfigError> {
        let by = match cfg.sticky_by.as_str() {
            "consumer" => StickyBy::Consumer,
            s => match s.strip_prefix("header:") {
                Some(name) if is_header_name(name) => StickyBy::Header(name.to_ascii_lowercase()),
                Some(_) => {
                    return Err(ConfigError::new(
                        format!("{field}.sticky_by"),
                        format!("'{s}': header:NAME needs a valid header name"),
                    ))
                }
                None => {
                    return Err(ConfigError::new(
                        format!("{field}.sticky_by"),
                        format!("'{s}' must be consumer or header:NAME"),
                    ))
                }
            },
        };
        let salt = match &cfg.salt {
            Some(s) if s.is_empty() || s.len() > 256 => {
                return Err(ConfigError::new(
                    format!("{field}.salt"),
                    "must be 1 to 256 characters",
                ))
            }
            Some(s) => s.clone(),
            None => model.to_string(),
        };
        Ok(Self { by, salt })
    }

    /// This request's sticky value; `None` (anonymous, header absent or
    /// empty) leaves the choice to the strategy.
    pub fn sticky_value(
        &self,
        consumer: Option<&str>,
        header: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let v = match &self.by {
            StickyBy::Consumer => consumer.map(str::to_string),
            StickyBy::Header(name) => header(name).map(|mut v| {
                let mut end = v.len().min(MAX_STICKY_LEN);
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                v.truncate(end);
                v
            }),
        };
        v.filter(|v| !v.is_empty())
    }

    /// The sticky choice among `candidates` (their `index`), identified by
    /// their ids, so a target keeps its callers whatever its position.
    pub fn pick(&self, candidates: &[Candidate<'_>], sticky_value: &str) -> Option<usize> {
        sticky_pick_ids(candidates, sticky_value, &self.salt)
    }
}

/// The sticky weighted choice among positions `0..weights.len()` (weight 0
/// is never chosen; `None` when every weight is 0). A target is identified
/// by its position: keep positions stable (a target that leaves should get
/// weight 0, not be removed), or use [`sticky_pick_ids`].
pub fn sticky_pick(weights: &[u32], sticky_value: &str, salt: &str) -> Option<usize> {
    let base = stable_hash(salt, sticky_value);
    hrw(
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| (mix64((i as u64).wrapping_add(1)), w)),
        base,
    )
}

/// The sticky weighted choice among `candidates`, each identified by its
/// `id`: returns the chosen candidate's `index`.
pub fn sticky_pick_ids(
    candidates: &[Candidate<'_>],
    sticky_value: &str,
    salt: &str,
) -> Option<usize> {
    let base = stable_hash(salt, sticky_value);
    let pos = hrw(
        candidates.iter().map(|c| (stable_hash("", c.id), c.weight)),
        base,
    )?;
    candidates.get(pos).map(|c| c.index)
}

/// Position of the lowest `-ln(u) / w` (ties: the earlier position).
fn hrw(targets: impl Iterator<Item = (u64, u32)>, base: u64) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (pos, (id, weight)) in targets.enumerate() {
        if weight == 0 {
            continue;
        }
        let h = mix64(base ^ id);
        // 53 random bits, centred in their interval: u ∈ (0, 1), never 0.
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = -u.ln() / f64::from(weight);
        if best.is_none_or(|(_, s)| score < s) {
            best = Some((pos, score));
        }
    }
    best.map(|(pos, _)| pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(weights: &[u32], callers: u32, salt: &str) -> Vec<f64> {
        let mut counts = vec![0u32; weights.len()];
        for c in 0..callers {
            let i = sticky_pick(weights, &format!("caller-{c}"), salt).unwrap();
            counts[i] += 1;
        }
        counts
            .iter()
            .map(|&n| f64::from(n) / f64::from(callers))
            .collect()
    }

    #[test]
    fn distribution_follows_weights_within_two_percent() {
        for weights in [
            &[95u32, 5][..],
            &[90, 10],
            &[50, 50],
            &[5, 1, 1],
            &[1, 1, 1, 1],
            &[70, 20, 9, 1],
            &[3, 0, 1],
        ] {
            let total: u32 = weights.iter().sum();
            for salt in ["chat", "other-salt"] {
                let got = shares(weights, 10_000, salt);
                for (i, (&w, s)) in weights.iter().zip(&got).enumerate() {
                    let want = f64::from(w) / f64::from(total);
                    assert!(
                        (s - want).abs() <= 0.02,
                        "weights {weights:?} salt {salt}: target {i} got {s:.4}, want {want:.4}"
                    );
                }
            }
        }
    }

    #[test]
    fn same_caller_same_target() {
        let w = [80, 15, 5];
        for c in 0..1000 {
            let v = format!("user-{c}");
            let first = sticky_pick(&w, &v, "s");
            for _ in 0..3 {
                assert_eq!(sticky_pick(&w, &v, "s"), first);
            }
        }
        // Pinned choices: the hash must not change between builds, or every
        // sticky caller would move on upgrade.
        let pinned: Vec<usize> = (0..12)
            .map(|c| sticky_pick(&[1, 1, 1], &format!("u{c}"), "salt").unwrap())
            .collect();
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [usize; 12] = [0, 1, 2, 1, 1, 1, 0, 2, 1, 0, 2, 2];

    #[test]
    fn salt_reshuffles() {
        let w = [1, 1];
        let moved = (0..1000)
            .filter(|c| {
                let v = format!("u{c}");
                sticky_pick(&w, &v, "a") != sticky_pick(&w, &v, "b")
            })
            .count();
        assert!((400..600).contains(&moved), "{moved}");
    }

    #[test]
    fn canary_ramp_only_moves_callers_to_the_canary() {
        let before = [90, 5, 5];
        let after = [90, 5, 20];
        let mut moved = 0;
        for c in 0..10_000 {
            let v = format!("u{c}");
            let a = sticky_pick(&before, &v, "s").unwrap();
            let b = sticky_pick(&after, &v, "s").unwrap();
            if a != b {
                assert_eq!(b, 2, "caller {v} moved {a} -> {b}");
                moved += 1;
            }
        }
        // From 5 % to 20/115 ≈ 17.4 %: about 12.4 % of callers move.
        assert!((1000..1500).contains(&moved), "{moved}");
    }

    #[test]
    fn a_leaving_target_only_moves_its_callers() {
        let ids = ["a", "b", "c", "d"];
        let all: Vec<Candidate> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Candidate::new(i, 1, id))
            .collect();
        // "b" ejected: removed from the candidate list (positions shift).
        let without_b: Vec<Candidate> = all.iter().copied().filter(|c| c.id != "b").collect();
        let mut moved = 0;
        for c in 0..10_000 {
            let v = format!("u{c}");
            let x = sticky_pick_ids(&all, &v, "s").unwrap();
            let y = sticky_pick_ids(&without_b, &v, "s").unwrap();
            if x != 1 {
                assert_eq!(x, y, "caller {v} of a healthy target moved");
            } else {
                moved += 1;
                assert_ne!(y, 1);
            }
        }
        assert!((2300..2700).contains(&moved), "{moved}");
        // Weight 0 by position behaves the same for sticky_pick.
        for c in 0..2000 {
            let v = format!("u{c}");
            let x = sticky_pick(&[1, 1, 1, 1], &v, "s").unwrap();
            let y = sticky_pick(&[1, 0, 1, 1], &v, "s").unwrap();
            if x != 1 {
                assert_eq!(x, y);
            }
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(sticky_pick(&[], "u", "s"), None);
        assert_eq!(sticky_pick(&[0, 0], "u", "s"), None);
        assert_eq!(sticky_pick(&[0, 7], "u", "s"), Some(1));
        assert_eq!(
            sticky_pick(&[u32::MAX, u32::MAX], "", ""),
            sticky_pick(&[1, 1], "", "")
        );
        assert_eq!(sticky_pick_ids(&[], "u", "s"), None);
        assert_eq!(
            sticky_pick_ids(&[Candidate::new(9, 1, "x")], "u", "s"),
            Some(9)
        );
    }

    #[test]
    fn compile_and_sticky_values() {
        let cfg = |by: &str, salt: Option<&str>| SplitConfig {
            sticky_by: by.into(),
            salt: salt.map(str::to_string),
        };
        let s = Split::compile(&cfg("consumer", None), "chat", "models[0].split").unwrap();
        assert_eq!(s.by, StickyBy::Consumer);
        assert_eq!(s.salt, "chat");
        let none = |_: &str| None;
        assert_eq!(
            s.sticky_value(Some("team-a"), &none).as_deref(),
            Some("team-a")
        );
        assert_eq!(s.sticky_value(None, &none), None);
        assert_eq!(s.sticky_value(Some(""), &none), None);

        let s = Split::compile(&cfg("header:X-User", Some("v2")), "chat", "f").unwrap();
        assert_eq!(s.by, StickyBy::Header("x-user".into()));
        assert_eq!(s.salt, "v2");
        let h = |n: &str| (n == "x-user").then(|| "u-1".to_string());
        assert_eq!(s.sticky_value(Some("team-a"), &h).as_deref(), Some("u-1"));
        assert_eq!(s.sticky_value(None, &none), None);
        let long = |_: &str| Some("é".repeat(MAX_STICKY_LEN));
        let v = s.sticky_value(None, &long).unwrap();
        assert_eq!(v.len(), MAX_STICKY_LEN);
        let c = [Candidate::new(0, 1, "a"), Candidate::new(1, 1, "b")];
        assert_eq!(s.pick(&c, "u-1"), sticky_pick_ids(&c, "u-1", "v2"));

        for (by, salt, field) in [
            ("ip", None, "f.sticky_by"),
            ("header:", None, "f.sticky_by"),
            ("header:a b", None, "f.sticky_by"),
            ("consumer", Some(""), "f.salt"),
        ] {
            let e = Split::compile(&cfg(by, salt), "chat", "f").unwrap_err();
            assert_eq!(e.field, field, "{by}");
        }
    }
}
