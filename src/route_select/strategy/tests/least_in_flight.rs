use super::*;

fn lif(store: &dyn SharedStore, c: &[Candidate<'_>], now: u64) -> usize {
    pick(Strategy::LeastInFlight, store, POOL, c, 0, now).unwrap()
}

fn start(store: &dyn SharedStore, id: &str, now: u64) -> InFlight {
    on_start(Strategy::LeastInFlight, store, POOL, id, now)
}

#[test]
fn least_in_flight_picks_the_least_loaded() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("b", 1), ("c", 1)]);
    // All idle: the first.
    assert_eq!(lif(&store, &c, 0), 0);
    let ta = start(&store, "a", 0);
    assert!(ta.is_counted());
    assert_eq!(lif(&store, &c, 0), 1);
    let tb = start(&store, "b", 0);
    assert_eq!(lif(&store, &c, 0), 2);
    let tc = start(&store, "c", 0);
    let tc2 = start(&store, "c", 0);
    assert_eq!(in_flight(&store, POOL, "c", 0), 2);
    assert_eq!(lif(&store, &c, 0), 0);
    on_finish(&store, tb, None, S).unwrap();
    assert_eq!(in_flight(&store, POOL, "b", S), 0);
    assert_eq!(lif(&store, &c, S), 1);
    for t in [ta, tc, tc2] {
        on_finish(&store, t, None, S).unwrap();
    }
    for id in ["a", "b", "c"] {
        assert_eq!(in_flight(&store, POOL, id, S), 0);
    }
}

#[test]
fn least_in_flight_ties_and_weights() {
    let store = MemStore::default();
    // Equal load: the larger weight, then the earlier candidate.
    let c = cands(&[("a", 1), ("b", 3), ("c", 3)]);
    assert_eq!(lif(&store, &c, 0), 1);
    // Load per weight: b (w3) with 2 in flight, (2+1)/3 = 1 ties a's
    // (0+1)/1 = 1 → the larger weight, b; with 3 in flight, a.
    let ab = cands(&[("a", 1), ("b", 3)]);
    let _t: Vec<InFlight> = (0..2).map(|_| start(&store, "b", 0)).collect();
    assert_eq!(lif(&store, &ab, 0), 1);
    let _t3 = start(&store, "b", 0);
    assert_eq!(lif(&store, &ab, 0), 0);
    // Sustained: picks follow the weights 1:3:3 (each pick stays in flight).
    let store = MemStore::default();
    let mut started = Vec::new();
    let mut counts = [0u32; 3];
    for _ in 0..70 {
        let i = lif(&store, &c, 0);
        counts[i] += 1;
        started.push(start(&store, c[i].id, 0));
    }
    assert_eq!(counts, [10, 30, 30]);
}

#[test]
fn in_flight_never_goes_negative() {
    let store = MemStore::default();
    let t1 = start(&store, "a", 0);
    let t2 = start(&store, "a", 0);
    // Someone reset the count (e.g. leak recovery) while both ran.
    store
        .set(
            &format!("{POOL}/inflight/a"),
            &InFlightCount {
                count: 0,
                since_ns: 0,
            }
            .encode(),
            0,
        )
        .unwrap();
    on_finish(&store, t1, None, S).unwrap();
    on_finish(&store, t2, None, S).unwrap();
    assert_eq!(in_flight(&store, POOL, "a", S), 0);
    let s: InFlightCount = read_state(&store, &format!("{POOL}/inflight/a")).unwrap();
    assert_eq!(s.count, 0);
}

#[test]
fn leaked_counts_are_recovered_after_the_stale_period() {
    let store = MemStore::default();
    let stale = Tuning::default().stale_in_flight_ms * 1_000_000;
    let c = cands(&[("a", 1), ("b", 1)]);
    // Two requests on a leak and never finish.
    let _leak1 = start(&store, "a", 0);
    let _leak2 = start(&store, "a", 0);
    let tb = start(&store, "b", 0);
    assert_eq!(lif(&store, &c, stale - 1), 1);
    // b finishes: its activity is fresh, a's is not.
    on_finish(&store, tb, None, 10 * S).unwrap();
    assert_eq!(in_flight(&store, POOL, "a", stale - 1), 2);
    assert_eq!(in_flight(&store, POOL, "a", stale), 0);
    // Read as 0 at the stale point: a ties b and wins by order.
    assert_eq!(lif(&store, &c, stale), 0);
    // The next start restarts the count from 0.
    let t = start(&store, "a", stale);
    assert_eq!(in_flight(&store, POOL, "a", stale), 1);
    on_finish(&store, t, None, stale + S).unwrap();
    assert_eq!(in_flight(&store, POOL, "a", stale + S), 0);
    // A target with steady finishes is never presumed leaked.
    let store = MemStore::default();
    let _long = start(&store, "a", 0);
    for k in 1..5 {
        let t = start(&store, "a", k * stale / 2);
        on_finish(&store, t, None, k * stale / 2 + S).unwrap();
    }
    assert_eq!(in_flight(&store, POOL, "a", 5 * stale / 2), 1);
    // Recovery disabled: counts stay.
    let tuning = Tuning {
        stale_in_flight_ms: 0,
        ..Tuning::default()
    };
    let store = MemStore::default();
    let _t = start(&store, "a", 0);
    let c = cands(&[("a", 1), ("b", 1)]);
    let chosen = pick_with(
        &tuning,
        Strategy::LeastInFlight,
        &store,
        POOL,
        &c,
        0,
        u64::MAX,
    );
    assert_eq!(chosen, Some(1));
}

#[test]
fn contention_on_start_means_not_counted() {
    let store = MemStore::default();
    let t = start(&store, "a", 0);
    assert!(t.is_counted());
    store.always_mismatch.set(true);
    let lost = start(&store, "a", 0);
    assert!(!lost.is_counted());
    let writes = store.set_calls.get();
    assert_eq!(on_finish(&store, lost, None, S), Ok(()));
    assert_eq!(store.set_calls.get(), writes, "nothing to release");
    assert_eq!(
        on_finish(&store, t, None, S),
        Err(Contention::RetriesExhausted)
    );
    store.always_mismatch.set(false);
    assert_eq!(in_flight(&store, POOL, "a", S), 1, "the lost release leaks");
    // Other strategies track nothing.
    for s in [Strategy::WeightedRandom, Strategy::RoundRobin] {
        let t = on_start(s, &store, POOL, "a", 0);
        assert_eq!(t, InFlight::default());
    }
}
