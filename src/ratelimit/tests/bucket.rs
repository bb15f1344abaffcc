use super::*;
use crate::ratelimit::{adaptive, bucket, quota};

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
