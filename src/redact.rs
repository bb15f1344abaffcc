//! Keeps provider keys out of what clients receive: error fields are
//! rewritten with `[redacted]`, and every response body passes a streaming
//! mask that also catches a key split across chunks or echoed in-band.

use crate::bytes::{anchor, occurrences};
use crate::secrets::Secret;

/// Secrets shorter than this are not looked for (they would mask ordinary
/// text); real API keys are far longer.
pub const MIN_SECRET_LEN: usize = 4;

const MASK: &str = "[redacted]";

/// Replaces every secret in `text` with `[redacted]`.
pub fn redact(text: &str, secrets: &SecretSet) -> String {
    let mut out = text.to_string();
    for s in &secrets.plain {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// One provider's keys, prepared once per configuration. The keys are
/// wiped from memory when the set is dropped; searches borrow them (no
/// precompiled searcher keeps a copy).
#[derive(Clone, Default)]
pub struct SecretSet {
    plain: Vec<Secret>,
    /// Per secret, the index of the byte searches look for first (its
    /// least common kind of byte in text), so no searcher is built per
    /// chunk.
    anchors: Vec<usize>,
}

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the keys themselves.
        write!(f, "SecretSet({} keys)", self.plain.len())
    }
}

impl SecretSet {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut plain: Vec<Secret> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .map(|s| Secret::new(s.to_string()))
            .collect();
        // Longest first, so a key containing another is masked whole.
        plain.sort_by_key(|s| std::cmp::Reverse(s.len()));
        plain.dedup();
        let anchors = plain.iter().map(|s| anchor(s.as_bytes())).collect();
        Self { plain, anchors }
    }

    /// Each secret with its anchor.
    fn each(&self) -> impl Iterator<Item = (&[u8], usize)> {
        self.plain
            .iter()
            .map(|s| s.as_bytes())
            .zip(self.anchors.iter().copied())
    }

    pub fn is_empty(&self) -> bool {
        self.plain.is_empty()
    }
}

/// Masks secrets in a body as it streams: each occurrence becomes `*`s of
/// the same length (so `content-length` stays right), and a tail that may
/// be the start of a secret is held back until the next chunk decides.
pub struct Redactor {
    secrets: std::rc::Rc<SecretSet>,
    /// Raw bytes held back from the previous chunk.
    held: Vec<u8>,
    /// Leading bytes of `held` that belong to a secret already found.
    forced: usize,
}

impl Redactor {
    pub fn new(secrets: std::rc::Rc<SecretSet>) -> Self {
        Self {
            secrets,
            held: Vec::new(),
            forced: 0,
        }
    }

    /// The bytes to send for `chunk`, or None when they are `chunk`
    /// unchanged (the common case: no copy, nothing to write back).
    pub fn feed(&mut self, chunk: &[u8], end: bool) -> Option<Vec<u8>> {
        let hits = self
            .secrets
            .each()
            .any(|(s, at)| occurrences(chunk, s, at).next().is_some());
        if !hits && self.held.is_empty() && (end || self.hold_len(chunk) == 0) {
            return None;
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(chunk);
        // Found on the raw bytes, so a short key inside a longer one
        // cannot hide the longer one.
        let mut ranges: Vec<(usize, usize)> = vec![(0, self.forced)];
        for (s, at) in self.secrets.each() {
            ranges.extend(occurrences(&buf, s, at).map(|start| (start, start + s.len())));
        }
        let keep = if end { 0 } else { self.hold_len(&buf) };
        let boundary = buf.len() - keep;
        self.forced = ranges
            .iter()
            .filter(|&&(s, e)| s < boundary && e > boundary)
            .map(|&(_, e)| e - boundary)
            .max()
            .unwrap_or(0);
        self.held = buf.split_off(boundary);
        for (s, e) in ranges {
            if s < boundary {
                buf[s..e.min(boundary)].fill(b'*');
            }
        }
        Some(buf)
    }

    /// Length of the longest tail of `buf` that is a proper prefix of a
    /// secret.
    fn hold_len(&self, buf: &[u8]) -> usize {
        self.secrets
            .each()
            .filter_map(|(s, _)| {
                let &first = s.first()?;
                // Tails shorter than the secret, longest first.
                let from = buf.len().saturating_sub(s.len() - 1);
                memchr::memchr_iter(first, &buf[from..])
                    .map(|i| from + i)
                    .find(|&start| s.starts_with(&buf[start..]))
                    .map(|start| buf.len() - start)
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn set() -> Rc<SecretSet> {
        Rc::new(SecretSet::new(["sk-secret-key-1", "abc", "sk-secret"]))
    }

    fn stream(chunks: &[&[u8]]) -> Vec<u8> {
        let mut r = Redactor::new(set());
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let end = i + 1 == chunks.len();
            match r.feed(c, end) {
                Some(b) => out.extend(b),
                None => out.extend_from_slice(c),
            }
        }
        out
    }

    #[test]
    fn masks_whole_and_split_keys_keeping_length() {
        let body = b"data: {\"error\":{\"message\":\"bad key sk-secret-key-1\",\"param\":\"sk-secret\"}}\n\n";
        let want = String::from_utf8_lossy(body)
            .replace("sk-secret-key-1", &"*".repeat(15))
            .replace("sk-secret", &"*".repeat(9));
        for cut in 0..=body.len() {
            let out = stream(&[&body[..cut], &body[cut..]]);
            assert_eq!(String::from_utf8(out).unwrap(), want, "cut {cut}");
        }
        let one_by_one: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(String::from_utf8(stream(&one_by_one)).unwrap(), want);
        // A key that is also the start of another, at every split.
        let body = b"x abcabcab abcab y";
        let set = Rc::new(SecretSet::new(["abcab", "abcabcab"]));
        for cut in 0..=body.len() {
            let mut r = Redactor::new(Rc::clone(&set));
            let mut out = r.feed(&body[..cut], false).unwrap_or(body[..cut].to_vec());
            out.extend(r.feed(&body[cut..], true).unwrap_or(body[cut..].to_vec()));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "x ******** ***** y",
                "cut {cut}"
            );
        }
    }

    #[test]
    fn untouched_chunks_are_not_copied() {
        let mut r = Redactor::new(set());
        assert_eq!(r.feed(b"data: hello\n\n", false), None);
        assert_eq!(r.feed(b"", true), None);
        // A tail that could start a key is held back, then released.
        assert_eq!(r.feed(b"x sk-sec", false), Some(b"x ".to_vec()));
        assert_eq!(r.feed(b"ond\n\n", true), Some(b"sk-second\n\n".to_vec()));
        // Short strings are never treated as keys.
        assert!(SecretSet::new(["abc"]).is_empty());
    }

    #[test]
    fn redacts_text_and_never_prints_keys() {
        let s = set();
        assert_eq!(
            redact("key sk-secret-key-1 and sk-secret", &s),
            "key [redacted] and [redacted]"
        );
        assert!(!format!("{s:?}").contains("sk-"));
    }

    /// The anchored search finds what `memmem::find_iter` finds, and the
    /// held tail is the longest one a secret starts with, over inputs full
    /// of near misses (overlaps, repeats, prefixes at the end).
    #[test]
    fn anchored_search_matches_memmem() {
        let secrets = ["aaaa", "sk-ab", "a-a-a", "9k9k", "sk-ab-9k9k"];
        let set = SecretSet::new(secrets);
        let alphabet = b"ask-9b";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut matched = 0;
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let hay: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            matched +=
                set.each()
                    .any(|(s, _)| memchr::memmem::find(&hay, s).is_some()) as usize;
            for (s, at) in set.each() {
                let want: Vec<usize> = memchr::memmem::find_iter(&hay, s).collect();
                let got: Vec<usize> = occurrences(&hay, s, at).collect();
                assert_eq!(got, want, "{:?} in {:?}", s, String::from_utf8_lossy(&hay));
            }
            let r = Redactor::new(Rc::new(set.clone()));
            let longest = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
            let want = (1..=longest.saturating_sub(1).min(hay.len()))
                .rev()
                .find(|&n| {
                    let tail = &hay[hay.len() - n..];
                    secrets
                        .iter()
                        .any(|s| s.len() > n && s.as_bytes().starts_with(tail))
                })
                .unwrap_or(0);
            assert_eq!(
                r.hold_len(&hay),
                want,
                "{:?}",
                String::from_utf8_lossy(&hay)
            );
        }
        assert!(matched > 200, "too few inputs with a secret: {matched}");
    }
}
