//! Token buckets over shared data: requests or LLM tokens per unit of time.
//!
//! State: the token count as signed fixed point (millionths of a token) and
//! the time it was last refilled. Refill is computed from elapsed time on each
//! access (no timers), capped at capacity. The count is signed because
//! reconciliation ([`adjust`]) may charge more than was available — a
//! response that used more LLM tokens than estimated leaves a debt that later
//! requests wait out, so a consumer cannot exceed the rate by under-declaring.
//!
//! Refused takes do not write (the refill is a pure function of the stored
//! state and the time), so a flood of refused requests adds no CAS
//! contention. Each written refill truncates below one millionth of a token
//! (always in the limiter's favour); that loss is negligible at any rate a
//! single shared-data key can sustain.

use super::ns_to_ms_ceil;
use crate::host::SharedStore;
use crate::state::{
    cas_update, ensure_state, kind, read_state, Codec, Contention, Reader, Step, Writer,
};

/// Fixed-point units per token: micro-tokens.
const SCALE: i128 = 1_000_000;
const NS_PER_SEC: u128 = 1_000_000_000;

/// Largest usable capacity (~1.1 × 10¹² tokens); larger capacities are
/// clamped to it so every fixed-point count fits the stored `i64`.
pub const MAX_CAPACITY: u64 = 1 << 40;
/// Largest debt, in micro-tokens, that [`adjust`] can record (the same
/// magnitude as a full [`MAX_CAPACITY`] bucket).
const MIN_TOKENS_FP: i128 = -(MAX_CAPACITY as i128) * SCALE;

const VERSION: u8 = 1;
const LEN: usize = 2 + 8 + 8;

/// A token bucket's configuration. Passed on every call rather than stored,
/// so a reconfiguration takes effect immediately (a lowered capacity caps the
/// stored count at the next access).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    /// Burst size: the most units admitted at once after an idle period.
    pub capacity: u64,
    /// Sustained rate in units per second. Resolution is one millionth of a
    /// unit per second; zero, negative or NaN means the bucket never refills.
    pub refill_per_sec: f64,
}

/// The result of a [`take`] (or a [`peek`]), with what rate-limit response
/// headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Whether the units were granted (and deducted).
    pub admitted: bool,
    /// The request asked for more than the bucket can ever hold
    /// (`amount > capacity`): retrying cannot succeed, so callers can answer
    /// with a precise error instead of a 429 with a retry hint.
    pub never: bool,
    /// The bucket's capacity (`x-ratelimit-limit`).
    pub limit: u64,
    /// Whole units left after this call, floored, never negative
    /// (`x-ratelimit-remaining`).
    pub remaining: u64,
    /// Milliseconds until the bucket is full again (`x-ratelimit-reset`);
    /// `u64::MAX` if it never refills.
    pub reset_after_ms: u64,
    /// When refused: milliseconds until `amount` units will be available
    /// (`Retry-After`); `u64::MAX` when `never` or the bucket never refills;
    /// 0 when admitted.
    pub retry_after_ms: u64,
}

/// The stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    /// Micro-tokens; negative is a debt.
    pub(crate) tokens_fp: i64,
    /// Unix ns of the last refill; never moves backwards.
    pub(crate) last_ns: u64,
}

impl Codec for State {
    fn encode(&self) -> Vec<u8> {
        Writer::new(kind::BUCKET, VERSION, LEN)
            .i64(self.tokens_fp)
            .u64(self.last_ns)
            .finish()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes, kind::BUCKET, VERSION, LEN)?;
        Some(State {
            tokens_fp: r.i64()?,
            last_ns: r.u64()?,
        })
    }
}

/// A spec in fixed point, sanitized.
#[derive(Debug, Clone, Copy)]
struct Params {
    capacity: u64,
    cap_fp: i128,
    /// Micro-tokens per second.
    rate_fp: u128,
}

impl Params {
    fn of(spec: &BucketSpec) -> Self {
        let capacity = spec.capacity.min(MAX_CAPACITY);
        let rate = spec.refill_per_sec;
        let rate_fp = if rate > 0.0 {
            // `as` saturates (inf → u64::MAX); a tiny positive rate still
            // refills at the smallest representable speed.
            ((rate * 1e6).round() as u64).max(1)
        } else {
            0 // zero, negative, NaN
        };
        Params {
            capacity,
            cap_fp: i128::from(capacity) * SCALE,
            rate_fp: u128::from(rate_fp),
        }
    }

    fn fresh(&self, now_ns: u64) -> State {
        State {
            tokens_fp: to_i64(self.cap_fp),
            last_ns: now_ns,
        }
    }

    /// Tokens (fixed point, ≤ capacity) and refill time as of `now_ns`.
    fn refill(&self, s: State, now_ns: u64) -> (i128, u64) {
        let tokens = i128::from(s.tokens_fp).min(self.cap_fp);
        if now_ns <= s.last_ns {
            // Same instant, or a worker whose clock reads slightly behind the
            // last writer's: no time has passed for this bucket.
            return (tokens, s.last_ns);
        }
        if tokens >= self.cap_fp {
            return (self.cap_fp, now_ns);
        }
        let elapsed = u128::from(now_ns - s.last_ns);
        let added = elapsed.saturating_mul(self.rate_fp) / NS_PER_SEC;
        let added = i128::try_from(added).unwrap_or(i128::MAX);
        (tokens.saturating_add(added).min(self.cap_fp), now_ns)
    }

    /// Milliseconds until `deficit` micro-tokens have been refilled.
    fn time_to(&self, deficit: i128) -> u64 {
        if deficit <= 0 {
            return 0;
        }
        if self.rate_fp == 0 {
            return u64::MAX;
        }
        let deficit = deficit.unsigned_abs();
        // Smallest elapsed ns whose floor(elapsed × rate / 1e9) ≥ deficit.
        let ns = deficit.saturating_mul(NS_PER_SEC).div_ceil(self.rate_fp);
        ns_to_ms_ceil(ns)
    }

    fn admission(&self, tokens: i128, admitted: bool, never: bool, amount_fp: i128) -> Admission {
        let remaining = u64::try_from(tokens.max(0) / SCALE).unwrap_or(u64::MAX);
        let retry_after_ms = if admitted {
            0
        } else if never {
            u64::MAX
        } else {
            self.time_to(amount_fp.saturating_sub(tokens))
        };
        Admission {
            admitted,
            never,
            limit: self.capacity,
            remaining,
            reset_after_ms: self.time_to(self.cap_fp.saturating_sub(tokens)),
            retry_after_ms,
        }
    }
}

fn to_i64(v: i128) -> i64 {
    i64::try_from(v.clamp(MIN_TOKENS_FP, i128::from(i64::MAX))).unwrap_or(0)
}

/// Creates the bucket full if `key` is absent (or repairs an undecodable
/// value). Call at configure time for every key, so request-time updates
/// always CAS an existing key; an existing bucket is left as it is.
pub fn ensure<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    spec: &BucketSpec,
    now_ns: u64,
) -> Result<(), Contention> {
    ensure_state(store, key, Params::of(spec).fresh(now_ns))
}

/// Takes `amount` units if that many are available after refilling.
///
/// A request that would exceed the limit is refused before it costs
/// anything, and a refusal does not write. `amount == 0` never writes (it is
/// refused only while the bucket is in debt). On `CasMismatch` the whole
/// decision is recomputed from a fresh read, up to `max_retries` times, so
/// another worker's concurrent take is never lost.
pub fn take<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    spec: &BucketSpec,
    amount: u64,
    now_ns: u64,
    max_retries: u32,
) -> Result<Admission, Contention> {
    let p = Params::of(spec);
    let never = amount > p.capacity;
    let amount_fp = i128::from(amount) * SCALE;
    cas_update(
        store,
        key,
        max_retries,
        || p.fresh(now_ns),
        |s| {
            let (tokens, last_ns) = p.refill(s, now_ns);
            if never || tokens < amount_fp {
                return Step::Keep(p.admission(tokens, false, never, amount_fp));
            }
            let after = tokens - amount_fp;
            let admission = p.admission(after, true, false, amount_fp);
            if amount == 0 {
                return Step::Keep(admission);
            }
            let new = State {
                tokens_fp: to_i64(after),
                last_ns,
            };
            Step::Write(new, admission)
        },
    )
}

/// Reconciles a take with what was actually used: a positive `delta` refunds
/// units (capped at capacity), a negative one charges more and may leave the
/// bucket below zero — a debt later requests must wait out.
pub fn adjust<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    spec: &BucketSpec,
    delta: i64,
    now_ns: u64,
    max_retries: u32,
) -> Result<(), Contention> {
    if delta == 0 {
        return Ok(());
    }
    let p = Params::of(spec);
    let delta_fp = i128::from(delta) * SCALE;
    cas_update(
        store,
        key,
        max_retries,
        || p.fresh(now_ns),
        |s| {
            let (tokens, last_ns) = p.refill(s, now_ns);
            let tokens = tokens
                .saturating_add(delta_fp)
                .clamp(MIN_TOKENS_FP, p.cap_fp);
            let new = State {
                tokens_fp: to_i64(tokens),
                last_ns,
            };
            Step::Write(new, ())
        },
    )
}

/// The bucket as of `now_ns`, evaluated as a take of one unit but without
/// consuming or writing anything: for response headers and gauges. `None`
/// when the key is absent or its value does not decode.
pub fn peek<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    spec: &BucketSpec,
    now_ns: u64,
) -> Option<Admission> {
    let p = Params::of(spec);
    let state: State = read_state(store, key)?;
    let (tokens, _) = p.refill(state, now_ns);
    let never = p.capacity == 0;
    let admitted = !never && tokens >= SCALE;
    Some(p.admission(tokens, admitted, never, SCALE))
}
