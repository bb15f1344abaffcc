//! Converse response → hub `ChatResponse`.

use super::error::bad_upstream;
use super::PROVIDER;
use crate::error::ApiError;
use crate::wire::hub::{ChatResponse, Choice, FinishReason, ResponseContext, ToolCall, Usage};
use serde_json::Value;

pub(super) fn finish_reason(stop: &str) -> FinishReason {
    match stop {
        "tool_use" => FinishReason::ToolCalls,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

pub(super) fn usage(u: &Value) -> Usage {
    let n = |name: &str| u.get(name).and_then(Value::as_u64);
    let cache_read = n("cacheReadInputTokens");
    let cache_write = n("cacheWriteInputTokens");
    let prompt = n("inputTokens").unwrap_or(0) + cache_read.unwrap_or(0) + cache_write.unwrap_or(0);
    let completion = n("outputTokens").unwrap_or(0);
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: n("totalTokens")
            .unwrap_or(prompt + completion)
            .max(prompt + completion),
        cached_tokens: cache_read,
        cache_creation_tokens: cache_write,
        reasoning_tokens: None,
    }
}

pub(super) fn decode(body: &[u8], ctx: &ResponseContext) -> Result<ChatResponse, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        bad_upstream(format!(
            "{PROVIDER} returned a response that is not JSON: {e}"
        ))
    })?;
    let content = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad_upstream(format!(
                "{PROVIDER} returned a response without output.message.content."
            ))
        })?;
    let mut choice = Choice::default();
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    for block in content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(r) = block.get("reasoningContent") {
            if let Some(t) = r.pointer("/reasoningText/text").and_then(Value::as_str) {
                reasoning.get_or_insert_with(String::new).push_str(t);
            }
            // Redacted reasoning carries nothing the client can read.
        } else if let Some(call) = block.get("toolUse") {
            let id = call.get("toolUseId").and_then(Value::as_str);
            let name = call.get("name").and_then(Value::as_str);
            let (Some(id), Some(name)) = (id, name) else {
                return Err(bad_upstream(format!(
                    "{PROVIDER} returned a toolUse block without toolUseId or name."
                )));
            };
            let input = call
                .get("input")
                .cloned()
                .unwrap_or(Value::Object(Default::default()));
            choice.tool_calls.push(ToolCall {
                id: id.to_string(),
                name: name.to_string(),
                arguments: input.to_string(),
            });
        } else {
            let kind = block
                .as_object()
                .and_then(|o| o.keys().next())
                .map_or("unknown", String::as_str);
            return Err(bad_upstream(format!(
                "{PROVIDER} returned a '{kind}' content block, which the gateway cannot pass on in this API."
            )));
        }
    }
    choice.content = text;
    choice.reasoning = reasoning;
    let stop = v
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let mut reason = finish_reason(stop);
    if reason == FinishReason::Stop && !choice.tool_calls.is_empty() {
        reason = FinishReason::ToolCalls;
    }
    choice.finish_reason = Some(reason);
    Ok(ChatResponse {
        id: format!("chatcmpl-{}", ctx.request_id),
        model: ctx.model.clone(),
        created: ctx.created,
        choices: vec![choice],
        usage: v.get("usage").map(usage),
    })
}
