//! Tests of the rate-limit core against an in-memory store with real CAS
//! semantics and fault injection (`testing::MemStore`), one file per
//! limiter.

mod adaptive;
mod bucket;
mod quota;

use std::collections::HashSet;

// The test files are named after the limiters they test, so the limiters
// are imported in each file rather than here.
use super::adaptive::{AdaptiveSpec, Feedback};
use super::bucket::BucketSpec;
use super::quota::{civil_from_days, days_from_civil, Period};
use crate::host::SharedStore;
use crate::state::slots::{all_slot_keys, slot_index, slot_key};
use crate::state::{Codec, Contention};
use crate::testing::MemStore;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
/// 2024-01-15 00:00:00 UTC, an arbitrary "now".
const T0: u64 = 1_705_276_800 * SEC;
const R: u32 = 8; // max_retries

fn spec(capacity: u64, rate: f64) -> BucketSpec {
    BucketSpec {
        capacity,
        refill_per_sec: rate,
    }
}

/// A store holding one bucket `"b"` created full at `T0`.
fn bucket_store(s: &BucketSpec) -> MemStore {
    let store = MemStore::default();
    super::bucket::ensure(&store, "b", s, T0).unwrap();
    store
}

fn admitted_count(store: &MemStore, s: &BucketSpec, n: u64, now: u64) -> u64 {
    (0..n)
        .filter(|_| {
            super::bucket::take(store, "b", s, 1, now, R)
                .unwrap()
                .admitted
        })
        .count() as u64
}

fn aspec(min: u32, max: u32, initial: u32) -> AdaptiveSpec {
    AdaptiveSpec {
        min,
        max,
        initial,
        backoff: 0.5,
        latency_tolerance: 2.0,
        stale_after_ms: 0,
    }
}
