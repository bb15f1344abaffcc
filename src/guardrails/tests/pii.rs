use super::super::pii::{find, is_cn_id, is_cn_mobile, luhn, PiiKind};
use super::{check, pii_rule};
use crate::guardrails::{Action, Guardrails};

const ALL: [PiiKind; 5] = [
    PiiKind::CnId,
    PiiKind::CnMobile,
    PiiKind::BankCard,
    PiiKind::Email,
    PiiKind::Ipv4,
];

fn kinds(text: &str) -> Vec<(PiiKind, &str)> {
    let mut out = Vec::new();
    find(text, &ALL, &mut out);
    out.into_iter().map(|(k, s, e)| (k, &text[s..e])).collect()
}

#[test]
fn id_numbers_need_a_valid_check_character_and_date() {
    // The GB 11643 standard's example, and one ending in X.
    assert!(is_cn_id(b"11010519491231002x"));
    assert!(!is_cn_id(b"110105194912310029"));
    assert!(is_cn_id(b"440524188001010014"));
    assert!(!is_cn_id(b"440524188001010015"), "wrong check digit");
    assert!(!is_cn_id(b"440524188013010014"), "month 13");
    assert!(!is_cn_id(b"44052418800101001"), "17 digits");
}

#[test]
fn mobiles_and_cards() {
    assert!(is_cn_mobile(b"13812345678"));
    assert!(!is_cn_mobile(b"12812345678"));
    assert!(!is_cn_mobile(b"1381234567"));
    assert!(luhn(b"4111111111111111"));
    assert!(!luhn(b"4111111111111112"));
    assert!(luhn(b"79927398713"));
}

#[test]
fn finds_each_kind_in_chinese_and_english_text() {
    let t = "身份证11010519491231002x，手机13812345678，卡号4111111111111111，邮箱 Li.Lei+ai@example.com.cn。IP 192.168.1.20";
    let folded = t.to_ascii_lowercase();
    let found = kinds(&folded);
    assert_eq!(
        found,
        vec![
            (PiiKind::CnId, "11010519491231002x"),
            (PiiKind::CnMobile, "13812345678"),
            (PiiKind::BankCard, "4111111111111111"),
            (PiiKind::Email, "li.lei+ai@example.com.cn"),
            (PiiKind::Ipv4, "192.168.1.20"),
        ]
    );
}

#[test]
fn near_misses_are_not_personal_data() {
    for t in [
        "order 138123456789", // 12 digits: no mobile
        "tx a13812345678",    // glued to a letter
        "4111111111111112",   // fails Luhn
        "110105194912310029", // bad ID checksum (and no Luhn)
        "version 1.2.3.4.5",  // five parts
        "256.1.1.1",          // octet out of range
        "01.2.3.4",           // leading zero
        "user@localhost",     // no dot in the domain
        "@example.com",       // no local part
    ] {
        assert_eq!(kinds(t), vec![], "{t}");
    }
}

#[test]
fn masks_full_width_digits_with_as_many_stars() {
    let g = Guardrails::compile(&[pii_rule("pii", Action::Mask, &ALL)]).unwrap();
    let (out, blocked) = check(&g, "拨打１３８１２３４５６７８或 a@b.cn");
    assert_eq!(out, "拨打***********或 ******");
    assert_eq!(blocked, None);
}

/// Found by fuzzing: a stream scans a run of more than `MAX_PII_CHARS`
/// in pieces; the whole-text scan must cut it the same way, or an email
/// at the cut ends in different places.
#[test]
fn long_runs_are_scanned_in_the_same_pieces_as_a_stream() {
    let run = format!("{}@example.com{}", "b".repeat(77), "b".repeat(41));
    let found = kinds(&run);
    assert_eq!(found.len(), 1);
    // The local part keeps its last 64 characters (from 13); the domain
    // ends where the first 128-character piece does.
    assert_eq!(found[0].1.len(), 128 - 13);
}
