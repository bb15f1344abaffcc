mod fold;
mod pii;
mod scan;
mod window;

use super::{Action, Direction, GuardSet, GuardrailConfig, Guardrails, PiiKind};

/// A words rule.
pub fn words(name: &str, action: Action, terms: &[&str]) -> GuardrailConfig {
    GuardrailConfig {
        name: name.into(),
        words: terms.iter().map(|t| t.to_string()).collect(),
        pii: vec![],
        moderation: None,
        action,
        apply_to: None,
    }
}

/// A PII rule.
pub fn pii_rule(name: &str, action: Action, kinds: &[PiiKind]) -> GuardrailConfig {
    GuardrailConfig {
        name: name.into(),
        words: vec![],
        pii: kinds.to_vec(),
        moderation: None,
        action,
        apply_to: None,
    }
}

pub fn all(g: &Guardrails) -> GuardSet {
    (0..g.rules.len()).fold(GuardSet::default(), GuardSet::with)
}

/// `text` checked as a request against every rule: (text after, blocking
/// rule name).
pub fn check(g: &Guardrails, text: &str) -> (String, Option<String>) {
    let mut t = text.to_string();
    let mut tally = super::Tally::default();
    let b = g.check(&mut t, all(g), Direction::Request, &mut tally);
    (t, b.map(|i| g.rules[i].name.clone()))
}
