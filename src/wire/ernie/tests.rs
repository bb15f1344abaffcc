use super::*;
use crate::wire::hub::{FinishReason, Message, Part, Role, ToolCall, ToolChoice, ToolDef};
use crate::wire::stream::StreamTranslation;
use crate::wire::Wire;
use serde_json::json;

fn msg(role: Role, text: &str) -> Message {
    Message::plain(role, text)
}

fn ctx() -> ResponseContext {
    ResponseContext {
        model: "ernie-4.0-8k".into(),
        created: 5,
        request_id: "r9".into(),
        input_tokens_estimate: 0,
    }
}

fn encoded(r: &ChatRequest) -> Value {
    serde_json::from_slice(&Ernie.encode_request(r).unwrap()).unwrap()
}

#[test]
fn requests_alternate_and_carry_functions() {
    let mut call = msg(Role::Assistant, "");
    call.tool_calls = vec![ToolCall {
        id: "call_1".into(),
        name: "weather".into(),
        arguments: r#"{"city":"北京"}"#.into(),
    }];
    let mut result = msg(Role::Tool, "晴");
    result.tool_call_id = Some("call_1".into());
    let r = ChatRequest {
        model: "ernie-4.0-8k".into(),
        messages: vec![
            msg(Role::System, "你是助手"),
            msg(Role::Assistant, "你好"),
            msg(Role::User, "天气"),
            msg(Role::User, "北京"),
            call,
            result,
            msg(Role::User, "谢谢"),
        ],
        tools: vec![ToolDef {
            name: "weather".into(),
            description: Some("查天气".into()),
            parameters: None,
            strict: None,
        }],
        tool_choice: Some(ToolChoice::Function("weather".into())),
        temperature: Some(0.5),
        max_tokens: Some(1),
        user: Some("u1".into()),
        stream: true,
        ..Default::default()
    };
    let v = encoded(&r);
    assert_eq!(v["system"], "你是助手");
    assert_eq!(
        v["messages"],
        json!([
            {"role": "user", "content": "."},
            {"role": "assistant", "content": "你好"},
            {"role": "user", "content": "天气\n北京"},
            {"role": "assistant", "content": "", "function_call": {"name": "weather", "arguments": "{\"city\":\"北京\"}"}},
            {"role": "function", "content": "晴", "name": "weather"},
            {"role": "user", "content": "谢谢"},
        ])
    );
    assert_eq!(v["functions"][0]["name"], "weather");
    assert_eq!(v["tool_choice"]["function"]["name"], "weather");
    assert_eq!(
        (
            v["stream"].clone(),
            v["max_output_tokens"].clone(),
            v["user_id"].clone()
        ),
        (json!(true), json!(2), json!("u1"))
    );
    assert_eq!(
        Ernie.path(
            Operation::ChatCompletions,
            "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat",
            "completions_pro",
            true
        ),
        "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro"
    );
}

#[test]
fn what_ernie_cannot_do_is_a_400() {
    let base = ChatRequest {
        model: "m".into(),
        messages: vec![msg(Role::User, "x")],
        ..Default::default()
    };
    let mut r = base.clone();
    r.temperature = Some(0.0);
    assert_eq!(
        Ernie.encode_request(&r).unwrap_err().param.as_deref(),
        Some("temperature")
    );
    let mut r = base.clone();
    r.tool_choice = Some(ToolChoice::Required);
    assert_eq!(Ernie.encode_request(&r).unwrap_err().status, 400);
    let mut r = base.clone();
    r.messages[0].content.push(Part::Image {
        source: crate::wire::hub::ImageSource::Url("https://x/y.png".into()),
        detail: None,
    });
    assert_eq!(
        Ernie.encode_request(&r).unwrap_err().param.as_deref(),
        Some("messages[0].content[1]")
    );
    let mut r = base.clone();
    r.extra.insert("penalty_score".into(), json!(1.2));
    assert_eq!(encoded(&r)["penalty_score"], json!(1.2));
    r.extra.insert("top_k".into(), json!(1));
    assert_eq!(
        Ernie.encode_request(&r).unwrap_err().param.as_deref(),
        Some("top_k")
    );
}

#[test]
fn answers_and_errors_in_200_bodies() {
    let ok = json!({"id": "as-1", "object": "chat.completion", "created": 9, "result": "你好",
        "is_truncated": false, "need_clear_history": false, "finish_reason": "normal",
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}});
    let r = Ernie
        .decode_response(ok.to_string().as_bytes(), &ctx())
        .unwrap();
    assert_eq!(
        (r.id.as_str(), r.choices[0].content.as_deref()),
        ("as-1", Some("你好"))
    );
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(r.usage.unwrap().total_tokens, 5);
    let call = json!({"result": "", "finish_reason": "function_call",
        "function_call": {"name": "weather", "thoughts": "t", "arguments": "{\"city\":\"x\"}"}});
    let r = Ernie
        .decode_response(call.to_string().as_bytes(), &ctx())
        .unwrap();
    assert_eq!(r.choices[0].tool_calls[0].id, "call_r9_0");
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    assert!(r.choices[0].content.is_none());
    for (code, status) in [
        (110, 401),
        (111, 401),
        (18, 429),
        (336003, 400),
        (336100, 502),
        (6, 403),
    ] {
        let body = json!({"error_code": code, "error_msg": "m"}).to_string();
        let e = Ernie.decode_response(body.as_bytes(), &ctx()).unwrap_err();
        assert_eq!(e.status, status, "{code}");
        assert_eq!(token_refused(&e), code == 110 || code == 111);
        assert_eq!(Ernie.decode_error(200, body.as_bytes()).status, status);
    }
}

fn translate(body: &str, cut: usize) -> (String, bool) {
    let mut t = StreamTranslation::new(
        Ernie.stream_decoder(&ctx()),
        Wire::OpenAiChat.writer(&ctx(), true),
    );
    let mut out = t.feed(&body.as_bytes()[..cut]);
    out.extend(t.feed(&body.as_bytes()[cut..]));
    out.extend(t.finish());
    (String::from_utf8(out).unwrap(), t.failed())
}

#[test]
fn streams_end_with_is_end_at_every_split() {
    let body = [
        json!({"id": "as-2", "sentence_id": 0, "is_end": false, "result": "你好，", "finish_reason": "normal"}),
        json!({"id": "as-2", "sentence_id": 1, "is_end": true, "result": "世界", "finish_reason": "normal",
            "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}}),
    ]
    .iter()
    .map(|v| format!("data: {v}\n\n"))
    .collect::<String>();
    let (whole, failed) = translate(&body, 0);
    assert!(!failed, "{whole}");
    assert!(
        whole.contains("你好，") && whole.contains("世界") && whole.contains(r#""total_tokens":7"#)
    );
    assert!(whole.ends_with("data: [DONE]\n\n"));
    for cut in 0..=body.len() {
        if body.is_char_boundary(cut) {
            assert_eq!(translate(&body, cut), (whole.clone(), false), "{cut}");
        }
    }
    let cut_short = format!("data: {}\n\n", json!({"result": "x", "is_end": false}));
    assert!(translate(&cut_short, 0).0.contains("before its last chunk"));
    // Found by fuzzing: two chunks each with a function call.
    let call =
        json!({"result": "", "is_end": false, "function_call": {"name": "w", "arguments": "{}"}});
    let end = json!({"result": "", "is_end": true, "finish_reason": "function_call", "function_call": {"name": "w", "arguments": "{}"}});
    let (out, failed) = translate(&format!("data: {call}\n\ndata: {end}\n\n"), 0);
    assert!(failed && out.contains("second function call"), "{out}");
    let error = format!(
        "data: {}\n\n",
        json!({"error_code": 336100, "error_msg": "internal error"})
    );
    let (out, failed) = translate(&error, 0);
    assert!(
        failed && out.contains("internal error") && out.contains("ernie_336100"),
        "{out}"
    );
}
