//! Strategy state in shared data: a small versioned little-endian encoding
//! for `ratelimit::Codec` (variable-length, for round-robin's weights), read
//! and updated through `ratelimit::cas_update` like every other shared
//! state. Decoding checks kind, version and exact length, so a corrupt or
//! foreign value reads as fresh, never misread and never a panic.

/// Kind bytes (the rate limiter uses 0xA1, 0xB1, 0xC1).
pub(super) const KIND_ROUND_ROBIN: u8 = 0xD1;
pub(super) const KIND_IN_FLIGHT: u8 = 0xD2;
pub(super) const KIND_LATENCY: u8 = 0xD3;

/// Appends fields after the kind and version bytes.
pub(super) struct Writer(Vec<u8>);

impl Writer {
    pub(super) fn new(kind: u8, version: u8, capacity: usize) -> Self {
        let mut v = Vec::with_capacity(capacity);
        v.push(kind);
        v.push(version);
        Self(v)
    }
    pub(super) fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(super) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(super) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(super) fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(super) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads fields after a verified header; every read is bounds-checked.
pub(super) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// `None` unless `bytes` starts with `kind`, `version`.
    pub(super) fn new(bytes: &'a [u8], kind: u8, version: u8) -> Option<Self> {
        match bytes {
            [k, v, rest @ ..] if *k == kind && *v == version => Some(Self(rest)),
            _ => None,
        }
    }
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.0.split_at_checked(N)?;
        self.0 = tail;
        <[u8; N]>::try_from(head).ok()
    }
    pub(super) fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    pub(super) fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
    /// Every byte was consumed (the value had exactly the expected length).
    pub(super) fn done(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::SharedStore;
    use crate::ratelimit::{cas_update, read_state as read, Codec, Contention, Step};
    use crate::route_select::testutil::FlakyStore;

    #[derive(Debug, PartialEq, Default)]
    struct Counter(u32);

    impl Codec for Counter {
        fn encode(&self) -> Vec<u8> {
            Writer::new(0xEE, 1, 6).u32(self.0).finish()
        }
        fn decode(bytes: &[u8]) -> Option<Self> {
            let mut r = Reader::new(bytes, 0xEE, 1)?;
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
