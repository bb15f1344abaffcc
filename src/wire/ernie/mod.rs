//! Baidu ERNIE v1 (Qianfan v1, `wenxinworkshop/chat/{endpoint}`) egress
//! edge. The access token travels in the query (`access_token=`), added by
//! the flow from the token cache; this edge knows the body and answers.
//!
//! # Request choices
//!
//! * System and developer texts → `system` (joined by blank lines).
//!   Messages alternate user/assistant, start and end with the user:
//!   same-role turns are merged (texts joined by newlines), a conversation
//!   starting with the assistant gets a leading user turn holding `.`.
//!   ERNIE v1 takes text only: images and documents are a 400.
//! * Tools → `functions` (name, description, parameters); a tool call →
//!   the assistant's `function_call {name, arguments}` followed by a
//!   `function` message with the result. ERNIE v1 calls one function per
//!   turn: more than one call in an assistant message is a 400.
//!   `tool_choice` auto → nothing, none → no functions sent, a named
//!   function → `tool_choice {type: function, function: {name}}`, required
//!   → 400.
//! * `temperature` must be in (0, 1] (ERNIE rejects 0: a 400 here, not a
//!   silent change), `top_p`, `stop` (≤ 4), `max_tokens` →
//!   `max_output_tokens` (≥ 2), `user` → `user_id`, `json_object` →
//!   `response_format: json_object`. `n` > 1, `seed`, penalties (ERNIE's
//!   `penalty_score` is another scale: send it as an extra field),
//!   `reasoning_effort` other than none and JSON schemas are a 400. Extras
//!   passed through: `penalty_score`, `disable_search`, `enable_citation`,
//!   `enable_trace`.
//!
//! # Response choices
//!
//! * `result` → content; `function_call` → one tool call (id
//!   `call_<request_id>_0`); finish_reason normal/stop → stop, length →
//!   length, function_call → tool_calls, content_filter → content_filter.
//! * ERNIE answers errors with HTTP 200 and `{error_code, error_msg}`: the
//!   code picks the status (110/111 token invalid or expired → 401, 4/17/18/
//!   19 and 336501/336502 limits → 429, 336003 and other 3360xx → 400, 6 →
//!   403, else 502) and the code is kept as `code` (`ernie_<n>`).
//! * Streams: SSE `data:` events, each a chunk with `result`; the one with
//!   `is_end: true` carries the finish reason and usage. A chunk with
//!   `error_code` ends the stream with that error; a stream without
//!   `is_end` is an error.

mod request;
mod response;
#[cfg(test)]
mod tests;

use crate::error::{normalize_upstream_error, ApiError};
use crate::wire::hub::{
    ChatRequest, ChatResponse, Operation, ResponseContext, StreamDecoder, Translator,
};
use serde_json::Value;
use std::borrow::Cow;

const PROVIDER: &str = "Baidu ERNIE";

/// The ERNIE v1 chat wire format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ernie;

impl Translator for Ernie {
    fn path(&self, _op: Operation, prefix: &str, model: &str, _stream: bool) -> String {
        format!("{}/{model}", prefix.trim_end_matches('/'))
    }

    fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        request::encode(req).map(|v| crate::wire::json_bytes(&v))
    }

    fn decode_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<ChatResponse, ApiError> {
        response::decode(body, ctx)
    }

    fn stream_decoder(&self, ctx: &ResponseContext) -> Box<dyn StreamDecoder> {
        Box::new(response::ErnieStream::new(ctx))
    }

    fn refuses_token(&self, e: &ApiError) -> bool {
        token_refused(e)
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> ApiError {
        match serde_json::from_slice::<Value>(body)
            .ok()
            .as_ref()
            .and_then(error_in)
        {
            Some(e) => e,
            None => normalize_upstream_error(status, body),
        }
    }
}

/// The error an ERNIE answer (whole or a stream chunk) carries, if any.
pub fn error_in(v: &Value) -> Option<ApiError> {
    let code = v.get("error_code")?.as_u64()?;
    let message = v
        .get("error_msg")
        .and_then(Value::as_str)
        .unwrap_or("ERNIE reported an error.");
    let message: String = message.chars().take(2000).collect();
    let status = match code {
        110 | 111 => 401,
        6 => 403,
        4 | 17 | 18 | 19 | 336501 | 336502 => 429,
        336000..=336099 => 400,
        _ => 502,
    };
    let mut e = ApiError::new(status, crate::error::kind_for_status(status), message);
    e.code = Some(Cow::Owned(format!("ernie_{code}")));
    Some(e)
}

/// Whether `e` says the access token was refused (invalid or expired):
/// the token is refreshed and the request tried once more.
pub fn token_refused(e: &ApiError) -> bool {
    matches!(e.code.as_deref(), Some("ernie_110" | "ernie_111"))
}
