mod common;

use common::*;
use serde_json::{json, Value};

const GEN: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
const KEY: (&str, &str) = ("x-goog-api-key", "AIza-test");

fn body() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "You are a cat."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]
    })
}

#[test]
fn generate_content_exact() {
    let s = Server::start();
    let r = s.post(GEN, &[KEY, JSON], &body());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": "Hello from mock-provider! You said: Hello there"}]},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 7, "totalTokenCount": 13},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "mock-response-1"
        })
    );
}

#[test]
fn snake_case_single_objects_and_query_key() {
    let s = Server::start();
    let b = json!({
        "system_instruction": {"parts": {"text": "You are a cat."}},
        "contents": {"parts": {"text": "Hello there"}},
        "generation_config": {"max_output_tokens": "3", "top_k": 3, "temperature": 0.5,
                              "stop_sequences": ["zzz"], "response_mime_type": "text/plain"}
    });
    let r = s.post(
        "/v1beta/models/gemini-2.0-flash:generateContent?key=AIza",
        &[],
        &b,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from mock-provider!"
    );
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 3);
    // v1 is accepted too.
    assert_eq!(
        s.post(
            "/v1/models/gemini-2.0-flash:generateContent",
            &[KEY],
            &body()
        )
        .status,
        200
    );
}

#[test]
fn stream_sse_with_crlf() {
    let s = Server::start();
    let r = s.post(
        STREAM,
        &[KEY, ("x-mock-content", "Meow meow, human friend")],
        &body(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    assert!(text.starts_with("data: {\"candidates\":"));
    let events = gemini_events(&text);
    let pieces: Vec<String> = events
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .expect("text")
                .to_string()
        })
        .collect();
    assert_eq!(pieces, ["Meow meo", "w, human", " friend"]);
    for (i, e) in events.iter().enumerate() {
        let last = i == events.len() - 1;
        assert_eq!(e["candidates"][0]["content"]["role"], "model");
        assert_eq!(e["candidates"][0].get("finishReason").is_some(), last);
        assert_eq!(e.get("usageMetadata").is_some(), last);
        assert_eq!(e["modelVersion"], "gemini-2.5-flash");
        assert_eq!(e["responseId"], "mock-response-1");
    }
    let last = events.last().expect("last");
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 6, "candidatesTokenCount": 4, "totalTokenCount": 10})
    );
}

#[test]
fn stream_without_alt_sse_is_a_json_array() {
    let s = Server::start();
    let r = s.post(
        "/v1beta/models/g:streamGenerateContent",
        &[KEY, ("x-mock-content", "one two three four five")],
        &body(),
    );
    assert_eq!(r.status, 200);
    let v: Value = r.json();
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 3);
    let text: String = arr
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .expect("text")
        })
        .collect();
    assert_eq!(text, "one two three four five");
}

#[test]
fn max_output_tokens_in_stream() {
    let s = Server::start();
    let mut b = body();
    b["generationConfig"] = json!({"maxOutputTokens": 2});
    let events = gemini_events(&s.post(STREAM, &[KEY], &b).text());
    let text: String = events
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .expect("text")
        })
        .collect();
    assert_eq!(text, "Hello from");
    assert_eq!(
        events.last().expect("last")["candidates"][0]["finishReason"],
        "MAX_TOKENS"
    );
}

#[test]
fn function_call_and_thoughts() {
    let s = Server::start();
    let h = [
        KEY,
        ("x-mock-tool-call", "get_weather"),
        ("x-mock-tool-args", r#"{"city":"Paris"}"#),
    ];
    let v = s.post(GEN, &h, &body()).json();
    assert_eq!(
        v["candidates"][0]["content"],
        json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]})
    );
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    let events = gemini_events(&s.post(STREAM, &h, &body()).text());
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );

    let h = [
        KEY,
        ("x-mock-reasoning", "Cats think."),
        ("x-mock-content", "Meow."),
    ];
    let v = s.post(GEN, &h, &body()).json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"],
        json!([{"text": "Cats think.", "thought": true}, {"text": "Meow."}])
    );
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 6, "candidatesTokenCount": 1, "totalTokenCount": 9, "thoughtsTokenCount": 2})
    );
    let events = gemini_events(&s.post(STREAM, &h, &body()).text());
    assert_eq!(
        events[0]["candidates"][0]["content"]["parts"][0],
        json!({"text": "Cats thi", "thought": true})
    );
    assert_eq!(
        events[1]["candidates"][0]["content"]["parts"][0],
        json!({"text": "nk.", "thought": true})
    );
    assert_eq!(
        events[2]["candidates"][0]["content"]["parts"][0],
        json!({"text": "Meow."})
    );
}

fn assert_gemini_error(r: &Resp, code: u16, status: &str, message: &str) {
    assert_eq!(r.status, code, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], code);
    assert_eq!(v["error"]["status"], status);
    assert_eq!(v["error"]["message"], message, "{v}");
}

#[test]
fn validation_errors() {
    let s = Server::start();
    let e = |b: Value| s.post(GEN, &[KEY], &b);
    assert_gemini_error(
        &e(json!({})),
        400,
        "INVALID_ARGUMENT",
        "* GenerateContentRequest.contents: contents is not specified\n",
    );
    assert_gemini_error(
        &e(json!({"contents": []})),
        400,
        "INVALID_ARGUMENT",
        "* GenerateContentRequest.contents: contents is not specified\n",
    );
    assert_gemini_error(
        &e(json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]})),
        400,
        "INVALID_ARGUMENT",
        "Please use a valid role: user, model.",
    );
    assert_gemini_error(
        &e(json!({"contents": [{"role": "user", "parts": []}]})),
        400,
        "INVALID_ARGUMENT",
        "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n",
    );
    assert_gemini_error(&e(json!({"contents": [{"role": "user", "parts": [{}]}]})), 400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents[0].parts[0].data: required oneof field 'data' must have one initialized field\n");
    assert_gemini_error(
        &e(json!({"contents": [{"parts": [{"text": "x"}]}], "messages": []})),
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON payload received. Unknown name \"messages\": Cannot find field.",
    );
    assert_gemini_error(&e(json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"max_tokens": 5}})), 400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"max_tokens\" at 'generation_config': Cannot find field.");
    assert_gemini_error(&e(json!({"contents": [{"parts": [{"text": "x", "image": 1}]}]})), 400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"image\" at 'contents[0].parts[0]': Cannot find field.");
    assert_gemini_error(
        &e(
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": "hot"}}),
        ),
        400,
        "INVALID_ARGUMENT",
        "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\"",
    );
    assert_gemini_error(&e(json!({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{"name": "1bad"}]}]})), 400, "INVALID_ARGUMENT", "* GenerateContentRequest.tools[0].function_declarations[0].name: Invalid function name. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with a maximum length of 64.\n");
    let r = s.request("POST", GEN, &[KEY], "{oops");
    assert_gemini_error(
        &r,
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON payload received. Unexpected token.",
    );

    // Every part kind, in both spellings, is accepted.
    let ok = json!({
        "contents": [
            {"role": "user", "parts": [
                {"text": "look"},
                {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                {"file_data": {"mime_type": "application/pdf", "file_uri": "https://x/y.pdf"}}
            ]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
            {"role": "user", "parts": [{"function_response": {"name": "f", "response": {"ok": true}}}]}
        ],
        "tools": [{"functionDeclarations": [{"name": "f", "description": "d", "parameters": {"type": "OBJECT"}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"temperature": 1, "topP": 0.9, "topK": 40, "maxOutputTokens": 100,
                             "stopSequences": ["x"], "candidateCount": 1,
                             "responseMimeType": "application/json", "responseSchema": {"type": "OBJECT"},
                             "thinkingConfig": {"includeThoughts": true}}
    });
    let r = e(ok);
    assert_eq!(r.status, 200, "{}", r.text());
    // The last user turn has no text part.
    assert_eq!(
        r.json()["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from mock-provider! You said: "
    );
}

#[test]
fn auth() {
    let s = Server::start_with(&["--api-key", "AIza-right"]);
    let r = s.post(GEN, &[], &body());
    assert_gemini_error(&r, 403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.");
    let r = s.post(GEN, &[("x-goog-api-key", "AIza-wrong")], &body());
    assert_gemini_error(
        &r,
        403,
        "PERMISSION_DENIED",
        "API key not valid. Please pass a valid API key.",
    );
    assert_eq!(r.json()["error"]["details"][0]["reason"], "API_KEY_INVALID");
    let r = s.post(&format!("{GEN}?key=AIza-wrong"), &[], &body());
    assert_eq!(r.status, 403);
    assert_eq!(
        s.post(&format!("{GEN}?key=AIza-right"), &[], &body())
            .status,
        200
    );
    assert_eq!(
        s.post(GEN, &[("x-goog-api-key", "AIza-right")], &body())
            .status,
        200
    );

    let s = Server::start();
    assert_eq!(s.post(GEN, &[], &body()).status, 403);
    assert_eq!(
        s.post(GEN, &[("x-goog-api-key", "anything")], &body())
            .status,
        200
    );
}

#[test]
fn embeddings() {
    let s = Server::start();
    let r = s.post(
        "/v1beta/models/text-embedding-004:embedContent",
        &[KEY],
        &json!({"content": {"parts": [{"text": "hello world"}]}, "taskType": "RETRIEVAL_QUERY"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let values = v["embedding"]["values"].as_array().expect("values");
    assert_eq!(values.len(), 8);

    let r = s.post(
        "/v1beta/models/text-embedding-004:batchEmbedContents",
        &[KEY],
        &json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello world"}]}},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "other"}]}}
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    let embs = b["embeddings"].as_array().expect("embeddings");
    assert_eq!(embs.len(), 2);
    assert_eq!(embs[0]["values"], v["embedding"]["values"]);
    assert_ne!(embs[1]["values"], embs[0]["values"]);

    let r = s.post(
        "/v1beta/models/text-embedding-004:batchEmbedContents",
        &[KEY],
        &json!({"requests": [{"content": {"parts": [{"text": "x"}]}}]}),
    );
    assert_gemini_error(
        &r,
        400,
        "INVALID_ARGUMENT",
        "* BatchEmbedContentsRequest.requests[0].model: unexpected model name format\n",
    );
    let r = s.post("/v1beta/models/e:embedContent", &[KEY], &json!({}));
    assert_gemini_error(
        &r,
        400,
        "INVALID_ARGUMENT",
        "* EmbedContentRequest.content: content is not specified\n",
    );
}

#[test]
fn count_tokens_mock_errors_and_unknown_methods() {
    let s = Server::start();
    let r = s.post(
        "/v1beta/models/g:countTokens",
        &[KEY],
        &json!({"contents": [{"parts": [{"text": "a b c"}]}]}),
    );
    assert_eq!(r.json(), json!({"totalTokens": 3}));

    let r = s.post(GEN, &[KEY, ("x-mock-status", "429")], &body());
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(r.json()["error"]["code"], 429);
    let r = s.post(GEN, &[KEY, ("x-mock-status", "503")], &body());
    assert_eq!(r.json()["error"]["status"], "UNAVAILABLE");

    let r = s.post("/v1beta/models/g:predict", &[KEY], &body());
    assert_gemini_error(&r, 404, "NOT_FOUND", "Requested entity was not found.");
}
