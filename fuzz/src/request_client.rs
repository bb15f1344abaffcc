//! `request_anthropic`, `request_responses`: a client request of the
//! Anthropic Messages API (`/v1/messages` and `/v1/messages/count_tokens`)
//! or of the OpenAI Responses API (`/v1/responses`) through what the flow
//! does with it: `Api::parse`, `Api::facts`, then either the passthrough
//! rename of `model` (a provider that serves the client's API) or
//! `Api::to_hub` and every provider type's egress `Translator`
//! (`ProviderType::translator`: `encode_request` and `path`); for
//! count_tokens, the local answer `render_count_tokens` too.
//!
//! Input: the request body as is.
//!
//! Checks: no panic; every rejection (validation, `to_hub`, an egress) is an
//! `ApiError` with a 4xx status that renders in the client's wire
//! (`Wire::render_error`: Anthropic's `{"type":"error","error":{…}}`,
//! OpenAI's error object for Responses); every accepted request encodes to
//! a JSON object (with the upstream model where the body names one) and a
//! path under the provider's prefix; the facts agree with the hub request
//! (`max_tokens`); the passthrough body is JSON equal to the client's with
//! only `model` replaced; a Messages body accepted by the one-pass check
//! (no tree) is one the full validation accepts, with the same facts and
//! tree.

use crate::common::{check_client_error, json, json_eq, same_as_full_validation};
use llm_gateway::error::ApiError;
use llm_gateway::providers::{Operation, TYPES};
use llm_gateway::wire::anthropic::ingress::{parse_request, render_count_tokens};
use llm_gateway::wire::anthropic::{Anthropic, AnthropicOptions, ThinkingMode};
use llm_gateway::wire::hub::{ChatRequest, Translator};
use llm_gateway::wire::openai::splice::with_model;
use llm_gateway::wire::openai::ParsedRequest;
use llm_gateway::wire::{Api, Wire};
use serde_json::{Map, Value};
use std::rc::Rc;

const CLIENT_ERROR: std::ops::RangeInclusive<u16> = 400..=499;

/// The upstream model routing picked.
pub(crate) const UPSTREAM: &str = "up-model";
/// A provider's base URL path prefix.
const PREFIX: &str = "/v1";

pub fn request_anthropic(data: &[u8]) {
    check(Api::Messages, data);
    check(Api::CountTokens, data);
}

pub fn request_responses(data: &[u8]) {
    check(Api::Responses, data);
}

/// Every distinct egress edge of the provider types (types that differ
/// only in auth or base URL share one), plus the Anthropic egress in its
/// adaptive thinking mode. Named by the first type that has it.
pub(crate) fn egresses() -> Vec<(String, Wire, Rc<dyn Translator>)> {
    let mut seen = Vec::new();
    let mut out: Vec<(String, Wire, Rc<dyn Translator>)> = Vec::new();
    for t in TYPES {
        let key = (t.wire, t.paths, t.chat);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        out.push((t.kind.to_string(), t.wire, t.translator("2024-10-21", None)));
    }
    out.push((
        "anthropic-adaptive".into(),
        Wire::Anthropic,
        Rc::new(Anthropic::new(AnthropicOptions {
            thinking_mode: ThinkingMode::Adaptive,
            ..AnthropicOptions::default()
        })),
    ));
    out
}

/// `hub` encoded by every egress edge: a JSON object, or a 4xx that
/// renders for a client of `client`.
pub(crate) fn encode_everywhere(client: Wire, hub: &ChatRequest, what: &str) {
    for (name, wire, t) in egresses() {
        let what = format!("{what} → {name}");
        let path = t.path(Operation::ChatCompletions, PREFIX, UPSTREAM, hub.stream);
        assert!(
            path.starts_with(PREFIX) && !path.contains(char::is_whitespace),
            "{what}: path {path:?}"
        );
        match t.encode_request(hub) {
            Ok(body) => {
                let v = json(&body, &format!("{what}: encoded request"));
                assert!(
                    v.is_object(),
                    "{what}: encoded request is not an object: {v}"
                );
                if matches!(wire, Wire::OpenAiChat | Wire::Anthropic) {
                    assert_eq!(
                        v["model"], UPSTREAM,
                        "{what}: model not the upstream's: {v}"
                    );
                }
            }
            Err(e) => check_client_error(client, &e, CLIENT_ERROR, &what),
        }
    }
}

/// The passthrough: the client's bytes with `model` renamed (what a
/// provider that speaks the client's API gets).
pub(crate) fn passthrough(parsed: &ParsedRequest) {
    for upstream in [UPSTREAM, "up\"model\\\u{e9}\u{1}"] {
        let out = with_model(&mut parsed.clone(), upstream);
        let mut got = json(&out, "passthrough body");
        let mut want = Value::Object(parsed.body().clone());
        assert_eq!(got["model"], upstream, "passthrough model not replaced");
        got["model"] = Value::Null;
        want["model"] = Value::Null;
        assert!(
            json_eq(&got, &want),
            "passthrough changed more than the model:\n got: {got}\nwant: {want}"
        );
    }
}

fn check(api: Api, data: &[u8]) {
    let wire = api.wire();
    let what = format!("{api:?}");
    let parsed = match api.parse(data.to_vec()) {
        Ok(p) => p,
        Err(e) => {
            check_client_error(wire, &e, CLIENT_ERROR, &format!("{what}: parse"));
            return;
        }
    };
    assert!(!parsed.model.is_empty(), "{what}: accepted an empty model");
    assert_eq!(parsed.raw, data, "{what}: raw bytes not kept");
    if api == Api::Messages {
        // Accepted by the one-pass check or not, validation agrees.
        same_as_full_validation(parse_request(data), &parsed);
    }
    let facts = api.facts(parsed.body());
    assert!(
        facts.prompt_tokens >= 4 * facts.messages as u64,
        "{what}: facts: {facts:?}"
    );
    passthrough(&parsed);
    if api == Api::CountTokens {
        // Answered by the gateway for every provider but Anthropic.
        let v = json(&render_count_tokens(facts.prompt_tokens), "count_tokens");
        assert_eq!(v["input_tokens"].as_u64(), Some(facts.prompt_tokens));
    }
    let hub = api.to_hub(parsed.body(), UPSTREAM);
    nulls_are_absent(api, &parsed, &hub);
    let hub = match hub {
        Ok(h) => h,
        Err(e) => {
            check_client_error(wire, &e, CLIENT_ERROR, &format!("{what}: to_hub"));
            return;
        }
    };
    assert_eq!(hub.model, UPSTREAM, "{what}: hub model");
    assert_eq!(hub.stream, parsed.stream, "{what}: stream");
    assert_eq!(hub.include_usage, hub.stream, "{what}: include_usage");
    assert_eq!(
        hub.max_tokens, facts.max_tokens,
        "{what}: facts and hub disagree on max_tokens"
    );
    if wire == Wire::Anthropic {
        integral_floats(api, &parsed, &hub);
    }
    encode_everywhere(wire, &hub, &what);
}

/// The Anthropic edge takes integers written as floats with no fraction
/// (`1024.0`, as Anthropic's validation does): the same request with its
/// integer parameters (`max_tokens`, `top_k`, `thinking.budget_tokens`)
/// written that way is accepted and means the same hub request.
fn integral_floats(api: Api, parsed: &ParsedRequest, hub: &ChatRequest) {
    let as_float = |v: &mut Value| {
        if let Some(n) = v.as_i64().filter(|n| n.unsigned_abs() < 1 << 53) {
            *v = Value::from(n as f64);
        }
    };
    let mut body = parsed.body().clone();
    for key in ["max_tokens", "top_k"] {
        if let Some(v) = body.get_mut(key) {
            as_float(v);
        }
    }
    if let Some(v) = body
        .get_mut("thinking")
        .and_then(|t| t.get_mut("budget_tokens"))
    {
        as_float(v);
    }
    if &body == parsed.body() {
        return;
    }
    let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
    let what = format!("{api:?} with integers written as floats");
    let again = api
        .parse(bytes)
        .unwrap_or_else(|e| panic!("{what}: rejected: {e:?}"));
    assert_eq!(
        api.facts(again.body()),
        api.facts(parsed.body()),
        "{what}: other facts"
    );
    let hub2 = api
        .to_hub(again.body(), UPSTREAM)
        .unwrap_or_else(|e| panic!("{what}: to_hub rejects it: {e:?}"));
    assert_eq!(&hub2, hub, "{what}: another hub request");
}

/// Optional top-level fields of each API: what its edge accepts
/// (`Api::known_fields`), required ones left out.
fn optional_fields(api: Api) -> Vec<&'static str> {
    const REQUIRED: &[&str] = &["model", "messages", "max_tokens", "input"];
    api.known_fields()
        .iter()
        .copied()
        .filter(|f| !REQUIRED.contains(f))
        .collect()
}

/// Both edges document that an optional field set to `null` means the same
/// as leaving it out (Anthropic: "`null` counts as absent for optional
/// fields"; Responses: "null means default, as in OpenAI's API"). Checked
/// for each optional field the body has, and for one it has not (picked by
/// the body's length): the body with the field `null` and the body without
/// it are both accepted or both refused, with the same facts and the same
/// hub request (or `to_hub` error).
fn nulls_are_absent(api: Api, parsed: &ParsedRequest, hub: &Result<ChatRequest, ApiError>) {
    let fields = optional_fields(api);
    let absent: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| !parsed.body().contains_key(*f))
        .collect();
    let extra = absent.get(parsed.raw.len() % absent.len().max(1)).copied();
    let present = fields
        .iter()
        .copied()
        .filter(|f| parsed.body().contains_key(*f));
    for field in present.chain(extra) {
        let mut without = parsed.body().clone();
        without.shift_remove(field);
        let mut null = parsed.body().clone();
        null.insert(field.to_string(), Value::Null);
        let what = format!("{api:?}: '{field}' null vs absent");
        let outcome = |body: &Map<String, Value>| {
            let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
            api.parse(bytes).map(|p| {
                let hub = api.to_hub(p.body(), UPSTREAM);
                (api.facts(p.body()), hub)
            })
        };
        let (a, b) = (outcome(&without), outcome(&null));
        match (&a, &b) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{what}: accepted one way only:\nwithout: {a:?}\nnull: {b:?}"),
        }
        // The client's own body is one of the two when it had the field
        // null, or did not have it.
        if parsed.body().get(field).is_none_or(Value::is_null) {
            let Ok((_, h)) = &b else {
                panic!("{what}: the client's body is refused when re-read");
            };
            assert_eq!(h, hub, "{what}: re-read");
        }
    }
}
