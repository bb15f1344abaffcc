//! `responses_decode`: what the gateway does with a provider's (non-stream)
//! response body: each translator's `decode_response`, `decode_embeddings`
//! and `decode_error`, and `error::normalize_upstream_error` (passthrough
//! providers' errors).
//!
//! Input: `[status, body…]`: the upstream HTTP status is `400 + status % 200`
//! for the error paths.
//!
//! Checks: no panic; decoded responses render (`openai::render`) as JSON
//! objects; every `ApiError` has a 4xx/5xx status (the upstream's, for error
//! bodies) and a valid `to_json()`; normalized messages are capped; a
//! provider key, redacted from every field as the flow does, never
//! appears in the error sent to the client.

use crate::common::{check_api_error, header, json};
use crate::stream::ctx;
use llm_gateway::error::{normalize_upstream_error, ApiError};
use llm_gateway::redact::SecretSet;
use llm_gateway::wire::anthropic::Anthropic;
use llm_gateway::wire::gemini::Gemini;
use llm_gateway::wire::hub::Translator;
use llm_gateway::wire::openai::render;

/// A provider key, as the flow redacts `Provider::secrets`.
pub const SECRET: &str = "sk-fuzz-secret";
/// `error::MAX_MESSAGE_CHARS`, plus the ellipsis.
const MAX_MESSAGE_CHARS: usize = 2000 + 1;

pub fn responses_decode(data: &[u8]) {
    let ([s], body) = header::<1>(data);
    let secrets = SecretSet::new([SECRET]);
    let status = 400 + u16::from(s) % 200;
    let ctx = ctx();
    let translators: [(&str, &dyn Translator); 2] =
        [("anthropic", &Anthropic::default()), ("gemini", &Gemini)];
    for (name, t) in translators {
        match t.decode_response(body, &ctx) {
            Ok(r) => {
                let v = json(
                    &render::chat_completion(&r),
                    &format!("{name}: chat_completion"),
                );
                assert!(v.is_object());
            }
            Err(e) => check_api_error(&e, 400..=599, &format!("{name}: decode_response")),
        }
        match t.decode_embeddings(body, &ctx) {
            Ok(r) => {
                for base64 in [false, true] {
                    let v = json(
                        &render::embeddings(&r, base64),
                        &format!("{name}: embeddings(base64={base64})"),
                    );
                    assert!(v.is_object());
                }
            }
            Err(e) => check_api_error(&e, 400..=599, &format!("{name}: decode_embeddings")),
        }
        // As `flow::response` sends a translated provider's error.
        let e = t.decode_error(status, body);
        assert_eq!(e.status, status, "{name}: decode_error changed the status");
        check_api_error(&e, 400..=599, &format!("{name}: decode_error"));
        let e = e.redacted(&secrets);
        no_secret(&e, &format!("{name}: decode_error + redacted"));
    }
    let e = normalize_upstream_error(status, body).redacted(&secrets);
    assert_eq!(
        e.status, status,
        "normalize_upstream_error changed the status"
    );
    check_api_error(&e, 400..=599, "normalize_upstream_error");
    assert!(
        e.message.chars().count() <= MAX_MESSAGE_CHARS,
        "normalized message not capped: {} chars",
        e.message.chars().count()
    );
    no_secret(&e, "normalize_upstream_error");
}

fn no_secret(e: &ApiError, what: &str) {
    let out = e.to_json();
    let text = String::from_utf8_lossy(&out);
    assert!(
        !text.contains(SECRET),
        "{what}: the provider key reaches the client: {text}"
    );
}
