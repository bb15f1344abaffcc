//! The form terms and text are compared in: one character for one, so a
//! match in the folded text is a match of the same number of characters in
//! the original. Folds case, full-width forms (ＡＢＣ１２３ → abc123) and,
//! through the shipped table, traditional Chinese characters to simplified.

use hashbrown::HashMap;

/// Traditional → simplified pairs for common characters (two characters per
/// pair). Not a full conversion table: the characters that most often tell
/// the two scripts apart in sensitive-word lists.
const HANZI_PAIRS: &str = include_str!("hanzi_pairs.txt");

/// Folds characters; built once per configuration.
#[derive(Debug, Clone, Default)]
pub struct Folder {
    simplified: HashMap<char, char>,
}

impl Folder {
    pub fn new() -> Self {
        let mut simplified = HashMap::new();
        for line in HANZI_PAIRS.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let mut chars = line.chars().filter(|c| !c.is_whitespace());
            while let (Some(t), Some(s)) = (chars.next(), chars.next()) {
                simplified.insert(t, s);
            }
        }
        Self { simplified }
    }

    /// Number of traditional characters the table maps.
    pub fn table_len(&self) -> usize {
        self.simplified.len()
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
        if let Some(&s) = self.simplified.get(&c) {
            return s;
        }
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    }

    /// `text` folded into `out`, with the folded byte offset at which each
    /// character starts (one entry per character, plus the end).
    pub fn fold_str(&self, text: &str, out: &mut String, starts: &mut Vec<u32>) {
        out.clear();
        starts.clear();
        out.reserve(text.len());
        for c in text.chars() {
            starts.push(out.len() as u32);
            out.push(self.fold(c));
        }
        starts.push(out.len() as u32);
    }
}
