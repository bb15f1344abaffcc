//! Hub `ChatRequest` → OpenAI Chat Completions request body. The body is
//! serialized from structs that borrow the hub's strings: message text and
//! base64 data are written once, never copied into a JSON tree.

use super::error::{clash, unsupported};
use super::messages::{message, WireMessage};
use super::{MaxTokensField, OpenAiChatOptions, ReasoningStyle, StreamUsage};
use crate::error::ApiError;
use crate::wire::hub::{ChatRequest, ResponseFormat, ToolChoice, ToolDef};
use serde::{Serialize, Serializer};
use serde_json::Value;

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "no_stops")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enable_thinking: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(flatten)]
    extra: ExtraFields<'a>,
}

impl Body<'_> {
    /// Whether the body already writes the top-level member `key`.
    fn writes(&self, key: &str) -> bool {
        match key {
            "model" | "messages" => true,
            "tools" => !self.tools.is_empty(),
            "tool_choice" => self.tool_choice.is_some(),
            "parallel_tool_calls" => self.parallel_tool_calls.is_some(),
            "max_tokens" => self.max_tokens.is_some(),
            "max_completion_tokens" => self.max_completion_tokens.is_some(),
            "temperature" => self.temperature.is_some(),
            "top_p" => self.top_p.is_some(),
            "stop" => !self.stop.is_empty(),
            "n" => self.n.is_some(),
            "seed" => self.seed.is_some(),
            "presence_penalty" => self.presence_penalty.is_some(),
            "frequency_penalty" => self.frequency_penalty.is_some(),
            "response_format" => self.response_format.is_some(),
            "reasoning_effort" => self.reasoning_effort.is_some(),
            "thinking" => self.thinking.is_some(),
            "enable_thinking" => self.enable_thinking.is_some(),
            "user" => self.user.is_some(),
            "stream" => self.stream,
            "stream_options" => self.stream_options.is_some(),
            _ => false,
        }
    }
}

fn no_stops(stop: &&[String]) -> bool {
    stop.is_empty()
}

/// Extra fields written as top-level members, in order.
struct ExtraFields<'a>(Vec<(&'a str, &'a Value)>);

impl Serialize for ExtraFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (*k, *v)))
    }
}

#[derive(Serialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionDef<'a>,
}

#[derive(Serialize)]
struct WireFunctionDef<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireToolChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: FunctionName<'a>,
    },
}

#[derive(Serialize)]
struct FunctionName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchema<'a> },
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: &'a str,
    schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

/// The request body for the provider.
pub(super) fn encode(req: &ChatRequest, options: &OpenAiChatOptions) -> Result<Vec<u8>, ApiError> {
    let messages = req
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(m, i, options.reasoning_history))
        .collect::<Result<Vec<_>, _>>()?;
    let (reasoning_effort, thinking, enable_thinking) = reasoning(req, options.reasoning)?;
    let max_tokens_field = options.max_tokens_field;
    let mut body = Body {
        model: &req.model,
        messages,
        tools: req.tools.iter().map(tool).collect(),
        tool_choice: req.tool_choice.as_ref().map(tool_choice),
        parallel_tool_calls: req.parallel_tool_calls,
        max_tokens: req
            .max_tokens
            .filter(|_| max_tokens_field == MaxTokensField::MaxTokens),
        max_completion_tokens: req
            .max_tokens
            .filter(|_| max_tokens_field == MaxTokensField::MaxCompletionTokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop: &req.stop,
        n: req.n,
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        response_format: req.response_format.as_ref().map(response_format),
        reasoning_effort,
        thinking,
        enable_thinking,
        user: req.user.as_deref(),
        stream: req.stream,
        stream_options: (req.stream && options.stream_usage == StreamUsage::Request).then_some(
            StreamOptions {
                include_usage: true,
            },
        ),
        extra: ExtraFields(Vec::new()),
    };
    let mut extra = Vec::with_capacity(req.extra.len());
    for (key, value) in &req.extra {
        if value.is_null() {
            continue;
        }
        check_extra(key, value)?;
        if body.writes(key) {
            return Err(clash(key));
        }
        extra.push((key.as_str(), value));
    }
    body.extra = ExtraFields(extra);
    serde_json::to_vec(&body).map_err(|e| {
        ApiError::new(
            500,
            "api_error",
            format!("Could not serialize the provider request: {e}."),
        )
    })
}

/// Extra fields whose answer the hub could not carry back.
fn check_extra(key: &str, value: &Value) -> Result<(), ApiError> {
    let refused = match key {
        "logprobs" => value != &Value::Bool(false),
        "top_logprobs" => value.as_f64() != Some(0.0),
        "audio" => true,
        "modalities" => !value
            .as_array()
            .is_some_and(|m| m.iter().all(|x| x == "text")),
        _ => false,
    };
    if !refused {
        return Ok(());
    }
    let why = match key {
        "logprobs" | "top_logprobs" => "log probabilities",
        _ => "audio output",
    };
    Err(unsupported(
        key,
        format!("Unsupported parameter: '{key}' is not supported for this model: its answer is translated, and the translation has no place for {why}."),
    ))
}

type Reasoning<'a> = (Option<&'a str>, Option<Thinking>, Option<bool>);

/// `reasoning_effort` as the provider's reasoning switch.
fn reasoning(req: &ChatRequest, style: ReasoningStyle) -> Result<Reasoning<'_>, ApiError> {
    let Some(effort) = req.reasoning_effort.as_deref() else {
        return Ok((None, None, None));
    };
    let on = effort != "none";
    Ok(match style {
        ReasoningStyle::None => {
            return Err(unsupported(
                "reasoning_effort",
                "Unsupported parameter: 'reasoning_effort' is not supported by this model's provider: its reasoning is chosen by the model.",
            ))
        }
        ReasoningStyle::Effort => (Some(effort), None, None),
        ReasoningStyle::Thinking => (
            None,
            Some(Thinking {
                kind: if on { "enabled" } else { "disabled" },
            }),
            None,
        ),
        ReasoningStyle::EnableThinking => (None, None, Some(on)),
    })
}

fn tool(t: &ToolDef) -> WireTool<'_> {
    WireTool {
        kind: "function",
        function: WireFunctionDef {
            name: &t.name,
            description: t.description.as_deref(),
            parameters: t.parameters.as_ref(),
            strict: t.strict,
        },
    }
}

fn tool_choice(c: &ToolChoice) -> WireToolChoice<'_> {
    match c {
        ToolChoice::Auto => WireToolChoice::Mode("auto"),
        ToolChoice::None => WireToolChoice::Mode("none"),
        ToolChoice::Required => WireToolChoice::Mode("required"),
        ToolChoice::Function(name) => WireToolChoice::Function {
            kind: "function",
            function: FunctionName { name },
        },
    }
}

fn response_format(f: &ResponseFormat) -> WireResponseFormat<'_> {
    match f {
        ResponseFormat::Text => WireResponseFormat::Text,
        ResponseFormat::JsonObject => WireResponseFormat::JsonObject,
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => WireResponseFormat::JsonSchema {
            json_schema: JsonSchema {
                name,
                schema,
                strict: *strict,
            },
        },
    }
}
