//! Wire formats: every API the gateway speaks, to clients and to
//! providers. Each format is one edge with both directions over the hub
//! (`hub`), with its own stream framing.

pub mod anthropic;
pub mod bedrock;
pub mod collect;
pub mod ernie;
pub mod eventstream;
pub mod gemini;
pub mod hub;
pub mod openai;
pub mod pass_stream;
pub mod responses;
mod scan;
pub mod sse;
pub mod stream;
mod text;
pub mod turns;

use crate::error::ApiError;
use crate::wire::hub::Operation;
use hub::{ChatRequest, ChatResponse, RequestFacts, ResponseContext, StreamWriter, Usage};
use openai::ParsedRequest;
use pass_stream::{OpenAiWatcher, StreamWatcher};
use serde_json::{Map, Value};

/// A wire format: what a client speaks to the gateway, or a provider
/// expects from it. A request whose client wire is its provider's wire
/// passes through (model renamed); any other pair is translated through the
/// hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI Chat Completions (and embeddings): the OpenAI-compatible
    /// family and Azure.
    OpenAiChat,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent` (providers only).
    Gemini,
    /// Amazon Bedrock Converse (providers only).
    Bedrock,
    /// Baidu ERNIE v1 chat (providers only).
    Ernie,
    /// OpenAI Responses.
    OpenAiResponses,
}

/// The client API a request came in through, from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    ChatCompletions,
    Embeddings,
    Messages,
    CountTokens,
    Responses,
}

impl Api {
    /// The API served at `path` (query removed), if any.
    pub fn from_path(path: &str) -> Option<Self> {
        Some(match path {
            "/v1/chat/completions" => Self::ChatCompletions,
            "/v1/embeddings" => Self::Embeddings,
            "/v1/messages" => Self::Messages,
            "/v1/messages/count_tokens" => Self::CountTokens,
            "/v1/responses" => Self::Responses,
            _ => return None,
        })
    }

    /// The wire the client speaks.
    pub fn wire(self) -> Wire {
        match self {
            Self::ChatCompletions | Self::Embeddings => Wire::OpenAiChat,
            Self::Messages | Self::CountTokens => Wire::Anthropic,
            Self::Responses => Wire::OpenAiResponses,
        }
    }

    /// What a provider is asked to do (count_tokens asks no provider but
    /// Anthropic, and is a chat-shaped request).
    pub fn operation(self) -> Operation {
        match self {
            Self::Embeddings => Operation::Embeddings,
            _ => Operation::ChatCompletions,
        }
    }

    /// `gen_ai.operation.name`.
    pub fn operation_name(self) -> &'static str {
        match self {
            Self::Embeddings => "embeddings",
            Self::CountTokens => "count_tokens",
            _ => "chat",
        }
    }

    /// The top-level request fields this API's edge accepts (any other is
    /// a 400), for the APIs whose edges check them; empty otherwise.
    pub fn known_fields(self) -> &'static [&'static str] {
        match self {
            Self::Messages => anthropic::ingress::MESSAGES_FIELDS,
            Self::CountTokens => anthropic::ingress::COUNT_TOKENS_FIELDS,
            Self::Responses => responses::KNOWN_FIELDS,
            Self::ChatCompletions | Self::Embeddings => &[],
        }
    }

    /// The client API as a metrics label and access-log field.
    pub fn name(self) -> &'static str {
        match self {
            Self::ChatCompletions => "openai.chat_completions",
            Self::Embeddings => "openai.embeddings",
            Self::Messages => "anthropic.messages",
            Self::CountTokens => "anthropic.count_tokens",
            Self::Responses => "openai.responses",
        }
    }

    /// The API with this `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::ChatCompletions,
            Self::Embeddings,
            Self::Messages,
            Self::CountTokens,
            Self::Responses,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    /// Validates a request body, keeping its bytes for passthrough.
    pub fn parse(self, bytes: Vec<u8>) -> Result<ParsedRequest, ApiError> {
        let mut parsed = match self {
            Self::ChatCompletions => {
                return openai::parse_request_owned(Operation::ChatCompletions, bytes)
            }
            Self::Embeddings => openai::parse_request(Operation::Embeddings, &bytes),
            Self::Messages => return anthropic::ingress::parse_request_owned(bytes),
            Self::CountTokens => anthropic::ingress::parse_count_tokens(&bytes),
            Self::Responses => responses::parse_request(&bytes),
        }?;
        parsed.raw = bytes;
        Ok(parsed)
    }

    /// The neutral facts admission, routing rules and telemetry read.
    pub fn facts(self, body: &Map<String, Value>) -> RequestFacts {
        match self {
            Self::ChatCompletions | Self::Embeddings => openai::facts(body),
            Self::Messages | Self::CountTokens => anthropic::ingress::facts(body),
            Self::Responses => responses::facts(body),
        }
    }

    /// The request in hub form, for a provider of another wire.
    pub fn to_hub(
        self,
        body: &Map<String, Value>,
        upstream: &str,
    ) -> Result<ChatRequest, ApiError> {
        match self {
            Self::ChatCompletions | Self::Embeddings => {
                openai::to_hub::chat_request(body, upstream)
            }
            Self::Messages | Self::CountTokens => anthropic::ingress::to_hub(body, upstream),
            Self::Responses => responses::to_hub(body, upstream),
        }
    }
}

impl Wire {
    /// A whole chat response in this (client) wire.
    pub fn render_response(
        self,
        r: &ChatResponse,
        ctx: &ResponseContext,
    ) -> Result<Vec<u8>, ApiError> {
        match self {
            Self::OpenAiChat | Self::Gemini | Self::Bedrock | Self::Ernie => {
                Ok(openai::render::chat_completion(r))
            }
            Self::Anthropic => anthropic::ingress::render_response(r, ctx),
            Self::OpenAiResponses => Ok(responses::render_response(r, ctx)),
        }
    }

    /// Writes hub stream events in this (client) wire.
    pub fn writer(self, ctx: &ResponseContext, include_usage: bool) -> Box<dyn StreamWriter> {
        match self {
            Self::OpenAiChat | Self::Gemini | Self::Bedrock | Self::Ernie => {
                Box::new(openai::render::ChunkWriter::new(ctx, include_usage))
            }
            Self::Anthropic => Box::new(anthropic::ingress::MessagesWriter::new(ctx)),
            Self::OpenAiResponses => Box::new(responses::ResponsesWriter::new(ctx)),
        }
    }

    /// An error response body in this (client) wire.
    pub fn render_error(self, e: &ApiError) -> Vec<u8> {
        match self {
            Self::Anthropic => anthropic::ingress::render_error(e),
            Self::OpenAiResponses => responses::render_error(e),
            Self::OpenAiChat | Self::Gemini | Self::Bedrock | Self::Ernie => e.to_json(),
        }
    }

    /// An error body in this wire, read back (a failover attempt's error,
    /// already rendered in the client's wire).
    pub fn decode_error(self, status: u16, body: &[u8]) -> ApiError {
        match self {
            Self::Anthropic => anthropic::decode_error(status, body),
            Self::Gemini => gemini::decode_error(status, body),
            Self::Bedrock => bedrock::decode_error(status, body),
            Self::Ernie => crate::wire::hub::Translator::decode_error(&ernie::Ernie, status, body),
            Self::OpenAiChat | Self::OpenAiResponses => {
                crate::error::normalize_upstream_error(status, body)
            }
        }
    }

    /// One SSE frame ending a stream with `e`, in this (client) wire.
    pub fn stream_error(self, e: &ApiError) -> Vec<u8> {
        match self {
            Self::Anthropic => anthropic::ingress::stream_error(e),
            Self::OpenAiResponses => responses::stream_error(e),
            // OpenAI's SDKs raise on a `data:` frame carrying `error`.
            Self::OpenAiChat | Self::Gemini | Self::Bedrock | Self::Ernie => {
                let mut frame = b"data: ".to_vec();
                frame.extend(e.to_json());
                frame.extend_from_slice(b"\n\n");
                frame
            }
        }
    }

    /// What a passthrough stream of this wire reports on the way.
    pub fn watcher(self) -> Box<dyn StreamWatcher> {
        match self {
            Self::Anthropic => Box::<anthropic::ingress::AnthropicWatcher>::default(),
            Self::OpenAiResponses => Box::<responses::ResponsesWatcher>::default(),
            Self::OpenAiChat | Self::Gemini | Self::Bedrock | Self::Ernie => {
                Box::<OpenAiWatcher>::default()
            }
        }
    }

    /// A whole passthrough answer checked to be JSON (`Err`: why not), and
    /// what it says of its end (`body_outcome`). An OpenAI-shaped answer
    /// whose usage and choices read as expected is checked by that read.
    pub fn checked_outcome(
        self,
        body: &[u8],
    ) -> Result<(Option<Usage>, Option<hub::FinishReason>), String> {
        if matches!(
            self,
            Self::OpenAiChat | Self::Gemini | Self::Bedrock | Self::Ernie
        ) {
            if let Some(outcome) = pass_stream::openai_outcome_read(body) {
                return Ok(outcome);
            }
        }
        checked_json(body)?;
        Ok(self.body_outcome(body))
    }

    /// What a whole passthrough answer says of its end: the usage (as
    /// `body_usage`) and how the model finished, read in one parse.
    pub fn body_outcome(self, body: &[u8]) -> (Option<Usage>, Option<hub::FinishReason>) {
        match self {
            Self::Anthropic => anthropic::ingress::body_outcome(body),
            Self::OpenAiResponses => responses::body_outcome(body),
            Self::OpenAiChat | Self::Gemini | Self::Bedrock | Self::Ernie => {
                pass_stream::openai_outcome(body)
            }
        }
    }

    pub fn body_usage(self, body: &[u8]) -> Option<Usage> {
        match self {
            Self::Anthropic => anthropic::ingress::body_usage(body),
            Self::OpenAiResponses => responses::body_usage(body),
            Self::OpenAiChat | Self::Gemini | Self::Bedrock | Self::Ernie => {
                pass_stream::openai_usage(body)
            }
        }
    }
}

/// For `#[serde(skip_serializing_if)]`: a flag written only when set.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// `Ok` for a body that is JSON; else why not, for the client's error.
pub fn checked_json(body: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(|_| ())
        .map_err(|e| {
            if e.is_eof() {
                "The provider's response ended before its JSON was complete".to_string()
            } else {
                "The provider's response is not valid JSON".to_string()
            }
        })
}

/// The compact JSON of `v` (for a `Value`, the bytes `Display` would give,
/// written by the serializer directly rather than through a formatter).
pub(crate) fn json_bytes<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
