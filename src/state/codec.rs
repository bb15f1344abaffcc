//! Fixed-size little-endian encoding of shared-data values.
//!
//! Every value starts with a kind byte (which state wrote it, see
//! [`super::kind`]) and a version byte, then fixed-width little-endian
//! fields. Decoding checks all three (kind, version, exact length) and
//! yields `None` on any mismatch, which the callers treat as
//! "absent/fresh": a corrupted value, a key reused by a different state or a
//! value written by an incompatible build resets that one state instead of
//! being misread — and never panics.

/// A state stored as one shared-data value.
pub(crate) trait Codec: Sized {
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// Appends fields after the header.
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn new(kind: u8, version: u8, len: usize) -> Self {
        Self::with_header(&[kind, version], len)
    }
    /// Passive health's layout, older than kind bytes: the version alone.
    pub(crate) fn versioned(version: u8, len: usize) -> Self {
        Self::with_header(&[version], len)
    }
    fn with_header(header: &[u8], len: usize) -> Self {
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(header);
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
    pub(crate) fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
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
        Self::exact(bytes, &[kind, version], len)
    }
    /// `None` unless `bytes` starts with `kind`, `version`; for values whose
    /// length depends on their content, checked with [`Reader::done`].
    pub(crate) fn open(bytes: &'a [u8], kind: u8, version: u8) -> Option<Self> {
        Self::after(bytes, &[kind, version])
    }
    /// [`Writer::versioned`]'s layout: `None` unless `bytes` is exactly
    /// `len` long and starts with `version`.
    pub(crate) fn versioned(bytes: &'a [u8], version: u8, len: usize) -> Option<Self> {
        Self::exact(bytes, &[version], len)
    }
    fn exact(bytes: &'a [u8], header: &[u8], len: usize) -> Option<Self> {
        if bytes.len() != len {
            return None;
        }
        Self::after(bytes, header)
    }
    fn after(bytes: &'a [u8], header: &[u8]) -> Option<Self> {
        bytes.strip_prefix(header).map(|rest| Reader { rest })
    }
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_at_checked(N)?;
        self.rest = tail;
        <[u8; N]>::try_from(head).ok()
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take()
    }
    /// The next `n` bytes.
    pub(crate) fn slice(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }
    /// Everything not read yet (a value's variable-length tail).
    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
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
