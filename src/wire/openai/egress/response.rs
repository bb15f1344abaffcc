//! OpenAI `chat.completion` bodies → hub response.

use super::error::{bad_upstream, in_body_error, parse_object, BaseResp};
use super::wire::{
    count, derived_finish, finish_reason, lenient, non_empty, Channel, WireMessage, WireToolCall,
    WireUsage,
};
use crate::error::ApiError;
use crate::wire::hub::{ChatResponse, Choice, ResponseContext, ToolCall};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "count")]
    created: Option<u64>,
    #[serde(borrow, default)]
    choices: Option<Vec<CompletionChoice<'a>>>,
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, deserialize_with = "lenient")]
    base_resp: Option<BaseResp>,
}

#[derive(Deserialize)]
struct CompletionChoice<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    message: Option<WireMessage<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

/// Id for a tool call the provider sent without one.
pub(super) fn made_up_call_id(request_id: &str, n: u64) -> String {
    format!("call_{request_id}_{n}")
}

/// Arguments as the hub carries them: never empty (see the module docs).
pub(super) fn arguments_or_empty_object(arguments: Option<Cow<'_, str>>) -> String {
    match arguments {
        Some(a) if !a.is_empty() => a.into_owned(),
        _ => "{}".to_string(),
    }
}

pub(super) fn decode(body: &[u8], ctx: &ResponseContext) -> Result<ChatResponse, ApiError> {
    let c: Completion = parse_object(body, "a response", "a chat completion")?;
    if let Some(err) = c.error.as_ref().filter(|e| !e.is_null()) {
        return Err(in_body_error(err, body));
    }
    if c.object.as_deref() == Some("error") {
        let whole: Value = serde_json::from_slice(body).unwrap_or_default();
        return Err(in_body_error(&whole, body));
    }
    let failure = c.base_resp.as_ref().and_then(BaseResp::error);
    let wire_choices = match (c.choices, failure) {
        (Some(choices), _) if !choices.is_empty() => choices,
        (_, Some(err)) => return Err(err),
        (Some(choices), None) => choices,
        (None, None) => return Err(no_choices(non_empty(&c.object))),
    };
    let mut calls_made = 0u64;
    let mut choices = Vec::with_capacity(wire_choices.len());
    for (pos, wire) in wire_choices.into_iter().enumerate() {
        choices.push(choice(wire, pos, &ctx.request_id, &mut calls_made)?);
    }
    Ok(ChatResponse {
        id: non_empty(&c.id)
            .map(String::from)
            .unwrap_or_else(|| format!("chatcmpl-{}", ctx.request_id)),
        model: non_empty(&c.model).unwrap_or(&ctx.model).to_string(),
        created: c.created.unwrap_or(ctx.created),
        choices,
        usage: c.usage.as_ref().and_then(WireUsage::to_usage),
    })
}

fn no_choices(object: Option<&str>) -> ApiError {
    bad_upstream(match object {
        Some(object) => format!(
            "The provider returned a '{object}' object without a 'choices' array where a chat completion was expected."
        ),
        None => "The provider returned a response without a 'choices' array.".to_string(),
    })
}

fn choice(
    wire: CompletionChoice,
    pos: usize,
    request_id: &str,
    calls_made: &mut u64,
) -> Result<Choice, ApiError> {
    let index = match wire.index {
        Some(i) => i,
        None => u32::try_from(pos)
            .map_err(|_| bad_upstream("The provider returned too many choices."))?,
    };
    let Some(m) = wire.message else {
        return Err(bad_upstream(format!(
            "The provider returned choices[{pos}] without a 'message'."
        )));
    };
    let mut content: Option<String> = None;
    let mut reasoning = String::new();
    if let Some(c) = &m.content {
        let text = content.get_or_insert_with(String::new);
        c.for_each_piece(|channel, piece| match channel {
            Channel::Text => text.push_str(piece),
            Channel::Reasoning => reasoning.push_str(piece),
        })
        .map_err(|kind| {
            bad_upstream(format!(
                "The provider returned a content part of type '{kind}' (choices[{pos}]), which cannot be translated."
            ))
        })?;
    }
    if let Some(r) = m.reasoning_text() {
        reasoning.push_str(r);
    }
    let refusal = non_empty(&m.refusal);
    if let Some(r) = refusal {
        content.get_or_insert_with(String::new).push_str(r);
    }
    let mut tool_calls = Vec::new();
    for (j, call) in m.tool_calls.into_iter().flatten().enumerate() {
        tool_calls.push(tool_call(call, pos, j, request_id, calls_made)?);
    }
    if let Some(f) = m.function_call.filter(|_| tool_calls.is_empty()) {
        let Some(name) = non_empty(&f.name) else {
            return Err(bad_upstream(format!(
                "The provider returned a function_call (choices[{pos}]) without a name."
            )));
        };
        tool_calls.push(ToolCall {
            id: made_up_call_id(request_id, *calls_made),
            name: name.to_string(),
            arguments: arguments_or_empty_object(f.arguments.map(|a| a.0)),
        });
        *calls_made += 1;
    }
    let called = !tool_calls.is_empty();
    let refused = refusal.is_some();
    let finish = match non_empty(&wire.finish_reason) {
        Some(reason) => finish_reason(reason, called, refused),
        None => derived_finish(called, refused),
    };
    Ok(Choice {
        index,
        content,
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
        tool_calls,
        finish_reason: Some(finish),
    })
}

fn tool_call(
    call: WireToolCall,
    pos: usize,
    j: usize,
    request_id: &str,
    calls_made: &mut u64,
) -> Result<ToolCall, ApiError> {
    let at = format!("choices[{pos}].message.tool_calls[{j}]");
    if let Some(kind) = non_empty(&call.kind).filter(|k| *k != "function") {
        return Err(bad_upstream(format!(
            "The provider returned a tool call of type '{kind}' ({at}), which cannot be translated."
        )));
    }
    let Some(f) = call.function else {
        return Err(bad_upstream(format!(
            "The provider returned a tool call without 'function' ({at})."
        )));
    };
    let Some(name) = non_empty(&f.name) else {
        return Err(bad_upstream(format!(
            "The provider returned a tool call without a function name ({at})."
        )));
    };
    let id = match non_empty(&call.id) {
        Some(id) => id.to_string(),
        None => made_up_call_id(request_id, *calls_made),
    };
    *calls_made += 1;
    Ok(ToolCall {
        id,
        name: name.to_string(),
        arguments: arguments_or_empty_object(f.arguments.map(|a| a.0)),
    })
}
