//! The OpenAI-compatible family: providers that accept OpenAI Chat
//! Completions as is, differing only in base URL and auth. Requests pass
//! through with the model renamed; responses pass through untouched.

use super::{AuthStyle, Operation};

/// A provider type of the OpenAI-compatible family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub kind: &'static str,
    /// SDK-style base URL (scheme, host and API path prefix).
    pub base_url: &'static str,
    /// Whether the preset's auth sends a key (false for local servers).
    pub bearer: bool,
    /// Whether requests fail without a key (hosted APIs).
    pub key_required: bool,
}

const fn hosted(kind: &'static str, base_url: &'static str) -> Preset {
    Preset {
        kind,
        base_url,
        bearer: true,
        key_required: true,
    }
}

/// Every preset, in the order documented in the README.
pub const PRESETS: &[Preset] = &[
    hosted("openai", "https://api.openai.com/v1"),
    hosted("deepseek", "https://api.deepseek.com/v1"),
    // Alibaba DashScope, OpenAI-compatible mode.
    hosted("qwen", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
    hosted("moonshot", "https://api.moonshot.cn/v1"),
    hosted("zhipu", "https://open.bigmodel.cn/api/paas/v4"),
    // Volcengine Ark.
    hosted("doubao", "https://ark.cn-beijing.volces.com/api/v3"),
    // Baidu Qianfan v2 (OpenAI-compatible).
    hosted("qianfan", "https://qianfan.baidubce.com/v2"),
    hosted("minimax", "https://api.minimaxi.com/v1"),
    hosted("mistral", "https://api.mistral.ai/v1"),
    hosted("groq", "https://api.groq.com/openai/v1"),
    hosted("openrouter", "https://openrouter.ai/api/v1"),
    Preset {
        kind: "ollama",
        base_url: "http://127.0.0.1:11434/v1",
        bearer: false,
        key_required: false,
    },
    // vLLM takes a bearer key only when started with --api-key.
    Preset {
        kind: "vllm",
        base_url: "http://127.0.0.1:8000/v1",
        bearer: true,
        key_required: false,
    },
];

pub fn preset(kind: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.kind == kind)
}

impl Preset {
    pub fn default_auth(&self) -> AuthStyle {
        if self.bearer {
            AuthStyle::Bearer
        } else {
            AuthStyle::None
        }
    }
}

/// The upstream path for an operation, under the base URL's prefix.
pub fn upstream_path(prefix: &str, op: Operation) -> String {
    let suffix = match op {
        Operation::ChatCompletions => "/chat/completions",
        Operation::Embeddings => "/embeddings",
    };
    format!("{prefix}{suffix}")
}

/// The request for the upstream: the client's bytes with only the top-level
/// `model` replaced when they were kept (`raw`), else `body` re-serialized.
pub fn rename_model_raw(
    raw: &[u8],
    body: &mut serde_json::Map<String, serde_json::Value>,
    upstream_model: &str,
) -> Vec<u8> {
    let value = serde_json::to_string(upstream_model).unwrap_or_default();
    crate::wire::openai::splice::replace_member(raw, "model", &value)
        .unwrap_or_else(|| rename_model(body, upstream_model))
}

/// Replaces the top-level `model` of a validated request body, keeping every
/// other field (vendor extensions included) as the client sent it.
pub fn rename_model(
    body: &mut serde_json::Map<String, serde_json::Value>,
    upstream_model: &str,
) -> Vec<u8> {
    body.insert(
        "model".into(),
        serde_json::Value::String(upstream_model.into()),
    );
    serde_json::to_vec(body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Endpoint;

    #[test]
    fn every_preset_has_a_valid_base_url() {
        for p in PRESETS {
            let e = Endpoint::parse(p.base_url).unwrap();
            assert!(e.path_prefix.starts_with('/'), "{}", p.kind);
        }
        assert_eq!(preset("qwen").unwrap().kind, "qwen");
        assert!(preset("nope").is_none());
    }

    #[test]
    fn paths_and_model_rename() {
        assert_eq!(
            upstream_path("/api/paas/v4", Operation::ChatCompletions),
            "/api/paas/v4/chat/completions"
        );
        assert_eq!(upstream_path("", Operation::Embeddings), "/embeddings");
        let mut body: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"model":"a","messages":[],"x_vendor":{"k":1}}"#).unwrap();
        let out = rename_model(&mut body, "b");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "b");
        assert_eq!(v["x_vendor"]["k"], 1);
    }
}
