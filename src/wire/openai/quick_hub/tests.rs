use super::*;
use crate::wire::hub::{Operation, ResponseFormat};
use crate::wire::openai::{parse_request, to_hub};
use serde_json::json;

const UP: &str = "upstream-model";

/// Whatever the typed pass returns equals the tree path's answer; where the
/// tree path refuses, the typed pass gives up. Returns whether it answered.
fn agrees(body: &[u8]) -> bool {
    answer(body) == Some(true)
}

/// `None`: the validator refuses the body; else whether the typed pass
/// answered (and agreed).
fn answer(body: &[u8]) -> Option<bool> {
    let parsed = parse_request(Operation::ChatCompletions, body).ok()?;
    let quick = chat_request(body, UP);
    match (to_hub::chat_request(parsed.body(), UP), &quick) {
        (Ok(full), Some(quick)) => assert_eq!(
            quick,
            &full,
            "differs from the tree path: {}",
            String::from_utf8_lossy(body)
        ),
        (Err(e), Some(_)) => panic!(
            "answered where the tree path refuses ({e:?}): {}",
            String::from_utf8_lossy(body)
        ),
        (_, None) => {}
    }
    Some(quick.is_some())
}

fn base() -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}], "reasoning_content": "why"},
            {"role": "tool", "tool_call_id": "c1", "content": "42", "name": "f"}
        ],
        "stream": true,
        "stream_options": {"include_usage": true},
        "n": 1, "max_tokens": 10, "max_completion_tokens": 20,
        "temperature": 0.5, "top_p": 1, "presence_penalty": -2, "frequency_penalty": 2.0,
        "seed": -7, "parallel_tool_calls": false, "user": "u1", "reasoning_effort": "low",
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"b": {"type": "string"}, "a": {}}}, "strict": true}}],
        "stop": ["a", "b"], "tool_choice": "auto",
        "vendor_extension": {"deep": [1, 2.5, -3, true, null, "x\u{00e9}\n"]},
        "top_k": 3
    })
}

#[test]
fn answers_the_common_requests_as_the_tree_path_does() {
    let bodies = [
        base().to_string(),
        r#"{"model":"m","messages":[{"role":"user","content":"Say hello"}]}"#.into(),
        r#"{"messages":[{"role":"developer","content":"x"},{"role":"user","content":"y"}],"model":"m","stream":false,"stop":"\n"}"#.into(),
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\\u4f60\\ud83d\\ude00\"}]}".into(),
        r#"{"model":"m","messages":[{"role":"user","content":[]}],"tool_choice":{"type":"function","function":{"name":"f"}},"stream_options":null,"response_format":null,"x":null}"#.into(),
        r#"{"model":"m","messages":[{"role":"function","name":"f","content":"1"}],"stop":["s"]}"#.into(),
        r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":null}}]},{"role":"tool","tool_call_id":"c","content":"r"}]}"#.into(),
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":false,"other":1},"seed":9223372036854775807,"max_tokens":4294967295}"#.into(),
    ];
    for b in &bodies {
        assert!(agrees(b.as_bytes()), "not answered: {b}");
    }
    let req = chat_request(base().to_string().as_bytes(), UP).unwrap();
    assert_eq!(req.model, UP);
    assert_eq!(req.max_tokens, Some(20));
    assert!(req.include_usage);
    assert_eq!(
        req.extra.keys().collect::<Vec<_>>(),
        ["vendor_extension", "top_k"]
    );
    // The schema keeps its key order.
    let params = serde_json::to_string(&req.tools[0].parameters).unwrap();
    assert!(
        params.contains(r#"{"b":{"type":"string"},"a":{}}"#),
        "{params}"
    );
}

#[test]
fn leaves_other_shapes_to_the_tree_path() {
    let cases = [
        // An image, a file, a response format: the tree path converts them.
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,AA=="}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#,
        // Duplicates: the tree keeps the last.
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1,"temperature":0.5}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"x":1,"x":null}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"x":null,"x":1}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x","name":"a","name":"b"}]}"#,
        // What the tree path refuses or reads leniently.
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":""}}]}"#,
        r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":{"a":1}}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"seed":1.5}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":4294967296}"#,
    ];
    for c in cases {
        assert!(
            parse_request(Operation::ChatCompletions, c.as_bytes()).is_ok(),
            "{c}"
        );
        assert!(!agrees(c.as_bytes()), "answered: {c}");
    }
    // And the tree path does convert the first three.
    let tree = parse_request(Operation::ChatCompletions, cases[2].as_bytes()).unwrap();
    let full = to_hub::chat_request(tree.body(), UP).unwrap();
    assert_eq!(full.response_format, Some(ResponseFormat::JsonObject));
}

/// Each field and message field replaced by values of every kind, fields
/// removed: the typed pass agrees with the tree path or gives up.
#[test]
fn agrees_with_the_tree_path_field_by_field() {
    let values = [
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(1),
        json!(-1),
        json!(2.5),
        json!(1.0),
        json!(1e300),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!("auto"),
        json!("function"),
        json!([]),
        json!(["s"]),
        json!([1, "s"]),
        json!({}),
        json!({"include_usage": true}),
        json!({"include_usage": 1}),
        json!({"function": {"name": "g"}}),
        json!({"name": "g", "arguments": "{}"}),
        json!([{"type": "text", "text": "t"}]),
        json!([{"type": "function", "function": {"name": "g"}}]),
        json!([{"id": "c", "function": {"name": "g"}}]),
        json!([{"type": "text"}]),
        json!("tool"),
        json!("robot"),
    ];
    let (mut answered, mut valid) = (0, 0);
    let mut count = |body: &Value| {
        if let Some(yes) = answer(body.to_string().as_bytes()) {
            valid += 1;
            answered += yes as usize;
        }
    };
    let b = base();
    let keys: Vec<String> = b.as_object().unwrap().keys().cloned().collect();
    for key in &keys {
        for v in &values {
            let mut m = b.clone();
            m[key.as_str()] = v.clone();
            count(&m);
        }
        let mut m = b.clone();
        m.as_object_mut().unwrap().remove(key);
        count(&m);
    }
    let message_fields = [
        "role",
        "content",
        "name",
        "tool_call_id",
        "tool_calls",
        "reasoning_content",
    ];
    for i in 0..4 {
        for field in message_fields {
            for v in &values {
                let mut m = b.clone();
                m["messages"][i][field] = v.clone();
                count(&m);
            }
            let mut m = b.clone();
            m["messages"][i].as_object_mut().unwrap().remove(field);
            count(&m);
        }
    }
    for (path, field) in [
        ("/messages/1/content/0", "type"),
        ("/messages/1/content/0", "text"),
        ("/messages/2/tool_calls/0", "id"),
        ("/messages/2/tool_calls/0/function", "name"),
        ("/messages/2/tool_calls/0/function", "arguments"),
        ("/tools/0", "type"),
        ("/tools/0/function", "name"),
        ("/tools/0/function", "description"),
        ("/tools/0/function", "parameters"),
        ("/tools/0/function", "strict"),
        ("/stream_options", "include_usage"),
    ] {
        for v in &values {
            let mut m = b.clone();
            m.pointer_mut(path).unwrap()[field] = v.clone();
            count(&m);
        }
        let mut m = b.clone();
        m.pointer_mut(path)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(field);
        count(&m);
    }
    // Both ways round: many valid bodies answered (the others hold values
    // of types the tree path reads leniently or refuses), some not.
    assert!(
        answered > valid / 3 && answered < valid,
        "{answered} of {valid}"
    );
}
