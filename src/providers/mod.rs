//! Provider types. Each family lives in its own file; this module names them
//! and holds what they share (auth styles, API operations).

pub mod aws;
pub mod azure;
pub mod sigv4;
mod table;
pub mod vertex;

pub use table::{known_types, type_spec, ProviderType, TYPES};

pub use crate::wire::hub::Operation;
use crate::wire::hub::Translator;
use crate::wire::openai::egress::OpenAiChat;
use crate::wire::{anthropic, bedrock, ernie, gemini, Wire};
use std::rc::Rc;
use vertex::VertexConfig;

/// Where a provider type's requests go under its base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// The wire's own paths (`/chat/completions`, `/messages`, Gemini's
    /// `models/{model}:generateContent`).
    Standard,
    /// Azure OpenAI: `/openai/deployments/{model}/…?api-version=`.
    AzureDeployments,
    /// Vertex AI: `/projects/{p}/locations/{r}/publishers/{publisher}/models/{model}:…`.
    Vertex,
}

impl ProviderType {
    /// The egress edge for this type: how to translate a request of
    /// another wire for it. `api_version` is Azure's, when set.
    pub fn translator(
        &self,
        api_version: &str,
        vertex: Option<&VertexConfig>,
    ) -> Rc<dyn Translator> {
        if let (PathStyle::Vertex, Some(location)) = (self.paths, vertex) {
            let location = location.clone();
            return match self.wire {
                Wire::Anthropic => Rc::new(vertex::VertexAnthropic {
                    inner: anthropic::Anthropic::default(),
                    location,
                }),
                _ => Rc::new(vertex::VertexGemini { location }),
            };
        }
        match (self.wire, self.paths) {
            (Wire::OpenAiChat, PathStyle::AzureDeployments) => Rc::new(azure::AzureChat::new(
                OpenAiChat::new(self.chat),
                api_version,
            )),
            (Wire::Anthropic, _) => Rc::new(anthropic::Anthropic::default()),
            (Wire::Gemini, _) => Rc::new(gemini::Gemini),
            (Wire::Bedrock, _) => Rc::new(bedrock::Bedrock),
            (Wire::Ernie, _) => Rc::new(ernie::Ernie),
            _ => Rc::new(OpenAiChat::new(self.chat)),
        }
    }
}

/// How the provider key travels upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The raw key in the named header.
    Header(String),
    /// No credentials (local servers).
    None,
}

impl AuthStyle {
    /// Parses the config override: `bearer`, `none` or `header:NAME`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "bearer" => Ok(Self::Bearer),
            "none" => Ok(Self::None),
            _ => match s.strip_prefix("header:") {
                Some(name) if is_header_name(name) => Ok(Self::Header(name.to_ascii_lowercase())),
                _ => Err(format!(
                    "'{s}' is not an auth style; use 'bearer', 'none' or 'header:NAME'"
                )),
            },
        }
    }

    /// The header (name, value) carrying `key`, if any.
    pub fn header(&self, key: &str) -> Option<(String, String)> {
        match self {
            Self::Bearer => Some(("authorization".into(), format!("Bearer {key}"))),
            Self::Header(name) => Some((name.clone(), key.to_string())),
            Self::None => None,
        }
    }
}

/// Header names clients use for credentials; never forwarded upstream.
pub const CLIENT_CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
];

/// Which model names a provider type takes: those that go into its URL
/// are checked so they cannot change the resource or method called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelNames {
    /// The name travels in the body only.
    Any,
    /// One plain path segment (Gemini, Azure deployments).
    PathSegment,
    /// A Bedrock model id, inference profile or ARN, percent-encoded into
    /// one segment.
    BedrockId,
    /// A Vertex AI model (`claude-sonnet-4-5@20250929`): a path segment
    /// that may hold `@`.
    VertexModel,
}

impl ModelNames {
    pub fn accepts(self, model: &str) -> bool {
        match self {
            Self::Any => !model.is_empty() && !model.chars().any(char::is_control),
            Self::PathSegment => is_path_segment(model),
            Self::BedrockId => crate::wire::bedrock::is_model_id(model),
            Self::VertexModel => model
                .split_once('@')
                .map_or(is_path_segment(model), |(name, version)| {
                    is_path_segment(name) && is_path_segment(version)
                }),
        }
    }

    /// What the names may hold, for error messages.
    pub fn rule(self) -> &'static str {
        match self {
            Self::Any => "any text without control characters",
            Self::PathSegment => "letters, digits, '-', '_' and '.' only",
            Self::BedrockId => "a Bedrock model id, inference profile or ARN: letters, digits, '-', '_', '.', ':' (and '/' in ARNs)",
            Self::VertexModel => "letters, digits, '-', '_', '.' and one '@' before a version",
        }
    }
}

/// Whether `s` may become one segment of an upstream URL path: the one
/// check for every name that reaches a provider's URL (model names,
/// deployments). An allow-list, so `/`, `?`, `#`, `:`, `%`, `..` and
/// whitespace can never change which resource or method is called.
pub fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// RFC 7230 token characters, lowercase enforced by callers where needed.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_styles() {
        assert_eq!(AuthStyle::parse("bearer"), Ok(AuthStyle::Bearer));
        assert_eq!(
            AuthStyle::parse("header:X-Key"),
            Ok(AuthStyle::Header("x-key".into()))
        );
        assert!(AuthStyle::parse("header:").is_err());
        assert!(AuthStyle::parse("header:a b").is_err());
        assert!(AuthStyle::parse("basic").is_err());
        assert_eq!(
            AuthStyle::Bearer.header("k"),
            Some(("authorization".into(), "Bearer k".into()))
        );
        assert_eq!(AuthStyle::None.header("k"), None);
    }

    #[test]
    fn path_segments() {
        for ok in ["gemini-2.5-flash", "gpt-4o.mini_1", "a", "learnlm-1.5-pro"] {
            assert!(is_path_segment(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".hidden",
            "../../v1/files?key=stolen#",
            "x:streamGenerateContent?alt=sse&",
            "a/b",
            "a b",
            "a%2fb",
            "a#b",
            "é",
            "a\nb",
            &"x".repeat(129),
        ] {
            assert!(!is_path_segment(bad), "{bad:?}");
        }
    }
}
