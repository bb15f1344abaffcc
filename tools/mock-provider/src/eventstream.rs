//! AWS event-stream framing (`application/vnd.amazon.eventstream`), as the
//! Bedrock Runtime streaming operations send it.
//!
//! A message is: total length (u32 BE), headers length (u32 BE), CRC32 of
//! those 8 prelude bytes, the headers, the payload, and the CRC32 of
//! everything before it. A header is a 1-byte name length, the name, a
//! 1-byte value type (7 = string), a u16 BE value length and the value.

use bytes::Bytes;

pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
/// Header value type of a UTF-8 string.
const TYPE_STRING: u8 = 7;

pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// One message with string headers. Names longer than 255 bytes or values
/// longer than 65535 bytes are cut (never the case for the mock's headers).
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut hdr = Vec::with_capacity(headers.len() * 40);
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(255)];
        let value = &value.as_bytes()[..value.len().min(usize::from(u16::MAX))];
        hdr.push(name.len() as u8);
        hdr.extend_from_slice(name);
        hdr.push(TYPE_STRING);
        hdr.extend_from_slice(&(value.len() as u16).to_be_bytes());
        hdr.extend_from_slice(value);
    }
    let total = 12 + hdr.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(hdr.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Bytes::from(out)
}

/// An `event` message of type `event_type` with a JSON payload.
pub fn event(event_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// An `event` message without the `:event-type` header (a malformed event).
pub fn untyped_event(payload: &[u8]) -> Bytes {
    message(
        &[
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// An `exception` message (a modeled error sent mid-stream).
pub fn exception(exception_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub type Decoded = (Vec<(String, String)>, Vec<u8>);

    /// Decoded messages: headers and payload; panics on bad framing or CRCs.
    pub fn decode_all(mut b: &[u8]) -> Vec<Decoded> {
        let mut out = Vec::new();
        while !b.is_empty() {
            assert!(b.len() >= 16, "short message");
            let be = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
            let total = be(&b[0..4]) as usize;
            let hlen = be(&b[4..8]) as usize;
            assert_eq!(be(&b[8..12]), crc32(&b[..8]), "prelude CRC");
            assert_eq!(
                be(&b[total - 4..total]),
                crc32(&b[..total - 4]),
                "message CRC"
            );
            let mut h = &b[12..12 + hlen];
            let mut headers = Vec::new();
            while !h.is_empty() {
                let n = h[0] as usize;
                let name = String::from_utf8(h[1..1 + n].to_vec()).unwrap_or_default();
                assert_eq!(h[1 + n], TYPE_STRING);
                let vlen = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
                let value = String::from_utf8(h[4 + n..4 + n + vlen].to_vec()).unwrap_or_default();
                headers.push((name, value));
                h = &h[4 + n + vlen..];
            }
            out.push((headers, b[12 + hlen..total - 4].to_vec()));
            b = &b[total..];
        }
        out
    }

    #[test]
    fn crc32_is_the_zlib_polynomial() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn empty_message_matches_the_reference_encoding() {
        // The smallest valid message: 16 bytes, no headers, no payload.
        let m = message(&[], b"");
        assert_eq!(
            &m[..],
            &[0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff]
        );
    }

    #[test]
    fn round_trip() {
        let mut all = event("messageStart", br#"{"role":"assistant"}"#).to_vec();
        all.extend_from_slice(&exception("throttlingException", br#"{"message":"x"}"#));
        let msgs = decode_all(&all);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            msgs[0].0,
            vec![
                (":event-type".to_string(), "messageStart".to_string()),
                (":content-type".to_string(), "application/json".to_string()),
                (":message-type".to_string(), "event".to_string()),
            ]
        );
        assert_eq!(msgs[0].1, br#"{"role":"assistant"}"#);
        assert_eq!(msgs[1].0[0].1, "throttlingException");
        assert_eq!(msgs[1].0[2].1, "exception");
    }
}
