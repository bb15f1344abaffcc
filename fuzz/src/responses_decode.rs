//! `responses_decode`: what the gateway does with a provider's (non-stream)
//! response body: each egress edge's `decode_response`, `decode_embeddings`
//! and `decode_error` (Anthropic, Gemini, OpenAI Chat Completions), the
//! decoded response rendered for each client wire (`Wire::render_response`:
//! OpenAI Chat, Anthropic Messages, Responses), errors rendered for each
//! client wire (`Wire::render_error`, `Wire::stream_error`), and
//! `Wire::decode_error` of every wire (passthrough providers' errors, and a
//! failover attempt's error already rendered in the client's wire).
//!
//! Input: `[status, body…]`: the upstream HTTP status is `400 + status % 200`
//! for the error paths.
//!
//! Checks: no panic; decoded responses render as JSON objects for every
//! client wire (or, for Anthropic clients, a 5xx `ApiError`); every
//! `ApiError` has a 4xx/5xx status (the upstream's, for error bodies) and
//! renders in each client wire's error shape; OpenAI-shaped normalized
//! messages are capped; a provider key, redacted from every field as the
//! flow does, never appears in what is sent to the client.

use crate::common::{
    check_anthropic_error_value, check_api_error, check_client_error, header, json, named_frames,
};
use crate::stream::ctx;
use llm_gateway::error::ApiError;
use llm_gateway::redact::SecretSet;
use llm_gateway::wire::anthropic::Anthropic;
use llm_gateway::wire::gemini::Gemini;
use llm_gateway::wire::hub::Translator;
use llm_gateway::wire::openai::egress::OpenAiChat;
use llm_gateway::wire::openai::render;
use llm_gateway::wire::Wire;

/// A provider key, as the flow redacts `Provider::secrets`.
pub const SECRET: &str = "sk-fuzz-secret";
/// `error::MAX_MESSAGE_CHARS`, plus the ellipsis.
const MAX_MESSAGE_CHARS: usize = 2000 + 1;

/// The client wires.
const CLIENT_WIRES: [Wire; 3] = [Wire::OpenAiChat, Wire::Anthropic, Wire::OpenAiResponses];

pub fn responses_decode(data: &[u8]) {
    let ([s], body) = header::<1>(data);
    let secrets = SecretSet::new([SECRET]);
    let status = 400 + u16::from(s) % 200;
    let ctx = ctx();
    let translators: [(&str, &dyn Translator); 3] = [
        ("anthropic", &Anthropic::default()),
        ("gemini", &Gemini),
        ("openai", &OpenAiChat::default()),
    ];
    // The errors sent to clients, each checked once (several edges read
    // error bodies the same way).
    let mut errors: Vec<(ApiError, String)> = Vec::new();
    for (name, t) in translators {
        match t.decode_response(body, &ctx) {
            Ok(r) => {
                for wire in CLIENT_WIRES {
                    let what = format!("{name}: {wire:?} render_response");
                    match wire.render_response(&r, &ctx) {
                        Ok(bytes) => {
                            let v = json(&bytes, &what);
                            assert!(v.is_object(), "{what}: not an object: {v}");
                        }
                        Err(e) => check_client_error(wire, &e, 500..=599, &what),
                    }
                }
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
        errors.push((e.redacted(&secrets), format!("{name}: decode_error")));
    }
    // Passthrough and failover: the error read by the client's own wire.
    for wire in [
        Wire::OpenAiChat,
        Wire::Anthropic,
        Wire::Gemini,
        Wire::OpenAiResponses,
    ] {
        let what = format!("{wire:?} decode_error");
        let e = wire.decode_error(status, body).redacted(&secrets);
        assert_eq!(e.status, status, "{what} changed the status");
        if matches!(wire, Wire::OpenAiChat | Wire::OpenAiResponses) {
            assert!(
                e.message.chars().count() <= MAX_MESSAGE_CHARS,
                "{what}: normalized message not capped: {} chars",
                e.message.chars().count()
            );
        }
        errors.push((e, what));
    }
    for (i, (e, what)) in errors.iter().enumerate() {
        if !errors[..i].iter().any(|(seen, _)| seen == e) {
            sent_to_clients(e, what);
        }
    }
}

/// A redacted error, rendered for each client wire as the flow sends it
/// (an error response, or the event that ends a stream): in that wire's
/// shape, and without the key.
fn sent_to_clients(e: &ApiError, what: &str) {
    for wire in CLIENT_WIRES {
        check_client_error(wire, e, 400..=599, what);
        let body = wire.render_error(e);
        let frame = wire.stream_error(e);
        for (kind, out) in [("render_error", &body), ("stream_error", &frame)] {
            let text = String::from_utf8_lossy(out);
            assert!(
                !text.contains(SECRET),
                "{what}: the provider key reaches a {wire:?} client ({kind}): {text}"
            );
        }
        let what = format!("{what}: {wire:?} stream_error");
        match wire {
            Wire::Anthropic => {
                let frames = named_frames(&frame, &what);
                assert_eq!(frames.len(), 1, "{what}");
                check_anthropic_error_value(&frames[0].data, &what);
            }
            Wire::OpenAiResponses => {
                let frames = named_frames(&frame, &what);
                assert_eq!(frames.len(), 1, "{what}");
                let d = &frames[0].data;
                assert!(
                    d["type"] == "error"
                        && d["sequence_number"] == 0
                        && d["error"]["message"].is_string(),
                    "{what}: {d}"
                );
            }
            Wire::OpenAiChat | Wire::Gemini | Wire::Bedrock | Wire::Ernie => {
                let end = crate::common::check_openai_stream(&frame);
                assert_eq!(end, crate::common::StreamEnd::Error, "{what}");
            }
        }
    }
}
