//! Calendar quotas: a per-consumer budget (e.g. LLM tokens) per UTC day or
//! month.
//!
//! Unlike a token bucket nothing refills gradually: the whole budget comes
//! back when the fixed window rolls over, which is what consumers expect from
//! "100k tokens per day". State: (window id, units used); a stored window
//! older than the current one reads as `used = 0`, so no timer or sweep is
//! needed. Windows never move backwards: a worker whose clock reads slightly
//! behind the rollover just counts into the newer window another worker has
//! already opened, rather than resetting it.

use super::ns_to_ms_ceil;
use crate::host::SharedStore;
use crate::state::{
    cas_update, ensure_state, kind, read_state, Codec, Contention, Reader, Step, Writer,
};

pub use crate::calendar::{civil_from_days, days_from_civil};

const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;
const VERSION: u8 = 1;
const LEN: usize = 2 + 8 + 8;

/// Length of a quota window, aligned to UTC calendar boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// 00:00:00 UTC to the next midnight.
    Day,
    /// The 1st 00:00:00 UTC to the 1st of the next month.
    Month,
}

impl Period {
    /// The window's name in keys and messages: `day`, `month`.
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// The window containing `now_ns`: a monotonically increasing id (days
    /// since the epoch, or `year × 12 + month − 1`) and the Unix ns at which
    /// it ends.
    pub fn window(self, now_ns: u64) -> (u64, u128) {
        let days = now_ns / NS_PER_DAY;
        match self {
            Period::Day => (days, u128::from(days + 1) * u128::from(NS_PER_DAY)),
            Period::Month => {
                // u64 ns reach only ~213k days: every cast below is lossless.
                let (y, m, _) = civil_from_days(days as i64);
                let id = (y as u64) * 12 + u64::from(m - 1);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let end_days = days_from_civil(ny, nm, 1) as u128;
                (id, end_days * u128::from(NS_PER_DAY))
            }
        }
    }
}

/// The result of a quota [`take`] (or [`peek`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaOutcome {
    /// Whether the units were granted (and counted).
    pub admitted: bool,
    /// `amount > limit`: no window can ever grant it.
    pub never: bool,
    /// The budget per window.
    pub limit: u64,
    /// Units left in this window after this call (0 when overdrawn).
    pub remaining: u64,
    /// Milliseconds until the window rolls over and the budget is restored.
    pub reset_after_ms: u64,
}

/// The stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) window: u64,
    pub(crate) used: u64,
}

impl Codec for State {
    fn encode(&self) -> Vec<u8> {
        Writer::new(kind::QUOTA, VERSION, LEN)
            .u64(self.window)
            .u64(self.used)
            .finish()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes, kind::QUOTA, VERSION, LEN)?;
        Some(State {
            window: r.u64()?,
            used: r.u64()?,
        })
    }
}

/// The stored state seen from window `window`: an older window is spent.
fn current(s: State, window: u64) -> State {
    if s.window >= window {
        s
    } else {
        State { window, used: 0 }
    }
}

fn outcome(
    limit: u64,
    used: u64,
    admitted: bool,
    never: bool,
    end: u128,
    now_ns: u64,
) -> QuotaOutcome {
    QuotaOutcome {
        admitted,
        never,
        limit,
        remaining: limit.saturating_sub(used),
        reset_after_ms: ns_to_ms_ceil(end.saturating_sub(u128::from(now_ns))),
    }
}

/// Creates the quota (current window, nothing used) if `key` is absent, or
/// repairs an undecodable value. Call at configure time; an existing quota
/// is left as it is.
pub fn ensure<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    period: Period,
    now_ns: u64,
) -> Result<(), Contention> {
    let (window, _) = period.window(now_ns);
    ensure_state(store, key, State { window, used: 0 })
}

/// Counts `amount` units against this window's budget if they fit
/// (`used + amount ≤ limit`); otherwise refuses without writing. `limit` is
/// passed on every call so a reconfiguration applies at once.
pub fn take<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    limit: u64,
    period: Period,
    amount: u64,
    now_ns: u64,
    max_retries: u32,
) -> Result<QuotaOutcome, Contention> {
    let (window, end) = period.window(now_ns);
    let never = amount > limit;
    cas_update(
        store,
        key,
        max_retries,
        || State { window, used: 0 },
        |s| {
            let s = current(s, window);
            match s.used.checked_add(amount) {
                Some(used) if !never && used <= limit => {
                    let out = outcome(limit, used, true, false, end, now_ns);
                    if amount == 0 {
                        Step::Keep(out)
                    } else {
                        Step::Write(State { used, ..s }, out)
                    }
                }
                _ => Step::Keep(outcome(limit, s.used, false, never, end, now_ns)),
            }
        },
    )
}

/// Reconciles with actual usage: a positive `delta` refunds units (never
/// below zero used), a negative one charges more (may overdraw the budget,
/// leaving nothing until the window rolls over). Applies to the current
/// window: a request that straddled the rollover is charged to the new one.
pub fn adjust<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    period: Period,
    delta: i64,
    now_ns: u64,
    max_retries: u32,
) -> Result<(), Contention> {
    if delta == 0 {
        return Ok(());
    }
    let (window, _) = period.window(now_ns);
    cas_update(
        store,
        key,
        max_retries,
        || State { window, used: 0 },
        |s| {
            let s = current(s, window);
            let used = if delta > 0 {
                s.used.saturating_sub(delta.unsigned_abs())
            } else {
                s.used.saturating_add(delta.unsigned_abs())
            };
            Step::Write(State { used, ..s }, ())
        },
    )
}

/// The quota as of `now_ns`, evaluated as a take of one unit without
/// counting anything: for headers and gauges. `None` when the key is absent
/// or its value does not decode.
pub fn peek<S: SharedStore + ?Sized>(
    store: &S,
    key: &str,
    limit: u64,
    period: Period,
    now_ns: u64,
) -> Option<QuotaOutcome> {
    let (window, end) = period.window(now_ns);
    let s = current(read_state(store, key)?, window);
    let never = limit == 0;
    let admitted = !never && s.used < limit;
    Some(outcome(limit, s.used, admitted, never, end, now_ns))
}
