//! Hub `ChatRequest` → Gemini `GenerateContentRequest`.

use super::error::{invalid, unsupported};
use super::{gemini_major, signature_from_id, SKIP_SIGNATURE};
use crate::error::ApiError;
use crate::wire::hub::{
    ChatRequest, DocumentSource, ImageSource, Message, Part, ResponseFormat, Role, ToolCall,
    ToolChoice,
};
use crate::wire::turns::{push_turn, Turn};
use hashbrown::HashMap;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;

/// A JSON Schema without its root `$schema` (dialect marker), written as
/// it is otherwise.
struct Schema<'a>(&'a Value);

impl Serialize for Schema<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(m) = self.0 else {
            return self.0.serialize(s);
        };
        let mut out = s.serialize_map(None)?;
        for (k, v) in m.iter().filter(|(k, _)| *k != "$schema") {
            out.serialize_entry(k, v)?;
        }
        out.end()
    }
}

/// Gemini-native extras the request may carry.
#[derive(Default)]
struct Extras<'a> {
    safety_settings: Option<&'a Value>,
    cached_content: Option<&'a Value>,
    thinking_config: Option<&'a Value>,
    top_k: Option<&'a Value>,
}

pub(super) fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(invalid(
            key,
            format!("'{key}' is given twice (in snake_case and camelCase); give it once."),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn chat_extras(extra: &Map<String, Value>) -> Result<Extras<'_>, ApiError> {
    let mut x = Extras::default();
    for (key, value) in extra {
        match key.as_str() {
            "safety_settings" | "safetySettings" => {
                if !value.is_array() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected an array of Gemini safety settings."),
                    ));
                }
                set_once(&mut x.safety_settings, key, value)?;
            }
            "cached_content" | "cachedContent" => {
                if !value.is_string() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected a Gemini cachedContents resource name."),
                    ));
                }
                set_once(&mut x.cached_content, key, value)?;
            }
            "thinking_config" | "thinkingConfig" => {
                if !value.is_object() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected a Gemini thinkingConfig object."),
                    ));
                }
                set_once(&mut x.thinking_config, key, value)?;
            }
            "top_k" | "topK" => {
                if value.as_u64().and_then(|k| i32::try_from(k).ok()).is_none() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected a non-negative integer below 2^31."),
                    ));
                }
                set_once(&mut x.top_k, key, value)?;
            }
            "logprobs" if *value == Value::Bool(false) => {}
            "logprobs" | "top_logprobs" => {
                return Err(unsupported(
                    key,
                    format!("'{key}' is not supported for Gemini models through this gateway: the chat completion it returns has no place for Gemini's log probabilities. Remove '{key}' for this model."),
                ))
            }
            "logit_bias" => {
                return Err(unsupported(
                    key,
                    "'logit_bias' is not supported by Gemini: the Gemini API has no token-bias control. Remove 'logit_bias' for this model.".into(),
                ))
            }
            other => {
                return Err(unsupported(
                    other,
                    format!("Unsupported parameter '{other}': it cannot be translated for this model's provider (Gemini) and would otherwise be dropped. Remove '{other}' for this model."),
                ))
            }
        }
    }
    Ok(x)
}

/// One Gemini content part, borrowing the hub request.
enum GPart<'a> {
    Text(&'a str),
    Inline {
        mime_type: &'a str,
        data: &'a str,
    },
    File {
        mime_type: &'a str,
        file_uri: &'a str,
    },
    Call {
        name: &'a str,
        args: Value,
        signature: Option<Cow<'static, str>>,
    },
    Response {
        name: &'a str,
        response: Value,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileRef<'a> {
    mime_type: &'a str,
    file_uri: &'a str,
}

impl Serialize for GPart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = match self {
            Self::Call {
                signature: Some(_), ..
            } => 2,
            _ => 1,
        };
        let mut m = s.serialize_map(Some(len))?;
        match self {
            Self::Text(text) => m.serialize_entry("text", text)?,
            Self::Inline { mime_type, data } => {
                m.serialize_entry("inlineData", &Blob { mime_type, data })?
            }
            Self::File {
                mime_type,
                file_uri,
            } => m.serialize_entry(
                "fileData",
                &FileRef {
                    mime_type,
                    file_uri,
                },
            )?,
            Self::Call {
                name,
                args,
                signature,
            } => {
                m.serialize_entry("functionCall", &FunctionCall { name, args })?;
                if let Some(sig) = signature {
                    m.serialize_entry("thoughtSignature", sig)?;
                }
            }
            Self::Response { name, response } => {
                m.serialize_entry("functionResponse", &FunctionResponse { name, response })?
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: &'a Value,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: &'a Value,
}

fn mime_for_url(url: &str) -> Option<&'static str> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (_, path) = after_scheme.split_once('/')?;
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let file = path.rsplit('/').next().unwrap_or(path);
    let (_, ext) = file.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// One hub content part as a Gemini part (`None` for empty text).
fn content_part<'a>(part: &'a Part, path: &str) -> Result<Option<GPart<'a>>, ApiError> {
    match part {
        Part::Text(t) if t.is_empty() => Ok(None),
        Part::Text(t) => Ok(Some(GPart::Text(t))),
        Part::Image {
            source: ImageSource::Base64 { media_type, data },
            ..
        }
        | Part::Document {
            source: DocumentSource::Base64 { media_type, data },
            ..
        } => Ok(Some(GPart::Inline {
            mime_type: media_type,
            data,
        })),
        Part::Document {
            source: DocumentSource::Text(text),
            ..
        } => Ok((!text.is_empty()).then_some(GPart::Text(text))),
        Part::Document {
            source: DocumentSource::Url(url),
            ..
        } => Ok(Some(GPart::File {
            mime_type: mime_for_url(url).unwrap_or("application/pdf"),
            file_uri: url,
        })),
        Part::Image {
            source: ImageSource::Url(url),
            ..
        } => match mime_for_url(url) {
            Some(mime) => Ok(Some(GPart::File {
                mime_type: mime,
                file_uri: url,
            })),
            None => Err(invalid(
                format!("{path}.image_url.url"),
                format!("Cannot tell the media type of image URL '{url}': Gemini needs one for a file URL, and the gateway takes it from the file extension (.png, .jpg, .jpeg, .webp, .heic, .heif or .pdf). Use such a URL or send the image inline as a base64 data URI."),
            )),
        },
    }
}

fn content_parts(msg: &Message, i: usize) -> Result<Vec<GPart<'_>>, ApiError> {
    let mut parts = Vec::with_capacity(msg.content.len());
    for (j, p) in msg.content.iter().enumerate() {
        if let Some(v) = content_part(p, &format!("messages[{i}].content[{j}]"))? {
            parts.push(v);
        }
    }
    Ok(parts)
}

fn function_call_part<'a>(call: &'a ToolCall, path: &str) -> Result<GPart<'a>, ApiError> {
    let args: Value = if call.arguments.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(&call.arguments).map_err(|e| {
            invalid(
                format!("{path}.function.arguments"),
                format!("Invalid '{path}.function.arguments': Gemini needs the arguments as a JSON object, but they are not valid JSON ({e})."),
            )
        })?
    };
    if !args.is_object() {
        return Err(invalid(
            format!("{path}.function.arguments"),
            format!(
                "Invalid '{path}.function.arguments': Gemini needs the arguments as a JSON object."
            ),
        ));
    }
    Ok(GPart::Call {
        name: &call.name,
        args,
        signature: signature_from_id(&call.id).map(Cow::Owned),
    })
}

/// `systemInstruction` parts and `contents`.
#[allow(clippy::type_complexity)]
fn encode_messages(req: &ChatRequest) -> Result<(Vec<GPart<'_>>, Vec<Turn<GPart<'_>>>), ApiError> {
    let mut system = Vec::new();
    let mut turns = Vec::new();
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for (i, msg) in req.messages.iter().enumerate() {
        match msg.role {
            Role::System => {
                for (j, p) in msg.content.iter().enumerate() {
                    match p {
                        Part::Text(t) if t.is_empty() => {}
                        Part::Text(t) => system.push(GPart::Text(t)),
                        Part::Image { .. } | Part::Document { .. } => {
                            return Err(invalid(
                                format!("messages[{i}].content[{j}]"),
                                format!("messages[{i}] is a system/developer message with an image; Gemini's systemInstruction takes text only."),
                            ))
                        }
                    }
                }
            }
            Role::User => push_turn(&mut turns, "user", content_parts(msg, i)?),
            Role::Assistant => {
                let mut parts = content_parts(msg, i)?;
                for (j, call) in msg.tool_calls.iter().enumerate() {
                    parts.push(function_call_part(
                        call,
                        &format!("messages[{i}].tool_calls[{j}]"),
                    )?);
                    call_names.insert(call.id.as_str(), call.name.as_str());
                }
                push_turn(&mut turns, "model", parts);
            }
            Role::Tool => {
                let id = msg.tool_call_id.as_deref().unwrap_or_default();
                let name = call_names
                    .get(id)
                    .copied()
                    .or(msg.name.as_deref())
                    .ok_or_else(|| {
                        invalid(
                            format!("messages[{i}].tool_call_id"),
                            format!("messages[{i}] is a tool result for tool_call_id '{id}', but no earlier assistant message has a tool call with that id; Gemini needs the function's name."),
                        )
                    })?;
                if let Some(j) = msg
                    .content
                    .iter()
                    .position(|p| matches!(p, Part::Image { .. } | Part::Document { .. }))
                {
                    return Err(invalid(
                        format!("messages[{i}].content[{j}]"),
                        format!("messages[{i}] is a tool result with an image; the gateway sends Gemini tool results as text only."),
                    ));
                }
                let text = msg.text();
                // Gemini's documented shapes: `output` on success, `error`
                // when the function failed.
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o)) if !msg.is_error => Value::Object(o),
                    _ if msg.is_error => json!({ "error": text }),
                    _ => json!({ "result": text }),
                };
                push_turn(&mut turns, "user", vec![GPart::Response { name, response }]);
            }
        }
    }
    if gemini_major(&req.model).is_some_and(|m| m >= 3) {
        for turn in turns.iter_mut().filter(|t| t.role == "model") {
            let mut calls = turn
                .blocks
                .iter_mut()
                .filter_map(|p| match p {
                    GPart::Call { signature, .. } => Some(signature),
                    _ => None,
                })
                .peekable();
            let unsigned = calls.peek().is_some() && calls.all(|sig| sig.is_none());
            if unsigned {
                let first = turn.blocks.iter_mut().find_map(|p| match p {
                    GPart::Call { signature, .. } => Some(signature),
                    _ => None,
                });
                if let Some(sig) = first {
                    *sig = Some(Cow::Borrowed(SKIP_SIGNATURE));
                }
            }
        }
    }
    Ok((system, turns))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: CallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}

fn tool_config(req: &ChatRequest) -> Result<Option<ToolConfig<'_>>, ApiError> {
    let Some(choice) = &req.tool_choice else {
        return Ok(None);
    };
    if req.tools.is_empty() {
        return match choice {
            ToolChoice::Auto | ToolChoice::None => Ok(None),
            _ => Err(invalid(
                "tool_choice",
                "'tool_choice' asks for a tool call, but the request declares no tools.",
            )),
        };
    }
    let (mode, allowed) = match choice {
        ToolChoice::Auto => ("AUTO", None),
        ToolChoice::None => ("NONE", None),
        ToolChoice::Required => ("ANY", None),
        ToolChoice::Function(name) => {
            if !req.tools.iter().any(|t| &t.name == name) {
                return Err(invalid(
                    "tool_choice",
                    format!("'tool_choice' names function '{name}', which is not among the request's tools."),
                ));
            }
            ("ANY", Some([name.as_str()]))
        }
    };
    Ok(Some(ToolConfig {
        function_calling_config: CallingConfig {
            mode,
            allowed_function_names: allowed,
        },
    }))
}

/// `thinkingConfig`: made from `reasoning_effort`, or the client's own.
#[derive(Serialize)]
#[serde(untagged)]
enum Thinking<'a> {
    Made(ThinkingMade),
    Given(&'a Value),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingMade {
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_level: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<u32>,
    #[serde(skip_serializing_if = "crate::wire::is_false")]
    include_thoughts: bool,
}

fn thinking_config(effort: &str, model: &str) -> Result<ThinkingMade, ApiError> {
    let level_based = gemini_major(model).is_some_and(|m| m >= 3);
    let (level, budget, include_thoughts) = match effort {
        "none" => ("minimal", 0, false),
        "minimal" => ("minimal", 512, true),
        "low" => ("low", 1024, true),
        "medium" => ("medium", 8192, true),
        "high" => ("high", 24576, true),
        other => {
            return Err(invalid(
                "reasoning_effort",
                format!("Invalid 'reasoning_effort' for Gemini: '{other}'. Supported values are 'none', 'minimal', 'low', 'medium' and 'high'."),
            ))
        }
    };
    Ok(ThinkingMade {
        thinking_level: level_based.then_some(level),
        thinking_budget: (!level_based).then_some(budget),
        include_thoughts,
    })
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<Schema<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<Thinking<'a>>,
}

impl GenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.max_output_tokens.is_none()
            && self.stop_sequences.is_empty()
            && self.candidate_count.is_none()
            && self.seed.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.response_mime_type.is_none()
            && self.thinking_config.is_none()
    }
}

fn generation_config<'a>(
    req: &'a ChatRequest,
    extras: &Extras<'a>,
) -> Result<GenerationConfig<'a>, ApiError> {
    let seed = match req.seed {
        None => None,
        Some(seed) => Some(i32::try_from(seed).map_err(|_| {
            invalid(
                "seed",
                format!("Invalid 'seed': {seed} does not fit Gemini's 32-bit seed; use a value between -2147483648 and 2147483647."),
            )
        })?),
    };
    let (response_mime_type, response_json_schema) = match &req.response_format {
        None | Some(ResponseFormat::Text) => (None, None),
        Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            (Some("application/json"), Some(Schema(schema)))
        }
    };
    let thinking_config = match (&req.reasoning_effort, extras.thinking_config) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "reasoning_effort",
                "Give either 'reasoning_effort' or Gemini's 'thinking_config', not both.",
            ))
        }
        (Some(effort), None) => Some(Thinking::Made(thinking_config(effort, &req.model)?)),
        (None, Some(tc)) => Some(Thinking::Given(tc)),
        (None, None) => None,
    };
    Ok(GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: extras.top_k,
        max_output_tokens: req.max_tokens,
        stop_sequences: &req.stop,
        candidate_count: req.n,
        seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        response_mime_type,
        response_json_schema,
        thinking_config,
    })
}

/// The request body, borrowing the hub request; written out by serde in
/// this field order without a JSON tree.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Parts<'a>>,
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<[Declarations<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_settings: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content: Option<&'a Value>,
}

#[derive(Serialize)]
struct Parts<'a> {
    parts: Vec<GPart<'a>>,
}

#[derive(Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<GPart<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Declarations<'a> {
    function_declarations: Vec<Declaration<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Declaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<Schema<'a>>,
}

pub(super) fn encode_chat(req: &ChatRequest) -> Result<Body<'_>, ApiError> {
    let extras = chat_extras(&req.extra)?;
    if req.parallel_tool_calls == Some(false) {
        return Err(unsupported(
            "parallel_tool_calls",
            "'parallel_tool_calls': false cannot be honoured by Gemini: the Gemini API has no way to limit the model to one function call per turn. Omit it (or set it to true) for this model.".into(),
        ));
    }
    let (system, turns) = encode_messages(req)?;
    if turns.is_empty() {
        return Err(invalid(
            "messages",
            "Gemini needs at least one user, assistant or tool message with content; system and developer messages alone only make its systemInstruction.",
        ));
    }
    let tool_config = tool_config(req)?;
    let generation_config = generation_config(req, &extras)?;
    let tools = (!req.tools.is_empty()).then(|| {
        [Declarations {
            function_declarations: req
                .tools
                .iter()
                .map(|t| Declaration {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters_json_schema: t.parameters.as_ref().map(Schema),
                })
                .collect(),
        }]
    });
    Ok(Body {
        system_instruction: (!system.is_empty()).then_some(Parts { parts: system }),
        contents: turns
            .into_iter()
            .map(|t| Content {
                role: t.role,
                parts: t.blocks,
            })
            .collect(),
        tools,
        tool_config,
        generation_config,
        safety_settings: extras.safety_settings,
        cached_content: extras.cached_content,
    })
}
