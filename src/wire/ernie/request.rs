//! Hub `ChatRequest` → ERNIE v1 chat body.

use super::PROVIDER;
use crate::error::ApiError;
use crate::wire::hub::{ChatRequest, Message, Part, ResponseFormat, Role, ToolChoice};
use serde_json::{json, Map, Value};

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid_value(param, message)
}

fn unsupported(param: &str, why: &str) -> ApiError {
    ApiError::unsupported_by(PROVIDER, param, why)
}

/// Extra fields ERNIE v1 takes as they are.
const PASSED: &[&str] = &[
    "penalty_score",
    "disable_search",
    "enable_citation",
    "enable_trace",
];

fn text_of(m: &Message, i: usize) -> Result<String, ApiError> {
    for (j, p) in m.content.iter().enumerate() {
        if !matches!(p, Part::Text(_)) {
            return Err(invalid(
                format!("messages[{i}].content[{j}]"),
                format!("{PROVIDER} v1 takes text only."),
            ));
        }
    }
    Ok(m.text())
}

/// One ERNIE message being assembled.
struct Turn {
    role: &'static str,
    content: String,
    extra: Map<String, Value>,
}

fn push(turns: &mut Vec<Turn>, role: &'static str, content: String) {
    match turns.last_mut() {
        Some(last) if last.role == role && last.extra.is_empty() && role != "function" => {
            if !content.is_empty() {
                if !last.content.is_empty() {
                    last.content.push('\n');
                }
                last.content.push_str(&content);
            }
        }
        _ => turns.push(Turn {
            role,
            content,
            extra: Map::new(),
        }),
    }
}

pub(super) fn encode(req: &ChatRequest) -> Result<Value, ApiError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(unsupported("n", ": it returns one choice per request."));
    }
    if req.seed.is_some() {
        return Err(unsupported("seed", "."));
    }
    for (name, v) in [
        ("presence_penalty", req.presence_penalty),
        ("frequency_penalty", req.frequency_penalty),
    ] {
        if v.is_some_and(|p| p != 0.0) {
            return Err(unsupported(name, ": use its own 'penalty_score' (1 to 2)."));
        }
    }
    if req.reasoning_effort.as_deref().is_some_and(|e| e != "none") {
        return Err(unsupported("reasoning_effort", "."));
    }
    if req.tool_choice == Some(ToolChoice::Required) {
        return Err(unsupported(
            "tool_choice",
            ": 'required' has no ERNIE v1 counterpart.",
        ));
    }
    let mut body = Map::new();
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    // Names of the functions called, by call id, for the results.
    let mut calls: Vec<(String, String)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::System => {
                let t = text_of(m, i)?;
                if !t.is_empty() {
                    system.push(t);
                }
            }
            Role::User => push(&mut turns, "user", text_of(m, i)?),
            Role::Assistant => {
                let text = text_of(m, i)?;
                match m.tool_calls.as_slice() {
                    [] => push(&mut turns, "assistant", text),
                    [call] => {
                        calls.push((call.id.clone(), call.name.clone()));
                        let mut extra = Map::new();
                        extra.insert(
                            "function_call".into(),
                            json!({"name": call.name, "arguments": call.arguments}),
                        );
                        turns.push(Turn {
                            role: "assistant",
                            content: text,
                            extra,
                        });
                    }
                    _ => {
                        return Err(invalid(
                            format!("messages[{i}].tool_calls"),
                            format!(
                                "{PROVIDER} v1 calls one function per turn; this message holds {}.",
                                m.tool_calls.len()
                            ),
                        ))
                    }
                }
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let name = calls
                    .iter()
                    .find(|(c, _)| c == id)
                    .map(|(_, n)| n.clone())
                    .or_else(|| m.name.clone())
                    .ok_or_else(|| {
                        invalid(
                            format!("messages[{i}].tool_call_id"),
                            "The tool result answers no earlier tool call.",
                        )
                    })?;
                let mut extra = Map::new();
                extra.insert("name".into(), name.into());
                turns.push(Turn {
                    role: "function",
                    content: text_of(m, i)?,
                    extra,
                });
            }
        }
    }
    if turns.first().is_some_and(|t| t.role != "user") {
        turns.insert(
            0,
            Turn {
                role: "user",
                content: ".".into(),
                extra: Map::new(),
            },
        );
    }
    if turns.is_empty() {
        return Err(invalid(
            "messages",
            format!("{PROVIDER} needs at least one user message."),
        ));
    }
    if !system.is_empty() {
        body.insert("system".into(), system.join("\n\n").into());
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|t| {
            let mut m = Map::new();
            m.insert("role".into(), t.role.into());
            m.insert("content".into(), t.content.into());
            m.extend(t.extra);
            Value::Object(m)
        })
        .collect();
    body.insert("messages".into(), Value::Array(messages));
    if req.stream {
        body.insert("stream".into(), true.into());
    }
    if let Some(t) = req.temperature {
        if !(t > 0.0 && t <= 1.0) {
            return Err(invalid(
                "temperature",
                format!("{PROVIDER} takes 'temperature' in (0, 1] (got {t})."),
            ));
        }
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if !req.stop.is_empty() {
        if req.stop.len() > 4 {
            return Err(invalid(
                "stop",
                format!("{PROVIDER} takes at most 4 stop sequences."),
            ));
        }
        body.insert("stop".into(), json!(req.stop));
    }
    if let Some(m) = req.max_tokens {
        body.insert("max_output_tokens".into(), m.max(2).into());
    }
    if let Some(u) = &req.user {
        body.insert("user_id".into(), u.clone().into());
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            body.insert("response_format".into(), "json_object".into());
        }
        Some(ResponseFormat::JsonSchema { .. }) => {
            return Err(unsupported("response_format", ": use 'json_object'."))
        }
    }
    if !req.tools.is_empty() && req.tool_choice != Some(ToolChoice::None) {
        let functions: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description.clone().unwrap_or_default(),
                    "parameters": t.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                })
            })
            .collect();
        body.insert("functions".into(), Value::Array(functions));
        if let Some(ToolChoice::Function(name)) = &req.tool_choice {
            body.insert(
                "tool_choice".into(),
                json!({"type": "function", "function": {"name": name}}),
            );
        }
    }
    for (key, v) in &req.extra {
        match key.as_str() {
            k if PASSED.contains(&k) => {
                body.insert(key.clone(), v.clone());
            }
            "logprobs" if v == &Value::Bool(false) => {}
            "safety_identifier" if v.is_string() => {}
            _ => return Err(unsupported(key, ".")),
        }
    }
    Ok(Value::Object(body))
}
