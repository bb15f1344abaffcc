use super::*;
use crate::wire::anthropic::response::from_tree;
use serde_json::json;

/// Whatever the one-pass reader gives, the tree reader gives too.
fn agrees(body: &[u8]) -> bool {
    let Some(parts) = scan(body) else {
        return false;
    };
    let tree = from_tree(body).unwrap_or_else(|e| {
        panic!(
            "scan read, tree refused ({e:?}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(parts, tree, "{}", String::from_utf8_lossy(body));
    true
}

fn message() -> serde_json::Value {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Hello \u{e9}\n"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"b": [1, 2.5], "a": "x"}},
            {"type": "redacted_thinking", "data": "zz"}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 21, "output_tokens": 9, "cache_read_input_tokens": 3,
                  "cache_creation_input_tokens": 0, "service_tier": "standard"}
    })
}

#[test]
fn reads_what_the_tree_reader_reads() {
    assert!(agrees(message().to_string().as_bytes()));
    assert!(agrees(br#"{"content":[]}"#));
    assert!(agrees(
        br#"{"content":[1,"x",null,[{}],{"type":5,"text":"t"}],"usage":7}"#
    ));
}

/// Each field of the message and of its blocks replaced by values of every
/// kind: the one-pass reader reads it as the tree reader does, or leaves it
/// to the tree reader.
#[test]
fn agrees_field_by_field() {
    let values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(2.5),
        json!(18446744073709551615u64),
        json!(""),
        json!("error"),
        json!("tool_use"),
        json!("text"),
        json!([]),
        json!([1]),
        json!({}),
        json!({"input_tokens": 1}),
        json!({"type": "text", "text": "t"}),
    ];
    let (mut read, mut total) = (0, 0);
    let m = message();
    for key in ["id", "type", "model", "stop_reason", "content", "usage"] {
        for v in &values {
            let mut x = m.clone();
            x[key] = v.clone();
            total += 1;
            read += agrees(x.to_string().as_bytes()) as usize;
        }
        let mut x = m.clone();
        x.as_object_mut().unwrap().remove(key);
        agrees(x.to_string().as_bytes());
    }
    for i in 0..4 {
        for key in ["type", "text", "thinking", "id", "name", "input"] {
            for v in &values {
                let mut x = m.clone();
                x["content"][i][key] = v.clone();
                total += 1;
                read += agrees(x.to_string().as_bytes()) as usize;
            }
        }
    }
    for key in USAGE_KEYS {
        for v in &values {
            let mut x = m.clone();
            x["usage"][key] = v.clone();
            total += 1;
            read += agrees(x.to_string().as_bytes()) as usize;
        }
    }
    assert!(read > total / 2 && read < total, "{read} of {total}");
}

#[test]
fn leaves_odd_answers_to_the_tree_reader() {
    let cases: &[&[u8]] = &[
        br#"{"type":"error","error":{"type":"overloaded_error","message":"x"}}"#,
        br#"{"id":"a","id":"b","content":[]}"#,
        br#"{"content":[{"type":"text","type":"text"}]}"#,
        br#"{"content":{}}"#,
        br#"{"id":"m"}"#,
        br#"{"content":[],"x":"\ud800"}"#,
        br#"{"content":[],"x":1e400}"#,
        br#"{"content":[]} x"#,
        br#"[]"#,
        b"",
    ];
    for c in cases {
        assert!(!agrees(c), "read: {}", String::from_utf8_lossy(c));
    }
    let body = message().to_string();
    for cut in 0..body.len() {
        assert!(!agrees(&body.as_bytes()[..cut]), "cut {cut}");
    }
}
