//! Passive health of targets and provider keys, in shared data so every
//! worker agrees: consecutive failures eject a target for a cooldown that
//! doubles on each ejection; when it ends, one request probes (half-open) and
//! its outcome recovers or re-ejects the target. A 429's `Retry-After` sets
//! the cooldown directly. Provider keys use the same state: 401/403 disables
//! a key, 429 cools it down.

mod config;

pub use config::{ErrorRate, ErrorRateConfig, HealthConfig, HealthSpec};

use crate::host::SharedStore;
use crate::state::{cas_update, read_state, Codec, Reader, Step, Writer};

/// CAS attempts per update; health is advisory, so losing a race after
/// these is acceptable.
const RETRIES: u32 = 8;
/// A probe that never reports back frees the half-open slot after this.
const PROBE_TIMEOUT_NS: u64 = 30_000_000_000;

/// What one request saw of a target's (or key's) health, for [`record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    Success,
    /// Connect error, timeout, 5xx: counts towards ejection.
    Failure,
    /// 429 (or a cooled key): eject for this long at once.
    Throttled {
        retry_after_ms: Option<u64>,
    },
    /// Bad credentials: out until reconfigured.
    Disabled,
    /// Says nothing about health (client errors).
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct State {
    consecutive: u32,
    /// Ejections so far without a success in between (backoff exponent).
    ejections: u32,
    ejected_until_ns: u64,
    /// Set while one half-open probe is in flight (its start time).
    probe_since_ns: u64,
    /// The error-rate window: start, requests and failures in it.
    window_start_ns: u64,
    window_requests: u32,
    window_failures: u32,
}

// Health values predate kind bytes: a version byte, then the fields.
const LEN: usize = 1 + 4 + 4 + 8 + 8 + 8 + 4 + 4;
const VERSION: u8 = 2;

impl Codec for State {
    fn encode(&self) -> Vec<u8> {
        Writer::versioned(VERSION, LEN)
            .u32(self.consecutive)
            .u32(self.ejections)
            .u64(self.ejected_until_ns)
            .u64(self.probe_since_ns)
            .u64(self.window_start_ns)
            .u32(self.window_requests)
            .u32(self.window_failures)
            .finish()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::versioned(bytes, VERSION, LEN)?;
        Some(Self {
            consecutive: r.u32()?,
            ejections: r.u32()?,
            ejected_until_ns: r.u64()?,
            probe_since_ns: r.u64()?,
            window_start_ns: r.u64()?,
            window_requests: r.u32()?,
            window_failures: r.u32()?,
        })
    }
}

/// The state under `key` (fresh when absent or undecodable).
fn read(store: &dyn SharedStore, key: &str) -> State {
    read_state(store, key).unwrap_or_default()
}

/// Read-modify-CAS through the shared loop; `f` returns None to leave the
/// state as it is. `None` when the store refused or stayed contended.
fn update<T>(
    store: &dyn SharedStore,
    key: &str,
    mut f: impl FnMut(State) -> (Option<State>, T),
) -> Option<T> {
    // Most outcomes change nothing (a success on a healthy target): decide
    // on a plain read first, so such a request neither creates the key nor
    // reads it twice. `f` only computes, so running it again below is
    // harmless.
    if let (None, out) = f(read(store, key)) {
        return Some(out);
    }
    cas_update(store, key, RETRIES, State::default, |state| {
        match f(state) {
            (Some(new), out) => Step::Write(new, out),
            (None, out) => Step::Keep(out),
        }
    })
    .ok()
}

/// Whether a request may go to this target (or use this key) now. After an
/// ejection ends, only one request at a time is let through as a probe.
pub fn admit(store: &dyn SharedStore, key: &str, now_ns: u64) -> bool {
    let state = read(store, key);
    if state.ejections == 0 {
        return true;
    }
    if now_ns < state.ejected_until_ns {
        return false;
    }
    // Half-open: claim the probe slot.
    update(store, key, |s| {
        let probing =
            s.probe_since_ns != 0 && now_ns.saturating_sub(s.probe_since_ns) < PROBE_TIMEOUT_NS;
        if s.ejections == 0 || now_ns < s.ejected_until_ns || probing {
            (None, s.ejections == 0)
        } else {
            (
                Some(State {
                    probe_since_ns: now_ns.max(1),
                    ..s
                }),
                true,
            )
        }
    })
    .unwrap_or(false)
}

/// Whether the target is out right now (for metrics), without claiming.
pub fn is_ejected(store: &dyn SharedStore, key: &str, now_ns: u64) -> bool {
    let s = read(store, key);
    s.ejections > 0 && now_ns < s.ejected_until_ns
}

/// Records how a request to the target went. Returns true when this call
/// ejected it (for the ejection counter).
pub fn record(
    store: &dyn SharedStore,
    key: &str,
    spec: &HealthSpec,
    observation: Observation,
    now_ns: u64,
) -> bool {
    update(store, key, |s| {
        let counted = count_in_window(s, spec, observation, now_ns);
        let (new, ejected) = apply(counted, spec, observation, now_ns);
        // The window's counts are stored even when nothing else changed.
        (new.or((counted != s).then_some(counted)), ejected)
    })
    .unwrap_or(false)
}

/// Counts the outcome in the error-rate window (a new window starts when the
/// old one is over).
fn count_in_window(
    mut s: State,
    spec: &HealthSpec,
    observation: Observation,
    now_ns: u64,
) -> State {
    let Some(rate) = spec.error_rate else {
        return s;
    };
    let failed = match observation {
        Observation::Success => false,
        Observation::Failure | Observation::Throttled { .. } => true,
        Observation::Disabled | Observation::Neutral => return s,
    };
    if now_ns.saturating_sub(s.window_start_ns) > rate.window_ms.saturating_mul(1_000_000) {
        s.window_start_ns = now_ns;
        s.window_requests = 0;
        s.window_failures = 0;
    }
    s.window_requests = s.window_requests.saturating_add(1);
    s.window_failures = s.window_failures.saturating_add(u32::from(failed));
    s
}

fn rate_exceeded(s: &State, spec: &HealthSpec) -> bool {
    spec.error_rate.is_some_and(|r| {
        s.window_requests >= r.min_requests.max(1)
            && u64::from(s.window_failures) * 100
                >= u64::from(r.threshold_percent) * u64::from(s.window_requests)
    })
}

fn apply(
    s: State,
    spec: &HealthSpec,
    observation: Observation,
    now_ns: u64,
) -> (Option<State>, bool) {
    match observation {
        Observation::Neutral => (
            (s.probe_since_ns != 0).then_some(State {
                probe_since_ns: 0,
                ..s
            }),
            false,
        ),
        Observation::Success => {
            // Keep the window's counts; forget the failure streak.
            let fresh = State {
                window_start_ns: s.window_start_ns,
                window_requests: s.window_requests,
                window_failures: s.window_failures,
                ..State::default()
            };
            ((s != fresh).then_some(fresh), false)
        }
        Observation::Disabled => (
            Some(State {
                ejections: s.ejections.saturating_add(1),
                ejected_until_ns: u64::MAX,
                ..State::default()
            }),
            true,
        ),
        Observation::Throttled { retry_after_ms } => {
            let ms = retry_after_ms.unwrap_or_else(|| backoff_ms(spec, s.ejections));
            (Some(eject(s, now_ns, ms)), true)
        }
        Observation::Failure => {
            let consecutive = s.consecutive.saturating_add(1);
            // A failed probe re-ejects at once, with a longer cooldown.
            let probing = s.probe_since_ns != 0;
            if probing || consecutive >= spec.consecutive_failures.max(1) || rate_exceeded(&s, spec)
            {
                (Some(eject(s, now_ns, backoff_ms(spec, s.ejections))), true)
            } else {
                (Some(State { consecutive, ..s }), false)
            }
        }
    }
}

fn backoff_ms(spec: &HealthSpec, ejections: u32) -> u64 {
    let factor = 1u64.checked_shl(ejections.min(20)).unwrap_or(u64::MAX);
    spec.base_ejection_ms
        .saturating_mul(factor)
        .min(spec.max_ejection_ms.max(spec.base_ejection_ms))
}

fn eject(s: State, now_ns: u64, ms: u64) -> State {
    State {
        consecutive: 0,
        ejections: s.ejections.saturating_add(1),
        ejected_until_ns: now_ns.saturating_add(ms.saturating_mul(1_000_000)),
        // A fresh window after the ejection.
        ..State::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemStore;

    const S: u64 = 1_000_000_000;

    #[test]
    fn consecutive_failures_eject_with_doubling_backoff_and_probe() {
        let store = MemStore::default();
        let spec = HealthSpec {
            consecutive_failures: 2,
            base_ejection_ms: 1000,
            max_ejection_ms: 3000,
            error_rate: None,
        };
        let k = "t";
        assert!(admit(&store, k, 0));
        assert!(!record(&store, k, &spec, Observation::Failure, 0));
        // A success in between resets the count.
        record(&store, k, &spec, Observation::Success, 0);
        assert!(!record(&store, k, &spec, Observation::Failure, 0));
        assert!(record(&store, k, &spec, Observation::Failure, 0));
        assert!(!admit(&store, k, S / 2));
        assert!(is_ejected(&store, k, S / 2));
        // Cooldown over: exactly one probe goes through.
        assert!(admit(&store, k, S));
        assert!(!admit(&store, k, S));
        // The probe fails: ejected again for twice as long.
        assert!(record(&store, k, &spec, Observation::Failure, S));
        assert!(!admit(&store, k, 2 * S + S / 2));
        assert!(admit(&store, k, 3 * S));
        // The next probe succeeds: recovered, everyone admitted.
        record(&store, k, &spec, Observation::Success, 3 * S);
        assert!(admit(&store, k, 3 * S) && admit(&store, k, 3 * S));
        assert!(!is_ejected(&store, k, 3 * S));
    }

    #[test]
    fn backoff_is_capped_and_throttling_honours_retry_after() {
        let spec = HealthSpec {
            consecutive_failures: 1,
            base_ejection_ms: 1000,
            max_ejection_ms: 3000,
            error_rate: None,
        };
        assert_eq!(backoff_ms(&spec, 0), 1000);
        assert_eq!(backoff_ms(&spec, 1), 2000);
        assert_eq!(backoff_ms(&spec, 5), 3000);
        assert_eq!(backoff_ms(&spec, 99), 3000);
        let store = MemStore::default();
        record(
            &store,
            "k",
            &spec,
            Observation::Throttled {
                retry_after_ms: Some(7000),
            },
            0,
        );
        assert!(!admit(&store, "k", 6 * S));
        assert!(admit(&store, "k", 7 * S));
    }

    #[test]
    fn disabled_keys_stay_out_and_neutral_frees_a_probe() {
        let store = MemStore::default();
        let spec = HealthSpec::default();
        record(&store, "key", &spec, Observation::Disabled, 0);
        assert!(!admit(&store, "key", u64::MAX - 1));
        record(
            &store,
            "t",
            &spec,
            Observation::Throttled {
                retry_after_ms: Some(1),
            },
            0,
        );
        assert!(admit(&store, "t", S));
        assert!(!admit(&store, "t", S));
        record(&store, "t", &spec, Observation::Neutral, S);
        assert!(admit(&store, "t", S));
        // A probe that never reports back is given up after the timeout.
        assert!(!admit(&store, "t", S + 1));
        assert!(admit(&store, "t", S + PROBE_TIMEOUT_NS + 1));
    }

    #[test]
    fn error_rate_over_a_window_ejects() {
        let store = MemStore::default();
        let spec = HealthSpec {
            consecutive_failures: 100,
            error_rate: Some(ErrorRate {
                threshold_percent: 50,
                window_ms: 10_000,
                min_requests: 4,
            }),
            ..HealthSpec::default()
        };
        // Alternating: never 100 in a row, but half of all requests fail.
        assert!(!record(&store, "t", &spec, Observation::Success, 0));
        assert!(!record(&store, "t", &spec, Observation::Failure, 1));
        assert!(!record(&store, "t", &spec, Observation::Success, 2));
        assert!(record(&store, "t", &spec, Observation::Failure, 3));
        assert!(is_ejected(&store, "t", 4));
        // An old window does not count: 3 failures of 6, but spread over two windows.
        let store = MemStore::default();
        for (i, o) in [
            Observation::Failure,
            Observation::Success,
            Observation::Success,
        ]
        .into_iter()
        .enumerate()
        {
            record(&store, "u", &spec, o, i as u64);
        }
        let later = 20 * S;
        record(&store, "u", &spec, Observation::Success, later);
        record(&store, "u", &spec, Observation::Failure, later + 1);
        assert!(!record(&store, "u", &spec, Observation::Success, later + 2));
        assert!(!is_ejected(&store, "u", later + 3));
    }

    #[test]
    fn value_layout_is_pinned() {
        // Shared data outlives a build: the next version must read the same
        // bytes.
        let state = State {
            consecutive: 1,
            ejections: 2,
            ejected_until_ns: 3,
            probe_since_ns: 4,
            window_start_ns: 5,
            window_requests: 6,
            window_failures: 7,
        };
        let mut expected = [
            &[2u8][..],
            &1u32.to_le_bytes(),
            &2u32.to_le_bytes(),
            &3u64.to_le_bytes(),
            &4u64.to_le_bytes(),
            &5u64.to_le_bytes(),
            &6u32.to_le_bytes(),
            &7u32.to_le_bytes(),
        ]
        .concat();
        assert_eq!(state.encode(), expected);
        assert_eq!(State::decode(&expected), Some(state));
        expected[0] = 1;
        assert_eq!(State::decode(&expected), None);
    }

    #[test]
    fn corrupt_state_reads_as_healthy() {
        let store = MemStore::default();
        store.set("t", b"garbage", 0).unwrap();
        assert!(admit(&store, "t", 0));
        assert!(!is_ejected(&store, "t", 0));
    }
}
