//! Fixed-size little-endian encoding of limiter states.
//!
//! Every value starts with a kind byte (which limiter wrote it) and a version
//! byte, then fixed-width little-endian fields. Decoding checks all three
//! (kind, version, exact length) and yields `None` on any mismatch, which the
//! limiters treat as "absent/fresh": a corrupted value, a key reused by a
//! different limiter or a state written by an incompatible build resets that
//! one limiter instead of being misread — and never panics.

/// Kind byte of a token-bucket state.
pub(crate) const KIND_BUCKET: u8 = 0xB1;
/// Kind byte of a calendar-quota state.
pub(crate) const KIND_QUOTA: u8 = 0xC1;
/// Kind byte of an adaptive-concurrency state.
pub(crate) const KIND_ADAPTIVE: u8 = 0xA1;

/// A limiter state stored as one shared-data value.
pub(crate) trait Codec: Sized {
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// Appends fields after the header.
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn new(kind: u8, version: u8, len: usize) -> Self {
        let mut buf = Vec::with_capacity(len);
        buf.push(kind);
        buf.push(version);
        Writer(buf)
    }
    pub(crate) fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads fields after a verified header; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// `None` unless `bytes` is exactly `len` long and starts with
    /// `kind`, `version`.
    pub(crate) fn new(bytes: &'a [u8], kind: u8, version: u8, len: usize) -> Option<Self> {
        if bytes.len() != len {
            return None;
        }
        Self::open(bytes, kind, version)
    }
    /// `None` unless `bytes` starts with `kind`, `version`; for values whose
    /// length depends on their content, checked with [`Reader::done`].
    pub(crate) fn open(bytes: &'a [u8], kind: u8, version: u8) -> Option<Self> {
        match bytes {
            [k, v, rest @ ..] if *k == kind && *v == version => Some(Reader { rest }),
            _ => None,
        }
    }
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_at_checked(N)?;
        self.rest = tail;
        <[u8; N]>::try_from(head).ok()
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
    /// Every byte was consumed (the value had exactly the expected length).
    pub(crate) fn done(&self) -> bool {
        self.rest.is_empty()
    }
}
