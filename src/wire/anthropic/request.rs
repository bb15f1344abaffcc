//! Hub `ChatRequest` → Anthropic Messages request body.

use super::error::{invalid, unsupported};
use super::messages::{convert_messages, is_block, text_block, turn_json};
use super::{Anthropic, ThinkingMode, MIN_THINKING_BUDGET, PROVIDER};
use crate::error::ApiError;
use crate::wire::hub::{ChatRequest, ResponseFormat, ToolChoice, ToolDef};
use serde_json::{json, Map, Value};

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

fn tool_json(t: &ToolDef) -> Value {
    let mut tool = Map::new();
    tool.insert("name".into(), t.name.clone().into());
    if let Some(d) = &t.description {
        tool.insert("description".into(), d.clone().into());
    }
    tool.insert(
        "input_schema".into(),
        t.parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    );
    if t.strict == Some(true) {
        tool.insert("strict".into(), true.into());
    }
    Value::Object(tool)
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
struct Extras {
    top_k: Option<Value>,
    thinking: Option<Value>,
    safety_identifier: Option<String>,
}

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

fn extras(extra: &Map<String, Value>) -> Result<Extras, ApiError> {
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
                out.top_k = Some(v.clone());
            }
            "thinking" => {
                if !v.is_object() {
                    return Err(invalid(
                        "thinking",
                        format!("Invalid 'thinking': expected an object in {PROVIDER}'s format, e.g. {{\"type\": \"enabled\", \"budget_tokens\": 2048}}."),
                    ));
                }
                out.thinking = Some(v.clone());
            }
            "safety_identifier" => match v {
                Value::String(s) => out.safety_identifier = Some(s.clone()),
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

    pub(super) fn encode(&self, req: &ChatRequest) -> Result<Value, ApiError> {
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

        let mut body = Map::new();
        body.insert("model".into(), req.model.clone().into());

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
        let mut output_config = Map::new();
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
                body.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": budget}),
                );
                thinking_on = true;
            }
            (Some(e), ThinkingMode::Adaptive) => {
                body.insert("thinking".into(), json!({"type": "adaptive"}));
                output_config.insert("effort".into(), e.as_str().into());
                thinking_on = true;
            }
        }
        if let Some(t) = &extra.thinking {
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
            body.insert("thinking".into(), t.clone());
        }
        body.insert("max_tokens".into(), max_tokens.into());

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
            body.insert("temperature".into(), json!(t));
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
            body.insert("top_p".into(), json!(p));
        }
        if let Some(k) = extra.top_k {
            if thinking_on {
                return Err(invalid(
                    "top_k",
                    format!(
                        "'top_k' cannot be used when reasoning is enabled: {PROVIDER}'s extended thinking does not support it."
                    ),
                ));
            }
            body.insert("top_k".into(), k);
        }
        if !req.stop.is_empty() {
            body.insert("stop_sequences".into(), json!(req.stop));
        }

        // Tools.
        if !req.tools.is_empty() {
            body.insert(
                "tools".into(),
                Value::Array(req.tools.iter().map(tool_json).collect()),
            );
        }
        let disable_parallel = req.parallel_tool_calls == Some(false);
        let choice = match &req.tool_choice {
            None if disable_parallel && !req.tools.is_empty() => Some(json!({"type": "auto"})),
            None => None,
            Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
            Some(ToolChoice::None) => Some(json!({"type": "none"})),
            Some(ToolChoice::Required) => Some(json!({"type": "any"})),
            Some(ToolChoice::Function(name)) => Some(json!({"type": "tool", "name": name})),
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
        if let Some(mut choice) = choice {
            if disable_parallel && !is_block(&choice, "none") {
                if let Value::Object(c) = &mut choice {
                    c.insert("disable_parallel_tool_use".into(), true.into());
                }
            }
            body.insert("tool_choice".into(), choice);
        }

        // Structured output.
        match &req.response_format {
            None | Some(ResponseFormat::Text) => {}
            Some(ResponseFormat::JsonSchema { schema, .. }) => {
                output_config.insert(
                    "format".into(),
                    json!({"type": "json_schema", "schema": schema}),
                );
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
        if !output_config.is_empty() {
            body.insert("output_config".into(), Value::Object(output_config));
        }

        // Identity.
        let user_id = match (&req.user, &extra.safety_identifier) {
            (Some(u), Some(s)) if u != s => {
                return Err(invalid(
                    "safety_identifier",
                    format!(
                        "'user' and 'safety_identifier' differ; {PROVIDER} takes one end-user id (metadata.user_id)."
                    ),
                ))
            }
            (Some(u), _) => Some(u),
            (None, s) => s.as_ref(),
        };
        if let Some(u) = user_id {
            body.insert("metadata".into(), json!({"user_id": u}));
        }
        if req.stream {
            body.insert("stream".into(), true.into());
        }

        // System and messages last: they are the bulk of the body.
        match system.as_slice() {
            [] => {}
            [only] => {
                body.insert("system".into(), only.clone().into());
            }
            many => {
                body.insert(
                    "system".into(),
                    Value::Array(many.iter().map(|t| text_block(t)).collect()),
                );
            }
        }
        body.insert(
            "messages".into(),
            Value::Array(turns.into_iter().map(turn_json).collect()),
        );
        Ok(Value::Object(body))
    }
}
