//! Rate-limit algorithms over proxy-wasm shared data.
//!
//! Every limiter here keeps its whole state in one small fixed-size value
//! under one key and changes it through [`crate::state`]'s compare-and-set
//! loop, so concurrent workers never lose each other's updates. Keys are
//! pre-created at configure time with the modules' `ensure` (see the key
//! lifecycle in [`crate::state`]).
//!
//! * [`bucket`]: token buckets (requests or LLM tokens per unit of time),
//!   with reconciliation debts.
//! * [`quota`]: per-consumer budgets over UTC calendar days or months.
//! * [`adaptive`]: an AIMD concurrency limit per upstream target.
//!
//! Everything takes the current time as `now_ns` (Unix nanoseconds) instead
//! of reading a clock, so results are deterministic and testable.

pub mod adaptive;
pub mod bucket;
pub mod quota;

#[cfg(test)]
mod tests;

pub use adaptive::{AdaptiveConfig, AdaptiveSpec, AdaptiveStatus, Feedback};
pub use bucket::{Admission, BucketSpec};
pub use quota::{Period, QuotaOutcome};

/// Nanoseconds → milliseconds, rounded up so a caller told to wait that long
/// never retries too early.
pub(crate) fn ns_to_ms_ceil(ns: u128) -> u64 {
    let ms = ns.div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}
