//! Provider types. Each family lives in its own file; this module names them
//! and holds what they share (auth styles, API operations).

pub mod azure;
pub mod openai_compat;

/// How a provider type speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI Chat Completions as is (the OpenAI-compatible family).
    OpenAi,
    /// OpenAI bodies on Azure's deployment paths.
    Azure,
    /// Translated through the hub.
    Anthropic,
    Gemini,
}

/// What a provider `type` implies: wire format, default base URL and auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSpec {
    pub kind: &'static str,
    pub wire: Wire,
    /// None when the user must give `base_url` (Azure resources).
    pub base_url: Option<&'static str>,
    pub auth: AuthStyle,
    /// Whether requests fail without a key (hosted APIs).
    pub key_required: bool,
    /// Whether the upstream model name becomes part of the request URL
    /// (Gemini `models/{model}:…`, Azure deployments), so it must be a
    /// plain path segment.
    pub model_in_path: bool,
}

/// Looks up a provider `type`.
pub fn type_spec(kind: &str) -> Option<TypeSpec> {
    if let Some(p) = openai_compat::preset(kind) {
        return Some(TypeSpec {
            kind: p.kind,
            wire: Wire::OpenAi,
            base_url: Some(p.base_url),
            auth: p.default_auth(),
            key_required: p.key_required,
            model_in_path: false,
        });
    }
    let (kind, wire, base_url, header) = match kind {
        "azure" => ("azure", Wire::Azure, None, "api-key"),
        "anthropic" => (
            "anthropic",
            Wire::Anthropic,
            Some("https://api.anthropic.com/v1"),
            "x-api-key",
        ),
        "gemini" => (
            "gemini",
            Wire::Gemini,
            Some("https://generativelanguage.googleapis.com/v1beta"),
            "x-goog-api-key",
        ),
        _ => return None,
    };
    Some(TypeSpec {
        kind,
        wire,
        base_url,
        auth: AuthStyle::Header(header.into()),
        key_required: true,
        model_in_path: matches!(wire, Wire::Azure | Wire::Gemini),
    })
}

/// Every provider type, for error messages and docs.
pub fn known_types() -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = openai_compat::PRESETS.iter().map(|p| p.kind).collect();
    kinds.extend(["azure", "anthropic", "gemini"]);
    kinds
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
pub const CLIENT_CREDENTIAL_HEADERS: &[&str] =
    &["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// The API operations the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ChatCompletions,
    Embeddings,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat",
            Self::Embeddings => "embeddings",
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
