//! Signed requests: `x-llmgw-signature` = lowercase hex of
//! HMAC-SHA256(secret, `METHOD\nPATH\nTIMESTAMP\nNONCE\nhex(SHA-256(body))`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub const TIMESTAMP_HEADER: &str = "x-llmgw-timestamp";
pub const NONCE_HEADER: &str = "x-llmgw-nonce";
pub const SIGNATURE_HEADER: &str = "x-llmgw-signature";

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// The text a signature covers.
pub fn canonical(method: &str, path: &str, timestamp: &str, nonce: &str, body: &[u8]) -> String {
    format!(
        "{method}\n{path}\n{timestamp}\n{nonce}\n{}",
        hex(&Sha256::digest(body))
    )
}

/// HMAC-SHA256 of `message`, lowercase hex.
pub fn sign(secret: &[u8], message: &[u8]) -> String {
    // An HMAC key may have any length: `new_from_slice` cannot fail.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(message);
            hex(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Whether `presented` (hex, either case) is the signature of `message`,
/// compared in constant time.
pub fn verify(secret: &[u8], message: &[u8], presented: &str) -> bool {
    let expected = sign(secret, message);
    !expected.is_empty()
        && super::ct_eq(
            expected.as_bytes(),
            presented.trim().to_ascii_lowercase().as_bytes(),
        )
}

/// A nonce: 16 to 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_4231_vectors() {
        // Test cases 1, 2 and 6 (a key longer than the block).
        assert_eq!(
            sign(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        let _ = unhex;
    }

    #[test]
    fn verify_checks_every_part() {
        let msg = canonical(
            "POST",
            "/v1/chat/completions",
            "1700000000",
            "n0nce-0123456789ab",
            b"{}",
        );
        assert_eq!(
            msg,
            "POST\n/v1/chat/completions\n1700000000\nn0nce-0123456789ab\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let sig = sign(b"secret", msg.as_bytes());
        assert!(verify(b"secret", msg.as_bytes(), &sig));
        assert!(verify(b"secret", msg.as_bytes(), &sig.to_uppercase()));
        assert!(!verify(b"secret2", msg.as_bytes(), &sig));
        assert!(!verify(b"secret", msg.as_bytes(), &sig[..63]));
        assert!(!verify(b"secret", msg.as_bytes(), ""));
        let other = canonical(
            "POST",
            "/v1/chat/completions",
            "1700000000",
            "n0nce-0123456789ab",
            b"{ }",
        );
        assert!(!verify(b"secret", other.as_bytes(), &sig));
    }

    #[test]
    fn nonces() {
        assert!(valid_nonce("abcdefghijklmnop"));
        assert!(valid_nonce(&"A-_9".repeat(16)));
        assert!(!valid_nonce("short"));
        assert!(!valid_nonce(&"a".repeat(65)));
        assert!(!valid_nonce("abcdefghijklmnop/"));
        assert!(!valid_nonce("abcdefghijklmnop\n"));
    }
}
