//! Answers the filter sends itself, and the errors it raises (in the
//! client's wire).

use super::{Phase, StreamFlow, Verdict};
use crate::config::Gateway;
use crate::error::ApiError;
use crate::host::{Host, LogLevel};

impl StreamFlow {
    pub(super) fn answer(&mut self, host: &mut dyn Host, status: u16, body: &[u8]) -> Verdict {
        self.answer_with(host, status, body, &[])
    }

    pub(super) fn answer_with(
        &mut self,
        host: &mut dyn Host,
        status: u16,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> Verdict {
        self.phase = Phase::Answered;
        self.telemetry.status = status;
        self.telemetry.end(host.now_nanos());
        self.publish_log_fields(host);
        let mut headers = Vec::with_capacity(extra.len() + 1);
        if !extra.iter().any(|(n, _)| *n == "content-type") {
            headers.push(("content-type", "application/json"));
        }
        headers.extend_from_slice(extra);
        host.send_response(status, &headers, body);
        Verdict::Pause
    }

    pub(super) fn fail(&mut self, host: &mut dyn Host, e: &ApiError) -> Verdict {
        self.fail_with(host, e, &[])
    }

    pub(super) fn fail_with(
        &mut self,
        host: &mut dyn Host,
        e: &ApiError,
        headers: &[(&str, &str)],
    ) -> Verdict {
        if e.status >= 500 {
            host.log(LogLevel::Warn, &e.message);
        }
        self.telemetry.error_type = Some(e.kind.to_string());
        let body = self.api.wire().render_error(e);
        self.answer_with(host, e.status, &body, headers)
    }
}

pub(super) fn method_not_allowed(method: &str, path: &str, allowed: &str) -> ApiError {
    ApiError::new(
        405,
        "invalid_request_error",
        format!("Method {method} is not allowed on {path}; use {allowed}."),
    )
    .with_code("method_not_allowed")
}

pub(super) fn empty_body() -> ApiError {
    ApiError::invalid_request("The request body is empty; expected a JSON object.")
        .with_code("invalid_json")
}

pub(super) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        413,
        "invalid_request_error",
        format!("The request body exceeds this gateway's limit of {limit} bytes."),
    )
    .with_code("request_too_large")
}

pub(super) fn no_target(gw: &Gateway, model: &crate::config::Model) -> ApiError {
    let mut reasons: Vec<&str> = model
        .targets
        .iter()
        .filter_map(|t| gw.providers[t.provider].unavailable.as_deref())
        .collect();
    reasons.dedup();
    ApiError::new(
        503,
        "api_error",
        format!(
            "No available target for model '{}': {}.",
            model.name,
            if reasons.is_empty() {
                "every target is disabled".to_string()
            } else {
                reasons.join("; ")
            }
        ),
    )
    .with_code("no_available_target")
}
