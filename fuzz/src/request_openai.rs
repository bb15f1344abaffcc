//! `request_openai`: a client request body through validation
//! (`openai::parse_request`), then, as the flow does, either the passthrough
//! rename of `model` (`providers::openai_compat::rename_model_raw`) or the
//! hub (`openai::to_hub`) and each translator's `encode_request` /
//! `encode_embeddings` (Anthropic in both thinking modes, Gemini).
//!
//! Input: the request body, tried as a chat completion and as embeddings.
//!
//! Checks: no panic; every rejection is an `ApiError` with a 4xx status
//! whose `to_json()` is OpenAI's error object; every accepted request
//! encodes to a JSON object; the passthrough body is JSON equal to the
//! client's with only `model` replaced.

use crate::common::{check_api_error, json, json_eq};
use llm_gateway::providers::openai_compat::rename_model_raw;
use llm_gateway::providers::Operation;
use llm_gateway::wire::anthropic::{Anthropic, AnthropicOptions, ThinkingMode};
use llm_gateway::wire::gemini::Gemini;
use llm_gateway::wire::hub::Translator;
use llm_gateway::wire::openai::{parse_request, parse_request_owned, to_hub};
use serde_json::Value;

const CLIENT_ERROR: std::ops::RangeInclusive<u16> = 400..=499;

pub fn request_openai(data: &[u8]) {
    let adaptive = Anthropic::new(AnthropicOptions {
        thinking_mode: ThinkingMode::Adaptive,
        ..AnthropicOptions::default()
    });
    let translators: [(&str, &dyn Translator); 3] = [
        ("anthropic", &Anthropic::default()),
        ("anthropic-adaptive", &adaptive),
        ("gemini", &Gemini),
    ];
    for op in [Operation::ChatCompletions, Operation::Embeddings] {
        let parsed = match parse_request(op, data) {
            Ok(p) => p,
            Err(e) => {
                check_api_error(&e, CLIENT_ERROR, &format!("parse_request({op:?})"));
                continue;
            }
        };
        assert!(!parsed.model.is_empty(), "accepted an empty model");
        passthrough(data, op);
        for (name, t) in translators {
            let what = format!("{name} {op:?}");
            let encoded = match op {
                Operation::ChatCompletions => to_hub::chat_request(&parsed.body, &parsed.model)
                    .and_then(|r| t.encode_request(&r)),
                Operation::Embeddings => to_hub::embeddings_request(&parsed.body, &parsed.model)
                    .and_then(|r| t.encode_embeddings(&r)),
            };
            match encoded {
                Ok(body) => {
                    let v = json(&body, &format!("{what}: encoded request"));
                    assert!(
                        v.is_object(),
                        "{what}: encoded request is not an object: {v}"
                    );
                }
                Err(e) => check_api_error(&e, CLIENT_ERROR, &what),
            }
        }
    }
}

/// The OpenAI-compatible path: the client's bytes with `model` renamed.
fn passthrough(data: &[u8], op: Operation) {
    let Ok(parsed) = parse_request_owned(op, data.to_vec()) else {
        panic!("parse_request_owned({op:?}) rejects what parse_request accepts");
    };
    for upstream in ["up-model", "up\"model\\\u{e9}\u{1}"] {
        let out = rename_model_raw(&parsed.raw, &mut parsed.body.clone(), upstream);
        let mut got = json(&out, "passthrough body");
        let mut want = Value::Object(parsed.body.clone());
        assert_eq!(got["model"], upstream, "passthrough model not replaced");
        got["model"] = Value::Null;
        want["model"] = Value::Null;
        assert!(
            json_eq(&got, &want),
            "passthrough changed more than the model:\n got: {got}\nwant: {want}"
        );
    }
}
