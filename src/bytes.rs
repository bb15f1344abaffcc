//! Byte searches for short needles in short haystacks (an SSE event, a
//! response chunk): anchored on the needle's least common byte with
//! `memchr`, so nothing is built per search (`memchr::memmem` builds a
//! searcher per call, which dominated per-event costs in Wasm).

/// Where `secret` occurs in `hay`, left to right and not overlapping (as
/// `memchr::memmem::find_iter` reports them), found from its anchor byte.
pub fn occurrences<'h>(
    hay: &'h [u8],
    secret: &'h [u8],
    anchor: usize,
) -> impl Iterator<Item = usize> + 'h {
    let n = secret.len();
    let mut next = 0usize;
    let byte = secret.get(anchor).copied().unwrap_or(0);
    memchr::memchr_iter(byte, hay).filter_map(move |i| {
        let start = i.checked_sub(anchor)?;
        let found = start >= next && hay.get(start..start + n) == Some(secret);
        if found {
            next = start + n;
        }
        found.then_some(start)
    })
}

/// The position of the byte to look for first: a digit, an upper-case
/// letter or a rare symbol beats the lower-case letters and punctuation of
/// ordinary JSON text.
pub fn anchor(secret: &[u8]) -> usize {
    let rank = |b: u8| match b {
        b'0'..=b'9' | b'A'..=b'Z' => 0,
        b'_' | b'-' | b'+' | b'/' | b'=' => 1,
        b'a'..=b'z' => 2,
        _ => 3,
    };
    (0..secret.len())
        .min_by_key(|&i| rank(secret[i]))
        .unwrap_or(0)
}

/// The first place `needle` occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    occurrences(hay, needle, anchor(needle)).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_like_memmem() {
        let hay = br#"{"usage":null,"choices":[{"finish_reason":"stop"}],"x":""usage""}"#;
        for needle in [
            &b"\"usage\""[..],
            b"\"finish_reason\":\"",
            b"stop",
            b"{",
            b"nope",
            b"}",
        ] {
            assert_eq!(
                find(hay, needle),
                memchr::memmem::find(hay, needle),
                "{needle:?}"
            );
        }
        assert_eq!(find(b"", b"x"), None);
    }
}
