use super::*;
use crate::wire::anthropic::ingress::parse_request;
use serde_json::{json, Value};

const FIXTURES: &str =
    include_str!("../../../../../tests/fixtures/anthropic_ingress/requests.json");

/// A request as Claude Code sends one: system blocks with cache control,
/// client and server tools, thinking, tool use and results, an image.
fn claude_code() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": true,
        "temperature": 1,
        "metadata": {"user_id": "user_abc"},
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Follow the rules."}
        ],
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "tools": [
            {"name": "Bash", "description": "Runs a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
            {"type": "custom", "name": "Read-File_2", "input_schema": {"type": "object"}, "description": null},
            {"type": "web_search_20250305", "name": "web search", "max_uses": 5}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": false},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>…</system-reminder>"},
                {"text": "list the files", "type": "text", "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "abc"},
                {"type": "text", "text": "Running ls."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt\nb.txt", "is_error": false},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "ok"}]},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}, "title": "notes.txt"},
                {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "x"}]}},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}
            ]},
            {"role": "assistant", "content": "Done."}
        ]
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// The one-pass check accepts only what the full validator accepts, with
/// the same facts.
fn agrees(body: &[u8]) -> Option<Checked> {
    let quick = messages(body);
    if let Some(q) = &quick {
        let full = parse_request(body).unwrap_or_else(|e| {
            panic!(
                "accepted what validation refuses ({}): {}",
                e.message,
                String::from_utf8_lossy(body)
            )
        });
        assert_eq!((&full.model, full.stream), (&q.model, q.stream));
    }
    quick
}

#[test]
fn a_claude_code_request_is_accepted_without_a_tree() {
    let body = bytes(&claude_code());
    let checked = agrees(&body).expect("accepted");
    assert_eq!(checked.model, "claude-sonnet-4-5");
    assert!(checked.stream);
}

#[test]
fn every_valid_fixture_agrees_and_most_are_accepted() {
    let fixtures: Vec<Value> = serde_json::from_str(FIXTURES).unwrap();
    let (mut valid, mut accepted) = (0, 0);
    for f in &fixtures {
        let body = bytes(&f["anthropic"]);
        if parse_request(&body).is_ok() {
            valid += 1;
        }
        if agrees(&body).is_some() {
            accepted += 1;
        }
    }
    assert!(valid >= 40, "{valid}");
    assert!(accepted * 10 >= valid * 9, "{accepted} of {valid}");
}

/// Edits of the Claude Code request, each one the full validator refuses.
#[test]
fn what_validation_refuses_is_left_to_it() {
    let edits: Vec<(&str, Value)> = vec![
        ("/model", json!("")),
        ("/model", json!(5)),
        ("/max_tokens", json!(0)),
        ("/max_tokens", json!(null)),
        ("/max_tokens", json!(-3)),
        ("/max_tokens", json!(1.5)),
        ("/max_tokens", json!("100")),
        ("/messages", json!([])),
        ("/messages", json!({})),
        ("/messages/0/role", json!("system")),
        ("/messages/0/role", json!(null)),
        ("/messages/0/content", json!(5)),
        ("/messages/0/content", json!(null)),
        ("/messages/0/content/0", json!("text")),
        ("/messages/0/content/0/type", json!(7)),
        ("/messages/0/content/0/text", json!(["x"])),
        (
            "/messages/0/content/2/source/media_type",
            json!("image/bmp"),
        ),
        ("/messages/0/content/2/source/type", json!("path")),
        ("/messages/0/content/2/source", json!("iVBOR")),
        ("/messages/1/content/0/signature", json!(null)),
        ("/messages/1/content/1/data", json!(1)),
        ("/messages/1/content/3/input", json!("ls")),
        ("/messages/1/content/3/id", json!(1)),
        ("/messages/2/content/0/tool_use_id", json!(null)),
        ("/messages/2/content/0/content", json!(1)),
        ("/messages/2/content/0/is_error", json!("no")),
        ("/messages/2/content/1/content/0/text", json!(null)),
        (
            "/messages/2/content/2/source/media_type",
            json!("application/pdf"),
        ),
        ("/messages/2/content/2/title", json!(3)),
        ("/messages/2/content/3/source/content", json!(null)),
        ("/system", json!(3)),
        ("/system/0/type", json!("image")),
        ("/system/1/text", json!(null)),
        ("/tools", json!({})),
        ("/tools/0/name", json!("has space")),
        ("/tools/0/description", json!(1)),
        ("/tools/0/input_schema", json!(null)),
        ("/tools/1/type", json!(3)),
        ("/tool_choice", json!("auto")),
        ("/tool_choice/type", json!("tool")),
        ("/tool_choice/disable_parallel_tool_use", json!("no")),
        ("/thinking/budget_tokens", json!(1023)),
        ("/thinking/type", json!("on")),
        ("/temperature", json!(1.5)),
        ("/temperature", json!("1")),
        ("/top_p", json!(-0.1)),
        ("/top_k", json!(-1)),
        ("/stop_sequences", json!(["a", 1])),
        ("/stop_sequences", json!("a")),
        ("/stream", json!("yes")),
        ("/metadata", json!("x")),
        ("/metadata/user_id", json!(1)),
        ("/service_tier", json!(1)),
        ("/container", json!(1)),
        ("/mcp_servers", json!({})),
        ("/context_management", json!([])),
        ("/output_format", json!("json")),
        ("/output_config", json!({"effort": 1})),
        ("/output_config", json!({"format": "json"})),
        ("/n", json!(1)),
    ];
    for (path, value) in edits {
        let mut v = claude_code();
        match v.pointer_mut(path) {
            Some(slot) => *slot = value.clone(),
            None => {
                let (parent, key) = path.rsplit_once('/').unwrap();
                v.pointer_mut(parent).unwrap()[key] = value.clone();
            }
        }
        let body = bytes(&v);
        assert!(
            parse_request(&body).is_err(),
            "{path} = {value}: validation accepts it"
        );
        assert_eq!(messages(&body), None, "{path} = {value}");
    }
    // Removing a required field.
    for (parent, key) in [
        ("", "model"),
        ("", "max_tokens"),
        ("", "messages"),
        ("/messages/0", "role"),
        ("/messages/0", "content"),
        ("/messages/0/content/0", "type"),
        ("/tools/0", "input_schema"),
        ("/thinking", "budget_tokens"),
    ] {
        let mut v = claude_code();
        v.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        let body = bytes(&v);
        assert!(parse_request(&body).is_err(), "{parent}/{key}");
        assert_eq!(messages(&body), None, "without {parent}/{key}");
    }
}

#[test]
fn duplicates_floats_and_count_tokens_fields_are_left_to_validation() {
    let body = bytes(&claude_code());
    let text = String::from_utf8(body).unwrap();
    let cases = [
        // A known field given twice: the tree keeps the last one.
        text.replacen("{\"model\":", "{\"model\":\"a\",\"model\":", 1),
        text.replacen("\"max_tokens\":32000", "\"max_tokens\":32000.0", 1),
        text.replacen(
            "\"role\":\"user\"",
            "\"role\":\"user\",\"role\":\"user\"",
            1,
        ),
    ];
    for body in cases {
        assert_eq!(agrees(body.as_bytes()), None, "{body}");
    }
    for bad in [&b"[]"[..], b"{", b"{} x", b"\"x\"", b""] {
        assert_eq!(messages(bad), None);
    }
}

#[test]
fn nulls_order_and_other_block_types_are_accepted() {
    let v = json!({
        "messages": [{"content": [{"data": 1, "type": "future_block"}, {"type": "tool_result", "tool_use_id": "t", "content": null, "is_error": null}], "role": "assistant"}],
        "stream": null, "system": null, "tools": null, "tool_choice": null, "thinking": {"type": "adaptive"},
        "temperature": null, "top_k": 0, "top_p": 1, "stop_sequences": null, "metadata": null,
        "container": {"id": "c"}, "mcp_servers": [], "context_management": {}, "output_config": {"effort": "low", "format": null},
        "max_tokens": 1, "model": "m"
    });
    let checked = agrees(&bytes(&v)).expect("accepted");
    assert!(!checked.stream);
}

#[test]
fn field_indexes_name_their_fields() {
    let named = [
        (top::MODEL, "model"),
        (top::MESSAGES, "messages"),
        (top::MAX_TOKENS, "max_tokens"),
        (top::SYSTEM, "system"),
        (top::METADATA, "metadata"),
        (top::STOP_SEQUENCES, "stop_sequences"),
        (top::STREAM, "stream"),
        (top::TEMPERATURE, "temperature"),
        (top::TOP_P, "top_p"),
        (top::TOP_K, "top_k"),
        (top::TOOLS, "tools"),
        (top::TOOL_CHOICE, "tool_choice"),
        (top::THINKING, "thinking"),
        (top::SERVICE_TIER, "service_tier"),
        (top::CONTAINER, "container"),
        (top::CONTEXT_MANAGEMENT, "context_management"),
        (top::MCP_SERVERS, "mcp_servers"),
        (top::OUTPUT_CONFIG, "output_config"),
        (top::OUTPUT_FORMAT, "output_format"),
    ];
    assert_eq!(named.len(), MESSAGES_FIELDS.len());
    for (i, name) in named {
        assert_eq!(MESSAGES_FIELDS[i], name);
    }
}
