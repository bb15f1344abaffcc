//! The provider types: one entry each. Registering a type is adding a row.

use super::{AuthStyle, ModelNames, PathStyle};
use crate::wire::openai::egress::{
    MaxTokensField, OpenAiChatOptions, ReasoningHistory, ReasoningStyle, StreamUsage,
};
use crate::wire::Wire;

/// What a provider `type` implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderType {
    pub kind: &'static str,
    /// The API the provider speaks.
    pub wire: Wire,
    /// SDK-style base URL (scheme, host and API path prefix); None when the
    /// user must give it (Azure resources).
    pub base_url: Option<&'static str>,
    /// The header carrying the key: None for `Authorization: Bearer`.
    pub key_header: Option<&'static str>,
    /// Whether the type sends a key at all (false: local servers).
    pub sends_key: bool,
    /// Whether requests fail without a key (hosted APIs).
    pub key_required: bool,
    /// The upstream model names the type takes (those that become part of
    /// the request URL — Gemini `models/{model}:…`, Azure deployments,
    /// Bedrock `model/{id}` — are checked).
    pub model_names: ModelNames,
    pub paths: PathStyle,
    /// Serves the OpenAI Responses API itself: Responses clients pass
    /// through instead of being translated to chat.
    pub responses_api: bool,
    /// How the OpenAI Chat egress writes requests for this type (for
    /// clients of another API).
    pub chat: OpenAiChatOptions,
}

impl ProviderType {
    /// How the key travels upstream by default.
    pub fn default_auth(&self) -> AuthStyle {
        match (self.sends_key, self.key_header) {
            (false, _) => AuthStyle::None,
            (true, None) => AuthStyle::Bearer,
            (true, Some(h)) => AuthStyle::Header(h.to_string()),
        }
    }
}

/// The OpenAI-compatible chat settings most vendors take.
const COMPAT: OpenAiChatOptions = OpenAiChatOptions {
    max_tokens_field: MaxTokensField::MaxTokens,
    reasoning: ReasoningStyle::Effort,
    reasoning_history: ReasoningHistory::Omit,
    stream_usage: StreamUsage::Request,
};

/// A hosted OpenAI-compatible vendor (bearer key required).
const fn hosted(
    kind: &'static str,
    base_url: &'static str,
    chat: OpenAiChatOptions,
) -> ProviderType {
    ProviderType {
        kind,
        wire: Wire::OpenAiChat,
        base_url: Some(base_url),
        key_header: None,
        sends_key: true,
        key_required: true,
        model_names: ModelNames::Any,
        paths: PathStyle::Standard,
        responses_api: false,
        chat,
    }
}

/// Thinking switched with `thinking: {type}`, and the reasoning of earlier
/// tool-call turns sent back (these vendors' thinking models need it).
const THINKING: OpenAiChatOptions = OpenAiChatOptions {
    reasoning: ReasoningStyle::Thinking,
    reasoning_history: ReasoningHistory::ReasoningContent,
    ..COMPAT
};

/// Every provider type, in the order the README documents them.
pub const TYPES: &[ProviderType] = &[
    ProviderType {
        responses_api: true,
        chat: OpenAiChatOptions {
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            ..COMPAT
        },
        ..hosted("openai", "https://api.openai.com/v1", COMPAT)
    },
    hosted("deepseek", "https://api.deepseek.com/v1", THINKING),
    // Alibaba DashScope, OpenAI-compatible mode.
    hosted(
        "qwen",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        OpenAiChatOptions {
            reasoning: ReasoningStyle::EnableThinking,
            ..COMPAT
        },
    ),
    hosted(
        "moonshot",
        "https://api.moonshot.cn/v1",
        OpenAiChatOptions {
            reasoning_history: ReasoningHistory::ReasoningContent,
            ..COMPAT
        },
    ),
    hosted("zhipu", "https://open.bigmodel.cn/api/paas/v4", THINKING),
    // Volcengine Ark.
    hosted(
        "doubao",
        "https://ark.cn-beijing.volces.com/api/v3",
        THINKING,
    ),
    // Baidu Qianfan v2 (OpenAI-compatible).
    hosted("qianfan", "https://qianfan.baidubce.com/v2", COMPAT),
    hosted("minimax", "https://api.minimaxi.com/v1", COMPAT),
    // Mistral reports stream usage unasked and refuses `stream_options`.
    hosted(
        "mistral",
        "https://api.mistral.ai/v1",
        OpenAiChatOptions {
            stream_usage: StreamUsage::Unrequested,
            ..COMPAT
        },
    ),
    hosted("groq", "https://api.groq.com/openai/v1", COMPAT),
    hosted("openrouter", "https://openrouter.ai/api/v1", COMPAT),
    ProviderType {
        sends_key: false,
        key_required: false,
        ..hosted("ollama", "http://127.0.0.1:11434/v1", COMPAT)
    },
    // vLLM takes a bearer key only when started with --api-key.
    ProviderType {
        key_required: false,
        ..hosted("vllm", "http://127.0.0.1:8000/v1", COMPAT)
    },
    ProviderType {
        kind: "azure",
        base_url: None,
        key_header: Some("api-key"),
        model_names: ModelNames::PathSegment,
        paths: PathStyle::AzureDeployments,
        chat: OpenAiChatOptions {
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            ..COMPAT
        },
        ..hosted("azure", "", COMPAT)
    },
    ProviderType {
        kind: "anthropic",
        wire: Wire::Anthropic,
        base_url: Some("https://api.anthropic.com/v1"),
        key_header: Some("x-api-key"),
        ..hosted("anthropic", "", COMPAT)
    },
    ProviderType {
        kind: "gemini",
        wire: Wire::Gemini,
        base_url: Some("https://generativelanguage.googleapis.com/v1beta"),
        key_header: Some("x-goog-api-key"),
        model_names: ModelNames::PathSegment,
        ..hosted("gemini", "", COMPAT)
    },
    // Amazon Bedrock (Converse): requests are signed with SigV4 (`aws`),
    // or carry a Bedrock API key as a bearer token.
    ProviderType {
        kind: "bedrock",
        wire: Wire::Bedrock,
        base_url: None,
        model_names: ModelNames::BedrockId,
        ..hosted("bedrock", "", COMPAT)
    },
    // Google Vertex AI: Gemini, and Anthropic's Claude, in a project and
    // region (`vertex`), with an OAuth access token (`token`).
    ProviderType {
        kind: "vertex",
        wire: Wire::Gemini,
        base_url: None,
        sends_key: false,
        key_required: false,
        model_names: ModelNames::VertexModel,
        paths: PathStyle::Vertex,
        ..hosted("vertex", "", COMPAT)
    },
    ProviderType {
        kind: "vertex-anthropic",
        wire: Wire::Anthropic,
        base_url: None,
        sends_key: false,
        key_required: false,
        model_names: ModelNames::VertexModel,
        paths: PathStyle::Vertex,
        ..hosted("vertex-anthropic", "", COMPAT)
    },
    // Baidu ERNIE v1 (Qianfan v1): an access token exchanged from the API
    // Key and Secret Key (`token`), in the query; the model is the endpoint.
    ProviderType {
        kind: "ernie",
        wire: Wire::Ernie,
        sends_key: false,
        key_required: false,
        model_names: ModelNames::PathSegment,
        ..hosted(
            "ernie",
            "https://aip.baidubce.com/rpc/2.0/ai_custom/v1/wenxinworkshop/chat",
            COMPAT,
        )
    },
];

/// Looks up a provider `type`.
pub fn type_spec(kind: &str) -> Option<&'static ProviderType> {
    TYPES.iter().find(|t| t.kind == kind)
}

/// Every provider type, for error messages and docs.
pub fn known_types() -> Vec<&'static str> {
    TYPES.iter().map(|t| t.kind).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Endpoint;

    #[test]
    fn every_type_has_a_valid_base_url_and_a_unique_name() {
        for t in TYPES {
            if let Some(url) = t.base_url {
                let e = Endpoint::parse(url).unwrap();
                assert!(e.path_prefix.starts_with('/'), "{}", t.kind);
            }
            assert_eq!(TYPES.iter().filter(|o| o.kind == t.kind).count(), 1);
        }
        assert_eq!(type_spec("qwen").unwrap().kind, "qwen");
        assert!(type_spec("nope").is_none());
        assert_eq!(type_spec("ollama").unwrap().default_auth(), AuthStyle::None);
        assert_eq!(
            type_spec("anthropic").unwrap().default_auth(),
            AuthStyle::Header("x-api-key".into())
        );
        assert!(type_spec("openai").unwrap().responses_api);
        assert!(!type_spec("deepseek").unwrap().responses_api);
    }
}
