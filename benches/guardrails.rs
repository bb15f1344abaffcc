//! Guardrail costs with a 10,000-term list (and the five PII detectors):
//! a 2 KB chat request checked, and a stream checked chunk by chunk against
//! the same stream without guardrails. `make bench` runs it.

mod common;

use common::time;
use llm_gateway::guardrails::{
    Action, Direction, GuardSet, GuardrailConfig, Guardrails, PiiKind, StreamGuard, Tally,
};
use llm_gateway::providers::type_spec;
use llm_gateway::wire::hub::{ResponseContext, Translator};
use llm_gateway::wire::openai::render::ChunkWriter;
use llm_gateway::wire::stream::StreamTranslation;
use llm_gateway::wire::Api;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

/// 10,000 distinct terms: two- to six-character Chinese words and English
/// phrases, as a real list mixes them.
fn terms() -> Vec<String> {
    const HAN: &[char] = &[
        '违', '禁', '词', '敏', '感', '机', '密', '赌', '博', '诈', '骗', '暴', '力', '毒', '品',
        '枪', '支', '黑', '客', '攻', '击', '泄', '露', '内', '部', '代', '号', '账', '户', '洗',
    ];
    (0..10_000usize)
        .map(|i| {
            if i % 4 == 3 {
                format!("forbidden phrase {i}")
            } else {
                let len = 2 + i % 5;
                (0..len)
                    .map(|k| HAN[(i * 7 + k * 13 + i / 30) % HAN.len()])
                    .chain(std::iter::once(char::from(b'a' + (i % 26) as u8)))
                    .collect()
            }
        })
        .collect()
}

fn rules() -> Rc<Guardrails> {
    let words = GuardrailConfig {
        name: "big".into(),
        words: terms(),
        pii: vec![],
        moderation: None,
        action: Action::Mask,
        apply_to: None,
    };
    let pii = GuardrailConfig {
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
        action: Action::Mask,
        apply_to: None,
    };
    Rc::new(Guardrails::compile(&[words, pii]).unwrap_or_else(|e| panic!("{e}")))
}

/// About 2 KB of prompt text, Chinese and English, without a match.
fn prompt() -> String {
    let zh = "请根据以下会议纪要整理一份简明的行动清单，并标注负责人和截止日期。";
    let en = "Please summarise the quarterly report and list the three main risks with owners. ";
    let mut s = String::new();
    while s.len() < 2048 {
        s.push_str(zh);
        s.push_str(en);
    }
    s
}

/// `--calls WHAT N`: only WHAT (`screen`, `stream`, `plain-stream`, or
/// `none`), N times, for an instruction count under callgrind (the
/// difference between N and 0 calls is the cost of N).
fn calls_mode() -> Option<(String, u32)> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--calls")?;
    Some((args.get(i + 1)?.clone(), args.get(i + 2)?.parse().ok()?))
}

fn main() {
    if let Some((what, n)) = calls_mode() {
        return count(&what, n);
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (iters, batches) = if quick { (50, 3) } else { (2_000, 9) };
    let start = Instant::now();
    let g = rules();
    let build_ms = start.elapsed().as_secs_f64() * 1000.0;
    let words = GuardSet::default().with(0);
    let both = words.with(1);
    let text = prompt();

    println!("| guardrail path (10,000-term list) | per call |");
    println!("|---|---:|");
    println!("| compile the list into one automaton (once per configuration) | {build_ms:.1} ms |");
    for (name, set) in [
        ("words", words),
        ("PII", GuardSet::default().with(1)),
        ("words + PII", both),
    ] {
        let ns = time(iters, batches, || {
            let mut t = text.clone();
            let mut tally = Tally::default();
            black_box(g.check(&mut t, set, Direction::Request, &mut tally));
        });
        println!(
            "| check a {} B prompt, {name} | {:.1} µs |",
            text.len(),
            ns / 1000.0
        );
    }
    let mut out = String::new();
    let mut shifts = Vec::new();
    let ns = time(iters, batches, || {
        g.folder()
            .fold_into(black_box(&text), &mut out, &mut shifts);
        black_box(&out);
    });
    println!("| fold a {} B prompt | {:.1} µs |", text.len(), ns / 1000.0);
    let mut fx = Fixture::new(Rc::clone(&g));
    let ns = time(iters, batches, || fx.screen());
    println!(
        "| screen a 2 KB chat request (every text part), words + PII | {:.1} µs |",
        ns / 1000.0
    );

    let n = fx.events.len() as f64;
    let once = |guard: bool| fx.stream(guard);
    // Alternating batches: a busy machine slows both sides alike.
    let (mut plain, mut guarded) = (Vec::new(), Vec::new());
    for _ in 0..batches * 3 {
        plain.push(time(iters / 40 + 1, 1, || once(false)));
        guarded.push(time(iters / 40 + 1, 1, || once(true)));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (plain, guarded) = (median(&mut plain), median(&mut guarded));
    println!(
        "| OpenAI-compatible stream, {} events, no guardrail | {:.2} µs/chunk |",
        fx.events.len(),
        plain / n / 1000.0
    );
    println!(
        "| same stream, words + PII checked with the hold-back window | {:.2} µs/chunk ({:.0} % of the unguarded throughput) |",
        guarded / n / 1000.0,
        plain / guarded * 100.0
    );
}

fn stream(deltas: usize) -> Vec<Vec<u8>> {
    let chunk = |delta: &str, finish: &str| {
        format!("data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"deepseek-chat\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n")
    };
    let words = [
        "会议",
        "纪要",
        "行动",
        "清单，",
        "risk ",
        "owner ",
        "截止",
        "日期。",
    ];
    let mut events = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for i in 0..deltas {
        let d = serde_json::json!({"content": words[i % words.len()]}).to_string();
        events.push(chunk(&d, "null"));
    }
    events.push(chunk("{}", r#""stop""#));
    events.push("data: [DONE]\n\n".into());
    events.into_iter().map(String::into_bytes).collect()
}

/// The request and the stream every timed path runs on.
struct Fixture {
    rules: Rc<Guardrails>,
    /// Words and PII.
    set: GuardSet,
    request: serde_json::Map<String, serde_json::Value>,
    ctx: ResponseContext,
    egress: Rc<dyn Translator>,
    events: Vec<Vec<u8>>,
}

impl Fixture {
    fn new(rules: Rc<Guardrails>) -> Self {
        let body = serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "You are a careful assistant."},
            {"role": "user", "content": prompt()}]});
        Self {
            rules,
            set: GuardSet::default().with(0).with(1),
            request: body.as_object().cloned().unwrap_or_default(),
            ctx: ResponseContext {
                model: "deepseek-chat".into(),
                created: 1,
                request_id: "bench".into(),
                input_tokens_estimate: 0,
            },
            egress: type_spec("deepseek")
                .map(|t| t.translator("", None))
                .unwrap_or_else(|| panic!("deepseek type")),
            events: stream(200),
        }
    }

    /// Every text part of the chat request checked (no hit: nothing masked).
    fn screen(&mut self) {
        let mut tally = Tally::default();
        let (rules, set) = (&self.rules, self.set);
        Api::ChatCompletions.visit_text(&mut self.request, &mut |t| {
            black_box(rules.check(t, set, Direction::Request, &mut tally));
        });
    }

    /// The stream translated for an OpenAI client, through the guardrail
    /// stage when `guard`.
    fn stream(&self, guard: bool) {
        let mut st = StreamTranslation::new(
            self.egress.stream_decoder(&self.ctx),
            Box::new(ChunkWriter::new(&self.ctx, true)),
        );
        if guard {
            st = st.with_filter(Box::new(StreamGuard::new(
                Rc::clone(&self.rules),
                self.set,
                Default::default(),
            )));
        }
        for e in &self.events {
            black_box(st.feed(e));
        }
        black_box(st.finish());
    }
}

/// The `--calls` mode (see `calls_mode`).
fn count(what: &str, n: u32) {
    let mut fx = Fixture::new(rules());
    for _ in 0..n {
        match what {
            "screen" => fx.screen(),
            "stream" => fx.stream(true),
            "plain-stream" => fx.stream(false),
            _ => {}
        }
    }
}
