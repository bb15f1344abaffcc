//! Secrets: provider keys encrypted in the configuration (`enc:v1:`), the
//! master keys that open them, request signatures, and the buffers that
//! hold plaintext (wiped when dropped, compared in constant time).

pub mod envelope;
pub mod signature;

pub use envelope::{MasterKeys, OpenError, Purpose};

/// Plaintext secret material: zeroed when dropped.
pub type Secret = zeroize::Zeroizing<String>;

/// Compares two byte strings in time that depends on their lengths only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
