//! OpenAI Chat Completions request → hub `ChatRequest`. Runs after
//! validation, so shapes are known; what cannot be represented is a 400.

use crate::error::ApiError;
use crate::wire::hub::{
    ChatRequest, DocumentSource, EmbeddingsRequest, ImageSource, Message, Part, ResponseFormat,
    Role, ToolCall, ToolChoice, ToolDef,
};
use serde_json::{Map, Value};

/// Fields this edge maps; everything else lands in `ChatRequest::extra`.
pub(super) const MAPPED: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "stream",
    "stream_options",
    "response_format",
    "reasoning_effort",
    "user",
];

/// Converts a validated request; `upstream_model` replaces the client's model.
pub fn chat_request(
    body: &Map<String, Value>,
    upstream_model: &str,
) -> Result<ChatRequest, ApiError> {
    let mut req = ChatRequest {
        model: upstream_model.to_string(),
        ..ChatRequest::default()
    };
    if let Some(Value::Array(messages)) = body.get("messages") {
        for (i, m) in messages.iter().enumerate() {
            req.messages.push(message(m, i)?);
        }
    }
    if let Some(Value::Array(tools)) = body.get("tools") {
        for (i, t) in tools.iter().enumerate() {
            req.tools.push(tool(t, i)?);
        }
    }
    req.tool_choice = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(v) => Some(tool_choice(v)?),
    };
    req.parallel_tool_calls = body.get("parallel_tool_calls").and_then(Value::as_bool);
    req.max_tokens = uint(body, "max_completion_tokens")?.or(uint(body, "max_tokens")?);
    req.temperature = body.get("temperature").and_then(Value::as_f64);
    req.top_p = body.get("top_p").and_then(Value::as_f64);
    req.stop = match body.get("stop") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    req.n = uint(body, "n")?;
    req.seed = body.get("seed").and_then(Value::as_i64);
    req.presence_penalty = body.get("presence_penalty").and_then(Value::as_f64);
    req.frequency_penalty = body.get("frequency_penalty").and_then(Value::as_f64);
    req.stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    req.include_usage = req.stream
        && body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    req.response_format = match body.get("response_format") {
        None | Some(Value::Null) => None,
        Some(v) => Some(response_format(v)?),
    };
    req.reasoning_effort = string_field(body, "reasoning_effort")?;
    req.user = string_field(body, "user")?;
    req.extra = body
        .iter()
        .filter(|(k, v)| !MAPPED.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(req)
}

/// Converts a validated `/v1/embeddings` request for a translated provider.
pub fn embeddings_request(
    body: &Map<String, Value>,
    upstream_model: &str,
) -> Result<EmbeddingsRequest, ApiError> {
    let inputs = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            let mut inputs = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => inputs.push(s.clone()),
                    _ => {
                        return Err(bad(
                            format!("input[{i}]"),
                            "Token-array inputs cannot be translated for this model's provider; send strings.".into(),
                        ))
                    }
                }
            }
            inputs
        }
        _ => Vec::new(),
    };
    match body.get("encoding_format").and_then(Value::as_str) {
        // base64 is rendered by the gateway (`render::embeddings`).
        None | Some("float" | "base64") => {}
        Some(other) => {
            return Err(bad(
                "encoding_format".into(),
                format!("Invalid value: '{other}'. Supported values are: 'float' and 'base64'."),
            ))
        }
    }
    Ok(EmbeddingsRequest {
        model: upstream_model.to_string(),
        inputs,
        dimensions: uint(body, "dimensions")?,
        extra: body
            .iter()
            .filter(|(k, v)| {
                !["model", "input", "dimensions", "encoding_format"].contains(&k.as_str())
                    && !v.is_null()
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

fn bad(param: String, message: String) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("invalid_value")
}

fn uint(body: &Map<String, Value>, key: &str) -> Result<Option<u32>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                bad(
                    key.into(),
                    format!("Invalid '{key}': expected an integer below 2^32."),
                )
            }),
    }
}

fn string_field(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(
            key.into(),
            format!("Invalid '{key}': expected a string."),
        )),
    }
}

/// A message's role by its OpenAI name (unknown names are tools').
pub(super) fn role(name: &str) -> Role {
    match name {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => Role::Tool,
    }
}

/// A hub message of an OpenAI message's parts.
pub(super) fn hub_message(
    role: Role,
    content: Vec<Part>,
    name: Option<String>,
    tool_call_id: Option<String>,
    reasoning: Option<String>,
    tool_calls: Vec<ToolCall>,
) -> Message {
    // Legacy `function` role: the function name identifies the call.
    let tool_call_id = match tool_call_id {
        None if role == Role::Tool => name.clone(),
        id => id,
    };
    Message {
        role,
        content,
        name,
        tool_calls,
        tool_call_id,
        reasoning,
        is_error: false,
    }
}

fn message(m: &Value, i: usize) -> Result<Message, ApiError> {
    let path = format!("messages[{i}]");
    let text = |key: &str| m.get(key).and_then(Value::as_str).map(String::from);
    let mut msg = hub_message(
        role(m.get("role").and_then(Value::as_str).unwrap_or_default()),
        content(m.get("content"), &path)?,
        text("name"),
        text("tool_call_id"),
        text("reasoning_content"),
        Vec::new(),
    );
    if let Some(Value::Array(calls)) = m.get("tool_calls") {
        for (j, c) in calls.iter().enumerate() {
            let cpath = format!("{path}.tool_calls[{j}]");
            let f = c.get("function");
            let name = f.and_then(|f| f.get("name")).and_then(Value::as_str);
            let (Some(id), Some(name)) = (c.get("id").and_then(Value::as_str), name) else {
                return Err(bad(
                    cpath,
                    "Each tool call needs 'id' and 'function.name'.".into(),
                ));
            };
            let arguments = match f.and_then(|f| f.get("arguments")) {
                Some(Value::String(s)) => s.clone(),
                None | Some(Value::Null) => "{}".into(),
                Some(other) => other.to_string(),
            };
            msg.tool_calls.push(ToolCall {
                id: id.into(),
                name: name.into(),
                arguments,
            });
        }
    }
    Ok(msg)
}

fn content(v: Option<&Value>, path: &str) -> Result<Vec<Part>, ApiError> {
    let parts = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let ppath = format!("{path}.content[{j}]");
        match p.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text" => match p.get("text").and_then(Value::as_str) {
                Some(t) => out.push(Part::Text(t.into())),
                None => return Err(bad(format!("{ppath}.text"), "A text part needs 'text'.".into())),
            },
            "image_url" => {
                let iu = p.get("image_url");
                let url = iu
                    .and_then(|u| u.get("url").and_then(Value::as_str).or(u.as_str()))
                    .ok_or_else(|| bad(format!("{ppath}.image_url"), "An image part needs 'image_url.url'.".into()))?;
                let detail = iu
                    .and_then(|u| u.get("detail"))
                    .and_then(Value::as_str)
                    .map(String::from);
                out.push(Part::Image {
                    source: image_source(url, &ppath)?,
                    detail,
                });
            }
            "file" => out.push(file_part(p.get("file"), &ppath)?),
            other => {
                return Err(ApiError::invalid_request(format!(
                    "Content part type '{other}' cannot be translated for this model's provider; use 'text', 'image_url' or 'file'."
                ))
                .with_param(format!("{ppath}.type"))
                .with_code("unsupported_content_type"))
            }
        }
    }
    Ok(out)
}

/// `{"type": "file", "file": {"file_data": "data:…;base64,…", "filename"}}`;
/// uploaded `file_id`s live at OpenAI and cannot be sent elsewhere.
fn file_part(file: Option<&Value>, path: &str) -> Result<Part, ApiError> {
    let name = file
        .and_then(|f| f.get("filename"))
        .and_then(Value::as_str)
        .map(String::from);
    let Some(data) = file
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str)
    else {
        return Err(bad(
            format!("{path}.file.file_data"),
            "A file part needs 'file.file_data' (a base64 data URI); uploaded file ids cannot be sent to this model's provider.".into(),
        ));
    };
    let (media_type, data) = data_uri(data).ok_or_else(|| {
        bad(
            format!("{path}.file.file_data"),
            "'file.file_data' must be a base64 data URI such as data:application/pdf;base64,…."
                .into(),
        )
    })?;
    Ok(Part::Document {
        source: DocumentSource::Base64 { media_type, data },
        name,
    })
}

/// `data:<media type>;base64,<data>` → (media type, data).
fn data_uri(uri: &str) -> Option<(String, String)> {
    let (meta, data) = uri.strip_prefix("data:")?.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    (!media_type.is_empty()).then(|| (media_type.to_string(), data.to_string()))
}

fn image_source(url: &str, path: &str) -> Result<ImageSource, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err(bad(
                format!("{path}.image_url.url"),
                "Invalid data URI: no ',' before the data.".into(),
            ));
        };
        let Some(media_type) = meta.strip_suffix(";base64") else {
            return Err(bad(
                format!("{path}.image_url.url"),
                "Invalid data URI: only base64-encoded data URIs are supported.".into(),
            ));
        };
        if media_type.is_empty() || data.is_empty() {
            return Err(bad(
                format!("{path}.image_url.url"),
                "Invalid data URI: media type and data are required.".into(),
            ));
        }
        return Ok(ImageSource::Base64 {
            media_type: media_type.into(),
            data: data.into(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(ImageSource::Url(url.into()));
    }
    Err(bad(
        format!("{path}.image_url.url"),
        "Invalid image URL: expected an http(s) URL or a base64 data URI.".into(),
    ))
}

fn tool(t: &Value, i: usize) -> Result<ToolDef, ApiError> {
    let path = format!("tools[{i}]");
    match t.get("type").and_then(Value::as_str) {
        Some("function") => {}
        other => {
            return Err(bad(
                format!("{path}.type"),
                format!("Tool type {:?} cannot be translated for this model's provider; only 'function' tools can.", other.unwrap_or("")),
            ))
        }
    }
    let f = t.get("function");
    let name = f
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_request(format!(
                "Missing required parameter: '{path}.function.name'."
            ))
            .with_param(format!("{path}.function.name"))
            .with_code("missing_required_parameter")
        })?;
    Ok(ToolDef {
        name: name.into(),
        description: f
            .and_then(|f| f.get("description"))
            .and_then(Value::as_str)
            .map(String::from),
        parameters: f
            .and_then(|f| f.get("parameters"))
            .filter(|p| !p.is_null())
            .cloned(),
        strict: f.and_then(|f| f.get("strict")).and_then(Value::as_bool),
    })
}

fn tool_choice(v: &Value) -> Result<ToolChoice, ApiError> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(bad(
                "tool_choice".into(),
                format!("Invalid value: '{other}'. Supported values are: 'none', 'auto', and 'required'."),
            )),
        },
        _ => v
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Function(n.into()))
            .ok_or_else(|| bad("tool_choice".into(), "A named tool_choice needs 'function.name'.".into())),
    }
}

fn response_format(v: &Value) -> Result<ResponseFormat, ApiError> {
    match v.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let js = v.get("json_schema");
            let name = js
                .and_then(|j| j.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("response")
                .to_string();
            let schema = js
                .and_then(|j| j.get("schema"))
                .cloned()
                .ok_or_else(|| bad("response_format.json_schema.schema".into(), "A json_schema response format needs 'json_schema.schema'.".into()))?;
            Ok(ResponseFormat::JsonSchema {
                name,
                schema,
                strict: js.and_then(|j| j.get("strict")).and_then(Value::as_bool),
            })
        }
        other => Err(bad(
            "response_format.type".into(),
            format!("Invalid value: {:?}. Supported values are: 'text', 'json_object', and 'json_schema'.", other.unwrap_or("")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(v: Value) -> Result<ChatRequest, ApiError> {
        chat_request(v.as_object().unwrap(), "up-model")
    }

    #[test]
    fn maps_every_modelled_field() {
        let r = convert(json!({
            "model": "client-model",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}}
                ]},
                {"role": "assistant", "content": null, "reasoning_content": "hmm",
                 "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
            ],
            "tools": [{"type": "function", "function": {"name": "look", "description": "d", "parameters": {"type": "object"}, "strict": true}}],
            "tool_choice": {"type": "function", "function": {"name": "look"}},
            "parallel_tool_calls": false,
            "max_tokens": 10, "max_completion_tokens": 20,
            "temperature": 0.5, "top_p": 0.9, "stop": "END", "n": 1, "seed": 7,
            "presence_penalty": 0.1, "frequency_penalty": 0.2,
            "stream": true, "stream_options": {"include_usage": true},
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": true}},
            "reasoning_effort": "low", "user": "u1",
            "logit_bias": {"1": 2}, "store": null
        }))
        .unwrap();
        assert_eq!(r.model, "up-model");
        assert_eq!(r.messages.len(), 4);
        assert_eq!(r.messages[0].role, Role::System);
        assert_eq!(r.messages[0].text(), "be brief");
        assert_eq!(
            r.messages[1].content[1],
            Part::Image {
                source: ImageSource::Base64 {
                    media_type: "image/png".into(),
                    data: "iVBOR".into()
                },
                detail: Some("low".into())
            }
        );
        assert_eq!(
            r.messages[1].content[2],
            Part::Image {
                source: ImageSource::Url("https://x.test/cat.jpg".into()),
                detail: None
            }
        );
        assert_eq!(r.messages[2].reasoning.as_deref(), Some("hmm"));
        assert_eq!(
            r.messages[2].tool_calls,
            [ToolCall {
                id: "call_1".into(),
                name: "look".into(),
                arguments: "{\"q\":1}".into()
            }]
        );
        assert_eq!(r.messages[3].role, Role::Tool);
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(r.tools[0].strict, Some(true));
        assert_eq!(r.tool_choice, Some(ToolChoice::Function("look".into())));
        assert_eq!(r.parallel_tool_calls, Some(false));
        assert_eq!(r.max_tokens, Some(20));
        assert_eq!(r.stop, ["END"]);
        assert_eq!((r.n, r.seed), (Some(1), Some(7)));
        assert!(r.stream && r.include_usage);
        assert!(matches!(
            r.response_format,
            Some(ResponseFormat::JsonSchema { .. })
        ));
        assert_eq!(r.reasoning_effort.as_deref(), Some("low"));
        assert_eq!(r.user.as_deref(), Some("u1"));
        // Unmodelled fields are kept for the egress edge to judge; nulls dropped.
        assert_eq!(r.extra.keys().collect::<Vec<_>>(), ["logit_bias"]);
    }

    #[test]
    fn refuses_what_cannot_be_represented() {
        let cases = [
            (
                json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
                "messages[0].content[0].type",
            ),
            (
                json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}]),
                "messages[0].content[0].image_url.url",
            ),
            (
                json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]),
                "messages[0].content[0].image_url.url",
            ),
            (
                json!([{"role": "assistant", "tool_calls": [{"type": "function"}]}]),
                "messages[0].tool_calls[0]",
            ),
        ];
        for (messages, param) in cases {
            let e = convert(json!({"model": "m", "messages": messages})).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.param.as_deref(), Some(param), "{}", e.message);
        }
        let e =
            convert(json!({"model": "m", "messages": [], "tools": [{"type": "code_interpreter"}]}))
                .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
        let e =
            convert(json!({"model": "m", "messages": [], "tool_choice": "sometimes"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        let e = convert(json!({"model": "m", "messages": [], "response_format": {"type": "yaml"}}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("response_format.type"));
    }

    #[test]
    fn embeddings_inputs() {
        let body = json!({"model": "e", "input": ["a", "b"], "dimensions": 8, "encoding_format": "float", "user": "u"});
        let r = embeddings_request(body.as_object().unwrap(), "up").unwrap();
        assert_eq!(r.inputs, ["a", "b"]);
        assert_eq!((r.model.as_str(), r.dimensions), ("up", Some(8)));
        assert_eq!(r.extra.keys().collect::<Vec<_>>(), ["user"]);
        let body = json!({"model": "e", "input": [[1, 2]]});
        let e = embeddings_request(body.as_object().unwrap(), "up").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[0]"));
        let body = json!({"model": "e", "input": "x", "encoding_format": "hex"});
        let e = embeddings_request(body.as_object().unwrap(), "up").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("encoding_format"));
    }

    #[test]
    fn include_usage_needs_stream_and_function_role_maps_to_tool() {
        let r = convert(json!({"model": "m", "messages": [
            {"role": "function", "name": "f", "content": "r"}
        ]}))
        .unwrap();
        assert!(!r.include_usage && !r.stream);
        assert_eq!(r.messages[0].role, Role::Tool);
        assert_eq!(r.messages[0].tool_call_id.as_deref(), Some("f"));
    }
}
