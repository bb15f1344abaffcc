//! Rewriting a request for one target: path, host, credentials and body,
//! translated through the hub for providers that do not speak OpenAI.

use super::{Phase, Placement, Plan, StreamFlow, Verdict, CLUSTER_HEADER};
use crate::config::{Dialect, Target};
use crate::error::ApiError;
use crate::host::{Host, LogLevel};
use crate::providers::{azure, openai_compat, Operation, CLIENT_CREDENTIAL_HEADERS};
use crate::wire::hub::{ResponseContext, Translator};
use crate::wire::openai::{to_hub, ParsedRequest};
use std::rc::Rc;

impl StreamFlow {
    /// Rewrites the request for one target: path, host, credentials, body.
    pub(super) fn rewrite(
        &mut self,
        host: &mut dyn Host,
        op: Operation,
        mut req: ParsedRequest,
        target: &Target,
        key_index: Option<usize>,
    ) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let provider = &gw.providers[target.provider];
        self.key = key_index;
        let prefix = provider.endpoint.path_prefix.as_str();
        let (path, body) = match &provider.dialect {
            Dialect::OpenAi => (
                openai_compat::upstream_path(prefix, op),
                openai_compat::rename_model_raw(&req.raw, &mut req.body, &target.model),
            ),
            Dialect::Azure { api_version } => (
                azure::path(prefix, &target.model, op, api_version),
                openai_compat::rename_model_raw(&req.raw, &mut req.body, &target.model),
            ),
            Dialect::Translated(translator) => {
                match self.translate(host, translator, op, &req, target, prefix) {
                    Ok(pair) => pair,
                    Err(e) => return self.fail(host, &e),
                }
            }
        };

        host.set_request_header(":path", Some(&path));
        host.set_request_header(":authority", Some(&provider.endpoint.authority()));
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
        for (name, value) in &provider.extra_headers {
            host.set_request_header(name, Some(value));
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
                    op.name(),
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
        self.phase = Phase::Forwarded;
        Verdict::Continue
    }

    /// Builds the provider's request through the hub and plans the response.
    fn translate(
        &mut self,
        host: &mut dyn Host,
        translator: &Rc<dyn Translator>,
        op: Operation,
        req: &ParsedRequest,
        target: &Target,
        prefix: &str,
    ) -> Result<(String, Vec<u8>), ApiError> {
        let ctx = ResponseContext {
            model: target.model.clone(),
            created: host.now_nanos() / 1_000_000_000,
            request_id: format!("{:016x}", self.rng.next_u64()),
            input_tokens_estimate: 0,
        };
        let (body, stream, include_usage) = match op {
            Operation::ChatCompletions => {
                let mut hub = to_hub::chat_request(&req.body, &target.model)?;
                if hub.max_tokens.is_none() {
                    hub.max_tokens = target.max_tokens;
                }
                (
                    translator.encode_request(&hub)?,
                    hub.stream,
                    hub.include_usage,
                )
            }
            Operation::Embeddings => {
                let hub = to_hub::embeddings_request(&req.body, &target.model)?;
                (translator.encode_embeddings(&hub)?, false, false)
            }
        };
        let path = translator.path(op, prefix, &target.model, stream);
        let base64 = req.body.get("encoding_format").and_then(|v| v.as_str()) == Some("base64");
        self.plan = Plan::Translate {
            translator: Rc::clone(translator),
            ctx,
            op,
            stream,
            include_usage,
            base64,
        };
        Ok((path, body))
    }
}
