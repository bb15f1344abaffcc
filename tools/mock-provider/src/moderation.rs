//! OpenAI's `POST /v1/moderations`, driven by markers in the input (the
//! gateway builds the request, so per-request headers cannot steer it):
//! `[[flag:CATEGORY]]` flags that category, `[[moderation:STATUS]]`
//! answers that HTTP status, `[[moderation:garbage]]` answers non-JSON,
//! `[[moderation:slow]]` answers after `SLOW_MS`. Anything else is clean.

use crate::common::{bytes_resp, json_resp, Resp};
use serde_json::{json, Map, Value};

/// Delay of `[[moderation:slow]]`.
pub const SLOW_MS: u64 = 3_000;

const CATEGORIES: &[&str] = &[
    "harassment",
    "hate",
    "illicit",
    "self-harm",
    "sexual",
    "violence",
];

/// The input's text (a string or a list of strings / text parts).
fn input_text(body: &Value) -> Option<String> {
    match body.get("input")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|i| match i {
                    Value::String(s) => Some(s.as_str()),
                    other => other.get("text").and_then(Value::as_str),
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    }
}

/// Whether the request asks to be answered slowly.
pub fn is_slow(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_ok_and(|b| b.contains("[[moderation:slow]]"))
}

pub fn handle(body: &[u8]) -> Resp {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return crate::openai::error(
            400,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
            None,
        );
    };
    let Some(text) = input_text(&v) else {
        return crate::openai::error(
            400,
            "Missing required parameter: 'input'.",
            "invalid_request_error",
            Some("input"),
            Some("missing_required_parameter"),
        );
    };
    if let Some(rest) = text.split("[[moderation:").nth(1) {
        let arg = rest.split("]]").next().unwrap_or_default();
        if arg == "garbage" {
            return bytes_resp(200, "text/html", "<html>moderation proxy</html>");
        }
        if let Ok(status) = arg.parse::<u16>() {
            return crate::openai::error(
                status,
                "The moderation service failed.",
                "server_error",
                None,
                None,
            );
        }
    }
    let flagged: Vec<&str> = text
        .split("[[flag:")
        .skip(1)
        .filter_map(|r| r.split("]]").next())
        .collect();
    let mut categories = Map::new();
    let mut scores = Map::new();
    for c in CATEGORIES.iter().copied().chain(flagged.iter().copied()) {
        let on = flagged.contains(&c);
        categories.insert(c.to_string(), Value::Bool(on));
        scores.insert(c.to_string(), json!(if on { 0.97 } else { 0.001 }));
    }
    json_resp(
        200,
        &json!({
            "id": "modr-mock",
            "model": v.get("model").and_then(Value::as_str).unwrap_or("omni-moderation-latest"),
            "results": [{
                "flagged": !flagged.is_empty(),
                "categories": categories,
                "category_scores": scores,
            }]
        }),
    )
}
