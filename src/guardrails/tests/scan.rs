use super::{check, words};
use crate::guardrails::{Action, Direction, GuardSet, GuardrailConfig, Guardrails, Tally};

#[test]
fn blocks_masks_and_logs_case_width_and_script_insensitively() {
    let g = Guardrails::compile(&[
        words("politics", Action::Block, &["敏感话题"]),
        words("brands", Action::Mask, &["AcmeCorp", "竞品"]),
        words("watch", Action::Log, &["refund"]),
    ])
    .unwrap();
    assert_eq!(check(&g, "聊聊敏感話題吧").1.as_deref(), Some("politics"));
    let (out, blocked) = check(&g, "ＡＣＭＥcorp 与 竞品 的 Refund");
    assert_eq!(blocked, None);
    assert_eq!(out, "******** 与 ** 的 Refund");
    let mut t = "refund refund".to_string();
    let mut tally = Tally::default();
    assert_eq!(
        g.check(
            &mut t,
            GuardSet::default().with(2),
            Direction::Request,
            &mut tally
        ),
        None
    );
    assert_eq!(tally.hits.len(), 1);
    assert_eq!(tally.hits[0].count, 2);
}

#[test]
fn only_the_rules_in_the_set_apply() {
    let g = Guardrails::compile(&[
        words("a", Action::Block, &["alpha"]),
        words("b", Action::Mask, &["alphabet"]),
    ])
    .unwrap();
    let mut t = "alphabet".to_string();
    let mut tally = Tally::default();
    assert_eq!(
        g.check(
            &mut t,
            GuardSet::default().with(1),
            Direction::Request,
            &mut tally
        ),
        None
    );
    assert_eq!(t, "********");
    let mut t = "alphabet".to_string();
    assert_eq!(
        g.check(
            &mut t,
            GuardSet::default().with(0),
            Direction::Request,
            &mut tally
        ),
        Some(0)
    );
}

#[test]
fn overlapping_terms_are_all_masked() {
    let g = Guardrails::compile(&[words("w", Action::Mask, &["abc", "cde", "x"])]).unwrap();
    assert_eq!(check(&g, "zabcdez x").0, "z*****z *");
}

#[test]
fn configuration_errors_name_the_field() {
    let bad = |c: GuardrailConfig| Guardrails::compile(&[c]).unwrap_err().to_string();
    let mut c = words("w", Action::Block, &["ok", " "]);
    assert!(
        bad(c.clone()).contains("guardrails[0].words[1]"),
        "{}",
        bad(c.clone())
    );
    c.words = vec!["a*b".into()];
    assert!(bad(c.clone()).contains("'*'"));
    c.words = vec!["x".repeat(65)];
    assert!(bad(c.clone()).contains("at most 64"));
    c.words = vec![];
    assert!(bad(c.clone()).contains("exactly one of words, pii or moderation"));
    let mut c = words("bad name", Action::Block, &["x"]);
    assert!(bad(c.clone()).contains("guardrails[0].name"));
    c.name = "w".into();
    c.apply_to = Some(vec![]);
    assert!(bad(c).contains("apply_to"));
    let two = [
        words("w", Action::Block, &["x"]),
        words("w", Action::Log, &["y"]),
    ];
    assert!(Guardrails::compile(&two)
        .unwrap_err()
        .to_string()
        .contains("defined twice"));
}

#[test]
fn ten_thousand_terms_compile_into_one_automaton() {
    let terms: Vec<String> = (0..10_000).map(|i| format!("词{i:05}条")).collect();
    let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
    let g = Guardrails::compile(&[words("big", Action::Mask, &refs)]).unwrap();
    assert_eq!(check(&g, "前词09999条后").0, "前*******后");
}
