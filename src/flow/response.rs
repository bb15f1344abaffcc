//! The response body: passed through, translated to OpenAI's shape, or an
//! upstream error normalized to OpenAI's error shape.

use super::{Plan, ResponseMode, StreamFlow, Verdict};
use crate::error::{normalize_upstream_error, scrub};
use crate::host::{Host, LogLevel};
use crate::openai::render;
use crate::providers::Operation;

impl StreamFlow {
    pub(super) fn transform_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Verdict {
        match &mut self.response {
            ResponseMode::Passthrough => Verdict::Continue,
            ResponseMode::TranslateStream(st) => {
                let chunk = host.response_body(body_size).unwrap_or_default();
                let mut out = st.feed(&chunk);
                if end_of_stream {
                    out.extend(st.finish());
                    self.telemetry.usage = st.usage();
                }
                self.telemetry.stream_error |= st.failed();
                host.set_response_body(&out);
                Verdict::Continue
            }
            ResponseMode::NormalizeError(_) | ResponseMode::TranslateBody if !end_of_stream => {
                Verdict::Pause
            }
            ResponseMode::NormalizeError(status) => {
                let status = *status;
                let body = host.response_body(body_size).unwrap_or_default();
                let secrets = self
                    .target
                    .as_ref()
                    .map(|(p, _)| self.gw.providers[*p].secrets())
                    .unwrap_or_default();
                let err = match &self.plan {
                    Plan::Translate { translator, .. } => {
                        let mut e = translator.decode_error(status, &body);
                        e.message = scrub(&e.message, &secrets);
                        e
                    }
                    Plan::Passthrough => normalize_upstream_error(status, &body, &secrets),
                };
                host.set_response_body(&err.to_json());
                self.response = ResponseMode::Passthrough;
                Verdict::Continue
            }
            ResponseMode::TranslateBody => {
                let body = host.response_body(body_size).unwrap_or_default();
                let translated = match &self.plan {
                    Plan::Translate {
                        translator,
                        ctx,
                        op: Operation::ChatCompletions,
                        ..
                    } => translator.decode_response(&body, ctx).map(|r| {
                        self.telemetry.usage = r.usage;
                        render::chat_completion(&r)
                    }),
                    Plan::Translate {
                        translator,
                        ctx,
                        op: Operation::Embeddings,
                        base64,
                        ..
                    } => translator.decode_embeddings(&body, ctx).map(|r| {
                        self.telemetry.usage = Some(crate::hub::Usage {
                            prompt_tokens: r.prompt_tokens,
                            total_tokens: r.prompt_tokens,
                            ..Default::default()
                        });
                        render::embeddings(&r, *base64)
                    }),
                    Plan::Passthrough => Ok(body),
                };
                let out = match translated {
                    Ok(out) => out,
                    Err(e) => {
                        host.log(LogLevel::Warn, &e.message);
                        host.set_response_header(":status", Some(&e.status.to_string()));
                        self.telemetry.status = e.status;
                        self.telemetry.error_type = Some(e.kind.to_string());
                        e.to_json()
                    }
                };
                host.set_response_header("content-length", Some(&out.len().to_string()));
                host.set_response_body(&out);
                self.response = ResponseMode::Passthrough;
                Verdict::Continue
            }
        }
    }
}
