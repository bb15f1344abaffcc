//! Azure OpenAI: OpenAI's request and response bodies, but a per-deployment
//! path with an `api-version` query and the key in an `api-key` header.

use super::Operation;
use crate::error::ApiError;
use crate::wire::hub::{
    ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, ResponseContext,
    StreamDecoder, Translator,
};
use crate::wire::openai::egress::OpenAiChat;

pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// `{prefix}/openai/deployments/{deployment}/{op}?api-version={version}`.
pub fn path(prefix: &str, deployment: &str, op: Operation, api_version: &str) -> String {
    let op = match op {
        Operation::ChatCompletions => "chat/completions",
        Operation::Embeddings => "embeddings",
    };
    format!("{prefix}/openai/deployments/{deployment}/{op}?api-version={api_version}")
}

/// OpenAI Chat on Azure's deployment paths: OpenAI's bodies, Azure's URLs.
pub struct AzureChat {
    chat: OpenAiChat,
    api_version: String,
}

impl AzureChat {
    pub fn new(chat: OpenAiChat, api_version: &str) -> Self {
        Self {
            chat,
            api_version: api_version.to_string(),
        }
    }
}

impl Translator for AzureChat {
    fn path(&self, op: Operation, prefix: &str, model: &str, _stream: bool) -> String {
        path(prefix, model, op, &self.api_version)
    }

    fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        self.chat.encode_request(req)
    }

    fn decode_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<ChatResponse, ApiError> {
        self.chat.decode_response(body, ctx)
    }

    fn stream_decoder(&self, ctx: &ResponseContext) -> Box<dyn StreamDecoder> {
        self.chat.stream_decoder(ctx)
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> ApiError {
        self.chat.decode_error(status, body)
    }

    fn encode_embeddings(&self, req: &EmbeddingsRequest) -> Result<Vec<u8>, ApiError> {
        self.chat.encode_embeddings(req)
    }

    fn decode_embeddings(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<EmbeddingsResponse, ApiError> {
        self.chat.decode_embeddings(body, ctx)
    }
}

/// api-version values look like `2024-10-21` or `2025-01-01-preview`.
pub fn valid_api_version(v: &str) -> bool {
    !v.is_empty() && v.len() <= 40 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_paths() {
        assert_eq!(
            path("", "gpt4o", Operation::ChatCompletions, "2024-10-21"),
            "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            path("", "emb", Operation::Embeddings, "2025-01-01-preview"),
            "/openai/deployments/emb/embeddings?api-version=2025-01-01-preview"
        );
        assert!(valid_api_version("2025-01-01-preview"));
        assert!(!valid_api_version("2024&x=1"));
    }
}
