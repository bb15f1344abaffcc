use super::*;
use crate::wire::hub::Operation;
use crate::wire::openai::parse_request;
use serde_json::{json, Value};

/// The quick check never accepts what the full validator refuses, and
/// agrees on the facts of what both accept.
fn agrees(body: &[u8]) -> bool {
    let quick = chat(body);
    let full = parse_request(Operation::ChatCompletions, body);
    if let Some(q) = &quick {
        let full = full.unwrap_or_else(|e| {
            panic!(
                "quick accepted, full refused ({e:?}): {}",
                String::from_utf8_lossy(body)
            )
        });
        assert_eq!(
            (q.model.as_str(), q.stream),
            (full.model.as_str(), full.stream)
        );
    }
    quick.is_some()
}

fn base() -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:x"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}
        ],
        "stream": true,
        "stream_options": {"include_usage": true},
        "n": 1, "max_tokens": 10, "max_completion_tokens": 20,
        "temperature": 0.5, "top_p": 1, "presence_penalty": -2, "frequency_penalty": 2.0,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "stop": ["a", "b"], "tool_choice": "auto",
        "vendor_extension": {"deep": [1, 2.5, -3, true, null, "x\u{00e9}\n"]}
    })
}

#[test]
fn accepts_the_common_requests() {
    let bodies = [
        base().to_string(),
        r#"{"model":"m","messages":[{"role":"user","content":"Say hello"}]}"#.to_string(),
        r#"{"messages":[{"role":"user","content":"x"}],"model":"m","stream":false,"stop":"\n"}"#
            .to_string(),
        "{\"model\":\"\u{4f60}\u{597d}\",\"messages\":[{\"role\":\"user\",\"content\":\"\\u4f60\\ud83d\\ude00\"}]}"
            .to_string(),
        r#"{"model":"m","messages":[{"role":"developer","content":[]}],"tool_choice":{"type":"function","function":{"name":"f"}},"stream_options":null}"#
            .to_string(),
    ];
    for b in &bodies {
        assert!(agrees(b.as_bytes()), "not accepted: {b}");
    }
    assert_eq!(
        chat(base().to_string().as_bytes()),
        Some(Checked {
            model: "gpt-4o-mini".into(),
            stream: true
        })
    );
}

/// Each field replaced by values of every kind, each message field too,
/// fields removed and duplicated: whatever the quick check accepts, the
/// full validator accepts with the same facts.
#[test]
fn never_accepts_what_the_validator_refuses() {
    let values = [
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(1),
        json!(-1),
        json!(2.5),
        json!(-2.5),
        json!(1.0),
        json!(3),
        json!(""),
        json!("x"),
        json!([]),
        json!(["s"]),
        json!([1]),
        json!([null]),
        json!({}),
        json!({"include_usage": 1}),
        json!({"include_usage": null}),
        json!([{"type": 1}]),
        json!([{"text": "t"}]),
        json!([{"type": "text"}]),
        json!("tool"),
        json!("user"),
        json!("robot"),
    ];
    let mut accepted = 0;
    let mut total = 0;
    let b = base();
    let keys: Vec<String> = b.as_object().unwrap().keys().cloned().collect();
    for key in &keys {
        for v in &values {
            let mut m = b.clone();
            m[key.as_str()] = v.clone();
            total += 1;
            accepted += agrees(m.to_string().as_bytes()) as usize;
        }
        let mut m = b.clone();
        m.as_object_mut().unwrap().remove(key);
        agrees(m.to_string().as_bytes());
    }
    for i in 0..4 {
        for field in ["role", "content", "tool_call_id", "type"] {
            for v in &values {
                let mut m = b.clone();
                m["messages"][i][field] = v.clone();
                total += 1;
                accepted += agrees(m.to_string().as_bytes()) as usize;
                let mut m = b.clone();
                m["messages"][1]["content"][0][field] = v.clone();
                agrees(m.to_string().as_bytes());
            }
            let mut m = b.clone();
            m["messages"][i].as_object_mut().unwrap().remove(field);
            agrees(m.to_string().as_bytes());
        }
    }
    // Both ways round, some accepted and some not.
    assert!(
        accepted > total / 4 && accepted < total,
        "{accepted} of {total}"
    );
}

#[test]
fn leaves_odd_bodies_to_the_validator() {
    let cases: &[&[u8]] = &[
        // A second `model` (the validator keeps the last).
        br#"{"model":"a","model":"b","messages":[{"role":"user","content":"x"}]}"#,
        br#"{"model":"m","messages":[{"role":"user","role":"robot","content":"x"}]}"#,
        // What only a full parse refuses, deep in a field nobody reads.
        br#"{"model":"m","messages":[{"role":"user","content":"x"}],"x":"\ud800"}"#,
        br#"{"model":"m","messages":[{"role":"user","content":"x"}],"x":[1e400]}"#,
        br#"{"model":"m","messages":[{"role":"user","content":"x"}],"x":"\q"}"#,
        b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"x\":\"\xff\"}",
        br#"{"model":"m","messages":[{"role":"user","content":"x"}]} x"#,
        br#"{"model":"m","messages":[{"role":"user","content":"x"}]"#,
        br#"{"model":"","messages":[{"role":"user","content":"x"}]}"#,
        br#"{"model":"m","messages":[]}"#,
        br#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{}}"#,
        br#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
        br#"[{"model":"m"}]"#,
        b"",
    ];
    for c in cases {
        assert!(!agrees(c), "accepted: {}", String::from_utf8_lossy(c));
    }
    let deep = format!(
        "{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}],\"x\":{}1{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    assert!(!agrees(deep.as_bytes()));
}

/// Every truncation of a valid body is refused by both.
#[test]
fn every_truncation_is_left_to_the_validator() {
    let body = base().to_string();
    for cut in 0..body.len() {
        assert!(!agrees(&body.as_bytes()[..cut]), "cut {cut}");
    }
}

#[test]
fn tool_index_names_the_tool_role() {
    assert_eq!(ROLES[TOOL], "tool");
}
