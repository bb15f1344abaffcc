//! Google Vertex AI: Gemini (`publishers/google`) and Anthropic's Claude
//! (`publishers/anthropic`) in a project and location, reached with an
//! OAuth access token (`tokens`). The bodies are the publishers' own, with
//! Vertex's paths; Claude's body names no model and carries
//! `anthropic_version: vertex-2023-10-16`.

use super::Operation;
use crate::error::ApiError;
use crate::wire::anthropic::Anthropic;
use crate::wire::gemini::Gemini;
use crate::wire::hub::{ChatRequest, ChatResponse, ResponseContext, StreamDecoder, Translator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `anthropic_version` Claude on Vertex takes in the body.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// `providers[].vertex`: where the models run.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VertexConfig {
    /// The Google Cloud project id.
    pub project: String,
    /// A region (`us-central1`, `europe-west4`, …) or `global`; also picks
    /// the default endpoint.
    pub region: String,
}

impl VertexConfig {
    /// Why the config is unusable, with the field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let p = &self.project;
        let project_ok = (6..=30).contains(&p.len())
            && p.starts_with(|c: char| c.is_ascii_lowercase())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !p.ends_with('-');
        if !project_ok {
            return Err((
                "project",
                format!("'{p}' is not a Google Cloud project id (6–30 of a-z, 0-9, -)"),
            ));
        }
        if !is_location(&self.region) {
            return Err((
                "region",
                format!(
                    "'{}' is not a Vertex AI region such as us-central1, or global",
                    self.region
                ),
            ));
        }
        Ok(())
    }

    /// The default base URL: `https://{region}-aiplatform.googleapis.com/v1`
    /// (the global endpoint has no region prefix).
    pub fn base_url(&self) -> String {
        if self.region == "global" {
            "https://aiplatform.googleapis.com/v1".into()
        } else {
            format!("https://{}-aiplatform.googleapis.com/v1", self.region)
        }
    }

    fn resource(&self, prefix: &str, publisher: &str, model: &str) -> String {
        format!(
            "{}/projects/{}/locations/{}/publishers/{publisher}/models/{model}",
            prefix.trim_end_matches('/'),
            self.project,
            self.region
        )
    }
}

fn is_location(r: &str) -> bool {
    r == "global"
        || ((4..=32).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && r.contains('-')
            && r.ends_with(|c: char| c.is_ascii_digit()))
}

/// Gemini on Vertex: the Gemini edge's bodies, Vertex's paths.
pub struct VertexGemini {
    pub location: VertexConfig,
}

impl Translator for VertexGemini {
    fn path(&self, op: Operation, prefix: &str, model: &str, stream: bool) -> String {
        let resource = self.location.resource(prefix, "google", model);
        match op {
            Operation::ChatCompletions if stream => {
                format!("{resource}:streamGenerateContent?alt=sse")
            }
            Operation::ChatCompletions => format!("{resource}:generateContent"),
            // Vertex embeds through `:predict` (another API): refused first.
            Operation::Embeddings => format!("{resource}:predict"),
        }
    }
    fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        Gemini.encode_request(req)
    }
    fn decode_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<ChatResponse, ApiError> {
        Gemini.decode_response(body, ctx)
    }
    fn stream_decoder(&self, ctx: &ResponseContext) -> Box<dyn StreamDecoder> {
        Gemini.stream_decoder(ctx)
    }
    fn decode_error(&self, status: u16, body: &[u8]) -> ApiError {
        Gemini.decode_error(status, body)
    }
    fn refuses_token(&self, e: &ApiError) -> bool {
        e.status == 401
    }
}

/// Claude on Vertex: Anthropic's bodies without `model`, with Vertex's
/// `anthropic_version`, on `:rawPredict` / `:streamRawPredict`.
pub struct VertexAnthropic {
    pub inner: Anthropic,
    pub location: VertexConfig,
}

/// An Anthropic body as Vertex takes it.
fn for_vertex(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            500,
            "api_error",
            format!("Could not re-encode the request: {e}."),
        )
    })?;
    if let Value::Object(map) = &mut v {
        map.remove("model");
        map.insert("anthropic_version".into(), ANTHROPIC_VERSION.into());
    }
    Ok(v.to_string().into_bytes())
}

impl Translator for VertexAnthropic {
    fn path(&self, _op: Operation, prefix: &str, model: &str, stream: bool) -> String {
        let method = if stream {
            "streamRawPredict"
        } else {
            "rawPredict"
        };
        format!(
            "{}:{method}",
            self.location.resource(prefix, "anthropic", model)
        )
    }
    fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        for_vertex(&self.inner.encode_request(req)?)
    }
    fn passthrough_body(&self, body: Vec<u8>) -> Result<Vec<u8>, ApiError> {
        for_vertex(&body)
    }
    fn count_tokens_path(&self, _prefix: &str) -> Option<String> {
        None
    }
    fn refuses_token(&self, e: &ApiError) -> bool {
        e.status == 401
    }
    fn decode_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<ChatResponse, ApiError> {
        self.inner.decode_response(body, ctx)
    }
    fn stream_decoder(&self, ctx: &ResponseContext) -> Box<dyn StreamDecoder> {
        self.inner.stream_decoder(ctx)
    }
    fn decode_error(&self, status: u16, body: &[u8]) -> ApiError {
        // Vertex's own errors come in Google's shape, Claude's in Anthropic's;
        // both carry a message the normalizer finds.
        self.inner.decode_error(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(region: &str) -> VertexConfig {
        VertexConfig {
            project: "llmgw-test".into(),
            region: region.into(),
        }
    }

    #[test]
    fn locations_and_endpoints() {
        assert!(loc("us-central1").check().is_ok());
        assert!(loc("global").check().is_ok());
        assert_eq!(
            loc("global").base_url(),
            "https://aiplatform.googleapis.com/v1"
        );
        assert_eq!(
            loc("europe-west4").base_url(),
            "https://europe-west4-aiplatform.googleapis.com/v1"
        );
        for bad in [
            "",
            "us central1",
            "evil.com/x",
            "us-central1#",
            "US-CENTRAL1",
        ] {
            assert_eq!(loc(bad).check().unwrap_err().0, "region", "{bad}");
        }
        let mut p = loc("us-central1");
        p.project = "a/../b".into();
        assert_eq!(p.check().unwrap_err().0, "project");
    }

    #[test]
    fn vertex_paths_and_bodies() {
        let g = VertexGemini {
            location: loc("us-central1"),
        };
        assert_eq!(
            g.path(Operation::ChatCompletions, "/v1", "gemini-2.5-flash", true),
            "/v1/projects/llmgw-test/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        let a = VertexAnthropic {
            inner: Anthropic::default(),
            location: loc("global"),
        };
        assert_eq!(
            a.path(Operation::ChatCompletions, "/v1", "claude-sonnet-4-5@20250929", false),
            "/v1/projects/llmgw-test/locations/global/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
        );
        let body = a
            .passthrough_body(br#"{"model":"x","max_tokens":5,"messages":[]}"#.to_vec())
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("model").is_none());
        assert_eq!(v["anthropic_version"], ANTHROPIC_VERSION);
        assert_eq!(v["max_tokens"], 5);
        assert!(a.count_tokens_path("/v1").is_none());
    }
}
