use super::*;
use crate::ratelimit::adaptive;

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

#[test]
fn adaptive_layout_is_pinned() {
    let a = adaptive::State {
        in_flight: 3,
        limit_fp: 4_000_000,
        ewma_us: 5,
        last_decrease_ns: 6,
        last_release_ns: 7,
    };
    let expected = [
        &[0xA1, 1][..],
        &3u32.to_le_bytes(),
        &4_000_000u64.to_le_bytes(),
        &5u64.to_le_bytes(),
        &6u64.to_le_bytes(),
        &7u64.to_le_bytes(),
    ];
    assert_eq!(a.encode(), expected.concat());
}
