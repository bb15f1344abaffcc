//! The `health` section as users write it, and its compiled form.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Failures in a row (connect errors, timeouts, 5xx) that eject a target.
    #[serde(default = "default_failures")]
    pub consecutive_failures: u32,
    /// First ejection; doubles with each further one up to the maximum.
    #[serde(default = "default_base_ejection")]
    pub base_ejection_ms: u64,
    #[serde(default = "default_max_ejection")]
    pub max_ejection_ms: u64,
    /// Also eject when failures reach a share of a window's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<ErrorRateConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ErrorRateConfig {
    /// Failures as a percentage of requests, 1-100.
    pub threshold_percent: u32,
    #[serde(default = "default_rate_window")]
    pub window_ms: u64,
    #[serde(default = "default_rate_min")]
    pub min_requests: u32,
}

fn default_rate_window() -> u64 {
    30_000
}
fn default_rate_min() -> u32 {
    20
}

fn default_failures() -> u32 {
    3
}
fn default_base_ejection() -> u64 {
    5_000
}
fn default_max_ejection() -> u64 {
    300_000
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: default_failures(),
            base_ejection_ms: default_base_ejection(),
            max_ejection_ms: default_max_ejection(),
            error_rate: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSpec {
    /// Failures in a row that eject a target.
    pub consecutive_failures: u32,
    /// First ejection; doubles on each further one.
    pub base_ejection_ms: u64,
    pub max_ejection_ms: u64,
    /// Also eject when failures reach this share of a window's requests.
    pub error_rate: Option<ErrorRate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRate {
    /// Failures as a percentage of requests, 1-100.
    pub threshold_percent: u32,
    pub window_ms: u64,
    /// Fewer requests in the window say nothing.
    pub min_requests: u32,
}

impl Default for HealthSpec {
    fn default() -> Self {
        Self {
            consecutive_failures: 3,
            base_ejection_ms: 5_000,
            max_ejection_ms: 300_000,
            error_rate: None,
        }
    }
}

impl HealthSpec {
    /// Validates the `health` section.
    pub fn compile(h: &HealthConfig) -> Result<Self, ConfigError> {
        if h.consecutive_failures == 0 {
            return Err(ConfigError::new(
                "health.consecutive_failures",
                "must be at least 1",
            ));
        }
        if h.base_ejection_ms == 0 || h.max_ejection_ms < h.base_ejection_ms {
            return Err(ConfigError::new(
                "health",
                "needs 1 <= base_ejection_ms <= max_ejection_ms",
            ));
        }
        let error_rate = match h.error_rate {
            None => None,
            Some(r) if !(1..=100).contains(&r.threshold_percent) || r.window_ms == 0 => {
                return Err(ConfigError::new(
                    "health.error_rate",
                    "needs threshold_percent between 1 and 100 and a positive window_ms",
                ))
            }
            Some(r) => Some(ErrorRate {
                threshold_percent: r.threshold_percent,
                window_ms: r.window_ms,
                min_requests: r.min_requests,
            }),
        };
        Ok(HealthSpec {
            consecutive_failures: h.consecutive_failures,
            base_ejection_ms: h.base_ejection_ms,
            max_ejection_ms: h.max_ejection_ms,
            error_rate,
        })
    }
}
