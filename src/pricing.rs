//! Cost of a request from token usage and a price table (USD per 1M tokens),
//! configurable per upstream model with defaults for common models.

use crate::error::ConfigError;
use crate::wire::hub::Usage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// Upstream model name; a trailing `*` matches by prefix.
    pub model: String,
    /// USD per 1M input (prompt) tokens.
    pub input: f64,
    /// USD per 1M output tokens (reasoning included).
    pub output: f64,
    /// USD per 1M cached input tokens; defaults to `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Price {
    pattern: String,
    prefix: bool,
    input: f64,
    output: f64,
    cached_input: f64,
}

/// List prices (USD per 1M tokens) of widely used models, used unless the
/// config prices the model itself. Prices change: set `pricing` to be exact.
const DEFAULTS: &[(&str, f64, f64, f64)] = &[
    ("gpt-4o-mini*", 0.15, 0.60, 0.075),
    ("gpt-4o*", 2.50, 10.00, 1.25),
    ("gpt-4.1-mini*", 0.40, 1.60, 0.10),
    ("gpt-4.1-nano*", 0.10, 0.40, 0.025),
    ("gpt-4.1*", 2.00, 8.00, 0.50),
    ("o4-mini*", 1.10, 4.40, 0.275),
    ("claude-opus-4*", 15.00, 75.00, 1.50),
    ("claude-sonnet-4*", 3.00, 15.00, 0.30),
    ("claude-3-7-sonnet*", 3.00, 15.00, 0.30),
    ("claude-3-5-haiku*", 0.80, 4.00, 0.08),
    ("claude-haiku-4*", 1.00, 5.00, 0.10),
    ("gemini-2.5-pro*", 1.25, 10.00, 0.31),
    ("gemini-2.5-flash-lite*", 0.10, 0.40, 0.025),
    ("gemini-2.5-flash*", 0.30, 2.50, 0.075),
    ("gemini-2.0-flash*", 0.10, 0.40, 0.025),
    ("deepseek-chat", 0.27, 1.10, 0.07),
    ("deepseek-reasoner", 0.55, 2.19, 0.14),
];

/// A compiled price table: config entries first, then the defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    prices: Vec<Price>,
}

impl PriceTable {
    /// Validates the `pricing` section.
    pub fn compile(config: &[PriceConfig]) -> Result<Self, ConfigError> {
        let mut prices = Vec::with_capacity(config.len() + DEFAULTS.len());
        for (i, p) in config.iter().enumerate() {
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if !ok(p.input) || !ok(p.output) || !p.cached_input.is_none_or(ok) {
                return Err(ConfigError::new(
                    "pricing",
                    format!("pricing[{i}]: prices must be finite and >= 0"),
                ));
            }
            prices.push(price(
                &p.model,
                p.input,
                p.output,
                p.cached_input.unwrap_or(p.input),
            ));
        }
        for (model, input, output, cached) in DEFAULTS {
            prices.push(price(model, *input, *output, *cached));
        }
        Ok(Self { prices })
    }

    /// Cost in micro-USD (millionths of a dollar), rounded; None when the
    /// model has no price.
    pub fn cost_micro_usd(&self, model: &str, usage: &Usage) -> Option<u64> {
        let p = self.prices.iter().find(|p| {
            if p.prefix {
                model.starts_with(&p.pattern)
            } else {
                model == p.pattern
            }
        })?;
        let cached = usage.cached_tokens.unwrap_or(0).min(usage.prompt_tokens);
        let fresh = usage.prompt_tokens - cached;
        // USD per 1M tokens × tokens = micro-USD.
        let micro = fresh as f64 * p.input
            + cached as f64 * p.cached_input
            + usage.completion_tokens as f64 * p.output;
        Some(micro.round() as u64)
    }
}

fn price(model: &str, input: f64, output: f64, cached_input: f64) -> Price {
    let (pattern, prefix) = match model.strip_suffix('*') {
        Some(p) => (p.to_string(), true),
        None => (model.to_string(), false),
    };
    Price {
        pattern,
        prefix,
        input,
        output,
        cached_input,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, cached: Option<u64>, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            cached_tokens: cached,
            ..Usage::default()
        }
    }

    #[test]
    fn config_prices_win_and_prefixes_match() {
        let t = PriceTable::compile(&[PriceConfig {
            model: "gpt-4o-mini".into(),
            input: 1.0,
            output: 2.0,
            cached_input: None,
        }])
        .unwrap();
        // 1000 × $1/M + 500 × $2/M = $0.002 = 2000 µUSD
        assert_eq!(
            t.cost_micro_usd("gpt-4o-mini", &usage(1000, None, 500)),
            Some(2000)
        );
        // The default for dated versions still applies by prefix: 0.15 and 0.60.
        assert_eq!(
            t.cost_micro_usd("gpt-4o-mini-2024-07-18", &usage(1_000_000, None, 0)),
            Some(150_000)
        );
        // Cached input at its own price: 400k fresh × 3 + 600k × 0.3 + 1000 × 15.
        assert_eq!(
            t.cost_micro_usd("claude-sonnet-4-5", &usage(1_000_000, Some(600_000), 1000)),
            Some(1_200_000 + 180_000 + 15_000)
        );
        assert_eq!(
            t.cost_micro_usd("my-local-llama", &usage(10, None, 10)),
            None
        );
    }

    #[test]
    fn rejects_bad_prices() {
        let bad = PriceConfig {
            model: "m".into(),
            input: -1.0,
            output: 1.0,
            cached_input: None,
        };
        assert!(PriceTable::compile(&[bad]).is_err());
    }
}
