//! Response compression (`x-mock-encoding`, `--compress`): negotiation from
//! `accept-encoding`, one-shot compression of full bodies, and incremental
//! compression of event streams with a flush after every event.

use std::io::{self, Write};

use bytes::Bytes;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use hyper::header::{HeaderValue, ACCEPT_ENCODING};
use hyper::HeaderMap;

/// Brotli quality and window: fast enough for a mock, and a modest window
/// keeps the per-stream encoder state small.
const BROTLI_QUALITY: u32 = 5;
const BROTLI_LGWIN: u32 = 20;
const BROTLI_BUFFER: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Encoding {
    Gzip,
    /// HTTP "deflate": zlib-wrapped DEFLATE (RFC 9110 §8.4.1.2).
    Deflate,
    Br,
}

impl Encoding {
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Br => "br",
        })
    }
}

/// Value of `x-mock-encoding`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EncodingChoice {
    /// Compress as a real provider does: per the request's `accept-encoding`.
    Auto,
    /// Never compress.
    Identity,
    /// Always use this encoding, whatever the client accepts.
    Force(Encoding),
}

impl EncodingChoice {
    pub fn parse(s: &str) -> Option<EncodingChoice> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(EncodingChoice::Auto),
            "identity" => Some(EncodingChoice::Identity),
            "gzip" => Some(EncodingChoice::Force(Encoding::Gzip)),
            "deflate" => Some(EncodingChoice::Force(Encoding::Deflate)),
            "br" => Some(EncodingChoice::Force(Encoding::Br)),
            _ => None,
        }
    }

    /// The encoding to answer with, if any.
    pub fn resolve(self, headers: &HeaderMap) -> Option<Encoding> {
        match self {
            EncodingChoice::Identity => None,
            EncodingChoice::Force(e) => Some(e),
            EncodingChoice::Auto => negotiate(headers),
        }
    }
}

/// Pick an encoding from `accept-encoding`: the highest q-value among gzip, br
/// and deflate (`*` stands for any not named), ties going to gzip, then br,
/// then deflate — the OpenAI API answers gzip to the openai SDK's
/// `accept-encoding: gzip, deflate`. q=0 refuses an encoding.
pub fn negotiate(headers: &HeaderMap) -> Option<Encoding> {
    // q-values in thousandths; None = not mentioned.
    let mut gzip = None;
    let mut br = None;
    let mut deflate = None;
    let mut star = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .map(|q| (q.clamp(0.0, 1.0) * 1000.0) as u32)
                .unwrap_or(1000);
            match name.as_str() {
                "gzip" | "x-gzip" => gzip = Some(q),
                "br" => br = Some(q),
                "deflate" => deflate = Some(q),
                "*" => star = Some(q),
                _ => {}
            }
        }
    }
    let mut best: Option<(u32, Encoding)> = None;
    for (q, enc) in [
        (gzip, Encoding::Gzip),
        (br, Encoding::Br),
        (deflate, Encoding::Deflate),
    ] {
        let q = q.or(star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, enc));
        }
    }
    best.map(|(_, e)| e)
}

/// Compress a whole body.
pub fn compress(enc: Encoding, data: &[u8]) -> io::Result<Vec<u8>> {
    let out = Vec::with_capacity(data.len() / 2 + 64);
    match enc {
        Encoding::Gzip => {
            let mut e = GzEncoder::new(out, Compression::default());
            e.write_all(data)?;
            e.finish()
        }
        Encoding::Deflate => {
            let mut e = ZlibEncoder::new(out, Compression::default());
            e.write_all(data)?;
            e.finish()
        }
        Encoding::Br => {
            let mut e =
                brotli::CompressorWriter::new(out, BROTLI_BUFFER, BROTLI_QUALITY, BROTLI_LGWIN);
            e.write_all(data)?;
            // `into_inner` finishes the brotli stream.
            Ok(e.into_inner())
        }
    }
}

/// Compresses an event stream piece by piece; every piece is flushed so the
/// client can decode each event as soon as it arrives.
pub enum StreamEncoder {
    Gzip(GzEncoder<Vec<u8>>),
    Deflate(ZlibEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl StreamEncoder {
    pub fn new(enc: Encoding) -> StreamEncoder {
        match enc {
            Encoding::Gzip => {
                StreamEncoder::Gzip(GzEncoder::new(Vec::new(), Compression::default()))
            }
            Encoding::Deflate => {
                StreamEncoder::Deflate(ZlibEncoder::new(Vec::new(), Compression::default()))
            }
            Encoding::Br => StreamEncoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_LGWIN,
            ))),
        }
    }

    /// Compress `data` and flush (gzip/deflate: a sync flush; brotli: a
    /// flush operation); returns the bytes produced so far.
    pub fn encode(&mut self, data: &[u8]) -> io::Result<Bytes> {
        // The encoders write into their Vec; taking it after a flush hands
        // out everything produced so far (flate2 documents this pattern).
        let out = match self {
            StreamEncoder::Gzip(e) => {
                e.write_all(data)?;
                e.flush()?;
                std::mem::take(e.get_mut())
            }
            StreamEncoder::Deflate(e) => {
                e.write_all(data)?;
                e.flush()?;
                std::mem::take(e.get_mut())
            }
            StreamEncoder::Br(e) => {
                e.write_all(data)?;
                e.flush()?;
                std::mem::take(e.get_mut())
            }
        };
        Ok(Bytes::from(out))
    }

    /// End the compressed stream (gzip trailer, final brotli block, …).
    pub fn finish(self) -> io::Result<Bytes> {
        let out = match self {
            StreamEncoder::Gzip(e) => e.finish()?,
            StreamEncoder::Deflate(e) => e.finish()?,
            StreamEncoder::Br(e) => e.into_inner(),
        };
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&HeaderMap::new()), None);
        assert_eq!(negotiate(&accept("gzip, deflate")), Some(Encoding::Gzip));
        assert_eq!(
            negotiate(&accept("br, gzip, deflate")),
            Some(Encoding::Gzip)
        );
        assert_eq!(negotiate(&accept("deflate, br")), Some(Encoding::Br));
        assert_eq!(negotiate(&accept("deflate")), Some(Encoding::Deflate));
        assert_eq!(negotiate(&accept("gzip;q=0.5, br")), Some(Encoding::Br));
        assert_eq!(
            negotiate(&accept("gzip;q=0, deflate")),
            Some(Encoding::Deflate)
        );
        assert_eq!(negotiate(&accept("identity")), None);
        assert_eq!(negotiate(&accept("*")), Some(Encoding::Gzip));
        assert_eq!(negotiate(&accept("gzip;q=0, *;q=0.1")), Some(Encoding::Br));
        assert_eq!(negotiate(&accept("zstd")), None);
    }

    #[test]
    fn stream_pieces_decode_incrementally() {
        let mut e = StreamEncoder::new(Encoding::Gzip);
        let a = e.encode(b"data: one\n\n").unwrap();
        let b = e.encode(b"data: two\n\n").unwrap();
        let c = e.finish().unwrap();
        let all = [a.as_ref(), b.as_ref(), c.as_ref()].concat();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&all[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "data: one\n\ndata: two\n\n");
    }
}
