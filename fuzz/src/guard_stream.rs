//! Guardrails on a stream: any split of a text into events gives exactly
//! the whole-text check (same output text, same hits, block or not), for
//! word lists with overlapping Chinese, full-width and English terms and
//! the PII detectors.
//!
//! Input: `[actions, seed, text...]`: two bits per rule pick its action
//! (block, mask, log), `seed` the chunking, the rest is the text (lossy
//! UTF-8).

use crate::common::{chunks, header, two_way};
use llm_gateway::guardrails::{
    Action, Direction, GuardSet, GuardrailConfig, Guardrails, PiiKind, StreamGuard, Tally,
};
use llm_gateway::wire::hub::{FinishReason, StreamEvent};
use std::rc::Rc;

const WORDS: &[&[&str]] = &[
    &["机密", "機密文件", "内部代号", "abc", "bcd", "ＡＢＣＤ"],
    &["secret sauce", "sauce", "c", "敏感词", "词"],
];

fn rules(actions: u8) -> Rc<Guardrails> {
    let action = |bits: u8| match bits % 3 {
        0 => Action::Mask,
        1 => Action::Log,
        _ => Action::Block,
    };
    let mut configs: Vec<GuardrailConfig> = WORDS
        .iter()
        .enumerate()
        .map(|(i, terms)| GuardrailConfig {
            name: format!("w{i}"),
            words: terms.iter().map(|t| t.to_string()).collect(),
            pii: vec![],
            moderation: None,
            action: action(actions >> (2 * i)),
            apply_to: None,
        })
        .collect();
    configs.push(GuardrailConfig {
        name: "pii".into(),
        words: vec![],
        pii: vec![
            PiiKind::CnId,
            PiiKind::CnMobile,
            PiiKind::BankCard,
            PiiKind::Email,
            PiiKind::Ipv4,
        ],
        moderation: None,
        action: action(actions >> 4),
        apply_to: None,
    });
    Rc::new(Guardrails::compile(&configs).expect("fixed rules compile"))
}

/// `text` cut at the chunk boundaries of `plan`, moved to char boundaries.
fn pieces<'a>(text: &'a str, plan: &[&[u8]]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let (mut from, mut at) = (0, 0);
    for p in plan {
        at += p.len();
        let mut cut = at.min(text.len());
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        if cut > from {
            out.push(&text[from..cut]);
            from = cut;
        }
    }
    if from < text.len() {
        out.push(&text[from..]);
    }
    out
}

pub fn guard_stream(data: &[u8]) {
    let ([actions, seed], body) = header::<2>(data);
    let text = String::from_utf8_lossy(body).into_owned();
    let g = rules(actions);
    let set = (0..g.rules.len()).fold(GuardSet::default(), GuardSet::with);
    let mut whole = text.clone();
    let mut tally = Tally::default();
    let blocked = g.check(&mut whole, set, Direction::Response, &mut tally);
    let plans = [
        two_way(text.as_bytes(), seed).to_vec(),
        chunks(text.as_bytes(), seed),
    ];
    for plan in &plans {
        let mut guard = StreamGuard::new(Rc::clone(&g), set, Default::default());
        let mut out = Vec::new();
        for p in pieces(&text, plan) {
            guard.on_event(
                StreamEvent::Text {
                    choice: 0,
                    text: p.to_string(),
                },
                &mut out,
            );
        }
        guard.on_event(
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop,
            },
            &mut out,
        );
        guard.finish(&mut out);
        let streamed: String = out
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let stopped = out.iter().any(|e| matches!(e, StreamEvent::Error(_)));
        assert_eq!(
            stopped,
            blocked.is_some(),
            "block differs from the whole check"
        );
        if stopped {
            // What went out is the checked text up to the blocked match.
            assert!(
                whole.starts_with(&streamed),
                "a stopped stream released text the whole check does not start with"
            );
            assert!(matches!(
                out.last(),
                Some(StreamEvent::Error(e)) if e.message.contains("guardrail")
            ));
        } else {
            assert_eq!(
                streamed, whole,
                "stream output differs from the whole check"
            );
            assert_eq!(guard.tally().hits, tally.hits, "hits differ");
        }
    }
}
