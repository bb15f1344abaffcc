use super::*;
use crate::ratelimit::quota;

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

#[test]
fn quota_layout_is_pinned() {
    let q = quota::State {
        window: 19_737,
        used: 42,
    };
    let expected = [
        &[0xC1, 1][..],
        &19_737u64.to_le_bytes(),
        &42u64.to_le_bytes(),
    ];
    assert_eq!(q.encode(), expected.concat());
}
