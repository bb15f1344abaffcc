//! Strategy state in shared data: kind bytes of its values, which use the
//! rate limiter's versioned little-endian encoding (`ratelimit::Writer`,
//! `Reader::open` for round-robin's variable length) and are read and
//! updated through `ratelimit::cas_update` like every other shared state.
//! Decoding checks kind, version and exact length, so a corrupt or foreign
//! value reads as fresh, never misread and never a panic.

/// Kind bytes (the rate limiter uses 0xA1, 0xB1, 0xC1).
pub(super) const KIND_ROUND_ROBIN: u8 = 0xD1;
pub(super) const KIND_IN_FLIGHT: u8 = 0xD2;
pub(super) const KIND_LATENCY: u8 = 0xD3;

#[cfg(test)]
mod tests {
    use crate::host::SharedStore;
    use crate::ratelimit::{
        cas_update, read_state as read, Codec, Contention, Reader, Step, Writer,
    };
    use crate::route_select::testutil::FlakyStore;

    #[derive(Debug, PartialEq, Default)]
    struct Counter(u32);

    impl Codec for Counter {
        fn encode(&self) -> Vec<u8> {
            Writer::new(0xEE, 1, 6).u32(self.0).finish()
        }
        fn decode(bytes: &[u8]) -> Option<Self> {
            let mut r = Reader::open(bytes, 0xEE, 1)?;
            let v = r.u32()?;
            r.done().then_some(Counter(v))
        }
    }

    fn bump(store: &dyn SharedStore, retries: u32) -> Result<u32, Contention> {
        cas_update(store, "k", retries, Counter::default, |c| {
            Step::Write(Counter(c.0 + 1), c.0 + 1)
        })
    }

    #[test]
    fn creates_then_updates_and_retries_on_mismatch() {
        let s = FlakyStore::default();
        assert_eq!(bump(&s, 0), Ok(1));
        assert_eq!(bump(&s, 0), Ok(2));
        s.fail_next.set(2);
        assert_eq!(bump(&s, 2), Ok(3));
        s.fail_next.set(3);
        assert_eq!(bump(&s, 2), Err(Contention::RetriesExhausted));
        assert_eq!(read::<_, Counter>(&s, "k"), Some(Counter(3)));
        s.broken.set(true);
        assert_eq!(bump(&s, 2), Err(Contention::StoreFailed));
    }

    #[test]
    fn undecodable_values_read_as_fresh() {
        let s = FlakyStore::default();
        for junk in [
            &b""[..],
            b"\xEE",
            b"\xEE\x01\x01",
            b"\xEE\x02\0\0\0\0",
            b"\xEE\x01\0\0\0\0\0",
        ] {
            s.inner.set("k", junk, 0).unwrap();
            assert_eq!(read::<_, Counter>(&s, "k"), None, "{junk:?}");
            assert_eq!(bump(&s, 0), Ok(1));
        }
    }

    #[test]
    fn keep_writes_nothing() {
        let s = FlakyStore::default();
        let r: Result<u8, _> = cas_update(&s, "k", 0, Counter::default, |_| Step::Keep(7));
        assert_eq!(r, Ok(7));
        // Only the creation was written.
        assert_eq!(s.writes.get(), 1);
    }
}
