//! Provider types. Each family lives in its own file; this module names them
//! and holds what they share (auth styles, API operations).

pub mod anthropic;
pub mod gemini;
pub mod openai_compat;

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
}
