use super::*;
use crate::route_select::strategy::round_robin::RR_KEEP;

fn rr(store: &dyn SharedStore, c: &[Candidate<'_>], rand: u64) -> usize {
    pick(Strategy::RoundRobin, store, POOL, c, rand, 0).unwrap()
}

#[test]
fn smooth_weighted_round_robin_sequence() {
    let store = MemStore::default();
    let ids = ["a", "b", "c"];
    let c = cands(&[("a", 5), ("b", 1), ("c", 1)]);
    let picks: Vec<usize> = (0..14).map(|i| rr(&store, &c, i)).collect();
    assert_eq!(names(&picks, &ids), "a a b a c a a a a b a c a a");
    // One shared value for the whole pool.
    let keys = store.keys();
    assert_eq!(keys, vec![format!("{POOL}/rr")]);

    let store = MemStore::default();
    let c = cands(&[("x", 1), ("y", 1), ("z", 1)]);
    let picks: Vec<usize> = (0..6).map(|_| rr(&store, &c, 0)).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn workers_share_one_sequence() {
    // Two "workers" (different rands, same store) interleave: together
    // they walk the single sequence.
    let store = MemStore::default();
    let ids = ["a", "b", "c"];
    let c = cands(&[("a", 5), ("b", 1), ("c", 1)]);
    let mut w1 = Rng::new(1);
    let mut w2 = Rng::new(2);
    let picks: Vec<usize> = (0..7)
        .map(|i| {
            let r = if i % 2 == 0 {
                w1.next_u64()
            } else {
                w2.next_u64()
            };
            rr(&store, &c, r)
        })
        .collect();
    assert_eq!(names(&picks, &ids), "a a b a c a a");
    // A different pool has its own sequence.
    let other = pick(Strategy::RoundRobin, &store, "llmgw/pool/other", &c, 0, 0);
    assert_eq!(other, Some(0));
}

#[test]
fn ejected_target_rejoins_the_sequence() {
    let store = MemStore::default();
    let ids = ["a", "b", "c"];
    let all = cands(&[("a", 1), ("b", 1), ("c", 1)]);
    let without_b: Vec<Candidate> = all.iter().copied().filter(|c| c.id != "b").collect();
    let mut picks = vec![rr(&store, &all, 0)];
    picks.extend((0..4).map(|_| rr(&store, &without_b, 0)));
    picks.extend((0..6).map(|_| rr(&store, &all, 0)));
    // nginx's rule, current weights (a, b, c) after each pick:
    // a(-2,1,1) | b out: c(-1,1,0) c(0,1,-1) a(-1,1,0) c(0,1,-1) |
    // b back: b(1,-1,0) a(-1,0,1) c(0,1,-1) b(1,-1,0) a(-1,0,1) c(0,1,-1)
    assert_eq!(names(&picks, &ids), "a c c a c b a c b a c");
    // Positions do not matter, ids do: the same targets listed in another
    // order (as after a config edit) continue the same state.
    let reordered = [
        Candidate::new(2, 1, "c"),
        Candidate::new(0, 1, "a"),
        Candidate::new(1, 1, "b"),
    ];
    let next: Vec<usize> = (0..3).map(|_| rr(&store, &reordered, 0)).collect();
    let mut sorted = next.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2], "{next:?}");
}

#[test]
fn round_robin_long_run_matches_weights_exactly() {
    let store = MemStore::default();
    let c = cands(&[("a", 3), ("b", 2), ("c", 0), ("d", 5)]);
    let mut counts = [0u32; 4];
    for _ in 0..1000 {
        counts[rr(&store, &c, 0)] += 1;
    }
    assert_eq!(counts, [300, 200, 0, 500]);
}

#[test]
fn round_robin_falls_back_to_weighted_random_on_contention() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("b", 1)]);
    assert_eq!(rr(&store, &c, u64::MAX), 0, "first pick of the sequence");
    store.always_mismatch.set(true);
    // Weighted random: rand 0 → a, rand MAX → b.
    assert_eq!(rr(&store, &c, 0), 0);
    assert_eq!(rr(&store, &c, u64::MAX), 1);
    // Bounded: 1 + cas_retries attempts per pick.
    let before = store.set_calls.get();
    rr(&store, &c, 0);
    assert_eq!(
        store.set_calls.get() - before,
        u64::from(1 + Tuning::default().cas_retries)
    );
    store.always_mismatch.set(false);
    store.broken.set(true);
    assert_eq!(rr(&store, &c, u64::MAX), 1);
    store.broken.set(false);
    // Recovers where it was: b is next.
    assert_eq!(rr(&store, &c, 0), 1);
    // A couple of lost races are retried, not fallen back from.
    store.fail_next.set(2);
    assert_eq!(rr(&store, &c, u64::MAX), 0);
}

#[test]
fn round_robin_state_stays_bounded_and_corrupt_state_resets() {
    let store = MemStore::default();
    let ids: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
    for pair in ids.chunks(2) {
        let c = [
            Candidate::new(0, 1, &pair[0]),
            Candidate::new(1, 1, &pair[1]),
        ];
        rr(&store, &c, 0);
    }
    let key = format!("{POOL}/rr");
    let state: RoundRobin = read_state(&store, &key).unwrap();
    assert!(
        state.entries.len() <= RR_KEEP + 2,
        "{}",
        state.entries.len()
    );
    store.set(&key, b"\xD1\x01\xFF\xFF", 0).unwrap();
    let c = cands(&[("a", 2), ("b", 1)]);
    let picks: Vec<usize> = (0..3).map(|_| rr(&store, &c, 0)).collect();
    assert_eq!(picks, [0, 1, 0]);
}

#[test]
fn round_robin_codec_round_trips() {
    let s = RoundRobin {
        entries: vec![(1, -5), (u64::MAX, i64::MAX), (7, i64::MIN)],
    };
    assert_eq!(RoundRobin::decode(&s.encode()), Some(s.clone()));
    let bytes = s.encode();
    assert_eq!(RoundRobin::decode(&bytes[..bytes.len() - 1]), None);
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(RoundRobin::decode(&longer), None);
    assert_eq!(
        RoundRobin::decode(&RoundRobin::default().encode()),
        Some(RoundRobin::default())
    );
}
