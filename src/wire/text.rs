//! The text a client wrote in a request, by API: what guardrails read and
//! may mask. Message and system text, text parts and tool results; not
//! tool definitions, tool-call arguments, images or ids.

use super::Api;
use serde_json::{Map, Value};

impl Api {
    /// Calls `f` on every client-written text of the request body.
    pub fn visit_text(self, body: &mut Map<String, Value>, f: &mut dyn FnMut(&mut String)) {
        match self {
            Self::ChatCompletions => {
                for m in messages(body) {
                    if let Some(c) = m.get_mut("content") {
                        content(c, f);
                    }
                }
            }
            Self::Embeddings => match body.get_mut("input") {
                Some(Value::String(s)) => f(s),
                Some(Value::Array(items)) => items.iter_mut().for_each(|i| {
                    if let Value::String(s) = i {
                        f(s)
                    }
                }),
                _ => {}
            },
            Self::Messages | Self::CountTokens => {
                if let Some(system) = body.get_mut("system") {
                    content(system, f);
                }
                for m in messages(body) {
                    if let Some(c) = m.get_mut("content") {
                        content(c, f);
                    }
                }
            }
            Self::Responses => {
                if let Some(Value::String(s)) = body.get_mut("instructions") {
                    f(s);
                }
                match body.get_mut("input") {
                    Some(Value::String(s)) => f(s),
                    Some(Value::Array(items)) => {
                        for item in items.iter_mut().filter_map(Value::as_object_mut) {
                            if let Some(c) = item.get_mut("content") {
                                content(c, f);
                            }
                            // function_call_output
                            if let Some(Value::String(s)) = item.get_mut("output") {
                                f(s);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The request's text, joined by line breaks (for moderation).
    pub fn joined_text(self, body: &Map<String, Value>) -> String {
        let mut copy = body.clone();
        let mut out = String::new();
        self.visit_text(&mut copy, &mut |s| {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        });
        out
    }
}

fn messages(body: &mut Map<String, Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    body.get_mut("messages")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// A content value: a string, or parts with `text` (and tool results with
/// nested `content`).
fn content(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(parts) => {
            for p in parts.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::String(t)) = p.get_mut("text") {
                    f(t);
                }
                if let Some(c) = p.get_mut("content") {
                    content(c, f);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(api: Api, body: Value) -> Vec<String> {
        let mut body = body.as_object().cloned().unwrap();
        let mut out = Vec::new();
        api.visit_text(&mut body, &mut |s| out.push(s.clone()));
        out
    }

    #[test]
    fn every_api_yields_its_written_text() {
        let chat = json!({"model": "m", "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "u1"}, {"type": "image_url", "image_url": {"url": "http://x"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "t1"}]});
        assert_eq!(texts(Api::ChatCompletions, chat), ["sys", "u1", "t1"]);
        let msgs = json!({"model": "m", "system": [{"type": "text", "text": "sys"}], "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": [{"type": "text", "text": "r"}]}, {"type": "text", "text": "u"}]},
            {"role": "assistant", "content": "a"}]});
        assert_eq!(texts(Api::Messages, msgs), ["sys", "r", "u", "a"]);
        let resp = json!({"model": "m", "instructions": "i", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "u"}]},
            {"type": "function_call_output", "call_id": "c", "output": "o"}]});
        assert_eq!(texts(Api::Responses, resp), ["i", "u", "o"]);
        assert_eq!(texts(Api::Responses, json!({"input": "s"})), ["s"]);
        assert_eq!(
            texts(Api::Embeddings, json!({"input": ["a", "b"]})),
            ["a", "b"]
        );
    }
}
