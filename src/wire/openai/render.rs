//! Hub responses and stream events → OpenAI `chat.completion` JSON and
//! `chat.completion.chunk` SSE frames.

use crate::wire::hub::{
    ChatResponse, Choice, EmbeddingsResponse, ResponseContext, StreamEvent, StreamWriter, Usage,
};
use serde::Serialize;
use serde_json::{json, Value};

fn usage_json(u: &Usage) -> Value {
    serde_json::to_value(UsageOut::of(u)).unwrap_or_default()
}

// The shapes of a `chat.completion`, serialized directly (no tree), fields
// in OpenAI's order.

#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageOut>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
    refusal: (),
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<CachedOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<ReasoningOut>,
}

#[derive(Serialize)]
struct CachedOut {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningOut {
    reasoning_tokens: u64,
}

impl UsageOut {
    fn of(u: &Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            prompt_tokens_details: u
                .cached_tokens
                .map(|cached_tokens| CachedOut { cached_tokens }),
            completion_tokens_details: u
                .reasoning_tokens
                .map(|reasoning_tokens| ReasoningOut { reasoning_tokens }),
        }
    }
}

fn message_out(c: &Choice) -> MessageOut<'_> {
    MessageOut {
        role: "assistant",
        content: match &c.content {
            Some(t) if !t.is_empty() || c.tool_calls.is_empty() => Some(t),
            _ => None,
        },
        reasoning_content: c.reasoning.as_deref(),
        tool_calls: c
            .tool_calls
            .iter()
            .map(|t| ToolCallOut {
                id: &t.id,
                kind: "function",
                function: FunctionOut {
                    name: &t.name,
                    arguments: &t.arguments,
                },
            })
            .collect(),
        refusal: (),
    }
}

/// A non-streaming `chat.completion`.
pub fn chat_completion(r: &ChatResponse) -> Vec<u8> {
    let out = CompletionOut {
        id: &r.id,
        object: "chat.completion",
        created: r.created,
        model: &r.model,
        choices: r
            .choices
            .iter()
            .map(|c| ChoiceOut {
                index: c.index,
                message: message_out(c),
                logprobs: (),
                finish_reason: c.finish_reason.map(|f| f.as_openai()),
            })
            .collect(),
        usage: r.usage.as_ref().map(UsageOut::of),
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

/// An embeddings `list` response; `base64` packs each vector as
/// little-endian f32s, as OpenAI does for `encoding_format: base64`.
pub fn embeddings(r: &EmbeddingsResponse, base64: bool) -> Vec<u8> {
    let data: Vec<Value> = r
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
                Value::String(base64_encode(&bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    crate::wire::json_bytes(&json!({
        "object": "list",
        "data": data,
        "model": r.model,
        "usage": {"prompt_tokens": r.prompt_tokens, "total_tokens": r.prompt_tokens},
    }))
}

/// `s` as a JSON string literal.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes hub stream events as OpenAI chunk frames, then `data: [DONE]`.
#[derive(Debug)]
pub struct ChunkWriter {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    role_sent: bool,
    usage: Option<Usage>,
    ended: bool,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[{"index":`
    /// for text frames, built once (again after `Start` changes id or model).
    text_prefix: Option<Vec<u8>>,
}

impl ChunkWriter {
    pub fn new(ctx: &ResponseContext, include_usage: bool) -> Self {
        Self {
            id: format!("chatcmpl-{}", ctx.request_id),
            model: ctx.model.clone(),
            created: ctx.created,
            include_usage,
            role_sent: false,
            usage: None,
            ended: false,
            text_prefix: None,
        }
    }

    /// A content or reasoning delta written directly: the stream's most
    /// common frame, byte for byte what `delta` would write, without
    /// building a JSON tree.
    fn text_delta(&mut self, out: &mut Vec<u8>, choice: u32, key: &str, text: &str) {
        if !self.role_sent {
            return self.delta(out, choice, json!({ key: text }), None);
        }
        let prefix = self.text_prefix.get_or_insert_with(|| {
            let mut p = b"data: {\"id\":".to_vec();
            push_json_str(&mut p, &self.id);
            p.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
            p.extend_from_slice(self.created.to_string().as_bytes());
            p.extend_from_slice(b",\"model\":");
            push_json_str(&mut p, &self.model);
            p.extend_from_slice(b",\"choices\":[{\"index\":");
            p
        });
        out.extend_from_slice(prefix);
        out.extend_from_slice(choice.to_string().as_bytes());
        out.extend_from_slice(b",\"delta\":{");
        push_json_str(out, key);
        out.push(b':');
        push_json_str(out, text);
        out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}]");
        if self.include_usage {
            out.extend_from_slice(b",\"usage\":null");
        }
        out.extend_from_slice(b"}\n\n");
    }

    fn frame(&self, out: &mut Vec<u8>, choices: Value, usage: Option<Value>) {
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if self.include_usage {
            v["usage"] = usage.unwrap_or(Value::Null);
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(v.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    fn delta(&mut self, out: &mut Vec<u8>, choice: u32, delta: Value, finish: Option<&str>) {
        if !self.role_sent {
            self.role_sent = true;
            let role = json!({"role": "assistant", "content": ""});
            self.frame(
                out,
                json!([{"index": choice, "delta": role, "logprobs": null, "finish_reason": null}]),
                None,
            );
        }
        self.frame(
            out,
            json!([{"index": choice, "delta": delta, "logprobs": null, "finish_reason": finish}]),
            None,
        );
    }
}

impl StreamWriter for ChunkWriter {
    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn write(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if !id.is_empty() {
                    self.id = id.clone();
                }
                if !model.is_empty() {
                    self.model = model.clone();
                }
                self.text_prefix = None;
            }
            StreamEvent::Text { choice, text } => self.text_delta(out, *choice, "content", text),
            StreamEvent::Reasoning { choice, text } => {
                self.text_delta(out, *choice, "reasoning_content", text)
            }
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => self.delta(
                out,
                *choice,
                json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                                        "function": {"name": name, "arguments": ""}}]}),
                None,
            ),
            StreamEvent::ToolCallArgs {
                choice,
                index,
                fragment,
            } => self.delta(
                out,
                *choice,
                json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                None,
            ),
            StreamEvent::Finish { choice, reason } => {
                self.delta(out, *choice, json!({}), Some(reason.as_openai()))
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => {
                // OpenAI's SDKs raise on a `data:` frame carrying `error`.
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&e.to_json());
                out.extend_from_slice(b"\n\n");
                self.ended = true;
            }
        }
    }

    /// End of stream: the usage chunk if asked for, then `[DONE]`.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        if self.include_usage {
            if let Some(u) = self.usage {
                self.frame(out, json!([]), Some(usage_json(&u)));
            }
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use crate::wire::hub::{FinishReason, ToolCall};

    #[test]
    fn direct_text_frames_match_the_tree_built_ones() {
        for include_usage in [false, true] {
            let mut w = ChunkWriter::new(&ctx(), include_usage);
            let mut out = Vec::new();
            w.write(
                &StreamEvent::Start {
                    id: "msg_\"1\"".into(),
                    model: "m/é".into(),
                },
                &mut out,
            );
            // The first delta also sends the role frame.
            w.text_delta(&mut out, 0, "content", "first");
            for text in ["a", "", "quote \" back \\ nl \n tab \t \u{1} é 😀"] {
                for (choice, key) in [(0, "content"), (2, "reasoning_content")] {
                    let mut fast = Vec::new();
                    w.text_delta(&mut fast, choice, key, text);
                    let mut tree = Vec::new();
                    w.delta(&mut tree, choice, json!({ key: text }), None);
                    assert_eq!(
                        String::from_utf8(fast).unwrap(),
                        String::from_utf8(tree).unwrap()
                    );
                }
            }
        }
    }

    fn ctx() -> ResponseContext {
        ResponseContext {
            model: "m".into(),
            created: 1700000000,
            request_id: "r1".into(),
            input_tokens_estimate: 0,
        }
    }

    fn frames(out: &[u8]) -> Vec<Value> {
        std::str::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let data = f.strip_prefix("data: ").unwrap();
                if data == "[DONE]" {
                    Value::String("[DONE]".into())
                } else {
                    serde_json::from_str(data).unwrap()
                }
            })
            .collect()
    }

    #[test]
    fn completion_with_tool_calls_and_usage() {
        let r = ChatResponse {
            id: "msg_1".into(),
            model: "claude".into(),
            created: 5,
            choices: vec![Choice {
                index: 0,
                content: Some(String::new()),
                reasoning: Some("think".into()),
                tool_calls: vec![ToolCall {
                    id: "t1".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                }],
                finish_reason: Some(FinishReason::ToolCalls),
            }],
            usage: Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                total_tokens: 7,
                cached_tokens: Some(1),
                cache_creation_tokens: None,
                reasoning_tokens: Some(2),
            }),
        };
        let v: Value = serde_json::from_slice(&chat_completion(&r)).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "msg_1", "object": "chat.completion", "created": 5, "model": "claude",
                "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "content": null, "reasoning_content": "think", "refusal": null,
                        "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                    "prompt_tokens_details": {"cached_tokens": 1},
                    "completion_tokens_details": {"reasoning_tokens": 2}}
            })
        );
    }

    #[test]
    fn embeddings_list() {
        let r = EmbeddingsResponse {
            model: "e".into(),
            vectors: vec![vec![0.5], vec![1.0]],
            prompt_tokens: 3,
        };
        let v: Value = serde_json::from_slice(&embeddings(&r, false)).unwrap();
        assert_eq!(
            v,
            json!({"object": "list", "model": "e", "usage": {"prompt_tokens": 3, "total_tokens": 3},
                   "data": [{"object": "embedding", "index": 0, "embedding": [0.5]},
                            {"object": "embedding", "index": 1, "embedding": [1.0]}]})
        );
    }

    #[test]
    fn base64_embeddings_are_little_endian_f32() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        let r = EmbeddingsResponse {
            model: "e".into(),
            vectors: vec![vec![1.0, -2.5]],
            prompt_tokens: 0,
        };
        let v: Value = serde_json::from_slice(&embeddings(&r, true)).unwrap();
        // 1.0f32 = 00 00 80 3f, -2.5f32 = 00 00 20 c0
        assert_eq!(v["data"][0]["embedding"], "AACAPwAAIMA=");
    }

    #[test]
    fn chunks_in_openai_order_with_usage_last() {
        let mut w = ChunkWriter::new(&ctx(), true);
        let mut out = Vec::new();
        for ev in [
            StreamEvent::Start {
                id: "".into(),
                model: "claude-x".into(),
            },
            StreamEvent::Text {
                choice: 0,
                text: "Hi".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "t".into(),
                name: "f".into(),
            },
            StreamEvent::ToolCallArgs {
                choice: 0,
                index: 0,
                fragment: "{\"a\"".into(),
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
                ..Usage::default()
            }),
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
            },
        ] {
            w.write(&ev, &mut out);
        }
        w.finish(&mut out);
        let f = frames(&out);
        assert_eq!(f.len(), 7);
        assert_eq!(
            f[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(f[0]["id"], "chatcmpl-r1");
        assert_eq!(f[0]["model"], "claude-x");
        assert_eq!(f[0]["usage"], Value::Null);
        assert_eq!(f[1]["choices"][0]["delta"], json!({"content": "Hi"}));
        assert_eq!(
            f[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            "f"
        );
        assert_eq!(
            f[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\""
        );
        assert_eq!(f[4]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(f[5]["choices"], json!([]));
        assert_eq!(f[5]["usage"]["total_tokens"], 3);
        assert_eq!(f[6], "[DONE]");
    }

    #[test]
    fn no_usage_field_unless_asked_and_error_ends_stream() {
        let mut w = ChunkWriter::new(&ctx(), false);
        let mut out = Vec::new();
        w.write(
            &StreamEvent::Text {
                choice: 0,
                text: "a".into(),
            },
            &mut out,
        );
        w.write(&StreamEvent::Usage(Usage::default()), &mut out);
        w.write(
            &StreamEvent::Error(ApiError::new(529, "overloaded_error", "busy")),
            &mut out,
        );
        w.write(
            &StreamEvent::Text {
                choice: 0,
                text: "late".into(),
            },
            &mut out,
        );
        w.finish(&mut out);
        let f = frames(&out);
        assert_eq!(f.len(), 3);
        assert!(f[1].get("usage").is_none());
        assert_eq!(f[2]["error"]["message"], "busy");
        assert!(w.usage().is_some());
    }
}
