//! The typed chunk pass against the tree path: on every chunk it answers,
//! the same events, usage and state; chunks it must leave to the tree.

use super::*;
use serde_json::json;

const STREAMS: &str = include_str!("../../../../tests/fixtures/gemini/streams.json");
const RESPONSES: &str = include_str!("../../../../tests/fixtures/gemini/responses.json");

fn ctx() -> ResponseContext {
    ResponseContext {
        model: "gemini-2.5-flash".into(),
        created: 1,
        request_id: "r1".into(),
        input_tokens_estimate: 0,
    }
}

/// `data` through both paths after `before` (earlier chunks, through the
/// tree path on both): None when the typed pass declines, else whether
/// both gave the same.
fn compare(before: &[String], data: &str) -> Option<()> {
    let (mut typed, mut tree) = (GeminiStream::new(&ctx()), GeminiStream::new(&ctx()));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for earlier in before {
        typed.on_chunk_tree(earlier, &mut a);
        tree.on_chunk_tree(earlier, &mut b);
    }
    if !typed.on_chunk_typed(data, &mut a) {
        assert_eq!(a.len(), b.len(), "declined but wrote events: {data}");
        return None;
    }
    tree.on_chunk_tree(data, &mut b);
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "events: {data}");
    assert_eq!(format!("{typed:?}"), format!("{tree:?}"), "state: {data}");
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    typed.finish(&mut fa);
    tree.finish(&mut fb);
    assert_eq!(format!("{fa:?}"), format!("{fb:?}"), "finish: {data}");
    Some(())
}

const TEMPLATE: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hi \"x\" é"},{"text":""},{"text":"b","thoughtSignature":"s"}]},"finishReason":"STOP","index":0,"safetyRatings":[{"category":"HARM","probability":"NEGLIGIBLE"}],"avgLogprobs":-0.5},{"content":{"parts":[{"text":"c"}]}}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":4,"totalTokenCount":9,"thoughtsTokenCount":2,"toolUsePromptTokenCount":1,"cachedContentTokenCount":3,"promptTokensDetails":[{"modality":"TEXT","tokenCount":5}]},"modelVersion":"gemini-2.5-flash-001","responseId":"s1","createTime":"2025-01-01T00:00:00Z"}"#;

/// Every member value of `v` (paths as JSON pointers).
fn member_paths(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                member_paths(child, p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                member_paths(child, p, out);
            }
        }
        _ => {}
    }
}

fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(7),
        json!(-1),
        json!(1.5),
        json!(4294967296u64),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!("MAX_TOKENS"),
        json!("SAFETY"),
        json!([]),
        json!([1]),
        json!([{"text": "t"}]),
        json!({}),
        json!({"a": 1}),
        json!({"text": "t"}),
        json!({"functionCall": {"name": "f", "args": {}}}),
        json!({"thought": true, "text": "t"}),
        json!({"parts": [{"text": "t"}]}),
        json!({"code": 400, "message": "m"}),
        json!({"blockReason": "SAFETY"}),
    ]
}

#[test]
fn fixture_chunks_give_the_same_on_both_paths() {
    let mut answered = 0;
    let mut total = 0;
    for case in serde_json::from_str::<Vec<Value>>(STREAMS).unwrap() {
        let events: Vec<String> = case["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| match e {
                Value::String(raw) => raw.clone(),
                other => other.to_string(),
            })
            .collect();
        for (i, data) in events.iter().enumerate() {
            total += 1;
            answered += usize::from(compare(&events[..i], data).is_some());
        }
    }
    for case in serde_json::from_str::<Vec<Value>>(RESPONSES).unwrap() {
        if let Some(body) = case.get("gemini") {
            total += 1;
            answered += usize::from(compare(&[], &body.to_string()).is_some());
        }
    }
    assert!(
        answered * 2 > total,
        "typed pass answered {answered} of {total}"
    );
}

#[test]
fn every_member_replaced_gives_the_same_or_declines() {
    let template: Value = serde_json::from_str(TEMPLATE).unwrap();
    assert!(compare(&[], TEMPLATE).is_some(), "the template itself");
    let mut paths = Vec::new();
    member_paths(&template, String::new(), &mut paths);
    let (mut answered, mut total) = (0, 0);
    for path in &paths {
        for r in replacements() {
            let mut v = template.clone();
            *v.pointer_mut(path).unwrap() = r;
            let data = v.to_string();
            total += 1;
            answered += usize::from(compare(&[], &data).is_some());
            // The same after a first chunk (the stream already started).
            compare(&[TEMPLATE.to_string()], &data);
        }
        // The member removed.
        let (parent, key) = path.rsplit_once('/').unwrap();
        let mut v = template.clone();
        match v
            .pointer_mut(if parent.is_empty() { "" } else { parent })
            .unwrap()
        {
            Value::Object(m) => drop(m.shift_remove(key)),
            Value::Array(a) => drop(a.remove(key.parse::<usize>().unwrap())),
            _ => unreachable!(),
        }
        total += 1;
        answered += usize::from(compare(&[], &v.to_string()).is_some());
    }
    assert!(
        total > 900 && answered > total / 3,
        "typed pass answered {answered} of {total}"
    );
}

#[test]
fn declines_what_the_tree_path_decides() {
    for data in [
        // Duplicate members: the tree keeps the last.
        r#"{"candidates":[],"candidates":[{"content":{"parts":[{"text":"x"}]}}]}"#,
        r#"{"candidates":[{"index":0,"index":1,"content":{"parts":[{"text":"x"}]}}]}"#,
        r#"{"usageMetadata":{"promptTokenCount":1,"promptTokenCount":2}}"#,
        // Calls, thoughts, errors, feedback, parts without text.
        r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]}}]}"#,
        r#"{"candidates":[{"content":{"parts":[{"thought":true,"text":"x"}]}}]}"#,
        r#"{"error":{"code":429,"message":"slow down"}}"#,
        r#"{"candidates":[],"promptFeedback":{"blockReason":"SAFETY"}}"#,
        r#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":""}}]}}]}"#,
        // Counts the tree reads as absent, an array body.
        r#"{"usageMetadata":{"promptTokenCount":1.0}}"#,
        r#"{"usageMetadata":{"promptTokenCount":"1"}}"#,
        r#"[{"candidates":[]}]"#,
        // Bytes the tree's parser refuses.
        r#"{"candidates":[],"x":"\u12"}"#,
        r#"{"candidates":[],"x":1e999}"#,
        r#"{"candidates":[]} x"#,
    ] {
        assert!(compare(&[], data).is_none(), "answered: {data}");
    }
}
