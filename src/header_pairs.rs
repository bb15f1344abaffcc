//! The proxy-wasm ABI's encoding of header maps, kept apart from the Wasm
//! layer so it is tested (and fuzzed) natively: what the host hands over is
//! decoded with bounds checks and lossy UTF-8, never trusted.

/// The ABI's map encoding: a u32 count, a (name length, value length) u32
/// pair per entry, then each name and value followed by a NUL byte.
pub fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 10 + k.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// The inverse of `encode_pairs`, checked: None for a malformed map.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let u32_at = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = u32_at(0)?;
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut pairs = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let (klen, vlen) = (u32_at(4 + i * 8)?, u32_at(8 + i * 8)?);
        let key = bytes.get(data..data.checked_add(klen)?)?;
        data += klen + 1;
        let value = bytes.get(data..data.checked_add(vlen)?)?;
        data += vlen + 1;
        pairs.push((lossy(key), lossy(value)));
    }
    Some(pairs)
}

/// `bytes` as text, invalid UTF-8 replaced; valid text (nearly every
/// header) takes `from_utf8`'s ASCII fast path instead of the chunked walk.
fn lossy(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hostile_input() {
        let pairs = [
            (":path", "/v1/chat/completions"),
            ("x-empty", ""),
            ("k", "v"),
        ];
        let bytes = encode_pairs(&pairs);
        let back = decode_pairs(&bytes).unwrap();
        let back: Vec<(&str, &str)> = back.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(back, pairs);
        assert_eq!(decode_pairs(b""), Some(Vec::new()));
        // Truncated anywhere: None, never a panic.
        for cut in 1..bytes.len() {
            let _ = decode_pairs(&bytes[..cut]);
        }
        assert_eq!(decode_pairs(&[255, 255, 255, 255]), None);
        // A header value that is not UTF-8 (Latin-1 "é") is decoded lossily.
        let mut raw = encode_pairs(&[("x-evil", "caf?")]);
        let at = raw.len() - 2;
        raw[at] = 0xe9;
        assert_eq!(
            decode_pairs(&raw).unwrap(),
            vec![("x-evil".to_string(), "caf\u{fffd}".to_string())]
        );
    }
}
