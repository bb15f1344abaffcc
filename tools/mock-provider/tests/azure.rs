mod common;

use common::*;
use serde_json::{json, Value};

const CHAT: &str = "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21";

fn body() -> Value {
    json!({"messages": [{"role": "user", "content": "hello azure"}]})
}

#[test]
fn chat_uses_deployment_as_model() {
    let s = Server::start();
    let r = s.post(CHAT, &[("api-key", "azure-key")], &body());
    assert_eq!(r.status, 200, "{}", r.text());
    let mut v = r.json();
    mask_created(&mut v);
    assert_eq!(
        v,
        json!({
            "id": "chatcmpl-mock-1",
            "object": "chat.completion",
            "created": 0,
            "model": "my-gpt4o",
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": "Hello from mock-provider! You said: hello azure", "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 7, "total_tokens": 9},
            "system_fingerprint": "fp_mock"
        })
    );
    // A model in the body is allowed but the deployment wins.
    let mut b = body();
    b["model"] = json!("gpt-4o");
    assert_eq!(
        s.post(CHAT, &[("api-key", "k")], &b).json()["model"],
        "my-gpt4o"
    );
}

#[test]
fn stream() {
    let s = Server::start();
    let mut b = body();
    b["stream"] = json!(true);
    let r = s.post(CHAT, &[("api-key", "k")], &b);
    let events = openai_events(&r.text());
    assert!(events.iter().all(|e| e["model"] == "my-gpt4o"));
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock-provider! You said: hello azure");
}

#[test]
fn embeddings() {
    let s = Server::start();
    let r = s.post(
        "/openai/deployments/emb/embeddings?api-version=2024-10-21",
        &[("api-key", "k")],
        &json!({"input": ["a", "b c"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "emb");
    assert_eq!(v["data"].as_array().expect("data").len(), 2);
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
}

#[test]
fn auth_and_api_version() {
    let s = Server::start_with(&["--api-key", "right"]);
    let denied = json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}});
    let r = s.post(CHAT, &[], &body());
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), denied);
    // Azure does not take OpenAI's bearer header as the key.
    let r = s.post(CHAT, &[("authorization", "Bearer right")], &body());
    assert_eq!(r.status, 401);
    let r = s.post(CHAT, &[("api-key", "wrong")], &body());
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), denied);

    let r = s.post(
        "/openai/deployments/d/chat/completions",
        &[("api-key", "right")],
        &body(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": {"code": "BadRequest", "message": "API version not supported"}})
    );

    assert_eq!(s.post(CHAT, &[("api-key", "right")], &body()).status, 200);

    let r = s.post(
        "/openai/deployments/d/completions?api-version=1",
        &[("api-key", "right")],
        &body(),
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"error": {"code": "404", "message": "Resource not found"}})
    );
}

#[test]
fn without_configured_key_a_key_is_still_required() {
    let s = Server::start();
    assert_eq!(s.post(CHAT, &[], &body()).status, 401);
    assert_eq!(s.post(CHAT, &[("api-key", "")], &body()).status, 401);
    assert_eq!(s.post(CHAT, &[("api-key", "any")], &body()).status, 200);
}

#[test]
fn validation_is_openai_shaped() {
    let s = Server::start();
    let r = s.post(CHAT, &[("api-key", "k")], &json!({"messages": []}));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "empty_array");
}

#[test]
fn mock_status_uses_azure_shape() {
    let s = Server::start();
    let r = s.post(
        CHAT,
        &[
            ("api-key", "k"),
            ("x-mock-status", "429"),
            ("x-mock-retry-after", "7"),
        ],
        &body(),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    let v = r.json();
    assert_eq!(v["error"]["code"], "429");
    assert!(v["error"]["message"]
        .as_str()
        .expect("message")
        .contains("exceeded call rate limit"));
}
