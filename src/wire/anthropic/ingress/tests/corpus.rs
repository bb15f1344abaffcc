//! The golden corpus: Anthropic request in → hub snapshot, and the bodies
//! the Gemini and Anthropic egress edges build from that hub request.

use super::hub_json;
use crate::error::ApiError;
use crate::wire::anthropic::ingress::{errors::anthropic_type, facts, parse_request, to_hub};
use crate::wire::anthropic::Anthropic;
use crate::wire::gemini::Gemini;
use crate::wire::hub::{ChatRequest, RequestFacts, Translator};
use serde_json::{json, Value};

const REQUESTS: &str =
    include_str!("../../../../../tests/fixtures/anthropic_ingress/requests.json");

const TARGET: &str = "target-model";
const GEMINI_MODEL: &str = "gemini-2.5-flash";
const ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";

fn egress_error(e: &ApiError) -> Value {
    let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
    assert_eq!(e.status, 400, "{v}");
    v
}

/// The body `t` builds for `hub` with `model`, or `{"error": …}`.
fn encode(t: &dyn Translator, hub: &ChatRequest, model: &str) -> Value {
    let mut req = hub.clone();
    req.model = model.into();
    match t.encode_request(&req) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(e) => egress_error(&e),
    }
}

fn facts_json(f: &RequestFacts) -> Value {
    json!({
        "max_tokens": f.max_tokens,
        "prompt_tokens": f.prompt_tokens,
        "messages": f.messages,
        "last_user_text": f.last_user_text,
    })
}

#[test]
fn request_corpus() {
    let cases: Vec<Value> = serde_json::from_str(REQUESTS).unwrap();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut translated = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let bytes = serde_json::to_vec(&case["anthropic"]).unwrap();
        let result = parse_request(&bytes).and_then(|p| {
            assert_eq!(p.model, case["anthropic"]["model"], "{name}");
            to_hub(p.body(), TARGET).map(|hub| (p, hub))
        });
        if let Some(expected) = case.get("error") {
            let e = result.err().unwrap_or_else(|| panic!("{name}: no error"));
            assert_eq!(e.status, 400, "{name}");
            let got = json!({
                "type": anthropic_type(&e),
                "param": e.param,
                "code": e.code,
                "message": e.message,
            });
            assert_eq!(&got, expected, "{name}");
            continue;
        }
        let (parsed, hub) = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        translated += 1;
        assert_eq!(hub_json(&hub), case["hub"], "{name}: hub");
        assert_eq!(
            encode(&Gemini, &hub, GEMINI_MODEL),
            case["gemini"],
            "{name}: gemini"
        );
        assert_eq!(
            encode(&Anthropic::default(), &hub, ANTHROPIC_MODEL),
            case["anthropic_out"],
            "{name}: anthropic"
        );
        if let Some(expected) = case.get("facts") {
            assert_eq!(
                &facts_json(&facts(parsed.body())),
                expected,
                "{name}: facts"
            );
        }
    }
    assert!(translated >= 30, "{translated} translated cases");
}
