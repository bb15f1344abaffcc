//! Hub `ChatRequest` → Anthropic Messages request body.

use super::error::{invalid, unsupported};
use super::messages::{convert_messages, turn_out, Block, TurnOut};
use super::{Anthropic, ThinkingMode, MIN_THINKING_BUDGET, PROVIDER};
use crate::error::ApiError;
use crate::wire::hub::{ChatRequest, ResponseFormat, ToolChoice, ToolDef};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

/// The request body, borrowing the hub request; written out by serde in
/// this field order without a JSON tree.
#[derive(Serialize)]
pub(super) struct Body<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking<'a>>,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Choice<'a>>,
    #[serde(skip_serializing_if = "OutputConfig::is_empty")]
    output_config: OutputConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "crate::wire::is_false")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<System<'a>>,
    messages: Vec<TurnOut<'a>>,
}

/// `thinking`: a budget, adaptive, or the client's own object.
enum Thinking<'a> {
    Budget(u32),
    Adaptive,
    Given(&'a Value),
}

impl Serialize for Thinking<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Given(v) => v.serialize(s),
            Self::Budget(budget) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "enabled")?;
                m.serialize_entry("budget_tokens", budget)?;
                m.end()
            }
            Self::Adaptive => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("type", "adaptive")?;
                m.end()
            }
        }
    }
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Schema<'a>,
    #[serde(skip_serializing_if = "crate::wire::is_false")]
    strict: bool,
}

/// A tool's parameters, or an object schema without properties.
struct Schema<'a>(Option<&'a Value>);

impl Serialize for Schema<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Some(v) = self.0 {
            return v.serialize(s);
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("type", "object")?;
        m.serialize_entry("properties", &Map::new())?;
        m.end()
    }
}

#[derive(Serialize)]
struct Choice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "crate::wire::is_false")]
    disable_parallel_tool_use: bool,
}

#[derive(Default, Serialize)]
struct OutputConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Format<'a>>,
}

impl OutputConfig<'_> {
    fn is_empty(&self) -> bool {
        self.effort.is_none() && self.format.is_none()
    }
}

#[derive(Serialize)]
struct Format<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: &'a Value,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

/// `system`: one text as a string, several as text blocks.
#[derive(Serialize)]
#[serde(untagged)]
enum System<'a> {
    One(&'a str),
    Many(Vec<Block<'a>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effort {
    Low,
    Medium,
    High,
}

impl Effort {
    fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

fn tool(t: &ToolDef) -> Tool<'_> {
    Tool {
        name: &t.name,
        description: t.description.as_deref(),
        input_schema: Schema(t.parameters.as_ref()),
        strict: t.strict == Some(true),
    }
}

fn parse_effort(effort: Option<&str>) -> Result<Option<Effort>, ApiError> {
    match effort {
        None | Some("none") => Ok(None),
        Some("minimal" | "low") => Ok(Some(Effort::Low)),
        Some("medium") => Ok(Some(Effort::Medium)),
        Some("high") => Ok(Some(Effort::High)),
        Some(other) => Err(invalid(
            "reasoning_effort",
            format!(
                "Invalid value: '{other}'. Supported values for {PROVIDER} are: 'none', 'minimal', 'low', 'medium', and 'high'."
            ),
        )),
    }
}

/// The fields of `ChatRequest::extra` (unmodelled by the hub) this edge
/// accepts; everything else is a 400.
#[derive(Default)]
struct Extras<'a> {
    top_k: Option<&'a Value>,
    thinking: Option<&'a Value>,
    safety_identifier: Option<&'a str>,
}

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

fn extras(extra: &Map<String, Value>) -> Result<Extras<'_>, ApiError> {
    let mut out = Extras::default();
    for (key, v) in extra {
        match key.as_str() {
            "top_k" => {
                if !v.is_u64() {
                    return Err(invalid(
                        "top_k",
                        "Invalid 'top_k': expected a non-negative integer.",
                    ));
                }
                out.top_k = Some(v);
            }
            "thinking" => {
                if !v.is_object() {
                    return Err(invalid(
                        "thinking",
                        format!("Invalid 'thinking': expected an object in {PROVIDER}'s format, e.g. {{\"type\": \"enabled\", \"budget_tokens\": 2048}}."),
                    ));
                }
                out.thinking = Some(v);
            }
            "safety_identifier" => match v {
                Value::String(s) => out.safety_identifier = Some(s),
                _ => {
                    return Err(invalid(
                        "safety_identifier",
                        "Invalid 'safety_identifier': expected a string.",
                    ))
                }
            },
            "logprobs" if v == &Value::Bool(false) => {}
            "top_logprobs" if is_zero(v) => {}
            "logit_bias" if v.as_object().is_some_and(Map::is_empty) => {}
            "store" if v == &Value::Bool(false) => {}
            "logprobs" | "top_logprobs" => {
                return Err(unsupported(key, ": it does not return log probabilities."))
            }
            "logit_bias" => return Err(unsupported(key, ": it does not support token biasing.")),
            "store" => {
                return Err(unsupported(
                    key,
                    ": it does not store completions for later retrieval.",
                ))
            }
            _ => return Err(unsupported(key, ".")),
        }
    }
    Ok(out)
}

impl Anthropic {
    fn budget(&self, effort: Effort) -> u32 {
        let b = match effort {
            Effort::Low => self.options.thinking_budget_low,
            Effort::Medium => self.options.thinking_budget_medium,
            Effort::High => self.options.thinking_budget_high,
        };
        b.max(MIN_THINKING_BUDGET)
    }

    pub(super) fn encode<'a>(&self, req: &'a ChatRequest) -> Result<Body<'a>, ApiError> {
        // Parameters Anthropic cannot honour, in the order a reader checks.
        if let Some(n) = req.n.filter(|n| *n > 1) {
            return Err(unsupported(
                "n",
                &format!(": it returns one choice per request (got n={n})."),
            ));
        }
        if req.seed.is_some() {
            return Err(unsupported(
                "seed",
                ": it has no deterministic sampling seed.",
            ));
        }
        if req.presence_penalty.is_some_and(|p| p != 0.0) {
            return Err(unsupported("presence_penalty", "."));
        }
        if req.frequency_penalty.is_some_and(|p| p != 0.0) {
            return Err(unsupported("frequency_penalty", "."));
        }
        let extra = extras(&req.extra)?;

        let (system, turns) = convert_messages(&req.messages)?;

        // Thinking, and the max_tokens it needs.
        let effort = parse_effort(req.reasoning_effort.as_deref())?;
        if effort.is_some() && extra.thinking.is_some() {
            return Err(invalid(
                "thinking",
                "Set either 'reasoning_effort' or 'thinking', not both.",
            ));
        }
        let default_max = self.options.default_max_tokens.max(1);
        let mut max_tokens = req.max_tokens.unwrap_or(default_max);
        let mut output_config = OutputConfig::default();
        let mut thinking = None;
        let mut thinking_on = false;
        match (effort, self.options.thinking_mode) {
            (None, _) => {}
            (Some(e), ThinkingMode::Budget) => {
                let mut budget = self.budget(e);
                match req.max_tokens {
                    Some(m) if m <= MIN_THINKING_BUDGET => {
                        return Err(invalid(
                            "max_tokens",
                            format!(
                                "'max_tokens' must be greater than {MIN_THINKING_BUDGET} when 'reasoning_effort' is set: {PROVIDER}'s minimum thinking budget is {MIN_THINKING_BUDGET} tokens and counts toward 'max_tokens' (got {m})."
                            ),
                        ))
                    }
                    Some(m) => budget = budget.min(m - 1),
                    None if max_tokens <= budget => {
                        max_tokens = budget.saturating_add(default_max);
                    }
                    None => {}
                }
                thinking = Some(Thinking::Budget(budget));
                thinking_on = true;
            }
            (Some(e), ThinkingMode::Adaptive) => {
                thinking = Some(Thinking::Adaptive);
                output_config.effort = Some(e.as_str());
                thinking_on = true;
            }
        }
        if let Some(t) = extra.thinking {
            let ty = t.get("type").and_then(Value::as_str);
            thinking_on = ty != Some("disabled");
            if req.max_tokens.is_none() {
                if let Some(b) = t.get("budget_tokens").and_then(Value::as_u64) {
                    if u64::from(max_tokens) <= b {
                        let b = u32::try_from(b).unwrap_or(u32::MAX);
                        max_tokens = b.saturating_add(default_max);
                    }
                }
            }
            thinking = Some(Thinking::Given(t));
        }

        // Sampling.
        if let Some(t) = req.temperature {
            if !(0.0..=1.0).contains(&t) {
                return Err(invalid(
                    "temperature",
                    format!(
                        "Invalid 'temperature': {PROVIDER} accepts values from 0 to 1 (got {t})."
                    ),
                ));
            }
            if thinking_on && t != 1.0 {
                return Err(invalid(
                    "temperature",
                    format!(
                        "'temperature' must be 1 or unset when reasoning is enabled: {PROVIDER}'s extended thinking does not support other temperatures (got {t})."
                    ),
                ));
            }
        }
        if let Some(p) = req.top_p {
            if thinking_on && p < 0.95 {
                return Err(invalid(
                    "top_p",
                    format!(
                        "'top_p' must be between 0.95 and 1 when reasoning is enabled: {PROVIDER}'s extended thinking does not support lower values (got {p})."
                    ),
                ));
            }
        }
        if extra.top_k.is_some() && thinking_on {
            return Err(invalid(
                "top_k",
                format!(
                    "'top_k' cannot be used when reasoning is enabled: {PROVIDER}'s extended thinking does not support it."
                ),
            ));
        }

        // Tools.
        let disable_parallel = req.parallel_tool_calls == Some(false);
        let (kind, name) = match &req.tool_choice {
            None if disable_parallel && !req.tools.is_empty() => ("auto", None),
            None => ("", None),
            Some(ToolChoice::Auto) => ("auto", None),
            Some(ToolChoice::None) => ("none", None),
            Some(ToolChoice::Required) => ("any", None),
            Some(ToolChoice::Function(name)) => ("tool", Some(name.as_str())),
        };
        if thinking_on
            && matches!(
                req.tool_choice,
                Some(ToolChoice::Required | ToolChoice::Function(_))
            )
        {
            return Err(invalid(
                "tool_choice",
                format!(
                    "'tool_choice' must be 'auto' or 'none' when reasoning is enabled: {PROVIDER}'s extended thinking cannot force tool use."
                ),
            ));
        }
        let tool_choice = (!kind.is_empty()).then_some(Choice {
            kind,
            name,
            disable_parallel_tool_use: disable_parallel && kind != "none",
        });

        // Structured output.
        match &req.response_format {
            None | Some(ResponseFormat::Text) => {}
            Some(ResponseFormat::JsonSchema { schema, .. }) => {
                output_config.format = Some(Format {
                    kind: "json_schema",
                    schema,
                });
            }
            Some(ResponseFormat::JsonObject) => {
                return Err(invalid(
                    "response_format.type",
                    format!(
                        "response_format type 'json_object' is not supported by {PROVIDER}: it has no schema-less JSON mode. Use 'json_schema' with a schema (sent as {PROVIDER}'s output_config.format)."
                    ),
                ))
            }
        }

        // Identity.
        let user_id = match (req.user.as_deref(), extra.safety_identifier) {
            (Some(u), Some(s)) if u != s => {
                return Err(invalid(
                    "safety_identifier",
                    format!(
                        "'user' and 'safety_identifier' differ; {PROVIDER} takes one end-user id (metadata.user_id)."
                    ),
                ))
            }
            (Some(u), _) => Some(u),
            (None, s) => s,
        };

        // System and messages last: they are the bulk of the body.
        let system = match system.as_slice() {
            [] => None,
            [only] => Some(System::One(only)),
            many => Some(System::Many(
                many.iter().map(|text| Block::Text { text }).collect(),
            )),
        };
        Ok(Body {
            model: &req.model,
            thinking,
            max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            top_k: extra.top_k,
            stop_sequences: &req.stop,
            tools: req.tools.iter().map(tool).collect(),
            tool_choice,
            output_config,
            metadata: user_id.map(|user_id| Metadata { user_id }),
            stream: req.stream,
            system,
            messages: turns.into_iter().map(turn_out).collect(),
        })
    }
}
