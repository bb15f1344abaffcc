use super::super::Folder;

#[test]
fn folds_case_width_and_traditional_one_char_for_one() {
    let f = Folder::new();
    let folded: String = "ＡＢＣ１２３　Hello 國學 Ǆ"
        .chars()
        .map(|c| f.fold(c))
        .collect();
    assert_eq!(folded, "abc123 hello 国学 ǆ");
    assert!(f.table_len() > 400, "{}", f.table_len());
    // Characters without a single-character lowercase stay as they are.
    assert_eq!(f.fold('İ'), 'İ');
    let (mut out, mut shifts) = (String::new(), Vec::new());
    f.fold_into("Ａb國Ｃ中", &mut out, &mut shifts);
    assert_eq!(out, "ab国c中");
    // After Ａ (3 bytes → 1) and after Ｃ: folded offset, next character.
    assert_eq!(shifts, vec![(1, 1), (6, 4)]);
}

#[test]
fn the_hanzi_table_has_no_identities_or_chains() {
    let f = Folder::new();
    for line in include_str!("../hanzi_pairs.txt").lines() {
        if line.starts_with('#') {
            continue;
        }
        for c in line.chars().filter(|c| !c.is_whitespace()) {
            let s = f.fold(c);
            assert_eq!(f.fold(s), s, "{c} folds to {s}, which folds again");
        }
    }
}
