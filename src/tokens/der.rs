//! Just enough DER to read an RSA private key from a PKCS#8 PEM block (RFC
//! 5208 `PrivateKeyInfo` wrapping RFC 8017 `RSAPrivateKey`): the general
//! ASN.1 crates cost the filter ~60 KB for one key read at configure time.

use base64::Engine;

/// The rsaEncryption OID, 1.2.840.113549.1.1.1, as DER content bytes.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The big-endian integers of an RSA key: n, e, d, p, q.
pub struct RsaParts {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub d: Vec<u8>,
    pub p: Vec<u8>,
    pub q: Vec<u8>,
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The next element: (tag, content).
    fn element(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let (bytes, tail) = rest.split_at_checked(n)?;
            rest = tail;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        let (content, tail) = rest.split_at_checked(len)?;
        self.rest = tail;
        Some((tag, content))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        self.element().filter(|(t, _)| *t == tag).map(|(_, c)| c)
    }

    /// A non-negative INTEGER's magnitude (leading zero dropped).
    fn unsigned(&mut self) -> Option<Vec<u8>> {
        let c = self.expect(0x02)?;
        if c.first().is_some_and(|b| b & 0x80 != 0) {
            return None;
        }
        let start = c.iter().position(|b| *b != 0).unwrap_or(c.len());
        Some(c[start..].to_vec())
    }
}

/// The DER bytes of the first `-----BEGIN PRIVATE KEY-----` block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN PRIVATE KEY-----")? + "-----BEGIN PRIVATE KEY-----".len();
    let end = start + pem[start..].find("-----END PRIVATE KEY-----")?;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The RSA key in a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, the form
/// of Google's service-account keys).
pub fn rsa_private_key(pem: &str) -> Option<RsaParts> {
    let der = pem_body(pem)?;
    let mut outer = Reader { rest: &der };
    let mut info = Reader {
        rest: outer.expect(0x30)?,
    };
    info.unsigned()?; // version 0
    let mut algorithm = Reader {
        rest: info.expect(0x30)?,
    };
    if algorithm.expect(0x06)? != RSA_ENCRYPTION {
        return None;
    }
    let mut octets = Reader {
        rest: info.expect(0x04)?,
    };
    let mut key = Reader {
        rest: octets.expect(0x30)?,
    };
    key.unsigned()?; // version 0 (two primes)
    Some(RsaParts {
        n: key.unsigned()?,
        e: key.unsigned()?,
        d: key.unsigned()?,
        p: key.unsigned()?,
        q: key.unsigned()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_test_key_and_refuses_other_bytes() {
        let file: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/vertex/service-account.json"
        ))
        .unwrap();
        let parts = rsa_private_key(file["private_key"].as_str().unwrap()).unwrap();
        assert_eq!(parts.n.len(), 256);
        assert_eq!(parts.e, [1, 0, 1]);
        assert_eq!((parts.p.len(), parts.q.len()), (128, 128));
        assert!(rsa_private_key("nothing").is_none());
        assert!(
            rsa_private_key("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----")
                .is_none()
        );
        // Every truncation of the DER is refused, never a panic.
        let der = pem_body(file["private_key"].as_str().unwrap()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        for cut in (0..der.len()).step_by(7) {
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
                b64.encode(&der[..cut])
            );
            assert!(rsa_private_key(&pem).is_none(), "{cut}");
        }
    }
}
