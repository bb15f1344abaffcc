//! The form terms and text are compared in: one character for one, so a
//! match in the folded text is a match of the same number of characters in
//! the original. Folds case, full-width forms (ＡＢＣ１２３ → abc123) and,
//! through the shipped table, traditional Chinese characters to simplified.

/// Traditional → simplified pairs for common characters (two characters per
/// pair). Not a full conversion table: the characters that most often tell
/// the two scripts apart in sensitive-word lists.
const HANZI_PAIRS: &str = include_str!("hanzi_pairs.txt");

/// First and last code point of the CJK blocks the table covers.
const HAN_FIRST: u32 = 0x3400;
const HAN_LAST: u32 = 0x9FFF;

/// Folds characters; built once per configuration.
#[derive(Debug, Clone, Default)]
pub struct Folder {
    /// Sorted (traditional, simplified) pairs.
    simplified: Vec<(char, char)>,
    /// One bit per code point of `HAN_FIRST..=HAN_LAST`: has a pair. Most
    /// characters have none, and this answers without a search.
    mapped: Vec<u64>,
}

impl Folder {
    pub fn new() -> Self {
        let mut simplified = Vec::new();
        for line in HANZI_PAIRS.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let mut chars = line.chars().filter(|c| !c.is_whitespace());
            while let (Some(t), Some(s)) = (chars.next(), chars.next()) {
                simplified.push((t, s));
            }
        }
        simplified.sort_unstable();
        simplified.dedup_by_key(|p| p.0);
        let mut mapped = vec![0u64; ((HAN_LAST - HAN_FIRST) as usize) / 64 + 1];
        for &(t, _) in &simplified {
            let i = (t as u32).wrapping_sub(HAN_FIRST) as usize;
            if let Some(w) = mapped.get_mut(i / 64) {
                *w |= 1 << (i % 64);
            }
        }
        Self { simplified, mapped }
    }

    /// Number of traditional characters the table maps.
    pub fn table_len(&self) -> usize {
        self.simplified.len()
    }

    fn simplified(&self, c: char) -> Option<char> {
        let i = (c as u32).wrapping_sub(HAN_FIRST) as usize;
        let w = *self.mapped.get(i / 64)?;
        if w & (1 << (i % 64)) == 0 {
            return None;
        }
        self.simplified
            .binary_search_by_key(&c, |p| p.0)
            .ok()
            .map(|j| self.simplified[j].1)
    }

    pub fn fold(&self, c: char) -> char {
        if c.is_ascii() {
            return c.to_ascii_lowercase();
        }
        let c = match c as u32 {
            // Full-width ASCII forms and the ideographic space.
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        };
        if c.is_ascii() {
            return c.to_ascii_lowercase();
        }
        if (HAN_FIRST..=HAN_LAST).contains(&(c as u32)) {
            // Ideographs have no case.
            return self.simplified(c).unwrap_or(c);
        }
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    }

    /// `text` folded into `out`. `shifts` gets, after each character whose
    /// UTF-8 length changed (full-width forms), the folded byte offset and
    /// the index of the next character: between two shifts, characters
    /// map one for one, so an offset's character index is cheap to find.
    pub fn fold_into(&self, text: &str, out: &mut String, shifts: &mut Vec<(u32, u32)>) {
        out.clear();
        shifts.clear();
        out.reserve(text.len());
        let bytes = text.as_bytes();
        let (mut i, mut chars) = (0usize, 0u32);
        while i < bytes.len() {
            // ASCII runs are copied whole (lowercased at the end).
            let run = bytes[i..].iter().take_while(|b| b.is_ascii()).count();
            if run > 0 {
                out.push_str(&text[i..i + run]);
                i += run;
                chars += run as u32;
                continue;
            }
            let Some(c) = text[i..].chars().next() else {
                break;
            };
            chars += 1;
            let n = c.len_utf8();
            let f = self.fold(c);
            if f == c {
                out.push_str(&text[i..i + n]);
            } else {
                out.push(f);
                if f.len_utf8() != n {
                    shifts.push((out.len() as u32, chars));
                }
            }
            i += n;
        }
        out.make_ascii_lowercase();
    }
}
