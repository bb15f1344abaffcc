//! Azure OpenAI: OpenAI's request and response bodies, but a per-deployment
//! path with an `api-version` query and the key in an `api-key` header.

use super::Operation;

pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// `{prefix}/openai/deployments/{deployment}/{op}?api-version={version}`.
pub fn path(prefix: &str, deployment: &str, op: Operation, api_version: &str) -> String {
    let op = match op {
        Operation::ChatCompletions => "chat/completions",
        Operation::Embeddings => "embeddings",
    };
    format!("{prefix}/openai/deployments/{deployment}/{op}?api-version={api_version}")
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
