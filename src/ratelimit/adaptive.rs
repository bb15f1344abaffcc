//! Adaptive concurrency limit per upstream target (AIMD, as in TCP
//! congestion avoidance and Netflix's concurrency-limits).
//!
//! One shared state per target counts requests in flight across all workers
//! and holds a limit that grows by `1/limit` per successful response (about
//! +1 per limit's worth of successes) and shrinks by the factor `backoff` on
//! congestion (a 429/5xx/timeout, or a response much slower than the
//! latency average). Refinements over the textbook rule, each for a failure
//! mode seen in practice:
//!
//! * **One decrease per window** (TCP's rule): a decrease is skipped for a
//!   request acquired before the previous decrease. A burst of N failures
//!   from requests that were all in flight at once is one congestion event,
//!   not N — otherwise 30 concurrent 429s would take a limit of 100 straight
//!   to `min`, and recovery at +1/limit per success is slow.
//! * **No growth while under-used**: the limit grows only when at least half
//!   of it was in use, so a quiet period cannot ratchet it up to `max` and
//!   then let a burst through unprotected.
//! * **Leak recovery**: `in_flight` lives in a store whose values never
//!   expire, so an acquire whose release never ran (a VM restart, a stream
//!   the host never finished) would hold a slot forever. When the limit is
//!   reached and no release at all has been seen for `stale_after_ms`, the
//!   count is presumed leaked and restarted from zero.

use crate::error::ConfigError;
use crate::host::SharedStore;
use crate::state::{
    cas_update, ensure_state, kind, read_state, Codec, Contention, Reader, Step, Writer,
};
use serde::{Deserialize, Serialize};

/// Fixed-point units per limit step (the limit is stored in millionths).
const SCALE: u64 = 1_000_000;
/// Weight of a new latency sample in the moving average (≈ the last 10
/// responses dominate).
const EWMA_WEIGHT: f64 = 0.1;
const DEFAULT_BACKOFF: f64 = 0.7;
const VERSION: u8 = 1;
const LEN: usize = 2 + 4 + 8 * 4;

/// An adaptive limit's configuration, passed on every call (not stored) so
/// reconfiguration applies at once; a stored limit outside `min..=max` is
/// clamped into it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveSpec {
    /// Floor of the limit (raised to 1: a limit of 0 could never recover,
    /// since only completed requests raise it).
    pub min: u32,
    /// Ceiling of the limit (raised to `min` if below).
    pub max: u32,
    /// Limit of a newly created state (clamped to `min..=max`).
    pub initial: u32,
    /// Multiplier applied on congestion, in `0..=1` (e.g. 0.7); NaN means
    /// the default 0.7.
    pub backoff: f64,
    /// A success slower than `latency_tolerance ×` the latency average
    /// counts as congestion (e.g. 2.0); NaN, zero or negative disables the
    /// latency signal.
    pub latency_tolerance: f64,
    /// Leak recovery: at the limit with no release for this long, reset
    /// `in_flight` to 0. Must exceed the longest legitimate request
    /// (streams included); 0 disables it.
    pub stale_after_ms: u64,
}

impl Default for AdaptiveSpec {
    fn default() -> Self {
        AdaptiveSpec {
            min: 1,
            max: 1_000,
            initial: 20,
            backoff: DEFAULT_BACKOFF,
            latency_tolerance: 2.0,
            stale_after_ms: 0,
        }
    }
}

/// A provider's `adaptive_concurrency` as users write it.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveConfig {
    #[serde(default = "one")]
    pub min: u32,
    pub max: u32,
    /// Starting limit; defaults to `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<u32>,
}

fn one() -> u32 {
    1
}

impl AdaptiveSpec {
    /// Validates an `adaptive_concurrency` section; `field` is its path.
    pub fn compile(a: &AdaptiveConfig, field: &str) -> Result<Self, ConfigError> {
        if a.min == 0 || a.max < a.min || a.initial.is_some_and(|i| i < a.min || i > a.max) {
            return Err(ConfigError::new(field, "needs 1 <= min <= initial <= max"));
        }
        Ok(AdaptiveSpec {
            min: a.min,
            max: a.max,
            initial: a.initial.unwrap_or(a.max),
            ..AdaptiveSpec::default()
        })
    }
}

/// How a request that held a slot ended, fed back to the limit by
/// [`release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// A good response; its latency feeds the average and the latency
    /// congestion signal. Callers pick the latency that tracks load (for
    /// streams, time to first token rather than total duration).
    Success {
        /// Milliseconds from sending the request to the chosen milestone.
        latency_ms: u64,
    },
    /// The target signalled overload: 429, 5xx, timeout, connect failure.
    Overloaded,
    /// Says nothing about the target's load (client abort, 4xx other than
    /// 429): only frees the slot.
    Ignore,
}

/// A snapshot for gauges and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveStatus {
    /// The current limit (whole requests).
    pub limit: u32,
    /// Requests currently holding a slot, across all workers.
    pub in_flight: u32,
    /// Moving average of successful responses' latency.
    pub ewma_latency_ms: u64,
}

/// The stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) in_flight: u32,
    /// Millionths of a request.
    pub(crate) limit_fp: u64,
    /// Microseconds; 0 = no sample yet.
    pub(crate) ewma_us: u64,
    /// Unix ns of the last decrease (0 = never).
    pub(crate) last_decrease_ns: u64,
    /// Unix ns of the last release (or of creation / leak reset).
    pub(crate) last_release_ns: u64,
}

impl Codec for State {
    fn encode(&self) -> Vec<u8> {
        Writer::new(kind::ADAPTIVE, VERSION, LEN)
            .u32(self.in_flight)
            .u64(self.limit_fp)
            .u64(self.ewma_us)
            .u64(self.last_decrease_ns)
            .u64(self.last_release_ns)
            .finish()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes, kind::ADAPTIVE, VERSION, LEN)?;
        Some(State {
            in_flight: r.u32()?,
            limit_fp: r.u64()?,
            ewma_us: r.u64()?,
            last_decrease_ns: r.u64()?,
            last_release_ns: r.u64()?,
        })
    }
}

/// A spec sanitized into fixed point.
#[derive(Debug, Clone, Copy)]
struct Params {
    min_fp: u64,
    max_fp: u64,
    initial_fp: u64,
    backoff: f64,
    tolerance: Option<f64>,
    stale_after_ns: u64,
}

impl Params {
    fn of(spec: &AdaptiveSpec) -> Self {
        let min = u64::from(spec.min.max(1));
        let max = u64::from(spec.max).max(min);
        let initial = u64::from(spec.initial).clamp(min, max);
        let backoff = if spec.backoff.is_nan() {
            DEFAULT_BACKOFF
        } else {
            spec.backoff.clamp(0.0, 1.0)
        };
        let tol = spec.latency_tolerance;
        Params {
            // u32 × 10⁶ < 2⁵², no overflow.
            min_fp: min * SCALE,
            max_fp: max * SCALE,
            initial_fp: initial * SCALE,
            backoff,
            tolerance: (tol > 0.0).then_some(tol),
            stale_after_ns: spec.stale_after_ms.saturating_mul(1_000_000),
        }
    }

    fn fresh(&self, now_ns: u64) -> State {
        State {
            in_flight: 0,
            limit_fp: self.initial_fp,
            ewma_us: 0,
            last_decrease_ns: 0,
            last_release_ns: now_ns,
        }
    }

    /// The stored state with its limit clamped to the current spec.
    fn normalize(&self, s: State) -> State {
        State {
            limit_fp: s.limit_fp.clamp(self.min_fp, self.max_fp),
            ..s
        }
    }

    /// Whole requests admitted concurrently (≥ 1).
    fn whole(&self, s: &State) -> u32 {
        u32::try_from(s.limit_fp / SCALE).unwrap_or(u32::MAX).max(1)
    }

    /// Multiplicative decrease, once per window: skipped for a request
    /// acquired before the last decrease (it was sent at the old limit).
    fn decrease(&self, s: &mut State, acquired_ns: u64, now_ns: u64) {
        if acquired_ns < s.last_decrease_ns {
            return;
        }
        // f64 holds every limit_fp exactly (< 2⁵³); `as` saturates.
        let cut = (s.limit_fp as f64 * self.backoff) as u64;
        s.limit_fp = cut.clamp(self.min_fp, self.max_fp);
        s.last_decrease_ns = now_ns.max(s.last_decrease_ns);
    }

    /// Additive increase of 1/limit, capped at `max`.
    fn increase(&self, s: &mut State) {
        let step = (SCALE * SCALE / s.limit_fp.max(1)).max(1);
        s.limit_fp = s.limit_fp.saturating_add(step).min(self.max_fp);
    }
}

/// Creates the state (limit `initial`, nothing in flight) if `key` is
/// absent, or repairs an undecodable value. Call at configure time; an
/// existing state (with its in-flight count) is left alone.
pub fn ensure<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    spec: &AdaptiveSpec,
    now_ns: u64,
) -> Result<(), Contention> {
    ensure_state(store, key, Params::of(spec).fresh(now_ns))
}

/// Claims a concurrency slot: `Some(limit)` when admitted (`in_flight` was
/// incremented and the caller must [`release`] exactly once), `None` when
/// the target is at its limit (nothing written).
pub fn acquire<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    spec: &AdaptiveSpec,
    now_ns: u64,
    max_retries: u32,
) -> Result<Option<u32>, Contention> {
    let p = Params::of(spec);
    cas_update(
        store,
        key,
        max_retries,
        || p.fresh(now_ns),
        |s| {
            let mut s = p.normalize(s);
            let limit = p.whole(&s);
            if s.in_flight >= limit
                && p.stale_after_ns > 0
                && now_ns.saturating_sub(s.last_release_ns) >= p.stale_after_ns
            {
                s.in_flight = 0;
                s.last_release_ns = now_ns;
            }
            if s.in_flight >= limit {
                return Step::Keep(None);
            }
            s.in_flight = s.in_flight.saturating_add(1);
            Step::Write(s, Some(limit))
        },
    )
}

/// Frees a slot taken by [`acquire`] at `acquired_ns` (the `now_ns` that was
/// passed to it) and adapts the limit to `feedback`. `in_flight` never goes
/// below zero (a release after a leak reset is absorbed).
pub fn release<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    spec: &AdaptiveSpec,
    feedback: Feedback,
    acquired_ns: u64,
    now_ns: u64,
    max_retries: u32,
) -> Result<(), Contention> {
    let p = Params::of(spec);
    cas_update(
        store,
        key,
        max_retries,
        || p.fresh(now_ns),
        |s| {
            let mut s = p.normalize(s);
            let limit = p.whole(&s);
            let busy = s.in_flight.saturating_mul(2) >= limit;
            s.in_flight = s.in_flight.saturating_sub(1);
            s.last_release_ns = s.last_release_ns.max(now_ns);
            match feedback {
                Feedback::Ignore => {}
                Feedback::Overloaded => p.decrease(&mut s, acquired_ns, now_ns),
                Feedback::Success { latency_ms } => {
                    let sample = latency_ms.saturating_mul(1_000) as f64;
                    let avg = s.ewma_us as f64;
                    let slow = s.ewma_us > 0 && p.tolerance.is_some_and(|t| sample > t * avg);
                    s.ewma_us = if s.ewma_us == 0 {
                        latency_ms.saturating_mul(1_000)
                    } else {
                        (avg + (sample - avg) * EWMA_WEIGHT) as u64
                    };
                    if slow {
                        p.decrease(&mut s, acquired_ns, now_ns);
                    } else if busy {
                        p.increase(&mut s);
                    }
                }
            }
            Step::Write(s, ())
        },
    )
}

/// The current limit in whole requests (`initial` when the key is absent or
/// undecodable), for a gauge.
pub fn current_limit<S: SharedStore + ?Sized>(store: &S, key: &str, spec: &AdaptiveSpec) -> u32 {
    status(store, key, spec).limit
}

/// Limit, in-flight count and latency average, without changing anything.
pub fn status<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    spec: &AdaptiveSpec,
) -> AdaptiveStatus {
    let p = Params::of(spec);
    let s = read_state(store, key).map_or_else(|| p.fresh(0), |s| p.normalize(s));
    AdaptiveStatus {
        limit: p.whole(&s),
        in_flight: s.in_flight,
        ewma_latency_ms: s.ewma_us / 1_000,
    }
}
