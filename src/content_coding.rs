//! Response bodies a provider compressed although the gateway asked for
//! `identity`: decoded incrementally so translation, usage accounting,
//! validation and key scrubbing always read plain bytes.
//!
//! Envoy's decompressor filter cannot run among the router's upstream
//! filters (where failover attempts are translated) and is absent when the
//! filter is attached to an Istio sidecar, so the filter decodes itself.

use std::io::Write;

/// Most bytes one body chunk may expand to: a guard against decompression
/// bombs (a few KiB of gzip can expand to gigabytes).
pub const MAX_EXPANSION_PER_CHUNK: usize = 64 * 1024 * 1024;

/// A `content-encoding` the filter can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// HTTP `deflate`: zlib-wrapped (RFC 1950), or raw deflate as some
    /// servers send it.
    Deflate,
    Brotli,
}

impl Coding {
    /// The coding named by a `content-encoding` value: `Ok(None)` for none
    /// or `identity`, `Err(value)` for one the filter cannot decode
    /// (including stacked codings such as `gzip, br`).
    pub fn parse(header: &str) -> Result<Option<Self>, String> {
        let value = header.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("identity") {
            return Ok(None);
        }
        match value.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Ok(Some(Self::Gzip)),
            "deflate" => Ok(Some(Self::Deflate)),
            "br" => Ok(Some(Self::Brotli)),
            _ => Err(value.to_string()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Brotli => "br",
        }
    }
}

/// Collects decoded bytes, refusing to grow past the per-chunk cap.
struct Sink {
    out: Vec<u8>,
    cap: usize,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.cap {
            return Err(std::io::Error::other("decoded body too large"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Gzip(flate2::write::MultiGzDecoder<Sink>),
    Zlib(flate2::write::ZlibDecoder<Sink>),
    RawDeflate(flate2::write::DeflateDecoder<Sink>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Sink>>),
}

impl Inner {
    fn write_all(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Gzip(d) => d.write_all(chunk),
            Self::Zlib(d) => d.write_all(chunk),
            Self::RawDeflate(d) => d.write_all(chunk),
            Self::Brotli(d) => d.write_all(chunk),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Self::Gzip(d) => d.try_finish(),
            Self::Zlib(d) => d.try_finish(),
            Self::RawDeflate(d) => d.try_finish(),
            Self::Brotli(d) => d.close().map_err(std::io::Error::other),
        }
    }

    fn take_output(&mut self) -> Vec<u8> {
        let sink = match self {
            Self::Gzip(d) => d.get_mut(),
            Self::Zlib(d) => d.get_mut(),
            Self::RawDeflate(d) => d.get_mut(),
            Self::Brotli(d) => d.get_mut(),
        };
        std::mem::take(&mut sink.out)
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// Decodes one response body, chunk by chunk.
pub struct Decoder {
    coding: Coding,
    /// None while a `deflate` body's first bytes (in `head`) have not told
    /// zlib from raw deflate yet.
    inner: Option<Inner>,
    head: Vec<u8>,
    cap: usize,
}

impl Decoder {
    pub fn new(coding: Coding) -> Self {
        Self::with_cap(coding, MAX_EXPANSION_PER_CHUNK)
    }

    fn with_cap(coding: Coding, cap: usize) -> Self {
        let sink = Sink {
            out: Vec::new(),
            cap,
        };
        let inner = match coding {
            Coding::Gzip => Some(Inner::Gzip(flate2::write::MultiGzDecoder::new(sink))),
            Coding::Deflate => None,
            Coding::Brotli => Some(Inner::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(sink, 4096),
            ))),
        };
        Self {
            coding,
            inner,
            head: Vec::new(),
            cap,
        }
    }

    pub fn coding(&self) -> Coding {
        self.coding
    }

    /// Decodes the next chunk; returns the plain bytes it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let inner = match &mut self.inner {
            Some(inner) => inner,
            None => {
                self.head.extend_from_slice(chunk);
                if self.head.len() < 2 {
                    return Ok(Vec::new());
                }
                let sink = Sink {
                    out: Vec::new(),
                    cap: self.cap,
                };
                let inner = if is_zlib_header(self.head[0], self.head[1]) {
                    Inner::Zlib(flate2::write::ZlibDecoder::new(sink))
                } else {
                    Inner::RawDeflate(flate2::write::DeflateDecoder::new(sink))
                };
                let head = std::mem::take(&mut self.head);
                self.inner = Some(inner);
                return self.feed(&head);
            }
        };
        let written = inner.write_all(chunk);
        let out = inner.take_output();
        written.map_err(|e| self.error(&e))?;
        Ok(out)
    }

    /// The body ended: the bytes still owed, or an error when the
    /// compressed stream stopped before its end.
    pub fn finish(&mut self) -> Result<Vec<u8>, DecodeError> {
        let Some(inner) = self.inner.as_mut() else {
            return match self.head.is_empty() {
                true => Ok(Vec::new()),
                false => Err(self.error(&std::io::Error::other("truncated"))),
            };
        };
        let done = inner.finish();
        let out = inner.take_output();
        done.map_err(|e| self.error(&e))?;
        Ok(out)
    }

    fn error(&self, e: &std::io::Error) -> DecodeError {
        DecodeError(format!(
            "its {}-compressed body could not be decoded ({e})",
            self.coding.name()
        ))
    }
}

/// RFC 1950: compression method 8 and a header checksum divisible by 31.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] =
        b"data: {\"choices\":[{\"delta\":{\"content\":\"hello \\u00e9\"}}]}\n\ndata: [DONE]\n\n";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A brotli stream of `data` as uncompressed meta-blocks (RFC 7932
    /// 9.2), so the test needs no brotli encoder.
    fn brotli_stored(data: &[u8]) -> Vec<u8> {
        // WBITS=16 (one 0 bit), then per block: ISLAST=0, MNIBBLES=4 (00),
        // MLEN-1 in 16 bits, ISUNCOMPRESSED=1, byte-align, raw bytes;
        // finally ISLAST=1, ISLASTEMPTY=1.
        let mut bits = BitWriter::default();
        bits.push(0, 1);
        for block in data.chunks(65536) {
            bits.push(0, 1);
            bits.push(0, 2);
            bits.push((block.len() - 1) as u64, 16);
            bits.push(1, 1);
            bits.align();
            bits.bytes.extend_from_slice(block);
        }
        bits.push(1, 1);
        bits.push(1, 1);
        bits.align();
        bits.bytes
    }

    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        used: u32,
    }

    impl BitWriter {
        fn push(&mut self, value: u64, n: u32) {
            for i in 0..n {
                if self.used == 0 {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                *self.bytes.last_mut().unwrap() |= bit << self.used;
                self.used = (self.used + 1) % 8;
            }
        }

        fn align(&mut self) {
            self.used = 0;
        }
    }

    fn decode_split(coding: Coding, body: &[u8], cut: usize) -> Result<Vec<u8>, DecodeError> {
        let mut d = Decoder::new(coding);
        let mut out = d.feed(&body[..cut])?;
        out.extend(d.feed(&body[cut..])?);
        out.extend(d.finish()?);
        Ok(out)
    }

    #[test]
    fn every_coding_at_every_split() {
        for (coding, body) in [
            (Coding::Gzip, gzip(TEXT)),
            (Coding::Deflate, zlib(TEXT)),
            (Coding::Deflate, raw_deflate(TEXT)),
            (Coding::Brotli, brotli_stored(TEXT)),
        ] {
            for cut in 0..=body.len() {
                assert_eq!(
                    decode_split(coding, &body, cut).unwrap(),
                    TEXT,
                    "{coding:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn concatenated_gzip_members() {
        let mut body = gzip(b"one ");
        body.extend(gzip(b"two"));
        assert_eq!(decode_split(Coding::Gzip, &body, 5).unwrap(), b"one two");
    }

    #[test]
    fn truncated_and_corrupt_bodies_are_errors() {
        for (coding, body) in [
            (Coding::Gzip, gzip(TEXT)),
            (Coding::Deflate, zlib(TEXT)),
            (Coding::Brotli, brotli_stored(TEXT)),
        ] {
            let cut = &body[..body.len() - 3];
            let e = decode_split(coding, cut, 1).unwrap_err();
            assert!(e.0.contains(coding.name()), "{e:?}");
        }
        let mut bad = gzip(TEXT);
        let n = bad.len();
        bad[n - 6] ^= 0xff; // CRC
        assert!(decode_split(Coding::Gzip, &bad, 3).is_err());
        assert!(decode_split(Coding::Gzip, b"<html>not gzip</html>", 3).is_err());
        assert!(decode_split(Coding::Deflate, b"x", 0).is_err());
    }

    #[test]
    fn bombs_are_stopped() {
        let body = gzip(&vec![0u8; 4 << 20]);
        assert!(body.len() < 10_000);
        let mut d = Decoder::with_cap(Coding::Gzip, 1 << 20);
        let e = d.feed(&body).unwrap_err();
        assert!(e.0.contains("too large"), "{e:?}");
    }

    #[test]
    fn header_values() {
        assert_eq!(Coding::parse(""), Ok(None));
        assert_eq!(Coding::parse(" Identity "), Ok(None));
        assert_eq!(Coding::parse("GZIP"), Ok(Some(Coding::Gzip)));
        assert_eq!(Coding::parse("deflate"), Ok(Some(Coding::Deflate)));
        assert_eq!(Coding::parse("br"), Ok(Some(Coding::Brotli)));
        assert_eq!(Coding::parse("zstd"), Err("zstd".into()));
        assert_eq!(Coding::parse("gzip, br"), Err("gzip, br".into()));
    }
}
