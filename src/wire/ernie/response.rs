//! ERNIE v1 answers (whole and streamed) → hub.

use super::{error_in, PROVIDER};
use crate::error::ApiError;
use crate::wire::hub::{
    ChatResponse, Choice, FinishReason, ResponseContext, StreamDecoder, StreamEvent, ToolCall,
    Usage,
};
use crate::wire::sse::SseEvent;
use serde_json::Value;

fn bad_upstream(message: impl Into<String>) -> ApiError {
    ApiError::new(502, "api_error", message)
}

fn finish_reason(v: &Value, called: bool) -> FinishReason {
    match v.get("finish_reason").and_then(Value::as_str) {
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some("function_call") => FinishReason::ToolCalls,
        _ if called => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

fn usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage")?;
    let n = |name: &str| u.get(name).and_then(Value::as_u64).unwrap_or(0);
    let (prompt, completion) = (n("prompt_tokens"), n("completion_tokens"));
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: n("total_tokens").max(prompt + completion),
        ..Usage::default()
    })
}

fn tool_call(v: &Value, ctx: &ResponseContext) -> Result<Option<ToolCall>, ApiError> {
    let Some(call) = v.get("function_call").filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    let name = call
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            bad_upstream(format!(
                "{PROVIDER} returned a function_call without a name."
            ))
        })?;
    let arguments = match call.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => "{}".into(),
    };
    Ok(Some(ToolCall {
        id: format!("call_{}_0", ctx.request_id),
        name: name.to_string(),
        arguments,
    }))
}

pub(super) fn decode(body: &[u8], ctx: &ResponseContext) -> Result<ChatResponse, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        bad_upstream(format!(
            "{PROVIDER} returned a response that is not JSON: {e}"
        ))
    })?;
    if let Some(e) = error_in(&v) {
        return Err(e);
    }
    let result = v
        .get("result")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_upstream(format!("{PROVIDER} returned a response without 'result'.")))?;
    let call = tool_call(&v, ctx)?;
    let choice = Choice {
        index: 0,
        content: (!result.is_empty() || call.is_none()).then(|| result.to_string()),
        reasoning: None,
        finish_reason: Some(finish_reason(&v, call.is_some())),
        tool_calls: call.into_iter().collect(),
    };
    Ok(ChatResponse {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("chatcmpl-{}", ctx.request_id), str::to_string),
        model: ctx.model.clone(),
        created: v
            .get("created")
            .and_then(Value::as_u64)
            .unwrap_or(ctx.created),
        choices: vec![choice],
        usage: usage(&v),
    })
}

/// Translates one ERNIE stream, chunk by chunk.
pub struct ErnieStream {
    ctx: ResponseContext,
    started: bool,
    ended: bool,
    failed: bool,
    /// A function call was streamed (ERNIE v1 makes one per answer).
    called: bool,
}

impl ErnieStream {
    pub fn new(ctx: &ResponseContext) -> Self {
        Self {
            ctx: ctx.clone(),
            started: false,
            ended: false,
            failed: false,
            called: false,
        }
    }

    fn chunk(&mut self, v: &Value, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        if let Some(e) = error_in(v) {
            return Err(e);
        }
        if !self.started {
            self.started = true;
            let id = v.get("id").and_then(Value::as_str);
            out.push(StreamEvent::Start {
                id: id.map_or_else(
                    || format!("chatcmpl-{}", self.ctx.request_id),
                    str::to_string,
                ),
                model: self.ctx.model.clone(),
            });
        }
        if let Some(text) = v
            .get("result")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            out.push(StreamEvent::Text {
                choice: 0,
                text: text.to_string(),
            });
        }
        let call = tool_call(v, &self.ctx)?;
        if call.is_some() && self.called {
            return Err(bad_upstream(format!(
                "{PROVIDER} streamed a second function call in one answer; ERNIE v1 makes one per turn."
            )));
        }
        self.called |= call.is_some();
        let called = self.called;
        if let Some(call) = call {
            out.push(StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: call.id,
                name: call.name,
            });
            out.push(StreamEvent::ToolCallArgs {
                choice: 0,
                index: 0,
                fragment: call.arguments,
            });
        }
        if v.get("is_end").and_then(Value::as_bool) == Some(true) {
            self.ended = true;
            out.push(StreamEvent::Finish {
                choice: 0,
                reason: finish_reason(v, called),
            });
            if let Some(u) = usage(v) {
                out.push(StreamEvent::Usage(u));
            }
        }
        Ok(())
    }
}

impl StreamDecoder for ErnieStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.failed || self.ended {
            return;
        }
        let result = match serde_json::from_str::<Value>(&event.data) {
            Ok(v) if v.is_object() => self.chunk(&v, out),
            _ => Err(bad_upstream(format!(
                "{PROVIDER} sent a stream event that is not a JSON object."
            ))),
        };
        if let Err(e) = result {
            self.failed = true;
            out.push(StreamEvent::Error(e));
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.failed && !self.ended {
            self.failed = true;
            out.push(StreamEvent::Error(bad_upstream(format!(
                "{PROVIDER}'s stream ended before its last chunk (is_end)."
            ))));
        }
    }
}
