//! Tests of the rate-limit core against an in-memory store with real CAS
//! semantics and fault injection (`testing::MemStore`).

use std::collections::HashSet;

use super::adaptive::{self, AdaptiveSpec, Feedback};
use super::bucket::{self, BucketSpec};
use super::quota::{self, civil_from_days, days_from_civil, Period};
use crate::host::SharedStore;
use crate::state::slots::{self, all_slot_keys, slot_index, slot_key};
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
    bucket::ensure(&store, "b", s, T0).unwrap();
    store
}

fn admitted_count(store: &MemStore, s: &BucketSpec, n: u64, now: u64) -> u64 {
    (0..n)
        .filter(|_| bucket::take(store, "b", s, 1, now, R).unwrap().admitted)
        .count() as u64
}

// ---------------------------------------------------------------------------
// Token bucket
// ---------------------------------------------------------------------------

#[test]
fn bucket_admits_exactly_capacity() {
    let s = spec(10, 1.0);
    let store = bucket_store(&s);
    let mut remaining = Vec::new();
    let mut admitted = 0;
    for _ in 0..15 {
        let a = bucket::take(&store, "b", &s, 1, T0, R).unwrap();
        assert_eq!(a.limit, 10);
        if a.admitted {
            admitted += 1;
            remaining.push(a.remaining);
            assert_eq!(a.retry_after_ms, 0);
        } else {
            assert!(!a.never);
            assert_eq!(a.remaining, 0);
        }
    }
    assert_eq!(admitted, 10);
    assert_eq!(remaining, vec![9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
}

#[test]
fn bucket_multi_unit_takes_are_exact() {
    let s = spec(1000, 0.0);
    let store = bucket_store(&s);
    assert!(bucket::take(&store, "b", &s, 600, T0, R).unwrap().admitted);
    let a = bucket::take(&store, "b", &s, 401, T0, R).unwrap();
    assert!(!a.admitted);
    assert_eq!(a.remaining, 400, "a refused take costs nothing");
    let a = bucket::take(&store, "b", &s, 400, T0, R).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 0);
}

#[test]
fn bucket_refills_floor_of_elapsed_times_rate() {
    for &(rate, elapsed_ms) in &[
        (1.0, 1_000u64),
        (1.0, 2_999),
        (2.5, 3_700),
        (3.0, 333),
        (3.0, 334),
        (3.0, 10_000),
        (0.5, 7_000),
        (100.0, 12_345),
        (1e-3, 5_000_000),
    ] {
        let s = spec(1_000_000, rate);
        let store = MemStore::default();
        bucket::ensure(&store, "b", &s, T0).unwrap();
        bucket::adjust(&store, "b", &s, -1_000_000, T0, R).unwrap(); // empty
        let expect = (elapsed_ms as f64 / 1000.0 * rate).floor() as u64;
        let now = T0 + elapsed_ms * MS;
        let got = admitted_count(&store, &s, expect + 5, now);
        assert_eq!(got, expect, "rate {rate}/s after {elapsed_ms} ms");
    }
}

#[test]
fn bucket_refill_is_capped_at_capacity() {
    let s = spec(5, 10.0);
    let store = bucket_store(&s);
    assert_eq!(admitted_count(&store, &s, 3, T0), 3);
    // An hour idle refills far more than capacity: only 5 available.
    let later = T0 + 3_600 * SEC;
    let peek = bucket::peek(&store, "b", &s, later).unwrap();
    assert_eq!(peek.remaining, 5);
    assert_eq!(peek.reset_after_ms, 0);
    assert_eq!(admitted_count(&store, &s, 8, later), 5);
}

#[test]
fn bucket_refund_is_capped_and_charge_leaves_a_debt() {
    let s = spec(10, 1.0);
    let store = bucket_store(&s);
    assert!(bucket::take(&store, "b", &s, 4, T0, R).unwrap().admitted);
    bucket::adjust(&store, "b", &s, 100, T0, R).unwrap();
    assert_eq!(bucket::peek(&store, "b", &s, T0).unwrap().remaining, 10);

    // Take everything, then reconcile 5 more than was taken: debt of 5.
    assert!(bucket::take(&store, "b", &s, 10, T0, R).unwrap().admitted);
    bucket::adjust(&store, "b", &s, -5, T0, R).unwrap();
    let a = bucket::take(&store, "b", &s, 1, T0 + 5 * SEC, R).unwrap();
    assert!(!a.admitted, "the debt must be waited out");
    assert_eq!(a.remaining, 0);
    assert_eq!(a.retry_after_ms, 1_000);
    assert_eq!(a.reset_after_ms, 10_000);
    let a = bucket::take(&store, "b", &s, 1, T0 + 6 * SEC, R).unwrap();
    assert!(a.admitted);
    // A zero adjust touches nothing.
    let calls = store.set_calls.get();
    bucket::adjust(&store, "b", &s, 0, T0, R).unwrap();
    assert_eq!(store.set_calls.get(), calls);
}

#[test]
fn bucket_retry_after_and_reset_are_exact_and_rounded_up() {
    let s = spec(10, 2.0);
    let store = bucket_store(&s);
    let a = bucket::take(&store, "b", &s, 10, T0, R).unwrap();
    assert!(a.admitted);
    assert_eq!(a.reset_after_ms, 5_000);
    let a = bucket::take(&store, "b", &s, 1, T0, R).unwrap();
    assert!(!a.admitted);
    assert_eq!(a.retry_after_ms, 500);
    let a = bucket::take(&store, "b", &s, 3, T0, R).unwrap();
    assert_eq!(a.retry_after_ms, 1_500);
    assert!(
        !bucket::take(&store, "b", &s, 1, T0 + 499 * MS, R)
            .unwrap()
            .admitted
    );
    assert!(
        bucket::take(&store, "b", &s, 1, T0 + 500 * MS, R)
            .unwrap()
            .admitted
    );

    // 3/s: one token takes 333.33 ms; the hint rounds up and is sufficient.
    let s = spec(3, 3.0);
    let store = bucket_store(&s);
    assert!(bucket::take(&store, "b", &s, 3, T0, R).unwrap().admitted);
    let a = bucket::take(&store, "b", &s, 1, T0, R).unwrap();
    assert_eq!(a.retry_after_ms, 334);
    assert_eq!(a.reset_after_ms, 1_000);
    assert!(
        !bucket::take(&store, "b", &s, 1, T0 + 333 * MS, R)
            .unwrap()
            .admitted
    );
    let a = bucket::take(&store, "b", &s, 1, T0 + 334 * MS, R).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 0);
}

#[test]
fn bucket_amount_over_capacity_is_never() {
    let s = spec(10, 1.0);
    let store = bucket_store(&s);
    let a = bucket::take(&store, "b", &s, 11, T0, R).unwrap();
    assert!(!a.admitted);
    assert!(a.never);
    assert_eq!(a.retry_after_ms, u64::MAX);
    assert_eq!(a.remaining, 10, "nothing was consumed");
    let a = bucket::take(&store, "b", &s, 10, T0, R).unwrap();
    assert!(a.admitted && !a.never);
}

#[test]
fn bucket_refusals_and_zero_takes_do_not_write() {
    let s = spec(1, 1.0);
    let store = bucket_store(&s);
    assert!(bucket::take(&store, "b", &s, 1, T0, R).unwrap().admitted);
    let calls = store.set_calls.get();
    for _ in 0..100 {
        assert!(!bucket::take(&store, "b", &s, 1, T0, R).unwrap().admitted);
    }
    assert!(bucket::take(&store, "b", &s, 0, T0, R).unwrap().admitted);
    assert_eq!(store.set_calls.get(), calls);
    // A zero take during a debt is refused (the bucket is below zero).
    bucket::adjust(&store, "b", &s, -3, T0, R).unwrap();
    assert!(!bucket::take(&store, "b", &s, 0, T0, R).unwrap().admitted);
}

#[test]
fn bucket_cas_mismatch_is_retried_and_other_writers_take_is_kept() {
    let s = spec(10, 0.0);
    let store = bucket_store(&s);
    // Another worker takes 3 between our read and our write, twice.
    for _ in 0..2 {
        let s2 = s;
        store.interfere(move |st| {
            assert!(bucket::take(st, "b", &s2, 3, T0, 0).unwrap().admitted);
        });
    }
    let a = bucket::take(&store, "b", &s, 2, T0, R).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 10 - 3 - 3 - 2);
    assert_eq!(bucket::peek(&store, "b", &s, T0).unwrap().remaining, 2);
}

#[test]
fn bucket_retry_sees_the_last_token_gone_and_refuses() {
    let s = spec(3, 0.0);
    let store = bucket_store(&s);
    assert_eq!(admitted_count(&store, &s, 2, T0), 2);
    // We read 1 token left; the other worker takes it before our write.
    let s2 = s;
    store.interfere(move |st| {
        assert!(bucket::take(st, "b", &s2, 1, T0, 0).unwrap().admitted);
    });
    let a = bucket::take(&store, "b", &s, 1, T0, R).unwrap();
    assert!(!a.admitted, "never more than capacity across workers");
    assert_eq!(a.remaining, 0);
}

#[test]
fn bucket_plain_injected_mismatches_are_retried() {
    let s = spec(10, 0.0);
    let store = bucket_store(&s);
    store.fail_next.set(R);
    let a = bucket::take(&store, "b", &s, 1, T0, R).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 9);
    assert_eq!(store.fail_next.get(), 0);
}

#[test]
fn contention_after_max_retries() {
    let s = spec(10, 1.0);
    let store = bucket_store(&s);
    let before = store.raw("b");
    store.always_mismatch.set(true);
    for retries in [0u32, 1, 5] {
        let calls = store.set_calls.get();
        assert_eq!(
            bucket::take(&store, "b", &s, 1, T0, retries),
            Err(Contention::RetriesExhausted)
        );
        assert_eq!(store.set_calls.get() - calls, u64::from(retries) + 1);
    }
    assert_eq!(
        bucket::adjust(&store, "b", &s, -1, T0, 3),
        Err(Contention::RetriesExhausted)
    );
    assert_eq!(store.raw("b"), before, "nothing was written");
    // One fewer injected failure than allowed attempts succeeds.
    store.always_mismatch.set(false);
    store.fail_next.set(5);
    assert!(bucket::take(&store, "b", &s, 1, T0, 5).unwrap().admitted);
    store.fail_next.set(6);
    assert_eq!(
        bucket::take(&store, "b", &s, 1, T0, 5),
        Err(Contention::RetriesExhausted)
    );
}

#[test]
fn store_failure_is_reported_not_retried() {
    let s = spec(10, 1.0);
    let store = bucket_store(&s);
    store.broken.set(true);
    let calls = store.set_calls.get();
    assert_eq!(
        bucket::take(&store, "b", &s, 1, T0, R),
        Err(Contention::StoreFailed)
    );
    assert_eq!(store.set_calls.get() - calls, 1);
    assert_eq!(
        bucket::ensure(&broken_store(), "x", &s, T0),
        Err(Contention::StoreFailed)
    );
    assert_eq!(
        quota::take(&broken_store(), "q", 5, Period::Day, 1, T0, R),
        Err(Contention::StoreFailed)
    );
}

fn broken_store() -> MemStore {
    let store = MemStore::default();
    store.broken.set(true);
    store
}

#[test]
fn bucket_missing_key_is_created_then_updated() {
    let s = spec(5, 1.0);
    let store = MemStore::default();
    let a = bucket::take(&store, "b", &s, 2, T0, 0).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 3);
    assert_eq!(bucket::peek(&store, "b", &s, T0).unwrap().remaining, 3);
    // Works through a trait object, as the flow holds the store.
    let dyn_store: &dyn SharedStore = &store;
    assert!(bucket::take(dyn_store, "b", &s, 3, T0, 0).unwrap().admitted);
    assert!(
        quota::take(dyn_store, "q", 1, Period::Day, 1, T0, 0)
            .unwrap()
            .admitted
    );
    assert_eq!(
        adaptive::acquire(dyn_store, "a", &aspec(1, 2, 1), T0, 0).unwrap(),
        Some(1)
    );
}

#[test]
fn bucket_creation_race_keeps_the_other_workers_update() {
    let s = spec(5, 0.0);
    let store = MemStore::default();
    // We read "absent"; before our create lands another worker creates the
    // key and takes 2. Our create must not reset it.
    let s2 = s;
    store.interfere(move |st| {
        assert!(bucket::take(st, "b", &s2, 2, T0, 0).unwrap().admitted);
    });
    let a = bucket::take(&store, "b", &s, 1, T0, 0).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 2);
}

#[test]
fn bucket_ensure_never_resets_an_existing_bucket() {
    let s = spec(5, 1.0);
    let store = bucket_store(&s);
    assert_eq!(admitted_count(&store, &s, 5, T0), 5);
    bucket::ensure(&store, "b", &s, T0).unwrap();
    assert_eq!(bucket::peek(&store, "b", &s, T0).unwrap().remaining, 0);
    assert!(bucket::peek(&store, "missing", &s, T0).is_none());
}

#[test]
fn corrupted_state_is_treated_as_fresh() {
    let s = spec(5, 1.0);
    for garbage in [
        &b""[..],
        &b"\x00"[..],
        &[0xB1, 1, 2, 3][..],
        &[0xB1, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..], // bad version
        &[0xFF; 18][..],                                                 // bad kind
        &[0xB1; 64][..],                                                 // bad length
    ] {
        let store = MemStore::default();
        store.put_raw("b", garbage);
        assert!(bucket::peek(&store, "b", &s, T0).is_none());
        let a = bucket::take(&store, "b", &s, 1, T0, R).unwrap();
        assert!(a.admitted);
        assert_eq!(a.remaining, 4);
        assert_eq!(bucket::peek(&store, "b", &s, T0).unwrap().remaining, 4);
        // ensure repairs a corrupted value too.
        store.put_raw("b", garbage);
        bucket::ensure(&store, "b", &s, T0).unwrap();
        assert_eq!(bucket::peek(&store, "b", &s, T0).unwrap().remaining, 5);
    }
    // A key holding another limiter's state is not misread as a bucket.
    let store = MemStore::default();
    quota::ensure(&store, "b", Period::Day, T0).unwrap();
    assert!(bucket::peek(&store, "b", &s, T0).is_none());
    assert!(adaptive::status(&store, "b", &AdaptiveSpec::default()).in_flight == 0);
}

#[test]
fn bucket_lowered_capacity_caps_the_stored_count() {
    let store = bucket_store(&spec(100, 1.0));
    let small = spec(10, 1.0);
    let a = bucket::take(&store, "b", &small, 1, T0, R).unwrap();
    assert_eq!(a.limit, 10);
    assert_eq!(a.remaining, 9);
}

#[test]
fn bucket_clock_going_backwards_neither_refills_nor_panics() {
    let s = spec(2, 1.0);
    let store = bucket_store(&s);
    assert_eq!(admitted_count(&store, &s, 2, T0 + 10 * SEC), 2);
    // A worker whose clock reads 5 s behind: no refill, no panic, and the
    // refill time does not move backwards.
    assert_eq!(admitted_count(&store, &s, 2, T0 + 5 * SEC), 0);
    assert_eq!(admitted_count(&store, &s, 2, T0 + 10 * SEC + 999 * MS), 0);
    assert_eq!(admitted_count(&store, &s, 2, T0 + 11 * SEC), 1);
    assert_eq!(admitted_count(&store, &s, 1, 0), 0);
}

#[test]
fn bucket_without_refill_never_refills() {
    for rate in [0.0, -1.0, f64::NAN] {
        let s = spec(1, rate);
        let store = bucket_store(&s);
        let a = bucket::take(&store, "b", &s, 1, T0, R).unwrap();
        assert_eq!(a.reset_after_ms, u64::MAX);
        let a = bucket::take(&store, "b", &s, 1, T0 + 1_000_000 * SEC, R).unwrap();
        assert!(!a.admitted);
        assert!(!a.never);
        assert_eq!(a.retry_after_ms, u64::MAX);
    }
}

#[test]
fn bucket_extreme_inputs_do_not_panic() {
    let specs = [
        spec(u64::MAX, f64::INFINITY),
        spec(u64::MAX, f64::MAX),
        spec(0, 1.0),
        spec(1, 1e-12),
        spec(bucket::MAX_CAPACITY, 1e-6),
    ];
    for s in specs {
        let store = MemStore::default();
        for now in [0, 1, T0, u64::MAX - 1, u64::MAX] {
            bucket::ensure(&store, "b", &s, now).unwrap();
            for amount in [0, 1, u64::MAX / 2, u64::MAX] {
                let _ = bucket::take(&store, "b", &s, amount, now, R).unwrap();
            }
            for delta in [i64::MIN, -1, 1, i64::MAX] {
                bucket::adjust(&store, "b", &s, delta, now, R).unwrap();
            }
            let _ = bucket::peek(&store, "b", &s, now);
        }
    }
    // Capacity 0 admits nothing but zero takes; infinite rate refills fully.
    let s = spec(0, 1.0);
    let store = bucket_store(&s);
    assert!(bucket::take(&store, "b", &s, 1, T0, R).unwrap().never);
    let s = spec(3, f64::INFINITY);
    let store = bucket_store(&s);
    assert_eq!(admitted_count(&store, &s, 5, T0), 3);
    assert_eq!(admitted_count(&store, &s, 5, T0 + 1), 3);
    // Capacities beyond the fixed-point range are clamped, not wrapped.
    let s = spec(u64::MAX, 0.0);
    let store = bucket_store(&s);
    let a = bucket::take(&store, "b", &s, 1, T0, R).unwrap();
    assert_eq!(a.limit, bucket::MAX_CAPACITY);
    assert_eq!(a.remaining, bucket::MAX_CAPACITY - 1);
}

#[test]
fn bucket_state_is_compact_fixed_size() {
    let store = bucket_store(&spec(7, 1.0));
    let raw = store.raw("b").unwrap();
    assert_eq!(raw.len(), 18);
    assert_eq!(raw[0], 0xB1);
    assert_eq!(raw[1], 1);
    assert_eq!(
        i64::from_le_bytes(raw[2..10].try_into().unwrap()),
        7_000_000
    );
    assert_eq!(u64::from_le_bytes(raw[10..18].try_into().unwrap()), T0);
}

#[test]
fn quota_and_adaptive_layouts_are_pinned() {
    let q = quota::State {
        window: 19_737,
        used: 42,
    };
    let mut expected = vec![0xC1, 1];
    expected.extend_from_slice(&19_737u64.to_le_bytes());
    expected.extend_from_slice(&42u64.to_le_bytes());
    assert_eq!(q.encode(), expected);
    let a = adaptive::State {
        in_flight: 3,
        limit_fp: 4_000_000,
        ewma_us: 5,
        last_decrease_ns: 6,
        last_release_ns: 7,
    };
    let mut expected = vec![0xA1, 1];
    expected.extend_from_slice(&3u32.to_le_bytes());
    for v in [4_000_000u64, 5, 6, 7] {
        expected.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(a.encode(), expected);
}

// ---------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------

#[test]
fn civil_dates_known_values() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(civil_from_days(19_722), (2023, 12, 31));
    assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    assert_eq!(civil_from_days(19_783), (2024, 3, 1));
    assert_eq!(civil_from_days(-135_080), (1600, 3, 1));
    assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    // Extreme inputs are clamped, not overflowed.
    let _ = civil_from_days(i64::MAX);
    let _ = civil_from_days(i64::MIN);
    let _ = days_from_civil(i64::MAX, 13, 99);
    let _ = days_from_civil(i64::MIN, 0, 0);
}

#[test]
fn civil_dates_round_trip_and_are_contiguous() {
    let mut prev = civil_from_days(-800_000);
    for d in -799_999..800_000i64 {
        let (y, m, day) = civil_from_days(d);
        assert_eq!(days_from_civil(y, m, day), d);
        let (py, pm, pd) = prev;
        let next_day = (y, m, day) == (py, pm, pd + 1);
        let next_month =
            day == 1 && ((y == py && m == pm + 1) || (y == py + 1 && m == 1 && pm == 12));
        assert!(next_day || next_month, "{prev:?} -> {:?}", (y, m, day));
        prev = (y, m, day);
    }
}

#[test]
fn leap_years() {
    let feb = |y| days_from_civil(y, 3, 1) - days_from_civil(y, 2, 1);
    assert_eq!(feb(2024), 29);
    assert_eq!(feb(2023), 28);
    assert_eq!(feb(2000), 29, "divisible by 400");
    assert_eq!(feb(1900), 28, "divisible by 100");
    assert_eq!(feb(2100), 28);
    assert_eq!(feb(2400), 29);
    assert_eq!(
        civil_from_days(days_from_civil(2023, 2, 28) + 1),
        (2023, 3, 1)
    );
    assert_eq!(
        civil_from_days(days_from_civil(2024, 2, 28) + 1),
        (2024, 2, 29)
    );
}

fn at(y: i64, m: u32, d: u32, h: u64, min: u64, s: u64, ms: u64) -> u64 {
    days_from_civil(y, m, d) as u64 * 86_400 * SEC
        + h * 3_600 * SEC
        + min * 60 * SEC
        + s * SEC
        + ms * MS
}

#[test]
fn period_windows_and_boundaries() {
    let feb29 = at(2024, 2, 29, 12, 0, 0, 0);
    assert_eq!(feb29, 1_709_208_000 * SEC);
    let (id, end) = Period::Day.window(feb29);
    assert_eq!(id, 19_782);
    assert_eq!(end, u128::from(at(2024, 3, 1, 0, 0, 0, 0)));
    let (id, end) = Period::Month.window(feb29);
    assert_eq!(id, 2024 * 12 + 1);
    assert_eq!(end, u128::from(at(2024, 3, 1, 0, 0, 0, 0)));
    // Dec → Jan moves the month id by exactly one.
    let (dec, end) = Period::Month.window(at(2023, 12, 31, 23, 59, 59, 999));
    let (jan, _) = Period::Month.window(at(2024, 1, 1, 0, 0, 0, 0));
    assert_eq!(jan, dec + 1);
    assert_eq!(end, u128::from(at(2024, 1, 1, 0, 0, 0, 0)));
    // The last ns of a window belongs to it, the next ns does not.
    let first_of_march = at(2024, 3, 1, 0, 0, 0, 0);
    assert_eq!(Period::Month.window(first_of_march - 1).0, 2024 * 12 + 1);
    assert_eq!(Period::Month.window(first_of_march).0, 2024 * 12 + 2);
    assert_eq!(Period::Day.window(first_of_march - 1).0, 19_782);
    assert_eq!(Period::Day.window(first_of_march).0, 19_783);
    // Extremes do not panic.
    let _ = Period::Month.window(u64::MAX);
    let _ = Period::Day.window(u64::MAX);
    let _ = Period::Month.window(0);
}

// ---------------------------------------------------------------------------
// Quota
// ---------------------------------------------------------------------------

#[test]
fn quota_admits_up_to_limit_and_reports() {
    let store = MemStore::default();
    let now = at(2024, 1, 15, 18, 0, 0, 0);
    quota::ensure(&store, "q", Period::Day, now).unwrap();
    let a = quota::take(&store, "q", 100, Period::Day, 60, now, R).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 40);
    assert_eq!(a.limit, 100);
    assert_eq!(a.reset_after_ms, 6 * 3_600 * 1_000);
    let a = quota::take(&store, "q", 100, Period::Day, 41, now, R).unwrap();
    assert!(!a.admitted && !a.never);
    assert_eq!(a.remaining, 40, "a refused take costs nothing");
    assert!(
        quota::take(&store, "q", 100, Period::Day, 40, now, R)
            .unwrap()
            .admitted
    );
    assert!(
        !quota::take(&store, "q", 100, Period::Day, 1, now, R)
            .unwrap()
            .admitted
    );
    let a = quota::take(&store, "q", 100, Period::Day, 101, now, R).unwrap();
    assert!(a.never && !a.admitted);
    let p = quota::peek(&store, "q", 100, Period::Day, now).unwrap();
    assert!(!p.admitted);
    assert_eq!(p.remaining, 0);
}

#[test]
fn quota_day_rollover_resets() {
    let store = MemStore::default();
    let before = at(2024, 1, 15, 23, 59, 59, 999);
    quota::ensure(&store, "q", Period::Day, before).unwrap();
    assert!(
        quota::take(&store, "q", 10, Period::Day, 10, before, R)
            .unwrap()
            .admitted
    );
    let a = quota::take(&store, "q", 10, Period::Day, 1, before, R).unwrap();
    assert!(!a.admitted);
    assert_eq!(a.reset_after_ms, 1);
    let after = at(2024, 1, 16, 0, 0, 0, 0);
    let a = quota::take(&store, "q", 10, Period::Day, 1, after, R).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 9);
    assert_eq!(a.reset_after_ms, 86_400_000);
}

#[test]
fn quota_month_rollovers_including_leap_day_and_new_year() {
    let cases = [
        (at(2024, 1, 31, 23, 59, 59, 999), at(2024, 2, 1, 0, 0, 0, 0)),
        (at(2024, 2, 29, 23, 59, 59, 999), at(2024, 3, 1, 0, 0, 0, 0)),
        (at(2023, 2, 28, 23, 59, 59, 999), at(2023, 3, 1, 0, 0, 0, 0)),
        (
            at(2023, 12, 31, 23, 59, 59, 999),
            at(2024, 1, 1, 0, 0, 0, 0),
        ),
    ];
    for (last, first) in cases {
        let store = MemStore::default();
        quota::ensure(&store, "q", Period::Month, last).unwrap();
        assert!(
            quota::take(&store, "q", 5, Period::Month, 5, last, R)
                .unwrap()
                .admitted
        );
        let a = quota::take(&store, "q", 5, Period::Month, 1, last, R).unwrap();
        assert!(!a.admitted);
        assert_eq!(a.reset_after_ms, 1);
        let a = quota::take(&store, "q", 5, Period::Month, 1, first, R).unwrap();
        assert!(a.admitted, "new month at {first}");
        assert_eq!(a.remaining, 4);
    }
    // Feb 29 belongs to February: still the same window as Feb 1.
    let store = MemStore::default();
    let feb1 = at(2024, 2, 1, 0, 0, 0, 0);
    assert!(
        quota::take(&store, "q", 5, Period::Month, 5, feb1, R)
            .unwrap()
            .admitted
    );
    let a = quota::take(
        &store,
        "q",
        5,
        Period::Month,
        1,
        at(2024, 2, 29, 12, 0, 0, 0),
        R,
    )
    .unwrap();
    assert!(!a.admitted);
    assert_eq!(a.reset_after_ms, 12 * 3_600 * 1_000);
}

#[test]
fn quota_adjust_refunds_and_overdraws() {
    let store = MemStore::default();
    quota::ensure(&store, "q", Period::Day, T0).unwrap();
    assert!(
        quota::take(&store, "q", 100, Period::Day, 50, T0, R)
            .unwrap()
            .admitted
    );
    quota::adjust(&store, "q", Period::Day, 30, T0, R).unwrap();
    assert_eq!(
        quota::peek(&store, "q", 100, Period::Day, T0)
            .unwrap()
            .remaining,
        80
    );
    quota::adjust(&store, "q", Period::Day, 1_000, T0, R).unwrap(); // floor at 0 used
    assert_eq!(
        quota::peek(&store, "q", 100, Period::Day, T0)
            .unwrap()
            .remaining,
        100
    );
    quota::adjust(&store, "q", Period::Day, -150, T0, R).unwrap(); // overdraw
    let a = quota::take(&store, "q", 100, Period::Day, 0, T0, R).unwrap();
    assert!(!a.admitted);
    assert_eq!(a.remaining, 0);
    quota::adjust(&store, "q", Period::Day, 40, T0, R).unwrap(); // 110 used
    assert!(
        !quota::take(&store, "q", 100, Period::Day, 1, T0, R)
            .unwrap()
            .admitted
    );
    // The next day the overdraft is gone.
    let tomorrow = T0 + 86_400 * SEC;
    assert_eq!(
        quota::peek(&store, "q", 100, Period::Day, tomorrow)
            .unwrap()
            .remaining,
        100
    );
    // Extremes saturate.
    quota::adjust(&store, "q", Period::Day, i64::MIN, T0, R).unwrap();
    quota::adjust(&store, "q", Period::Day, i64::MIN, T0, R).unwrap();
    quota::adjust(&store, "q", Period::Day, i64::MAX, T0, R).unwrap();
    let _ = quota::take(&store, "q", u64::MAX, Period::Day, u64::MAX, T0, R).unwrap();
}

#[test]
fn quota_window_never_moves_backwards() {
    let store = MemStore::default();
    let midnight = at(2024, 1, 16, 0, 0, 0, 0);
    assert!(
        quota::take(&store, "q", 10, Period::Day, 4, midnight, R)
            .unwrap()
            .admitted
    );
    // A worker whose clock is 1 ms behind counts into the new day rather
    // than resetting it to the old one.
    let a = quota::take(&store, "q", 10, Period::Day, 1, midnight - MS, R).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 5);
    let a = quota::take(&store, "q", 10, Period::Day, 1, midnight + MS, R).unwrap();
    assert_eq!(a.remaining, 4);
}

#[test]
fn quota_cas_retry_keeps_other_writer() {
    let store = MemStore::default();
    quota::ensure(&store, "q", Period::Month, T0).unwrap();
    store.interfere(|st| {
        assert!(
            quota::take(st, "q", 10, Period::Month, 7, T0, 0)
                .unwrap()
                .admitted
        );
    });
    // We read 0 used and want 5; the other worker's 7 lands first: refused.
    let a = quota::take(&store, "q", 10, Period::Month, 5, T0, R).unwrap();
    assert!(!a.admitted);
    assert_eq!(a.remaining, 3);
    store.always_mismatch.set(true);
    assert_eq!(
        quota::take(&store, "q", 10, Period::Month, 1, T0, 2),
        Err(Contention::RetriesExhausted)
    );
    assert_eq!(
        quota::adjust(&store, "q", Period::Month, -1, T0, 2),
        Err(Contention::RetriesExhausted)
    );
}

#[test]
fn quota_corrupted_or_missing_state_is_fresh() {
    let store = MemStore::default();
    assert!(quota::peek(&store, "q", 10, Period::Day, T0).is_none());
    store.put_raw("q", b"\xC1\x01garbage");
    assert!(quota::peek(&store, "q", 10, Period::Day, T0).is_none());
    let a = quota::take(&store, "q", 10, Period::Day, 3, T0, R).unwrap();
    assert!(a.admitted);
    assert_eq!(a.remaining, 7);
    let raw = store.raw("q").unwrap();
    assert_eq!(raw.len(), 18);
    assert_eq!(raw[0], 0xC1);
}

// ---------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------

#[test]
fn fnv_based_hash_is_stable() {
    // Published FNV-1a 64 test vectors.
    assert_eq!(slots::fnv1a(slots::FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(slots::fnv1a(slots::FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(
        slots::fnv1a(slots::FNV_OFFSET, b"foobar"),
        0x8594_4171_f739_67e8
    );
    // Pinned values (cross-checked with an independent implementation): a
    // change here re-maps every client to another slot on
    // a rolling upgrade, so it must be deliberate.
    assert_eq!(slot_key("rl:ip", "203.0.113.7", 1024), PINNED_KEY);
    assert_eq!(slots::slot_hash("", ""), PINNED_EMPTY_HASH);
    assert_ne!(slots::slot_hash("ab", "c"), slots::slot_hash("a", "bc"));
    assert_ne!(
        slot_index("r1", "x", u32::MAX),
        slot_index("r2", "x", u32::MAX)
    );
    for i in 0..1000 {
        let k = format!("client-{i}");
        assert_eq!(slot_key("r", &k, 64), slot_key("r", &k, 64));
        assert!(slot_index("r", &k, 64) < 64);
    }
    assert_eq!(slot_index("r", "anything", 0), 0);
    assert_eq!(slot_index("r", "anything", 1), 0);
    assert_eq!(all_slot_keys("r", 0).collect::<Vec<_>>(), vec!["r#0"]);
}

const PINNED_KEY: &str = "rl:ip#797";
const PINNED_EMPTY_HASH: u64 = 0x1bbd_5c81_3c69_a8d7;

#[test]
fn slots_bound_the_key_space() {
    let s = spec(5, 1.0);
    let n_slots = 256;
    let store = MemStore::default();
    let all: HashSet<String> = all_slot_keys("rl:ip", n_slots).collect();
    assert_eq!(all.len(), n_slots as usize);
    for key in &all {
        bucket::ensure(&store, key, &s, T0).unwrap();
    }
    let mut load = vec![0u32; n_slots as usize];
    for i in 0..100_000u32 {
        let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xFF, i & 0xFF);
        let key = slot_key("rl:ip", &ip, n_slots);
        assert!(all.contains(&key));
        load[slot_index("rl:ip", &ip, n_slots) as usize] += 1;
        let _ = bucket::take(&store, &key, &s, 1, T0, R).unwrap();
    }
    assert!(store.len() <= n_slots as usize);
    assert!(store.written_keys().is_subset(&all));
    // Sequential IPs spread evenly: every slot used, none overloaded.
    let expected = 100_000 / n_slots;
    assert!(
        load.iter().all(|&l| l > expected / 2 && l < expected * 2),
        "{load:?}"
    );
}

// ---------------------------------------------------------------------------
// Adaptive concurrency
// ---------------------------------------------------------------------------

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

fn limit_fp(store: &MemStore, key: &str) -> u64 {
    let raw = store.raw(key).unwrap();
    u64::from_le_bytes(raw[6..14].try_into().unwrap())
}

#[test]
fn adaptive_admits_up_to_limit() {
    let sp = aspec(1, 100, 3);
    let store = MemStore::default();
    adaptive::ensure(&store, "a", &sp, T0).unwrap();
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 3);
    for _ in 0..3 {
        assert_eq!(adaptive::acquire(&store, "a", &sp, T0, R).unwrap(), Some(3));
    }
    let calls = store.set_calls.get();
    assert_eq!(adaptive::acquire(&store, "a", &sp, T0, R).unwrap(), None);
    assert_eq!(store.set_calls.get(), calls, "a refusal does not write");
    assert_eq!(adaptive::status(&store, "a", &sp).in_flight, 3);
    adaptive::release(&store, "a", &sp, Feedback::Ignore, T0, T0, R).unwrap();
    assert_eq!(adaptive::acquire(&store, "a", &sp, T0, R).unwrap(), Some(3));
    assert_eq!(adaptive::acquire(&store, "a", &sp, T0, R).unwrap(), None);
}

#[test]
fn adaptive_in_flight_never_negative() {
    let sp = aspec(1, 10, 2);
    let store = MemStore::default();
    for feedback in [
        Feedback::Ignore,
        Feedback::Overloaded,
        Feedback::Success { latency_ms: 5 },
    ] {
        adaptive::release(&store, "a", &sp, feedback, T0, T0, R).unwrap();
        assert_eq!(adaptive::status(&store, "a", &sp).in_flight, 0);
    }
    assert_eq!(adaptive::acquire(&store, "a", &sp, T0, R).unwrap(), Some(1));
    adaptive::release(&store, "a", &sp, Feedback::Ignore, T0, T0, R).unwrap();
    adaptive::release(&store, "a", &sp, Feedback::Ignore, T0, T0, R).unwrap();
    assert_eq!(adaptive::status(&store, "a", &sp).in_flight, 0);
}

#[test]
fn adaptive_additive_increase_is_one_over_limit_and_capped() {
    let sp = aspec(1, 12, 10);
    let store = MemStore::default();
    adaptive::ensure(&store, "a", &sp, T0).unwrap();
    // Keep the target busy (10 in flight) and complete 10 successes, each
    // followed by a new acquire: the limit grows by ~1 (10 × 1/10).
    for _ in 0..10 {
        adaptive::acquire(&store, "a", &sp, T0, R).unwrap().unwrap();
    }
    for _ in 0..10 {
        adaptive::release(
            &store,
            "a",
            &sp,
            Feedback::Success { latency_ms: 100 },
            T0,
            T0,
            R,
        )
        .unwrap();
        adaptive::acquire(&store, "a", &sp, T0, R).unwrap().unwrap();
    }
    let fp = limit_fp(&store, "a");
    assert!((10_900_000..=11_000_000).contains(&fp), "{fp}");
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 10);
    // Many more successes: capped at max.
    for _ in 0..1_000 {
        adaptive::release(
            &store,
            "a",
            &sp,
            Feedback::Success { latency_ms: 100 },
            T0,
            T0,
            R,
        )
        .unwrap();
        adaptive::acquire(&store, "a", &sp, T0, R).unwrap();
    }
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 12);
    assert_eq!(limit_fp(&store, "a"), 12_000_000);
}

#[test]
fn adaptive_does_not_grow_while_under_used() {
    let sp = aspec(1, 100, 10);
    let store = MemStore::default();
    for _ in 0..1_000 {
        adaptive::acquire(&store, "a", &sp, T0, R).unwrap().unwrap();
        adaptive::release(
            &store,
            "a",
            &sp,
            Feedback::Success { latency_ms: 50 },
            T0,
            T0,
            R,
        )
        .unwrap();
    }
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 10);
    assert_eq!(adaptive::status(&store, "a", &sp).ewma_latency_ms, 50);
}

#[test]
fn adaptive_multiplicative_decrease_bounded_by_min() {
    let sp = aspec(3, 100, 40);
    let store = MemStore::default();
    let mut t = T0;
    let mut expected = 40.0f64;
    for _ in 0..10 {
        t += SEC;
        adaptive::acquire(&store, "a", &sp, t, R).unwrap().unwrap();
        adaptive::release(&store, "a", &sp, Feedback::Overloaded, t, t + 1, R).unwrap();
        expected = (expected * 0.5).max(3.0);
        assert_eq!(
            adaptive::current_limit(&store, "a", &sp),
            expected.floor() as u32
        );
    }
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 3);
    assert_eq!(adaptive::status(&store, "a", &sp).in_flight, 0);
}

#[test]
fn adaptive_decreases_once_per_window() {
    let sp = aspec(1, 100, 20);
    let store = MemStore::default();
    // 20 requests in flight at once all come back 429.
    for _ in 0..20 {
        adaptive::acquire(&store, "a", &sp, T0, R).unwrap().unwrap();
    }
    for i in 0..20 {
        let now = T0 + 100 * MS + i;
        adaptive::release(&store, "a", &sp, Feedback::Overloaded, T0, now, R).unwrap();
    }
    assert_eq!(
        adaptive::current_limit(&store, "a", &sp),
        10,
        "one event, one cut"
    );
    // A request sent after that cut and failing again is a new event.
    let later = T0 + SEC;
    adaptive::acquire(&store, "a", &sp, later, R)
        .unwrap()
        .unwrap();
    adaptive::release(&store, "a", &sp, Feedback::Overloaded, later, later + MS, R).unwrap();
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 5);
}

#[test]
fn adaptive_latency_over_tolerance_is_congestion() {
    let sp = aspec(1, 100, 20);
    let store = MemStore::default();
    let mut t = T0;
    let mut success = |latency_ms: u64| {
        t += SEC;
        adaptive::acquire(&store, "a", &sp, t, R).unwrap().unwrap();
        adaptive::release(
            &store,
            "a",
            &sp,
            Feedback::Success { latency_ms },
            t,
            t + 1,
            R,
        )
        .unwrap();
    };
    success(100); // first sample seeds the average, never congestion
    for _ in 0..5 {
        success(100);
    }
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 20);
    success(190); // within 2 × 100
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 20);
    success(400); // beyond 2 × ~109
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 10);
    // Disabled latency signal: the same slow response is not congestion.
    let sp = AdaptiveSpec {
        latency_tolerance: f64::NAN,
        ..aspec(1, 100, 20)
    };
    let store = MemStore::default();
    for (i, latency_ms) in [100, 100, 10_000].into_iter().enumerate() {
        let t = T0 + i as u64 * SEC;
        adaptive::acquire(&store, "a", &sp, t, R).unwrap().unwrap();
        adaptive::release(&store, "a", &sp, Feedback::Success { latency_ms }, t, t, R).unwrap();
    }
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 20);
}

#[test]
fn adaptive_recovers_leaked_slots() {
    let sp = AdaptiveSpec {
        stale_after_ms: 60_000,
        ..aspec(1, 100, 2)
    };
    let store = MemStore::default();
    adaptive::ensure(&store, "a", &sp, T0).unwrap();
    // Two acquires whose releases never come.
    adaptive::acquire(&store, "a", &sp, T0, R).unwrap().unwrap();
    adaptive::acquire(&store, "a", &sp, T0, R).unwrap().unwrap();
    assert_eq!(
        adaptive::acquire(&store, "a", &sp, T0 + 59 * SEC, R).unwrap(),
        None
    );
    assert_eq!(
        adaptive::acquire(&store, "a", &sp, T0 + 60 * SEC, R).unwrap(),
        Some(2)
    );
    assert_eq!(adaptive::status(&store, "a", &sp).in_flight, 1);
    // Disabled: stays blocked.
    let sp = aspec(1, 100, 1);
    let store = MemStore::default();
    adaptive::acquire(&store, "a", &sp, T0, R).unwrap().unwrap();
    assert_eq!(
        adaptive::acquire(&store, "a", &sp, T0 + 86_400 * SEC, R).unwrap(),
        None
    );
}

#[test]
fn adaptive_spec_is_sanitized() {
    let weird = AdaptiveSpec {
        min: 0,
        max: 0,
        initial: 50,
        backoff: f64::NAN,
        latency_tolerance: -1.0,
        stale_after_ms: u64::MAX,
    };
    let store = MemStore::default();
    assert_eq!(adaptive::current_limit(&store, "a", &weird), 1);
    assert_eq!(
        adaptive::acquire(&store, "a", &weird, T0, R).unwrap(),
        Some(1)
    );
    adaptive::release(&store, "a", &weird, Feedback::Overloaded, T0, T0, R).unwrap();
    assert_eq!(adaptive::current_limit(&store, "a", &weird), 1);
    // A stored limit outside a new spec's range is clamped into it.
    let wide = aspec(1, 1_000, 500);
    adaptive::ensure(&store, "b", &wide, T0).unwrap();
    let narrow = aspec(5, 50, 10);
    assert_eq!(adaptive::current_limit(&store, "b", &narrow), 50);
    let backoff_zero = AdaptiveSpec {
        backoff: 0.0,
        ..aspec(4, 100, 80)
    };
    adaptive::release(&store, "c", &backoff_zero, Feedback::Overloaded, T0, T0, R).unwrap();
    assert_eq!(adaptive::current_limit(&store, "c", &backoff_zero), 4);
    let huge = aspec(u32::MAX, u32::MAX, u32::MAX);
    assert_eq!(
        adaptive::acquire(&store, "d", &huge, T0, R).unwrap(),
        Some(u32::MAX)
    );
    adaptive::release(
        &store,
        "d",
        &huge,
        Feedback::Success {
            latency_ms: u64::MAX,
        },
        T0,
        T0,
        R,
    )
    .unwrap();
    adaptive::release(
        &store,
        "d",
        &huge,
        Feedback::Success {
            latency_ms: u64::MAX,
        },
        T0,
        T0,
        R,
    )
    .unwrap();
}

#[test]
fn adaptive_contention_corruption_and_cas_retry() {
    let sp = aspec(1, 100, 2);
    let store = MemStore::default();
    store.put_raw("a", &[0xA1, 1, 0, 0]);
    assert_eq!(adaptive::current_limit(&store, "a", &sp), 2);
    assert_eq!(adaptive::acquire(&store, "a", &sp, T0, R).unwrap(), Some(2));
    assert_eq!(store.raw("a").unwrap().len(), 38);
    // Another worker takes the last slot between our read and our write.
    let sp2 = sp;
    store.interfere(move |st| {
        assert_eq!(adaptive::acquire(st, "a", &sp2, T0, 0).unwrap(), Some(2));
    });
    assert_eq!(adaptive::acquire(&store, "a", &sp, T0, R).unwrap(), None);
    assert_eq!(adaptive::status(&store, "a", &sp).in_flight, 2);
    store.always_mismatch.set(true);
    assert_eq!(
        adaptive::release(&store, "a", &sp, Feedback::Ignore, T0, T0, 3),
        Err(Contention::RetriesExhausted)
    );
    assert_eq!(adaptive::status(&store, "a", &sp).in_flight, 2);
}
