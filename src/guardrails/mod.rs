//! Guardrails: word lists (one Aho-Corasick automaton over every list's
//! folded terms), personal-data detectors and an external moderation
//! check, each a named rule with an action (`block`, `mask`, `log`) on the
//! request, the response, or both. Models and consumers name the rules
//! they use; a request runs the union.
//!
//! Text is compared folded (`fold`): case, full-width forms and traditional
//! characters do not hide a term. Streams are checked as they pass with a
//! hold-back window (`window`), never buffered whole.

mod fold;
mod moderation;
pub mod pii;
mod scan;
#[cfg(test)]
mod tests;
mod window;

pub use fold::Folder;
pub use moderation::{
    flagged, unavailable, CalloutTarget, FailureMode, Moderation, ModerationConfig,
    ModerationVerdict,
};
pub use pii::PiiKind;
pub use scan::{Hit, Tally};
pub use window::StreamGuard;

use crate::error::{ApiError, ConfigError};
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::MatchKind;
use serde::{Deserialize, Serialize};

/// Most rules one configuration may define (a request's rules are a bitset).
pub const MAX_RULES: usize = 64;
/// Longest term, in characters (a stream holds back one less than the
/// longest term in use).
pub const MAX_TERM_CHARS: usize = 64;

/// One rule as users write it under `guardrails:`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GuardrailConfig {
    /// Named by models and consumers, and in errors and metrics.
    pub name: String,
    /// Terms matched anywhere in the text (the renderer expands
    /// `file:PATH` entries, one term per line).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<String>,
    /// Kinds of personal data to find.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pii: Vec<PiiKind>,
    /// An external check in OpenAI's `/v1/moderations` format, before the
    /// request is forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<ModerationConfig>,
    #[serde(default)]
    pub action: Action,
    /// `request`, `response` or both (default both; moderation: request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_to: Option<Vec<Direction>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refuse the request (400 `content_policy_violation`) or stop the
    /// response (`content_filter`).
    #[default]
    Block,
    /// Replace each matched character with `*`.
    Mask,
    /// Count only.
    Log,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Mask => "mask",
            Self::Log => "log",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Request,
    Response,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
        }
    }
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Words,
    Pii(Vec<PiiKind>),
    Moderation(Moderation),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub request: bool,
    pub response: bool,
    pub kind: RuleKind,
    /// Longest folded term (words rules), in characters.
    pub longest: usize,
}

/// A set of rules, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardSet(pub u64);

impl GuardSet {
    pub fn with(self, i: usize) -> Self {
        Self(self.0 | (1u64 << i))
    }
    pub fn contains(self, i: usize) -> bool {
        i < MAX_RULES && self.0 & (1u64 << i) != 0
    }
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Every rule of a configuration, compiled.
#[derive(Debug, Clone, Default)]
pub struct Guardrails {
    pub rules: Vec<Rule>,
    folder: Folder,
    /// The contiguous NFA alone (not the `AhoCorasick` wrapper, which
    /// links every automaton kind into the filter).
    automaton: Option<NFA>,
    /// The rule of each automaton pattern.
    pattern_rule: Vec<u8>,
    /// The length of each pattern, in characters.
    pattern_chars: Vec<u8>,
    /// Rules that apply to requests / to responses.
    request_rules: GuardSet,
    response_rules: GuardSet,
}

impl Guardrails {
    pub fn compile(configs: &[GuardrailConfig]) -> Result<Self, ConfigError> {
        if configs.len() > MAX_RULES {
            return Err(ConfigError::new(
                "guardrails",
                format!("at most {MAX_RULES} rules, got {}", configs.len()),
            ));
        }
        let folder = if configs.is_empty() {
            Folder::default()
        } else {
            Folder::new()
        };
        let mut g = Self {
            folder,
            ..Self::default()
        };
        let mut patterns: Vec<String> = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let field = format!("guardrails[{i}]");
            let rule = compile_rule(c, &field, &g.folder, i, &mut patterns, &mut g.pattern_rule)?;
            if configs[..i].iter().any(|o| o.name == c.name) {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    format!("'{}' is defined twice", c.name),
                ));
            }
            if rule.request {
                g.request_rules = g.request_rules.with(i);
            }
            if rule.response {
                g.response_rules = g.response_rules.with(i);
            }
            g.rules.push(rule);
        }
        g.pattern_chars = patterns.iter().map(|p| p.chars().count() as u8).collect();
        if !patterns.is_empty() {
            let nfa = NFA::builder()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .map_err(|e| ConfigError::new("guardrails", format!("word lists: {e}")))?;
            g.automaton = Some(nfa);
        }
        Ok(g)
    }

    /// The rule named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.name == name)
    }

    /// Resolves rule names (of a model or consumer) to a set.
    pub fn resolve(&self, names: &[String], field: &str) -> Result<GuardSet, ConfigError> {
        let mut set = GuardSet::default();
        for (j, name) in names.iter().enumerate() {
            let i = self.find(name).ok_or_else(|| {
                ConfigError::new(
                    format!("{field}[{j}]"),
                    format!("no guardrail named '{name}' (define it under guardrails)"),
                )
            })?;
            set = set.with(i);
        }
        Ok(set)
    }

    /// The rules of `set` that check requests, and those that check
    /// responses.
    pub fn split(&self, set: GuardSet) -> (GuardSet, GuardSet) {
        (
            GuardSet(set.0 & self.request_rules.0),
            GuardSet(set.0 & self.response_rules.0),
        )
    }

    /// The moderation rule in `set`, if any (the first).
    pub fn moderation(&self, set: GuardSet) -> Option<(usize, &Moderation)> {
        self.rules
            .iter()
            .enumerate()
            .find_map(|(i, r)| match &r.kind {
                RuleKind::Moderation(m) if set.contains(i) => Some((i, m)),
                _ => None,
            })
    }

    pub fn folder(&self) -> &Folder {
        &self.folder
    }
}

fn compile_rule(
    c: &GuardrailConfig,
    field: &str,
    folder: &Folder,
    index: usize,
    patterns: &mut Vec<String>,
    pattern_rule: &mut Vec<u8>,
) -> Result<Rule, ConfigError> {
    if c.name.is_empty()
        || !c
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(ConfigError::new(
            format!("{field}.name"),
            "must be non-empty: letters, digits, '-', '_' and '.' (it is a metric label)",
        ));
    }
    let kinds = [
        !c.words.is_empty(),
        !c.pii.is_empty(),
        c.moderation.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(ConfigError::new(
            field.to_string(),
            "needs exactly one of words, pii or moderation",
        ));
    }
    let dirs = c.apply_to.clone().unwrap_or_else(|| {
        if c.moderation.is_some() {
            vec![Direction::Request]
        } else {
            vec![Direction::Request, Direction::Response]
        }
    });
    if dirs.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.apply_to"),
            "names no direction",
        ));
    }
    let (request, response) = (
        dirs.contains(&Direction::Request),
        dirs.contains(&Direction::Response),
    );
    let mut longest = 0;
    let kind = if let Some(m) = &c.moderation {
        if response {
            return Err(ConfigError::new(
                format!("{field}.apply_to"),
                "moderation checks requests only",
            ));
        }
        if c.action != Action::Block {
            return Err(ConfigError::new(
                format!("{field}.action"),
                "moderation can only block",
            ));
        }
        RuleKind::Moderation(m.compile(&format!("{field}.moderation"))?)
    } else if !c.pii.is_empty() {
        RuleKind::Pii(c.pii.clone())
    } else {
        for (j, term) in c.words.iter().enumerate() {
            let folded: String = term.trim().chars().map(|ch| folder.fold(ch)).collect();
            let n = folded.chars().count();
            if n == 0 {
                return Err(ConfigError::new(format!("{field}.words[{j}]"), "is empty"));
            }
            if n > MAX_TERM_CHARS {
                return Err(ConfigError::new(
                    format!("{field}.words[{j}]"),
                    format!("is {n} characters long; at most {MAX_TERM_CHARS}"),
                ));
            }
            if folded.contains('*') {
                return Err(ConfigError::new(
                    format!("{field}.words[{j}]"),
                    "may not contain '*' (the mask character)",
                ));
            }
            longest = longest.max(n);
            patterns.push(folded);
            pattern_rule.push(index as u8);
        }
        RuleKind::Words
    };
    Ok(Rule {
        name: c.name.clone(),
        action: c.action,
        request,
        response,
        kind,
        longest,
    })
}

/// A request refused by a `block` rule: names the rule, never the text.
pub fn blocked_request(rule: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "The request was refused by the gateway's content policy (guardrail '{rule}')."
    ))
    .with_code("content_policy_violation")
}

/// The error event that ends a response stopped by a `block` rule.
pub fn blocked_response(rule: &str) -> ApiError {
    ApiError::new(
        400,
        "invalid_request_error",
        format!("The response was stopped by the gateway's content policy (guardrail '{rule}')."),
    )
    .with_code("content_policy_violation")
}
