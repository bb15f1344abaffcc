//! Tests of the Responses edge; shared helpers here.

mod render;
mod requests;
mod sdk_samples;
mod streams;
mod watcher;
mod writer;

use crate::wire::hub::{
    ChatRequest, DocumentSource, ImageSource, Message, Part, ResponseContext, ResponseFormat, Role,
    ToolChoice,
};
use serde_json::{json, Map, Value};

fn ctx() -> ResponseContext {
    ResponseContext {
        model: "up-model".into(),
        created: 1_700_000_000,
        request_id: "req1".into(),
        input_tokens_estimate: 0,
    }
}

/// A hub request as compact JSON for fixtures: defaults left out, a
/// message of one text part as a plain string.
fn hub_json(r: &ChatRequest) -> Value {
    let mut v = Map::new();
    v.insert("model".into(), r.model.clone().into());
    v.insert(
        "messages".into(),
        r.messages.iter().map(message_json).collect(),
    );
    if !r.tools.is_empty() {
        let tools = r.tools.iter().map(|t| {
            let mut o = Map::new();
            o.insert("name".into(), t.name.clone().into());
            if let Some(d) = &t.description {
                o.insert("description".into(), d.clone().into());
            }
            if let Some(p) = &t.parameters {
                o.insert("parameters".into(), p.clone());
            }
            if let Some(s) = t.strict {
                o.insert("strict".into(), s.into());
            }
            Value::Object(o)
        });
        v.insert("tools".into(), tools.collect());
    }
    if let Some(c) = &r.tool_choice {
        let c = match c {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({ "function": name }),
        };
        v.insert("tool_choice".into(), c);
    }
    let mut opt = |key: &str, value: Option<Value>| {
        if let Some(x) = value {
            v.insert(key.into(), x);
        }
    };
    opt(
        "parallel_tool_calls",
        r.parallel_tool_calls.map(Value::from),
    );
    opt("max_tokens", r.max_tokens.map(Value::from));
    opt("temperature", r.temperature.map(Value::from));
    opt("top_p", r.top_p.map(Value::from));
    opt("n", r.n.map(Value::from));
    opt("seed", r.seed.map(Value::from));
    opt("presence_penalty", r.presence_penalty.map(Value::from));
    opt("frequency_penalty", r.frequency_penalty.map(Value::from));
    opt("stop", (!r.stop.is_empty()).then(|| json!(r.stop)));
    opt("stream", r.stream.then_some(Value::Bool(true)));
    opt(
        "include_usage",
        r.include_usage.then_some(Value::Bool(true)),
    );
    opt(
        "response_format",
        r.response_format.as_ref().map(|f| match f {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => {
                let mut o = json!({"type": "json_schema", "name": name, "schema": schema});
                if let Some(s) = strict {
                    o["strict"] = Value::Bool(*s);
                }
                o
            }
        }),
    );
    opt(
        "reasoning_effort",
        r.reasoning_effort.clone().map(Value::from),
    );
    opt("user", r.user.clone().map(Value::from));
    opt(
        "extra",
        (!r.extra.is_empty()).then(|| Value::Object(r.extra.clone())),
    );
    Value::Object(v)
}

fn message_json(m: &Message) -> Value {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut o = Map::new();
    o.insert("role".into(), role.into());
    match m.content.as_slice() {
        [] => {}
        [Part::Text(t)] => {
            o.insert("content".into(), t.clone().into());
        }
        parts => {
            o.insert("content".into(), parts.iter().map(part_json).collect());
        }
    }
    if !m.tool_calls.is_empty() {
        let calls = m
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments}));
        o.insert("tool_calls".into(), calls.collect());
    }
    if let Some(id) = &m.tool_call_id {
        o.insert("tool_call_id".into(), id.clone().into());
    }
    if let Some(name) = &m.name {
        o.insert("name".into(), name.clone().into());
    }
    if let Some(r) = &m.reasoning {
        o.insert("reasoning".into(), r.clone().into());
    }
    if m.is_error {
        o.insert("is_error".into(), true.into());
    }
    Value::Object(o)
}

fn part_json(p: &Part) -> Value {
    match p {
        Part::Text(t) => json!({ "text": t }),
        Part::Image { source, detail } => {
            let mut o = match source {
                ImageSource::Url(url) => json!({ "image_url": url }),
                ImageSource::Base64 { media_type, data } => {
                    json!({"image_base64": {"media_type": media_type, "data": data}})
                }
            };
            if let Some(d) = detail {
                o["detail"] = d.clone().into();
            }
            o
        }
        Part::Document { source, name } => {
            let mut o = match source {
                DocumentSource::Url(url) => json!({ "document_url": url }),
                DocumentSource::Base64 { media_type, data } => {
                    json!({"document_base64": {"media_type": media_type, "data": data}})
                }
                DocumentSource::Text(t) => json!({ "document_text": t }),
            };
            if let Some(n) = name {
                o["name"] = n.clone().into();
            }
            o
        }
    }
}

/// The SSE frames of a Responses stream: (event name, data JSON).
fn frames(out: &[u8]) -> Vec<(String, Value)> {
    std::str::from_utf8(out)
        .unwrap()
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (event, data) = f.split_once('\n').unwrap();
            let event = event.strip_prefix("event: ").unwrap().to_string();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], event.as_str(), "event name and type agree");
            (event, data)
        })
        .collect()
}
