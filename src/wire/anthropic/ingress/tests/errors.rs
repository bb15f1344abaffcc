//! `render_error` and `stream_error`: Anthropic's error shape and types.

use crate::error::ApiError;
use crate::wire::anthropic::ingress::{render_error, stream_error};
use crate::wire::anthropic::Anthropic;
use crate::wire::hub::Translator;
use serde_json::{json, Value};
use std::borrow::Cow;

fn rendered(e: &ApiError) -> Value {
    serde_json::from_slice(&render_error(e)).unwrap()
}

#[test]
fn every_status_has_its_anthropic_type() {
    for (status, expected) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (408, "timeout_error"),
        (409, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ] {
        // The gateway's own errors carry OpenAI kinds and codes.
        let e = ApiError::new(status, "invalid_request_error", "why")
            .with_code("model_not_found")
            .with_param("model");
        assert_eq!(
            rendered(&e),
            json!({"type": "error", "error": {"type": expected, "message": "why"}}),
            "{status}"
        );
    }
}

#[test]
fn anthropic_types_kept_by_the_egress_win() {
    // Anthropic's own error bodies, through the Anthropic egress.
    for (status, ty) in [
        (529, "overloaded_error"),
        (413, "request_too_large"),
        (402, "billing_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (400, "invalid_request_error"),
    ] {
        let body = format!(r#"{{"type":"error","error":{{"type":"{ty}","message":"m {ty}"}}}}"#);
        let e = Anthropic::default().decode_error(status, body.as_bytes());
        assert_eq!(
            rendered(&e),
            json!({"type": "error", "error": {"type": ty, "message": format!("m {ty}")}}),
            "{ty}"
        );
    }
    // Overloaded answered with another status (a proxy in between).
    let e = ApiError::new(503, "api_error", "busy").with_code("overloaded_error");
    assert_eq!(rendered(&e)["error"]["type"], "overloaded_error");
    let e = ApiError {
        kind: Cow::Borrowed("overloaded_error"),
        ..ApiError::new(503, "api_error", "busy")
    };
    assert_eq!(rendered(&e)["error"]["type"], "overloaded_error");
    // OpenAI's kinds that Anthropic shares do not override the status.
    let e = ApiError::new(404, "invalid_request_error", "no such model");
    assert_eq!(rendered(&e)["error"]["type"], "not_found_error");
}

#[test]
fn stream_error_frame() {
    let e = ApiError::new(429, "rate_limit_error", "slow \"down\"\nplease");
    let frame = stream_error(&e);
    let text = std::str::from_utf8(&frame).unwrap();
    let data = text
        .strip_prefix("event: error\ndata: ")
        .and_then(|d| d.strip_suffix("\n\n"))
        .unwrap();
    assert!(!data.contains('\n'));
    assert_eq!(
        serde_json::from_str::<Value>(data).unwrap(),
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow \"down\"\nplease"}})
    );
    assert_eq!(data.as_bytes(), render_error(&e).as_slice());
}
