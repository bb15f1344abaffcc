//! Streams checked as they pass: any split of the text into events gives
//! the same output text as checking it whole, and text is held no longer
//! than the window.

use super::{all, pii_rule, words};
use crate::guardrails::{Action, Direction, Guardrails, PiiKind, StreamGuard, Tally};
use crate::wire::hub::{FinishReason, StreamEvent};
use std::rc::Rc;

fn rules() -> Rc<Guardrails> {
    Rc::new(
        Guardrails::compile(&[
            words("mask", Action::Mask, &["敏感词", "secret sauce"]),
            words("log", Action::Log, &["hello"]),
            pii_rule("pii", Action::Mask, &[PiiKind::CnMobile, PiiKind::Email]),
        ])
        .unwrap(),
    )
}

/// Feeds `parts` as text events, then a finish; returns the text the
/// client gets and the events.
fn run(g: &Rc<Guardrails>, parts: &[&str]) -> (String, Vec<StreamEvent>, Tally) {
    let mut guard = StreamGuard::new(Rc::clone(g), all(g), Default::default());
    let mut out = Vec::new();
    for p in parts {
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
    let text = out
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    (text, out, guard.tally())
}

const TEXT: &str =
    "你好，这是敏感词，hello！Call 13812345678 or mail a.b@ex.com; the secret sauce is hello.";

#[test]
fn every_split_of_the_text_gives_the_whole_text_check() {
    let g = rules();
    let mut whole = TEXT.to_string();
    let mut tally = Tally::default();
    g.check(&mut whole, all(&g), Direction::Response, &mut tally);
    assert!(whole.contains("***") && !whole.contains("13812345678"));
    let chars: Vec<(usize, char)> = TEXT.char_indices().collect();
    for &(a, _) in &chars {
        for &(b, _) in chars.iter().filter(|(b, _)| *b >= a) {
            let parts = [&TEXT[..a], &TEXT[a..b], &TEXT[b..]];
            let (text, _, t) = run(&g, &parts);
            assert_eq!(text, whole, "split at {a},{b}");
            assert_eq!(t.hits, tally.hits, "split at {a},{b}");
        }
    }
}

#[test]
fn one_character_per_event_finds_terms_split_across_events() {
    let g = rules();
    let parts: Vec<String> = TEXT.chars().map(String::from).collect();
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (text, events, _) = run(&g, &refs);
    assert!(text.contains("这是***，"), "{text}");
    assert!(text.contains("the ************ is"), "{text}");
    // Held text goes before the finish.
    assert!(matches!(events.last(), Some(StreamEvent::Finish { .. })));
}

#[test]
fn text_is_held_no_longer_than_the_window() {
    let g = Rc::new(Guardrails::compile(&[words("w", Action::Mask, &["abcd"])]).unwrap());
    let mut guard = StreamGuard::new(Rc::clone(&g), all(&g), Default::default());
    let mut out = Vec::new();
    guard.on_event(
        StreamEvent::Text {
            choice: 0,
            text: "中文中文中文".into(),
        },
        &mut out,
    );
    // Three characters (the longest term less one) are held.
    assert_eq!(
        out,
        vec![StreamEvent::Text {
            choice: 0,
            text: "中文中".into()
        }]
    );
    assert_eq!(guard.window_chars(), 3);
}

#[test]
fn a_block_stops_the_stream_with_content_filter_and_an_error() {
    let g = Rc::new(Guardrails::compile(&[words("stop", Action::Block, &["禁止"])]).unwrap());
    let (text, events, tally) = run(&g, &["可以说", "禁", "止的内容", "后面"]);
    assert_eq!(text, "可以说");
    let n = events.len();
    assert_eq!(
        events[n - 2],
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ContentFilter
        }
    );
    match &events[n - 1] {
        StreamEvent::Error(e) => {
            assert!(e.message.contains("guardrail 'stop'"), "{}", e.message);
            assert!(!e.message.contains("禁止"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tally.blocked, Some((0, Direction::Response)));
}

#[test]
fn reasoning_and_content_keep_their_order() {
    let g = rules();
    let mut guard = StreamGuard::new(Rc::clone(&g), all(&g), Default::default());
    let mut out = Vec::new();
    guard.on_event(
        StreamEvent::Reasoning {
            choice: 0,
            text: "think".into(),
        },
        &mut out,
    );
    guard.on_event(
        StreamEvent::Text {
            choice: 0,
            text: "answer".into(),
        },
        &mut out,
    );
    guard.finish(&mut out);
    assert_eq!(
        out,
        vec![
            StreamEvent::Reasoning {
                choice: 0,
                text: "think".into()
            },
            StreamEvent::Text {
                choice: 0,
                text: "answer".into()
            },
        ]
    );
}

/// Found by fuzzing: a mask applied to held text changed what the PII
/// detector read next ("sauce138…" became "*****138…", a bounded mobile
/// number), so the stream blocked where the whole check did not.
#[test]
fn masks_do_not_change_what_later_detectors_read() {
    let g = Rc::new(
        Guardrails::compile(&[
            words("mask", Action::Mask, &["secret sauce"]),
            pii_rule("pii", Action::Block, &[PiiKind::CnMobile]),
        ])
        .unwrap(),
    );
    let (text, events, _) = run(&g, &["the secret sauce138", "12345678 ok"]);
    assert_eq!(text, "the ************13812345678 ok");
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Error(_))));
}
