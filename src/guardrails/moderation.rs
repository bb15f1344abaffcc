//! External moderation: the request's text goes to a configured provider's
//! `/moderations` endpoint (OpenAI's format, which compatible services
//! serve too) before the request is forwarded; a flagged answer blocks it.
//! The call goes through Envoy to the provider's cluster, bounded by a
//! timeout; an unreachable, slow or unreadable service fails open or closed
//! as configured.

use crate::error::{ApiError, ConfigError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModerationConfig {
    /// A configured provider (OpenAI-compatible) that serves
    /// `POST {base_url}/moderations`; its key and cluster are used.
    pub provider: String,
    /// `model` sent in the moderation request, if the service needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// `closed` (default): no verdict refuses the request with 503;
    /// `open`: it goes on unchecked (counted).
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// Block only when one of these categories is flagged (default: any
    /// flag blocks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

fn default_timeout() -> u64 {
    1_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    #[default]
    Closed,
    Open,
}

/// Where and how the call goes, once `config` resolved the provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CalloutTarget {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    /// The provider's credential header, if it has a key.
    pub auth: Option<(String, crate::secrets::Secret)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Moderation {
    pub provider: String,
    pub model: Option<String>,
    pub timeout_ms: u64,
    pub fail_open: bool,
    pub categories: Vec<String>,
    pub target: CalloutTarget,
}

/// Largest text sent for moderation; longer prompts are cut (the start
/// and the end are kept: the last user turn matters most).
pub const MAX_MODERATION_TEXT: usize = 64 * 1024;

impl ModerationConfig {
    pub(super) fn compile(&self, field: &str) -> Result<Moderation, ConfigError> {
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(ConfigError::new(
                format!("{field}.timeout_ms"),
                "must be between 1 and 60000",
            ));
        }
        if self.provider.is_empty() {
            return Err(ConfigError::new(format!("{field}.provider"), "is required"));
        }
        Ok(Moderation {
            provider: self.provider.clone(),
            model: self.model.clone(),
            timeout_ms: self.timeout_ms,
            fail_open: self.failure_mode == FailureMode::Open,
            categories: self.categories.clone(),
            target: CalloutTarget::default(),
        })
    }
}

/// What the moderation service said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModerationVerdict {
    Allowed,
    /// Flagged, with the categories that decided it.
    Flagged(Vec<String>),
    /// No usable answer (status, body), with why.
    Failed(String),
}

impl Moderation {
    /// The request body of the call.
    pub fn request_body(&self, text: &str) -> Vec<u8> {
        let text = clip(text);
        let mut body = serde_json::Map::new();
        if let Some(m) = &self.model {
            body.insert("model".into(), Value::String(m.clone()));
        }
        body.insert("input".into(), Value::String(text));
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
    }

    /// Reads the service's answer (`None` status: no answer, e.g. timeout).
    pub fn verdict(&self, status: Option<u16>, body: &[u8]) -> ModerationVerdict {
        let Some(status) = status else {
            return ModerationVerdict::Failed("no answer within the timeout".into());
        };
        if status != 200 {
            return ModerationVerdict::Failed(format!("it answered HTTP {status}"));
        }
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return ModerationVerdict::Failed("its answer is not JSON".into());
        };
        let Some(results) = v.get("results").and_then(Value::as_array) else {
            return ModerationVerdict::Failed("its answer has no results".into());
        };
        let mut decided = Vec::new();
        for r in results {
            let Some(flagged) = r.get("flagged").and_then(Value::as_bool) else {
                return ModerationVerdict::Failed("a result has no flagged field".into());
            };
            if !flagged {
                continue;
            }
            let cats: Vec<String> = r
                .get("categories")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter(|(_, v)| v.as_bool() == Some(true))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            if self.categories.is_empty() {
                decided.extend(cats);
                if decided.is_empty() {
                    decided.push("flagged".into());
                }
            } else {
                decided.extend(cats.into_iter().filter(|c| self.categories.contains(c)));
            }
        }
        if decided.is_empty() {
            ModerationVerdict::Allowed
        } else {
            decided.sort();
            decided.dedup();
            ModerationVerdict::Flagged(decided)
        }
    }
}

/// Text cut to `MAX_MODERATION_TEXT` bytes on character boundaries.
fn clip(text: &str) -> String {
    if text.len() <= MAX_MODERATION_TEXT {
        return text.to_string();
    }
    let half = MAX_MODERATION_TEXT / 2;
    let mut head = half;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - half;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}\n…\n{}", &text[..head], &text[tail..])
}

/// The request was flagged by the moderation rule `rule`.
pub fn flagged(rule: &str, categories: &[String]) -> ApiError {
    ApiError::invalid_request(format!(
        "The request was refused by the gateway's content policy (guardrail '{rule}': {}).",
        categories.join(", ")
    ))
    .with_code("content_policy_violation")
}

/// The moderation service gave no verdict and the rule fails closed.
pub fn unavailable(rule: &str, why: &str) -> ApiError {
    ApiError::new(
        503,
        "api_error",
        format!("The gateway's content check (guardrail '{rule}') is unavailable: {why}. Try again later."),
    )
    .with_code("moderation_unavailable")
}
