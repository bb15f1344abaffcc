//! Personal data found in folded text without regexes: mainland ID numbers
//! (checksum verified), mainland mobile numbers, bank cards (Luhn), email
//! addresses and IPv4 addresses. Every kind is a run of ASCII letters,
//! digits and `.@_%+-`, so a match never spans any other character.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// 18-character mainland resident ID number, ISO 7064 check character.
    CnId,
    /// 11-digit mainland mobile number (1[3-9]…).
    CnMobile,
    /// 13–19 digits passing the Luhn check.
    BankCard,
    Email,
    Ipv4,
}

impl PiiKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::CnId => "cn_id",
            Self::CnMobile => "cn_mobile",
            Self::BankCard => "bank_card",
            Self::Email => "email",
            Self::Ipv4 => "ipv4",
        }
    }
}

/// Longest run of PII characters worth holding back in a stream: nothing
/// this scanner finds is longer (emails are capped here too); longer runs
/// are scanned in pieces of this length, whole text and streams alike.
pub const MAX_PII_CHARS: usize = 128;

/// Bytes that can be part of a PII match, as a table: the scan looks at
/// every byte of every text.
const PII_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'@' | b'_' | b'%' | b'+' | b'-');
        b += 1;
    }
    t
};

/// Whether `b` can be part of a PII match.
pub fn is_pii_byte(b: u8) -> bool {
    PII_BYTES[usize::from(b)]
}

/// The byte ranges of `kinds` found in folded `text`, in order.
pub fn find(text: &str, kinds: &[PiiKind], out: &mut Vec<(PiiKind, usize, usize)>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !is_pii_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let mut start = i;
        while i < bytes.len() && is_pii_byte(bytes[i]) {
            i += 1;
            // Longer runs are scanned in pieces, as a stream holds them.
            if i - start == MAX_PII_CHARS {
                scan_run(bytes, start, i, kinds, out);
                start = i;
            }
        }
        if i > start {
            scan_run(bytes, start, i, kinds, out);
        }
    }
}

fn wants(kinds: &[PiiKind], k: PiiKind) -> bool {
    kinds.contains(&k)
}

/// One maximal run `bytes[start..end]` of PII characters.
fn scan_run(
    bytes: &[u8],
    start: usize,
    end: usize,
    kinds: &[PiiKind],
    out: &mut Vec<(PiiKind, usize, usize)>,
) {
    let run = &bytes[start..end];
    // Every kind has a digit or an '@': plain words are skipped at once.
    if !run.iter().any(|&b| b.is_ascii_digit() || b == b'@') {
        return;
    }
    if wants(kinds, PiiKind::Email) && run.contains(&b'@') {
        emails(run, start, out);
    }
    // Digit groups bounded by anything but a letter or digit.
    let mut i = 0;
    while i < run.len() {
        if !run[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let s = i;
        while i < run.len() && run[i].is_ascii_digit() {
            i += 1;
        }
        let mut e = i;
        // An ID number's check character may be X (folded to x).
        if e - s == 17 && run.get(e) == Some(&b'x') {
            e += 1;
        }
        let bounded = (s == 0 || !run[s - 1].is_ascii_alphanumeric())
            && (e == run.len() || !run[e].is_ascii_alphanumeric());
        if bounded && !inside_email(run, s) {
            if let Some(kind) = digits_kind(&run[s..e], kinds) {
                out.push((kind, start + s, start + e));
            }
        }
        i = e.max(i);
    }
    if wants(kinds, PiiKind::Ipv4) {
        ipv4s(run, start, out);
    }
}

/// Digits that belong to an email address found in the same run.
fn inside_email(run: &[u8], at: usize) -> bool {
    run.contains(&b'@') && {
        let before = &run[..at];
        let after = &run[at..];
        let left = before.iter().rposition(|&b| !is_email_byte(b));
        let right = after.iter().position(|&b| !is_email_byte(b));
        let seg = &run[left.map_or(0, |l| l + 1)..right.map_or(run.len(), |r| at + r)];
        seg.contains(&b'@')
    }
}

fn is_email_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'_' | b'%' | b'+' | b'-')
}

fn digits_kind(d: &[u8], kinds: &[PiiKind]) -> Option<PiiKind> {
    if d.len() == 18 && wants(kinds, PiiKind::CnId) && is_cn_id(d) {
        return Some(PiiKind::CnId);
    }
    if d.len() == 11 && wants(kinds, PiiKind::CnMobile) && is_cn_mobile(d) {
        return Some(PiiKind::CnMobile);
    }
    if (13..=19).contains(&d.len()) && wants(kinds, PiiKind::BankCard) && luhn(d) {
        return Some(PiiKind::BankCard);
    }
    None
}

/// GB 11643: 17 digits weighted 2^(17-i) mod 11, check character from the
/// remainder; the birth date's month and day must be plausible.
pub fn is_cn_id(d: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10x98765432";
    if d.len() != 18 || !d[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num =
        |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
    let (month, day) = (num(10..12), num(12..14));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    let sum: u32 = d[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    d[17].to_ascii_lowercase() == CHECK[(sum % 11) as usize]
}

pub fn is_cn_mobile(d: &[u8]) -> bool {
    d.len() == 11
        && d[0] == b'1'
        && (b'3'..=b'9').contains(&d[1])
        && d.iter().all(u8::is_ascii_digit)
}

pub fn luhn(d: &[u8]) -> bool {
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let v = u32::from(b - b'0');
            if i % 2 == 1 {
                let v2 = v * 2;
                if v2 > 9 {
                    v2 - 9
                } else {
                    v2
                }
            } else {
                v
            }
        })
        .sum();
    sum % 10 == 0
}

fn emails(run: &[u8], base: usize, out: &mut Vec<(PiiKind, usize, usize)>) {
    let local_byte =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    let domain_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-');
    let mut from = 0;
    while let Some(at) = run[from..]
        .iter()
        .position(|&b| b == b'@')
        .map(|p| p + from)
    {
        from = at + 1;
        let mut s = at;
        while s > 0 && local_byte(run[s - 1]) && at - s < 64 {
            s -= 1;
        }
        while s < at && !run[s].is_ascii_alphanumeric() {
            s += 1;
        }
        let mut e = at + 1;
        while e < run.len() && domain_byte(run[e]) && e - at < 64 {
            e += 1;
        }
        while e > at + 1 && !run[e - 1].is_ascii_alphanumeric() {
            e -= 1;
        }
        let domain = &run[at + 1..e];
        let tld_ok = domain.iter().rposition(|&b| b == b'.').is_some_and(|dot| {
            dot > 0
                && domain.len() - dot > 2
                && domain[dot + 1..].iter().all(u8::is_ascii_alphabetic)
        });
        if s < at && tld_ok {
            out.push((PiiKind::Email, base + s, base + e));
            from = e;
        }
    }
}

fn ipv4s(run: &[u8], base: usize, out: &mut Vec<(PiiKind, usize, usize)>) {
    let mut i = 0;
    while i < run.len() {
        let bounded = i == 0 || !(run[i - 1].is_ascii_alphanumeric() || run[i - 1] == b'.');
        if bounded && run[i].is_ascii_digit() {
            if let Some(e) = ipv4_at(run, i) {
                out.push((PiiKind::Ipv4, base + i, base + e));
                i = e;
                continue;
            }
        }
        i += 1;
    }
}

/// The end of a dotted quad starting at `s`, each part 0–255 without
/// leading zeros, not followed by another digit, dot-digit or letter.
fn ipv4_at(run: &[u8], s: usize) -> Option<usize> {
    let mut i = s;
    for part in 0..4 {
        let p = i;
        while i < run.len() && run[i].is_ascii_digit() && i - p < 4 {
            i += 1;
        }
        let digits = &run[p..i];
        if digits.is_empty() || digits.len() > 3 || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        let v = digits
            .iter()
            .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
        if v > 255 {
            return None;
        }
        if part < 3 {
            if run.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    let next = run.get(i).copied();
    let continues = next.is_some_and(|b| b.is_ascii_alphanumeric())
        || (next == Some(b'.') && run.get(i + 1).is_some_and(u8::is_ascii_digit));
    (!continues).then_some(i)
}
