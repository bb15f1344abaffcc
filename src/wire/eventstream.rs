//! The AWS event-stream framing (`application/vnd.amazon.eventstream`),
//! which Amazon Bedrock streams in: binary messages of a prelude (total
//! length, headers length, CRC-32 of both), typed headers, a payload and a
//! CRC-32 of the whole message. Decoded incrementally from any chunk split,
//! with the buffer capped at one message; encoded for the mock and tests.

use flate2::Crc;

/// Prelude (12 bytes) and message CRC (4).
const OVERHEAD: usize = 16;
/// AWS's own limits: 16 MiB a message, 128 KiB of headers.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
const MAX_HEADERS: usize = 128 * 1024;

/// A header value, by the format's type tags 0–9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A string header (`:event-type`, `:message-type`, `:exception-type`,
    /// `:content-type`).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why a stream cannot be read on. The decoder stops at the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    PreludeCrc,
    MessageCrc,
    /// A length that no message can have (or over the caps).
    Length(usize),
    /// A header that does not parse (its byte offset in the message).
    Header(usize),
    /// The stream ended inside a message (bytes held).
    Truncated(usize),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PreludeCrc => write!(f, "event-stream prelude CRC mismatch"),
            Self::MessageCrc => write!(f, "event-stream message CRC mismatch"),
            Self::Length(n) => write!(f, "event-stream message length {n} is not valid"),
            Self::Header(at) => write!(f, "event-stream header at byte {at} is not valid"),
            Self::Truncated(n) => write!(f, "event stream ended inside a message ({n} bytes)"),
        }
    }
}

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = Crc::new();
    for p in parts {
        crc.update(p);
    }
    crc.sum()
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Incremental decoder: `feed` any chunks, `finish` at the end.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already decoded (compacted lazily).
    start: usize,
    failed: Option<FrameError>,
    /// Largest message accepted (and so held).
    max_message: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::with_max(MAX_MESSAGE)
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder refusing messages over `max_message` bytes (at least the
    /// 16-byte minimum, at most AWS's 16 MiB).
    pub fn with_max(max_message: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            failed: None,
            max_message: max_message.clamp(OVERHEAD, MAX_MESSAGE),
        }
    }

    /// Bytes held for an incomplete message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends to `out` every message `chunk` completes, in order; on an
    /// error, the messages before it are in `out` (and the error sticks).
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Message>) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(chunk);
        loop {
            match self.next() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => {
                    self.failed = Some(e.clone());
                    self.buf = Vec::new();
                    self.start = 0;
                    return Err(e);
                }
            }
        }
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(())
    }

    /// `feed` collecting into a new vector (tests, one-shot callers).
    pub fn feed_all(&mut self, chunk: &[u8]) -> Result<Vec<Message>, FrameError> {
        let mut out = Vec::new();
        self.feed(chunk, &mut out).map(|()| out)
    }

    /// The stream ended: an error if it ended inside a message.
    pub fn finish(&mut self) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.buffered() {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }

    fn next(&mut self) -> Result<Option<Message>, FrameError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 12 {
            return Ok(None);
        }
        let total = be32(&rest[0..4]);
        let headers_len = be32(&rest[4..8]);
        // The prelude is checked before its lengths are trusted.
        if crc32(&[&rest[0..8]]) != be32(&rest[8..12]) as u32 {
            return Err(FrameError::PreludeCrc);
        }
        if !(OVERHEAD..=self.max_message).contains(&total)
            || headers_len > MAX_HEADERS
            || headers_len > total - OVERHEAD
        {
            return Err(FrameError::Length(total));
        }
        if rest.len() < total {
            return Ok(None);
        }
        let message = &rest[..total];
        let (body, crc) = message.split_at(total - 4);
        if crc32(&[body]) != be32(crc) as u32 {
            return Err(FrameError::MessageCrc);
        }
        let headers = parse_headers(&body[12..12 + headers_len])?;
        let payload = body[12 + headers_len..].to_vec();
        self.start += total;
        Ok(Some(Message { headers, payload }))
    }
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let size = b.len();
    let mut out = Vec::new();
    let bad = |rest: &[u8]| FrameError::Header(12 + size - rest.len());
    while !b.is_empty() {
        let at = b;
        let name_len = usize::from(b[0]);
        let name = b.get(1..1 + name_len).ok_or_else(|| bad(at))?;
        let name = std::str::from_utf8(name).map_err(|_| bad(at))?;
        if name.is_empty() {
            return Err(bad(at));
        }
        let tag = *b.get(1 + name_len).ok_or_else(|| bad(at))?;
        b = &b[2 + name_len..];
        let take = |b: &mut &[u8], n: usize| -> Option<Vec<u8>> {
            let v = b.get(..n)?.to_vec();
            *b = &b[n..];
            Some(v)
        };
        let fixed = |b: &mut &[u8], n: usize| take(b, n).ok_or_else(|| bad(at));
        let value = match tag {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(fixed(&mut b, 1)?[0] as i8),
            3 => {
                let v = fixed(&mut b, 2)?;
                HeaderValue::Short(i16::from_be_bytes([v[0], v[1]]))
            }
            4 => {
                let v = fixed(&mut b, 4)?;
                HeaderValue::Int(i32::from_be_bytes([v[0], v[1], v[2], v[3]]))
            }
            5 | 8 => {
                let v = fixed(&mut b, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(&v);
                let n = i64::from_be_bytes(a);
                if tag == 5 {
                    HeaderValue::Long(n)
                } else {
                    HeaderValue::Timestamp(n)
                }
            }
            6 | 7 => {
                let len = fixed(&mut b, 2)?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let v = fixed(&mut b, len)?;
                if tag == 6 {
                    HeaderValue::Bytes(v)
                } else {
                    HeaderValue::String(String::from_utf8(v).map_err(|_| bad(at))?)
                }
            }
            9 => {
                let v = fixed(&mut b, 16)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(&v);
                HeaderValue::Uuid(a)
            }
            _ => return Err(bad(at)),
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

fn put_header(out: &mut Vec<u8>, name: &str, value: &HeaderValue) {
    let name = &name.as_bytes()[..name.len().min(255)];
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    let var = |out: &mut Vec<u8>, tag: u8, v: &[u8]| {
        let v = &v[..v.len().min(usize::from(u16::MAX))];
        out.push(tag);
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(v);
    };
    match value {
        HeaderValue::Bool(true) => out.push(0),
        HeaderValue::Bool(false) => out.push(1),
        HeaderValue::Byte(v) => {
            out.push(2);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Short(v) => {
            out.push(3);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Int(v) => {
            out.push(4);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Long(v) => {
            out.push(5);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Bytes(v) => var(out, 6, v),
        HeaderValue::String(v) => var(out, 7, v.as_bytes()),
        HeaderValue::Timestamp(v) => {
            out.push(8);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Uuid(v) => {
            out.push(9);
            out.extend_from_slice(v);
        }
    }
}

/// One message on the wire (names over 255 bytes and byte or string values
/// over 65,535 are cut to fit the format).
pub fn encode(message: &Message) -> Vec<u8> {
    let mut headers = Vec::new();
    for (name, value) in &message.headers {
        put_header(&mut headers, name, value);
    }
    let total = OVERHEAD + headers.len() + message.payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&[&out]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&message.payload);
    let crc = crc32(&[&out]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A Bedrock-style event: `:message-type event`, its `:event-type`, JSON.
pub fn event(event_type: &str, json: &[u8]) -> Message {
    Message {
        headers: vec![
            (":event-type".into(), HeaderValue::String(event_type.into())),
            (
                ":content-type".into(),
                HeaderValue::String("application/json".into()),
            ),
            (":message-type".into(), HeaderValue::String("event".into())),
        ],
        payload: json.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Message> {
        let mut every = Message {
            headers: vec![
                ("t".into(), HeaderValue::Bool(true)),
                ("f".into(), HeaderValue::Bool(false)),
                ("b".into(), HeaderValue::Byte(-7)),
                ("s".into(), HeaderValue::Short(-300)),
                ("i".into(), HeaderValue::Int(70_000)),
                ("l".into(), HeaderValue::Long(-5_000_000_000)),
                ("bytes".into(), HeaderValue::Bytes(vec![0, 255, 10])),
                ("str".into(), HeaderValue::String("héllo".into())),
                ("ts".into(), HeaderValue::Timestamp(1_700_000_000_000)),
                ("id".into(), HeaderValue::Uuid([7; 16])),
            ],
            payload: b"{\"x\":1}".to_vec(),
        };
        every.payload.extend(std::iter::repeat_n(b'z', 300));
        vec![
            event("messageStart", br#"{"role":"assistant"}"#),
            every,
            Message::default(),
            event(
                "contentBlockDelta",
                r#"{"delta":{"text":"你好"}}"#.as_bytes(),
            ),
        ]
    }

    fn wire(messages: &[Message]) -> Vec<u8> {
        messages.iter().flat_map(encode).collect()
    }

    /// The empty message of AWS's event-stream test suite
    /// (aws-c-event-stream): no headers, no payload.
    #[test]
    fn the_empty_message_matches_awss_vector() {
        let expected = [
            0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98,
            0xc8, 0xff,
        ];
        assert_eq!(encode(&Message::default()), expected);
        let mut d = Decoder::new();
        assert_eq!(d.feed_all(&expected).unwrap(), vec![Message::default()]);
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn every_split_and_every_byte_at_a_time_decode_the_same() {
        let messages = sample();
        let bytes = wire(&messages);
        for cut in 0..=bytes.len() {
            let mut d = Decoder::new();
            let mut got = d.feed_all(&bytes[..cut]).unwrap();
            got.extend(d.feed_all(&bytes[cut..]).unwrap());
            assert_eq!(got, messages, "cut at {cut}");
            assert_eq!(d.finish(), Ok(()));
        }
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in &bytes {
            got.extend(d.feed_all(std::slice::from_ref(b)).unwrap());
            assert!(d.buffered() <= bytes.len());
        }
        assert_eq!(got, messages);
        assert_eq!(messages[0].header_str(":event-type"), Some("messageStart"));
    }

    #[test]
    fn any_flipped_bit_is_an_error_never_a_wrong_message() {
        let messages = sample();
        let bytes = wire(&messages[..2]);
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            let mut d = Decoder::new();
            let result = d.feed_all(&bad).and_then(|m| d.finish().map(|_| m));
            match result {
                Err(_) => {}
                Ok(m) => panic!("flipped byte {at} decoded as {m:?}"),
            }
        }
    }

    #[test]
    fn messages_before_an_error_are_kept_whatever_the_split() {
        let messages = sample();
        let mut bytes = wire(&messages[..2]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // the second message's CRC
        for cut in 0..=bytes.len() {
            let mut d = Decoder::new();
            let mut out = Vec::new();
            let result = d
                .feed(&bytes[..cut], &mut out)
                .and_then(|()| d.feed(&bytes[cut..], &mut out));
            assert_eq!(result, Err(FrameError::MessageCrc), "cut at {cut}");
            assert_eq!(out, messages[..1], "cut at {cut}");
        }
    }

    #[test]
    fn lengths_and_truncation_are_refused_before_buffering() {
        // A prelude claiming 1 GiB (with a valid CRC) fails at once.
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&(1u32 << 30).to_be_bytes());
        prelude.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32(&[&prelude]);
        prelude.extend_from_slice(&crc.to_be_bytes());
        let mut d = Decoder::new();
        assert_eq!(d.feed_all(&prelude), Err(FrameError::Length(1 << 30)));
        // And the decoder stays failed.
        assert_eq!(
            d.feed_all(&encode(&Message::default())),
            Err(FrameError::Length(1 << 30))
        );
        // Headers longer than the message.
        let mut p = Vec::new();
        p.extend_from_slice(&20u32.to_be_bytes());
        p.extend_from_slice(&5u32.to_be_bytes());
        let crc = crc32(&[&p]);
        p.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(Decoder::new().feed_all(&p), Err(FrameError::Length(20)));
        // The stream ends inside a message.
        let bytes = encode(&sample()[0]);
        let mut d = Decoder::new();
        assert!(d.feed_all(&bytes[..bytes.len() - 1]).unwrap().is_empty());
        assert_eq!(d.finish(), Err(FrameError::Truncated(bytes.len() - 1)));
    }

    #[test]
    fn bad_headers_are_refused() {
        // An unknown type tag, a truncated value, a name that is not UTF-8.
        for headers in [
            vec![1, b'a', 42],
            vec![1, b'a', 4, 0, 0],
            vec![1, 0xff, 0],
            vec![0, 0],
            vec![1, b'a', 7, 0, 2, 0xc3, 0x28],
        ] {
            let total = OVERHEAD + headers.len();
            let mut m = Vec::new();
            m.extend_from_slice(&(total as u32).to_be_bytes());
            m.extend_from_slice(&(headers.len() as u32).to_be_bytes());
            let crc = crc32(&[&m]);
            m.extend_from_slice(&crc.to_be_bytes());
            m.extend_from_slice(&headers);
            let crc = crc32(&[&m]);
            m.extend_from_slice(&crc.to_be_bytes());
            assert!(
                matches!(Decoder::new().feed_all(&m), Err(FrameError::Header(_))),
                "{headers:?}"
            );
        }
    }
}
