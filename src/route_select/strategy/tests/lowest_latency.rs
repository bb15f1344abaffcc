use super::*;

fn ll(store: &dyn SharedStore, c: &[Candidate<'_>], rand: u64) -> usize {
    pick(Strategy::LowestLatency, store, POOL, c, rand, 0).unwrap()
}

fn sample(store: &dyn SharedStore, id: &str, ms: u64) {
    let t = on_start(Strategy::LowestLatency, store, POOL, id, 0);
    assert!(!t.is_counted());
    on_finish(store, t, Some(ms), 0).unwrap();
}

#[test]
fn ewma_of_time_to_first_byte() {
    let store = MemStore::default();
    assert_eq!(latency(&store, POOL, "a"), None);
    sample(&store, "a", 100);
    assert_eq!(
        latency(&store, POOL, "a"),
        Some(LatencyStatus {
            ewma_ms: 100,
            samples: 1,
            last_sample_ns: 0,
        })
    );
    sample(&store, "a", 200);
    assert_eq!(latency(&store, POOL, "a").unwrap().ewma_ms, 120);
    observe(&store, POOL, "a", 20, 7 * S).unwrap();
    let l = latency(&store, POOL, "a").unwrap();
    assert_eq!((l.ewma_ms, l.last_sample_ns), (100, 7 * S));
    // Converges to a new level.
    for _ in 0..60 {
        observe(&store, POOL, "a", 1000, 0).unwrap();
    }
    assert_eq!(latency(&store, POOL, "a").unwrap().ewma_ms, 999);
    // A failure (no ttfb) records nothing.
    let t = on_start(Strategy::LowestLatency, &store, POOL, "a", 0);
    on_finish(&store, t, None, 0).unwrap();
    assert_eq!(latency(&store, POOL, "a").unwrap().samples, 63);
}

#[test]
fn warm_up_explores_every_new_target_first() {
    let store = MemStore::default();
    let ids = ["a", "b", "c"];
    let c = cands(&[("a", 1), ("b", 1), ("c", 1)]);
    // No data: unexplored targets by fewest warm-up picks; among ties, the
    // rand's choice (here always the first of the tied ones).
    let picks: Vec<usize> = (0..6).map(|_| ll(&store, &c, steady(0, 3))).collect();
    assert_eq!(names(&picks, &ids), "a b c a b c");
    // The tie is broken by rand, so concurrent workers spread out.
    let store = MemStore::default();
    assert_eq!(ll(&store, &c, steady(2, 3)), 2);
    assert_eq!(ll(&store, &c, steady(1, 2)), 1);
    // Measured targets are no longer preferred; the unmeasured one is.
    let store = MemStore::default();
    for _ in 0..3 {
        sample(&store, "a", 500);
        sample(&store, "b", 50);
    }
    for _ in 0..5 {
        assert_eq!(ll(&store, &c, steady(0, 1)), 2);
    }
    sample(&store, "c", 900);
    sample(&store, "c", 900);
    assert_eq!(ll(&store, &c, steady(0, 1)), 2, "still under warm-up");
    sample(&store, "c", 900);
    assert_eq!(ll(&store, &c, steady(0, 1)), 1, "all measured: fastest");
}

#[test]
fn lowest_average_wins_with_epsilon_exploration() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("b", 1), ("c", 2)]);
    for _ in 0..3 {
        sample(&store, "a", 300);
        sample(&store, "b", 100);
        sample(&store, "c", 200);
    }
    assert_eq!(ll(&store, &c, steady(0, 1)), 1);
    // Exploring picks are uniform among all candidates.
    for k in 0..3 {
        assert_eq!(ll(&store, &c, exploring(k, 3)), k);
    }
    // Ties: the larger weight, then the earlier.
    let store = MemStore::default();
    for id in ["a", "b", "c"] {
        for _ in 0..3 {
            sample(&store, id, 100);
        }
    }
    assert_eq!(ll(&store, &c, steady(0, 1)), 2);
    let c2 = cands(&[("a", 1), ("b", 1)]);
    assert_eq!(ll(&store, &c2, steady(0, 1)), 0);
    // Over many random picks: ~95 % + 5 %/3 to the fastest.
    let store = MemStore::default();
    for _ in 0..3 {
        sample(&store, "a", 300);
        sample(&store, "b", 100);
        sample(&store, "c", 200);
    }
    let mut rng = Rng::new(11);
    let fastest = (0..30_000)
        .filter(|_| ll(&store, &c, rng.next_u64()) == 1)
        .count();
    let share = fastest as f64 / 30_000.0;
    assert!((share - (0.95 + 0.05 / 3.0)).abs() < 0.01, "{share}");
}

#[test]
fn a_target_without_samples_stops_being_preferred() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("broken", 1)]);
    for _ in 0..3 {
        sample(&store, "a", 400);
    }
    // "broken" gets its warm-up picks, never answers, then is only explored.
    let max = Tuning::default().warmup_max_probes;
    for _ in 0..max {
        assert_eq!(ll(&store, &c, steady(0, 1)), 1);
    }
    for _ in 0..10 {
        assert_eq!(ll(&store, &c, steady(0, 1)), 0);
    }
    assert_eq!(ll(&store, &c, exploring(1, 2)), 1);
    // Nobody measured and warm-up spent: weighted random.
    let store = MemStore::default();
    let c = cands(&[("x", 1), ("y", 3)]);
    for _ in 0..2 * max {
        ll(&store, &c, steady(0, 1));
    }
    // No exploration (roll 99 ‰) and weighted point 0.4 of 4 → x.
    let rand = 0x1999_9999_9999_9999;
    assert!(!explores(rand, 50));
    assert_eq!(ll(&store, &c, rand), 0);
    assert_eq!(ll(&store, &c, u64::MAX), 1);
}

#[test]
fn latency_store_trouble_degrades_gracefully() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("b", 1)]);
    store.broken.set(true);
    // Warm-up pick still made although its probe count cannot be written.
    assert_eq!(ll(&store, &c, steady(0, 2)), 0);
    let t = on_start(Strategy::LowestLatency, &store, POOL, "a", 0);
    assert_eq!(
        on_finish(&store, t, Some(5), 0),
        Err(Contention::StoreFailed)
    );
    // Corrupt values read as no data.
    store.broken.set(false);
    store.set(&format!("{POOL}/latency/a"), b"junk", 0).unwrap();
    assert_eq!(latency(&store, POOL, "a"), None);
    assert_eq!(ll(&store, &c, steady(0, 2)), 0);
}
