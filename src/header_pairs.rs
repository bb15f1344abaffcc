//! The proxy-wasm ABI's encoding of header maps, kept apart from the Wasm
//! layer so it is tested natively (mangled maps included): what the host
//! hands over is decoded with bounds checks and lossy UTF-8, never trusted.

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

/// A header map as the host handed it over, kept as one text with the
/// entries as spans into it (no allocation per header), and this filter's
/// own writes on top, so reads and removals of absent headers cost no
/// hostcall and a write that changes nothing is skipped.
#[derive(Debug, Default)]
pub struct HeaderTable {
    text: String,
    entries: Vec<(Span, Span)>,
    /// Names this filter set (`Some`) or removed (`None`) since the read.
    writes: Vec<(String, Option<String>)>,
}

type Span = (u32, u32);
/// A name's and a value's byte ranges in the host's data, while decoding.
type Ranges = ((usize, usize), (usize, usize));

impl HeaderTable {
    /// The ABI's map encoding (see `encode_pairs`), checked: None for a
    /// malformed map. Text that is not UTF-8 is decoded lossily.
    pub fn decode(mut bytes: Vec<u8>) -> Option<Self> {
        if bytes.is_empty() {
            return Some(Self::default());
        }
        let u32_at = |bytes: &[u8], at: usize| -> Option<usize> {
            let b = bytes.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let count = u32_at(&bytes, 0)?;
        let start = 4usize.checked_add(count.checked_mul(8)?)?;
        let mut lengths: Vec<Ranges> = Vec::with_capacity(count.min(1024));
        let mut at = 0usize;
        for i in 0..count {
            let (klen, vlen) = (u32_at(&bytes, 4 + i * 8)?, u32_at(&bytes, 8 + i * 8)?);
            let key = (at, at.checked_add(klen)?);
            let value = (
                key.1.checked_add(1)?,
                key.1.checked_add(1)?.checked_add(vlen)?,
            );
            at = value.1.checked_add(1)?;
            lengths.push((key, value));
        }
        // The last NUL may be missing; the last value may not.
        let need = lengths.last().map_or(0, |&(_, (_, end))| end);
        if start.checked_add(need)? > bytes.len() || u32::try_from(at).is_err() {
            return None;
        }
        bytes.drain(..start);
        bytes.truncate(at);
        let spans_fit = |text: &str| {
            lengths.iter().all(|&((k0, k1), (v0, v1))| {
                text.get(k0..k1).is_some() && text.get(v0..v1).is_some()
            })
        };
        let span = |(a, b): (usize, usize)| (a as u32, b as u32);
        match String::from_utf8(bytes) {
            Ok(text) if spans_fit(&text) => Some(Self {
                entries: lengths.iter().map(|&(k, v)| (span(k), span(v))).collect(),
                text,
                writes: Vec::new(),
            }),
            Ok(text) => Some(Self::lossy(text.as_bytes(), &lengths)),
            Err(e) => Some(Self::lossy(e.as_bytes(), &lengths)),
        }
    }

    /// The slow path: each name and value decoded on its own.
    fn lossy(data: &[u8], lengths: &[Ranges]) -> Self {
        let mut table = Self::default();
        let push = |text: &mut String, (a, b): (usize, usize)| {
            let start = text.len() as u32;
            text.push_str(&String::from_utf8_lossy(data.get(a..b).unwrap_or_default()));
            (start, text.len() as u32)
        };
        for &(k, v) in lengths {
            let key = push(&mut table.text, k);
            let value = push(&mut table.text, v);
            table.entries.push((key, value));
        }
        table
    }

    fn at(&self, (a, b): Span) -> &str {
        self.text.get(a as usize..b as usize).unwrap_or_default()
    }

    /// The header's value (the first, if the client sent it twice).
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some((_, value)) = self.writes.iter().find(|(n, _)| n == name) {
            return value.as_deref();
        }
        self.entries
            .iter()
            .find(|&&(k, _)| self.at(k) == name)
            .map(|&(_, v)| self.at(v))
    }

    /// Records a write; false when the header already is so (no hostcall
    /// needed).
    pub fn set(&mut self, name: &str, value: Option<&str>) -> bool {
        if self.get(name) == value {
            return false;
        }
        let value = value.map(str::to_string);
        match self.writes.iter_mut().find(|(n, _)| n == name) {
            Some(write) => write.1 = value,
            None => self.writes.push((name.to_string(), value)),
        }
        true
    }

    /// The names present that `wanted` picks, in the host's order and then
    /// this filter's additions.
    pub fn names(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        let written = |name: &str| self.writes.iter().any(|(n, _)| n == name);
        let read = self
            .entries
            .iter()
            .map(|&(k, _)| self.at(k))
            .filter(|k| !written(k));
        let added = self
            .writes
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| n.as_str());
        read.chain(added)
            .filter(|k| wanted(k))
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(t: &HeaderTable) -> Vec<(String, String)> {
        t.names(&|_| true)
            .into_iter()
            .map(|n| {
                let v = t.get(&n).unwrap_or_default().to_string();
                (n, v)
            })
            .collect()
    }

    #[test]
    fn round_trip_and_hostile_input() {
        let sent = [
            (":path", "/v1/chat/completions"),
            ("x-empty", ""),
            ("k", "v"),
        ];
        let bytes = encode_pairs(&sent);
        let table = HeaderTable::decode(bytes.clone()).unwrap();
        let back = pairs(&table);
        let back: Vec<(&str, &str)> = back.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(back, sent);
        assert_eq!(table.get("x-empty"), Some(""));
        assert_eq!(table.get("absent"), None);
        assert!(HeaderTable::decode(Vec::new())
            .unwrap()
            .names(&|_| true)
            .is_empty());
        // Truncated anywhere: None or a table, never a panic; only the last
        // NUL may go.
        for cut in 1..bytes.len() {
            let decoded = HeaderTable::decode(bytes[..cut].to_vec());
            assert_eq!(decoded.is_some(), cut == bytes.len() - 1, "cut at {cut}");
        }
        assert!(HeaderTable::decode(vec![255, 255, 255, 255]).is_none());
        // A header value that is not UTF-8 (Latin-1 "é") is decoded lossily,
        // and so is one whose length splits a character.
        let mut raw = encode_pairs(&[("x-evil", "caf?"), ("k", "v")]);
        let at = raw.iter().position(|&b| b == b'?').unwrap();
        raw[at] = 0xe9;
        let table = HeaderTable::decode(raw).unwrap();
        assert_eq!(table.get("x-evil"), Some("caf\u{fffd}"));
        assert_eq!(table.get("k"), Some("v"));
        let mut split = encode_pairs(&[("a", "é"), ("b", "c")]);
        split[8] = 1; // the value "é" (2 bytes) said to be 1 byte long
        let table = HeaderTable::decode(split).unwrap();
        assert_eq!(table.get("a"), Some("\u{fffd}"));
    }

    #[test]
    fn any_bytes_decode_without_panic_and_valid_text_round_trips() {
        let sent = [("a", "é"), (":status", "200"), ("x", "")];
        let good = encode_pairs(&sent);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            for _ in 0..(next() % 4) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            if let Some(t) = HeaderTable::decode(bytes.clone()) {
                for name in t.names(&|_| true) {
                    let _ = t.get(&name);
                }
            }
            if bytes == good {
                let t = HeaderTable::decode(bytes).unwrap();
                assert_eq!(t.get("a"), Some("é"));
            }
        }
    }

    #[test]
    fn writes_lie_over_what_was_read() {
        let mut t = HeaderTable::decode(encode_pairs(&[
            ("authorization", "Bearer a"),
            ("x-llm-gateway-x", "1"),
            ("dup", "1"),
            ("dup", "2"),
        ]))
        .unwrap();
        assert_eq!(t.get("dup"), Some("1"), "the first of two");
        // Unchanged or absent-and-removed: no hostcall.
        assert!(!t.set("authorization", Some("Bearer a")));
        assert!(!t.set("absent", None));
        assert!(t.set("authorization", Some("Bearer b")));
        assert_eq!(t.get("authorization"), Some("Bearer b"));
        assert!(t.set("authorization", None));
        assert_eq!(t.get("authorization"), None);
        assert!(!t.set("authorization", None));
        assert!(t.set("added", Some("x")));
        assert!(t.set("dup", None));
        assert_eq!(t.get("dup"), None);
        let names = t.names(&|_| true);
        assert_eq!(names, ["x-llm-gateway-x", "added"]);
        let control = t.names(&|n| n.starts_with("x-llm-gateway-"));
        assert_eq!(control, ["x-llm-gateway-x"]);
    }
}
