//! Tests of the Anthropic ingress edge; shared helpers here.

mod corpus;
mod errors;
mod passthrough;
mod requests;
mod responses;
mod stream;

use crate::wire::hub::{
    ChatRequest, DocumentSource, ImageSource, Message, Part, ResponseContext, ResponseFormat, Role,
    ToolChoice,
};
use serde_json::{json, Map, Value};

fn ctx() -> ResponseContext {
    ResponseContext {
        model: "target-model".into(),
        created: 1_700_000_000,
        request_id: "req-1".into(),
        input_tokens_estimate: 42,
    }
}

/// A provider stream fixture of `tests/fixtures/anthropic/`.
fn anthropic_sse(name: &str) -> &'static str {
    match name {
        "text.sse" => include_str!("../../../../../tests/fixtures/anthropic/text.sse"),
        "tool_use.sse" => include_str!("../../../../../tests/fixtures/anthropic/tool_use.sse"),
        "thinking.sse" => include_str!("../../../../../tests/fixtures/anthropic/thinking.sse"),
        "error_midstream.sse" => {
            include_str!("../../../../../tests/fixtures/anthropic/error_midstream.sse")
        }
        "cut.sse" => include_str!("../../../../../tests/fixtures/anthropic/cut.sse"),
        "cut_mid_event.sse" => {
            include_str!("../../../../../tests/fixtures/anthropic/cut_mid_event.sse")
        }
        "misc.sse" => include_str!("../../../../../tests/fixtures/anthropic/misc.sse"),
        "malformed.sse" => include_str!("../../../../../tests/fixtures/anthropic/malformed.sse"),
        "orphan_json_delta.sse" => {
            include_str!("../../../../../tests/fixtures/anthropic/orphan_json_delta.sse")
        }
        other => panic!("no stream fixture {other}"),
    }
}

/// A hub request as JSON, non-default fields only: the corpus snapshots.
fn hub_json(r: &ChatRequest) -> Value {
    let mut m = Map::new();
    m.insert("model".into(), json!(r.model));
    m.insert(
        "messages".into(),
        Value::Array(r.messages.iter().map(message_json).collect()),
    );
    if !r.tools.is_empty() {
        let tools = r
            .tools
            .iter()
            .map(|t| {
                let mut o = Map::new();
                o.insert("name".into(), json!(t.name));
                if let Some(d) = &t.description {
                    o.insert("description".into(), json!(d));
                }
                if let Some(p) = &t.parameters {
                    o.insert("parameters".into(), p.clone());
                }
                if let Some(s) = t.strict {
                    o.insert("strict".into(), json!(s));
                }
                Value::Object(o)
            })
            .collect();
        m.insert("tools".into(), Value::Array(tools));
    }
    if let Some(c) = &r.tool_choice {
        let v = match c {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({ "function": name }),
        };
        m.insert("tool_choice".into(), v);
    }
    let mut opt = |key: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(key.into(), v);
        }
    };
    opt(
        "parallel_tool_calls",
        r.parallel_tool_calls.map(|v| json!(v)),
    );
    opt("max_tokens", r.max_tokens.map(|v| json!(v)));
    opt("temperature", r.temperature.map(|v| json!(v)));
    opt("top_p", r.top_p.map(|v| json!(v)));
    opt("stop", (!r.stop.is_empty()).then(|| json!(r.stop)));
    opt("n", r.n.map(|v| json!(v)));
    opt("seed", r.seed.map(|v| json!(v)));
    opt("presence_penalty", r.presence_penalty.map(|v| json!(v)));
    opt("frequency_penalty", r.frequency_penalty.map(|v| json!(v)));
    opt("stream", r.stream.then(|| json!(true)));
    opt("include_usage", r.include_usage.then(|| json!(true)));
    opt(
        "response_format",
        r.response_format.as_ref().map(|f| match f {
            ResponseFormat::Text => json!("text"),
            ResponseFormat::JsonObject => json!("json_object"),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => json!({"json_schema": {"name": name, "schema": schema, "strict": strict}}),
        }),
    );
    opt(
        "reasoning_effort",
        r.reasoning_effort.as_ref().map(|v| json!(v)),
    );
    opt("user", r.user.as_ref().map(|v| json!(v)));
    opt(
        "extra",
        (!r.extra.is_empty()).then(|| Value::Object(r.extra.clone())),
    );
    Value::Object(m)
}

fn message_json(msg: &Message) -> Value {
    let role = match msg.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut m = Map::new();
    m.insert("role".into(), json!(role));
    m.insert(
        "content".into(),
        Value::Array(msg.content.iter().map(part_json).collect()),
    );
    if let Some(n) = &msg.name {
        m.insert("name".into(), json!(n));
    }
    if !msg.tool_calls.is_empty() {
        let calls = msg
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments}))
            .collect();
        m.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(id) = &msg.tool_call_id {
        m.insert("tool_call_id".into(), json!(id));
    }
    if let Some(r) = &msg.reasoning {
        m.insert("reasoning".into(), json!(r));
    }
    if msg.is_error {
        m.insert("is_error".into(), json!(true));
    }
    Value::Object(m)
}

fn part_json(p: &Part) -> Value {
    match p {
        Part::Text(t) => json!({"type": "text", "text": t}),
        Part::Image { source, detail } => {
            let mut v = match source {
                ImageSource::Url(u) => json!({"type": "image", "url": u}),
                ImageSource::Base64 { media_type, data } => {
                    json!({"type": "image", "media_type": media_type, "data": data})
                }
            };
            if let Some(d) = detail {
                v["detail"] = json!(d);
            }
            v
        }
        Part::Document { source, name } => {
            let mut v = match source {
                DocumentSource::Url(u) => json!({"type": "document", "url": u}),
                DocumentSource::Base64 { media_type, data } => {
                    json!({"type": "document", "media_type": media_type, "data": data})
                }
                DocumentSource::Text(t) => json!({"type": "document", "text": t}),
            };
            if let Some(n) = name {
                v["name"] = json!(n);
            }
            v
        }
    }
}

/// `event: X\ndata: Y\n\n` frames as (event name, data JSON); panics on
/// anything else, so every frame is checked to be well formed.
fn sse_frames(out: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(out).expect("stream output is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "unterminated frame: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|frame| {
            let (event, data) = frame
                .strip_prefix("event: ")
                .and_then(|f| f.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("malformed frame {frame:?}"));
            assert!(!data.contains('\n'), "multi-line data in {frame:?}");
            let v: Value = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("frame data is not JSON ({e}): {data}"));
            assert_eq!(v["type"], event, "event name and data type differ");
            (event.to_string(), v)
        })
        .collect()
}
