//! `request_openai`: an OpenAI client request body (chat completions and
//! embeddings) through validation (`Api::parse`), `Api::facts`, then, as
//! the flow does, either the passthrough rename of `model`
//! (`wire::openai::splice::with_model`, OpenAI-compatible providers) or the
//! hub (`Api::to_hub`, `openai::to_hub::embeddings_request`) and the
//! `encode_request` / `encode_embeddings` of every egress edge of another
//! wire (Anthropic in both thinking modes, Gemini).
//!
//! Input: the request body, tried as a chat completion and as embeddings.
//!
//! Checks: no panic; a chat body accepted (by the quick check, without a
//! tree) is one the full validation accepts, with the same model, stream
//! flag and tree; the hub request read from the bytes without a tree
//! (`ParsedRequest::quick_hub`), where given, equals the tree path's, which
//! then does not refuse the request; every rejection is an `ApiError` with a 4xx status
//! whose `to_json()` is OpenAI's error object; every accepted request
//! encodes to a JSON object; the passthrough body is JSON equal to the
//! client's with only `model` replaced.

use crate::common::{check_client_error, json, same_as_full_validation};
use crate::request_client::{egresses, passthrough, UPSTREAM};
use llm_gateway::providers::Operation;
use llm_gateway::wire::openai::{parse_request, to_hub, ParsedRequest};
use llm_gateway::wire::{Api, Wire};

const CLIENT_ERROR: std::ops::RangeInclusive<u16> = 400..=499;

pub fn request_openai(data: &[u8]) {
    let translators: Vec<_> = egresses()
        .into_iter()
        .filter(|(_, wire, _)| *wire != Wire::OpenAiChat)
        .collect();
    for api in [Api::ChatCompletions, Api::Embeddings] {
        let parsed = match api.parse(data.to_vec()) {
            Ok(p) => p,
            Err(e) => {
                check_client_error(Wire::OpenAiChat, &e, CLIENT_ERROR, &format!("{api:?}"));
                continue;
            }
        };
        assert!(!parsed.model.is_empty(), "accepted an empty model");
        if api == Api::ChatCompletions {
            // Before anything builds the tree, which turns the typed pass off.
            let quick = parsed.quick_hub(UPSTREAM);
            same_as_full_validation(parse_request(Operation::ChatCompletions, data), &parsed);
            same_hub_as_tree(quick, &parsed);
        }
        let _ = api.facts(parsed.body());
        passthrough(&parsed);
        for (name, _, t) in &translators {
            let what = format!("{name} {api:?}");
            let encoded = match api {
                Api::Embeddings => to_hub::embeddings_request(parsed.body(), UPSTREAM)
                    .and_then(|r| t.encode_embeddings(&r)),
                _ => api
                    .to_hub(parsed.body(), UPSTREAM)
                    .and_then(|r| t.encode_request(&r)),
            };
            match encoded {
                Ok(body) => {
                    let v = json(&body, &format!("{what}: encoded request"));
                    assert!(
                        v.is_object(),
                        "{what}: encoded request is not an object: {v}"
                    );
                }
                Err(e) => check_client_error(Wire::OpenAiChat, &e, CLIENT_ERROR, &what),
            }
        }
    }
}

/// The hub request the typed pass read from the bytes, where it answered,
/// is the tree path's.
fn same_hub_as_tree(quick: Option<llm_gateway::wire::hub::ChatRequest>, parsed: &ParsedRequest) {
    let Some(quick) = quick else { return };
    match to_hub::chat_request(parsed.body(), UPSTREAM) {
        Ok(full) => assert_eq!(quick, full, "typed hub pass: another request"),
        Err(e) => panic!("typed hub pass answered where the tree path refuses: {e:?}"),
    }
}
