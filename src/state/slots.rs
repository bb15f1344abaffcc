//! A bounded key space for limits keyed by client-controlled values.
//!
//! Shared-data keys never expire, so a limit per client IP or per header
//! value must not create one key per distinct value: a flood of random values
//! would grow Envoy's memory without bound. Instead each value is hashed to
//! one of `slots` keys, all pre-created at configure time
//! ([`all_slot_keys`]), so at most `slots` keys ever exist per rule.
//!
//! Values that collide share one limiter. That is conservative (a client may
//! be limited earlier than its own traffic alone warrants, never later), and
//! the chance that two given active clients collide is `1/slots`: size
//! `slots` well above the number of concurrently active clients. The hash is
//! fixed and keyless (FNV-1a 64 plus a MurmurHash3 finalizer), stable across
//! workers, processes and builds — std's `RandomState` is seeded per process
//! and would put one client in different slots on different workers.
//! Because it is keyless, a client that controls the value could search for
//! one colliding with another client's slot; where that matters, key on a
//! value the client cannot choose freely (the connection's IP, an
//! authenticated consumer id).

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Separates the rule from the value inside the hash; 0xFF never occurs in
/// UTF-8, so ("ab", "c") and ("a", "bc") hash differently.
const SEPARATOR: u8 = 0xFF;

pub(crate) fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// MurmurHash3's 64-bit finalizer: spreads FNV's weak high-order mixing over
/// every bit before the range reduction.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The stable 64-bit hash of `dynamic_key` under `rule` (the rule is mixed
/// in so that two clients sharing a slot in one rule need not share one in
/// another).
pub fn slot_hash(rule: &str, dynamic_key: &str) -> u64 {
    let h = fnv1a(FNV_OFFSET, rule.as_bytes());
    let h = fnv1a(h, &[SEPARATOR]);
    fmix64(fnv1a(h, dynamic_key.as_bytes()))
}

/// Which of `slots` slots `dynamic_key` falls in, in `0..slots` (`slots` 0
/// is treated as 1). Uses a multiply-shift range reduction, unbiased enough
/// for any slot count a store can hold.
pub fn slot_index(rule: &str, dynamic_key: &str, slots: u32) -> u32 {
    let slots = slots.max(1);
    let wide = u128::from(slot_hash(rule, dynamic_key)) * u128::from(slots);
    // < slots ≤ u32::MAX, so the conversion cannot fail.
    u32::try_from(wide >> 64).unwrap_or(0)
}

/// The shared-data key `"{rule}#{index}"` of the slot `dynamic_key` maps to.
/// `rule` should already be a unique, namespaced prefix (e.g.
/// `"rl:ip:chat"`). The same inputs give the same key in every process.
pub fn slot_key(rule: &str, dynamic_key: &str, slots: u32) -> String {
    format!("{rule}#{}", slot_index(rule, dynamic_key, slots))
}

/// Every key [`slot_key`] can return for `rule`, for pre-creation at
/// configure time.
pub fn all_slot_keys(rule: &str, slots: u32) -> impl Iterator<Item = String> + '_ {
    (0..slots.max(1)).map(move |i| format!("{rule}#{i}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_based_hash_is_stable() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
        // Pinned values (cross-checked with an independent implementation): a
        // change here re-maps every client to another slot on
        // a rolling upgrade, so it must be deliberate.
        assert_eq!(slot_key("rl:ip", "203.0.113.7", 1024), PINNED_KEY);
        assert_eq!(slot_hash("", ""), PINNED_EMPTY_HASH);
        assert_ne!(slot_hash("ab", "c"), slot_hash("a", "bc"));
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
}
