//! Rewriting a request for one target: path, host, credentials and body —
//! passed through when the provider speaks the client's API, translated
//! through the hub otherwise.

use super::{Exchange, Phase, Placement, StreamFlow, Verdict, CLUSTER_HEADER};
use crate::config::{Provider, Target};
use crate::error::ApiError;
use crate::host::{Host, LogLevel};
use crate::providers::{Operation, CLIENT_CREDENTIAL_HEADERS};
use crate::wire::hub::ResponseContext;
use crate::wire::openai::{splice, to_hub, ParsedRequest};
use crate::wire::{Api, Wire};
use std::rc::Rc;

/// Request headers of Anthropic's API, which only an Anthropic provider
/// may see (a passthrough keeps the client's).
const ANTHROPIC_HEADERS: &[&str] = &["anthropic-version", "anthropic-beta"];

/// Whether `provider` serves the client's API itself, so the request goes
/// as the client sent it.
fn passes_through(api: Api, provider: &Provider) -> bool {
    match api {
        Api::ChatCompletions | Api::Embeddings => provider.wire == Wire::OpenAiChat,
        Api::Messages | Api::CountTokens => provider.wire == Wire::Anthropic,
        Api::Responses => provider.responses_api,
    }
}

impl StreamFlow {
    /// Rewrites the request for one target: path, host, credentials, body.
    pub(super) fn rewrite(
        &mut self,
        host: &mut dyn Host,
        mut req: ParsedRequest,
        target: &Target,
        key_index: Option<usize>,
    ) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let provider = &gw.providers[target.provider];
        self.key = key_index;
        let prefix = provider.endpoint.path_prefix.as_str();
        // Response guardrails read the answer in hub form: translated even
        // when the provider speaks the client's API.
        // So does the cache, which keeps answers whole in hub form.
        let passthrough =
            passes_through(self.api, provider) && !self.screens_response() && self.cache.is_none();
        let (path, body) = if passthrough {
            self.exchange = Exchange::Passthrough;
            let path = match self.api {
                Api::Responses => format!("{prefix}/responses"),
                Api::CountTokens => match provider.egress.0.count_tokens_path(prefix) {
                    Some(path) => path,
                    None => {
                        let e = ApiError::invalid_request(
                            "count_tokens is not served by this model's provider.",
                        )
                        .with_code("unsupported_operation");
                        return self.fail(host, &e);
                    }
                },
                api => provider
                    .egress
                    .0
                    .path(api.operation(), prefix, &target.model, req.stream),
            };
            let body = splice::with_model(&mut req, &target.model);
            match provider.egress.0.passthrough_body(body) {
                Ok(body) => (path, body),
                Err(e) => return self.fail(host, &e),
            }
        } else {
            match self.translate(host, provider, &req, target, prefix) {
                Ok(pair) => pair,
                Err(e) => return self.fail(host, &e),
            }
        };

        if provider.token.is_none() {
            host.set_request_header(":path", Some(&path));
        }
        host.set_request_header(":authority", Some(provider.endpoint.authority()));
        if self.placement == Placement::Downstream {
            host.set_request_header(CLUSTER_HEADER, Some(&provider.cluster));
            host.clear_route_cache();
        }
        let key_header = key_index
            .and_then(|k| provider.keys.get(k))
            .and_then(|k| k.header.as_ref());
        for name in CLIENT_CREDENTIAL_HEADERS {
            // The one the provider key replaces is overwritten just below.
            if key_header.is_none_or(|(key_name, _)| !key_name.eq_ignore_ascii_case(name)) {
                host.set_request_header(name, None);
            }
        }
        if let Some((name, value)) = key_header {
            host.set_request_header(name, Some(value));
        }
        // A token provider's request gets its access token (or waits).
        let awaiting = match &provider.token {
            None => None,
            Some(source) => match self.apply_token(host, source, &path) {
                Ok(true) => None,
                Ok(false) => Some(host.now_nanos().saturating_add(source.wait_ns)),
                Err(e) => return self.fail(host, &e),
            },
        };
        self.anthropic_headers(host, provider, passthrough);
        for (name, value) in &provider.extra_headers {
            host.set_request_header(name, Some(value));
        }
        if let Some(signer) = &provider.signer {
            // Signed last, over the path, host and body as they are sent;
            // each attempt signs its own.
            host.set_request_header("x-amz-content-sha256", None);
            let now = host.now_nanos() / 1_000_000_000;
            let authority = provider.endpoint.authority();
            for (name, value) in signer.headers(authority, &path, "application/json", &body, now) {
                host.set_request_header(&name, Some(&value));
            }
        }
        // The filter reads every response (translation, usage, checks,
        // key masking): ask for it uncompressed. Envoy's compressor, if
        // configured, compresses what goes back to clients that accept it.
        host.set_request_header("accept-encoding", None);
        host.set_request_header("content-type", Some("application/json"));
        host.set_request_header("content-length", Some(&body.len().to_string()));
        host.set_request_body(&body);
        if host.log_enabled(LogLevel::Debug) {
            host.log(
                LogLevel::Debug,
                &format!(
                    "{} model={} stream={} -> {}/{}",
                    self.api.name(),
                    req.model,
                    req.stream,
                    provider.name,
                    target.model
                ),
            );
        }
        self.telemetry.provider = Some((provider.name.clone(), provider.kind));
        self.telemetry.response_model = Some(target.model.clone());
        self.telemetry.stream = req.stream;
        self.target = Some((target.provider, target.model.clone()));
        if provider.token.is_some() {
            self.token_path = Some(path);
            self.sent_body = Some(body);
        }
        if let Some(deadline_ns) = awaiting {
            self.phase = Phase::AwaitingToken { deadline_ns };
            return Verdict::Pause;
        }
        self.phase = Phase::Forwarded;
        Verdict::Continue
    }

    /// An Anthropic provider gets the client's `anthropic-version` and
    /// `anthropic-beta` when the client speaks Anthropic (betas such as
    /// Claude Code's context management go with fields in its body), else
    /// the configured version; no other provider gets them.
    fn anthropic_headers(&self, host: &mut dyn Host, provider: &Provider, passthrough: bool) {
        match &provider.anthropic_version {
            Some(version) => {
                let keep = passthrough && host.request_header("anthropic-version").is_some();
                if !keep {
                    host.set_request_header("anthropic-version", Some(version));
                    host.set_request_header("anthropic-beta", None);
                }
            }
            None => {
                for name in ANTHROPIC_HEADERS {
                    host.set_request_header(name, None);
                }
            }
        }
    }

    /// Builds the provider's request through the hub and plans the response.
    fn translate(
        &mut self,
        host: &mut dyn Host,
        provider: &Provider,
        req: &ParsedRequest,
        target: &Target,
        prefix: &str,
    ) -> Result<(String, Vec<u8>), ApiError> {
        let egress = Rc::clone(&provider.egress.0);
        let op = self.api.operation();
        let input_tokens_estimate = match self.api.wire() {
            // Anthropic's stream reports the input before the provider has.
            Wire::Anthropic => self.facts(req).prompt_tokens,
            _ => 0,
        };
        let ctx = ResponseContext {
            model: target.model.clone(),
            // The request's arrival, as OpenAI's `created` is (and no clock
            // hostcall here).
            created: self
                .telemetry
                .started_ns()
                .unwrap_or_else(|| host.now_nanos())
                / 1_000_000_000,
            request_id: crate::secrets::signature::hex(&self.rng.next_u64().to_be_bytes()),
            input_tokens_estimate,
        };
        let (body, stream, include_usage) = match op {
            Operation::ChatCompletions => {
                let quick = match self.api {
                    Api::ChatCompletions => req.quick_hub(&target.model),
                    _ => None,
                };
                let mut hub = match quick {
                    Some(hub) => hub,
                    None => self.api.to_hub(req.body(), &target.model)?,
                };
                if hub.max_tokens.is_none() {
                    hub.max_tokens = target.max_tokens;
                }
                (egress.encode_request(&hub)?, hub.stream, hub.include_usage)
            }
            Operation::Embeddings => {
                let hub = to_hub::embeddings_request(req.body(), &target.model)?;
                (egress.encode_embeddings(&hub)?, false, false)
            }
        };
        let path = egress.path(op, prefix, &target.model, stream);
        let base64 = op == Operation::Embeddings
            && req.body().get("encoding_format").and_then(|v| v.as_str()) == Some("base64");
        self.exchange = Exchange::Translate {
            egress,
            ctx,
            op,
            stream,
            include_usage,
            base64,
        };
        Ok((path, body))
    }
}
