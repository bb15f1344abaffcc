//! Requests to providers that take an access token: the token from the
//! shared cache, a bounded wait while it is fetched, or a 503 naming the
//! provider.

use super::{Exchange, Phase, ResponseMode, StreamFlow, Verdict};
use crate::error::ApiError;
use crate::host::Host;
use crate::tokens::{cache, Placement, TokenSource};
use crate::wire::stream::StreamTranslation;
use std::rc::Rc;

/// The request headers that send it to `path` with `token` where the
/// provider takes it: in the query, or as a bearer token.
fn token_headers(source: &TokenSource, path: &str, token: &str) -> Vec<(&'static str, String)> {
    match source.placement {
        Placement::Query => {
            let sep = if path.contains('?') { '&' } else { '?' };
            vec![(":path", format!("{path}{sep}access_token={token}"))]
        }
        Placement::Bearer => vec![
            (":path", path.to_string()),
            ("authorization", format!("Bearer {token}")),
        ],
    }
}

/// Sends the request to `path` with `token`.
fn apply(host: &mut dyn Host, source: &TokenSource, path: &str, token: &str) {
    for (name, value) in token_headers(source, path, token) {
        host.set_request_header(name, Some(&value));
    }
}

fn no_token(source: &TokenSource, record: &cache::Record, now_ns: u64) -> ApiError {
    let why = if record.failures > 0 {
        let secs = record
            .retry_at_ns
            .saturating_sub(now_ns)
            .div_ceil(1_000_000_000);
        format!(
            "its token endpoint failed {} time(s) in a row; the next try is in {secs} s",
            record.failures
        )
    } else {
        "the token was not fetched in time".to_string()
    };
    ApiError::new(
        503,
        "api_error",
        format!("Provider '{}' has no access token: {why}.", source.provider),
    )
    .with_code("provider_token_unavailable")
}

impl StreamFlow {
    /// The token source of the request's provider, if it takes tokens.
    fn token_source(&self) -> Option<Rc<TokenSource>> {
        let (p, _) = self.target.as_ref()?;
        self.gw.providers[*p].token.as_ref().map(Rc::clone)
    }

    /// The error a JSON answer to a stream request carries, else a 502.
    pub(super) fn error_in_json(&self, body: &[u8]) -> ApiError {
        if let Exchange::Translate { egress, .. } = &self.exchange {
            let e = egress.decode_error(200, body);
            if e.status >= 400 {
                return e;
            }
        }
        super::response::invalid_response(
            "The provider answered a streaming request with a JSON body instead of an event stream",
            body,
        )
    }

    /// A provider that refused the access token it was given: the token
    /// is marked stale (the root fetches a new one at once) and the client
    /// is told to retry, as for any short outage.
    pub(super) fn refused_token(&mut self, host: &mut dyn Host, e: ApiError) -> ApiError {
        let Some(provider) = self.target.as_ref().map(|(p, _)| &self.gw.providers[*p]) else {
            return e;
        };
        let Some(source) = provider.token.as_ref().map(Rc::clone) else {
            return e;
        };
        if !provider.egress.0.refuses_token(&e) {
            return e;
        }
        if let Some(token) = &self.access_token {
            let _ = cache::invalidate(host.store(), &source.key, token);
        }
        host.set_response_header("retry-after", Some("1"));
        ApiError::new(
            503,
            "api_error",
            format!(
                "Provider '{}' refused its access token ({}); a new one is being fetched: retry shortly.",
                source.provider, e.message
            ),
        )
        .with_code("provider_token_refused")
    }

    /// Sends the request to `path` with a usable token (true), or says to
    /// wait for one (false); the 503 when none is coming in time.
    pub(super) fn apply_token(
        &mut self,
        host: &mut dyn Host,
        source: &TokenSource,
        path: &str,
    ) -> Result<bool, ApiError> {
        let now = host.now_nanos();
        let record = cache::read(host.store(), &source.key);
        if let Some(token) = record.usable(now) {
            apply(host, source, path, token);
            self.access_token = Some(token.to_string());
            return Ok(true);
        }
        if source.wait_ns > 0 && record.refresh_coming(now) {
            return Ok(false);
        }
        Err(no_token(source, &record, now))
    }

    /// Whether the request is held for its provider's access token.
    pub fn awaiting_token(&self) -> bool {
        matches!(
            self.phase,
            Phase::AwaitingToken { .. } | Phase::RetryAwaitingToken { .. }
        )
    }

    /// The callout sending the request once more, while it is out.
    pub fn retry_callout(&self) -> Option<u32> {
        match self.phase {
            Phase::RetryCallout => self.retry_token_id,
            _ => None,
        }
    }

    /// At the end of a held answer: when it says the provider refused the
    /// token (and the request was not sent again yet), marks the token
    /// stale and holds the answer until a new token can send the request
    /// once more.
    pub(super) fn retry_if_token_refused(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
    ) -> Option<Verdict> {
        if self.token_retried || self.sent_body.is_none() || self.decoder.is_some() {
            return None;
        }
        let (p, _) = self.target.as_ref()?;
        let gw = Rc::clone(&self.gw);
        let provider = &gw.providers[*p];
        let source = provider.token.as_ref()?;
        let raw = host.response_body(body_size).unwrap_or_default();
        let e = match (&self.response, &self.exchange) {
            (ResponseMode::NormalizeError(status), _) => self.upstream_error(*status, &raw),
            (ResponseMode::StreamAnsweredWithJson, _) => self.error_in_json(&raw),
            (ResponseMode::TranslateBody, Exchange::Translate { egress, ctx, .. }) => {
                egress.decode_response(&raw, ctx).err()?
            }
            _ => return None,
        };
        if !provider.egress.0.refuses_token(&e) {
            return None;
        }
        if let Some(token) = &self.access_token {
            let _ = cache::invalidate(host.store(), &source.key, token);
        }
        self.token_retried = true;
        let wait = source.wait_ns.max(1_000_000_000);
        self.phase = Phase::RetryAwaitingToken {
            deadline_ns: host.now_nanos().saturating_add(wait),
        };
        Some(Verdict::Pause)
    }

    /// Sends the request once more, with `token`, as a callout.
    fn send_again(&mut self, host: &mut dyn Host, source: &TokenSource, token: &str) {
        let Some((p, _)) = self.target.as_ref() else {
            return;
        };
        let provider = &self.gw.providers[*p];
        let path = self.token_path.clone().unwrap_or_default();
        let mut headers: Vec<(&str, String)> = vec![
            (":method", "POST".into()),
            (":authority", provider.endpoint.authority().to_string()),
            ("content-type", "application/json".into()),
        ];
        headers.extend(token_headers(source, &path, token));
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = self.sent_body.take().unwrap_or_default();
        let timeout = provider.timeouts.total_ms.unwrap_or(300_000);
        match host.dispatch_call(&provider.cluster, &pairs, &body, timeout) {
            Ok(id) => {
                self.access_token = Some(token.to_string());
                self.retry_token_id = Some(id);
                self.phase = Phase::RetryCallout;
            }
            Err(why) => self.retry_failed(host, &why),
        }
    }

    /// The request could not be sent once more: a 503 to retry.
    fn retry_failed(&mut self, host: &mut dyn Host, why: &str) {
        let provider = self
            .target
            .as_ref()
            .map(|(p, _)| self.gw.providers[*p].name.clone())
            .unwrap_or_default();
        let e = ApiError::new(
            503,
            "api_error",
            format!("Provider '{provider}' refused its access token and the request could not be sent again with a new one ({why}): retry shortly."),
        )
        .with_code("provider_token_refused");
        self.fail_with(host, &e, &[("retry-after", "1")]);
    }

    /// The answer to the request sent once more: the client's answer,
    /// whole (streams included), instead of the refusal held.
    pub(super) fn on_retry_answer(
        &mut self,
        host: &mut dyn Host,
        status: Option<u16>,
        body: &[u8],
    ) {
        let Some(status) = status else {
            return self.retry_failed(host, "no answer");
        };
        if status >= 400 {
            let e = self.upstream_error(status, body);
            return self.retry_refused(host, e);
        }
        let answer = match &self.exchange {
            Exchange::Passthrough => {
                let ct = if self.telemetry.stream {
                    "text/event-stream"
                } else {
                    "application/json"
                };
                Ok((ct, body.to_vec()))
            }
            Exchange::Translate {
                stream: true,
                egress,
                ctx,
                include_usage,
                ..
            } => {
                let mut st = StreamTranslation::new(
                    egress.stream_decoder(ctx),
                    self.api.wire().writer(ctx, *include_usage),
                )
                .with_framing(egress.framing());
                let mut out = st.feed(body);
                out.extend(st.finish());
                self.telemetry.usage = st.usage();
                Ok(("text/event-stream", out))
            }
            Exchange::Translate { .. } => {
                self.translate_body(body).map(|b| ("application/json", b))
            }
        };
        match answer {
            Ok((ct, bytes)) => {
                let bytes = self.mask(Some(bytes), &[], true).unwrap_or_default();
                self.phase = Phase::Answered;
                self.telemetry.status = status;
                host.send_response(status, &[("content-type", ct)], &bytes);
            }
            Err(e) => self.retry_refused(host, e),
        }
    }

    /// The answer to the request sent once more is an error: refused
    /// again (the new token too) is the 503 to retry, anything else goes
    /// to the client as it is.
    fn retry_refused(&mut self, host: &mut dyn Host, e: ApiError) {
        let e = self.refused_token(host, e);
        let e = self.redacted(e);
        let retry: &[(&str, &str)] = match e.code.as_deref() {
            Some("provider_token_refused") => &[("retry-after", "1")],
            _ => &[],
        };
        self.fail_with(host, &e, retry);
    }

    /// A held request looks for its token again (the root's timer): sends
    /// it on when the token is there, answers 503 at its deadline. Returns
    /// whether it stopped waiting.
    pub fn on_token_tick(&mut self, host: &mut dyn Host) -> bool {
        // Held before the first send, or with a refused answer to send again.
        let (deadline_ns, again) = match self.phase {
            Phase::AwaitingToken { deadline_ns } => (deadline_ns, false),
            Phase::RetryAwaitingToken { deadline_ns } => (deadline_ns, true),
            _ => return true,
        };
        let Some(source) = self.token_source() else {
            return true;
        };
        let now = host.now_nanos();
        let record = cache::read(host.store(), &source.key);
        if let Some(token) = record.usable(now) {
            let token = token.to_string();
            if again {
                self.send_again(host, &source, &token);
            } else {
                let path = self.token_path.clone().unwrap_or_default();
                apply(host, &source, &path, &token);
                self.access_token = Some(token);
                self.phase = Phase::Forwarded;
                host.resume_request();
            }
            return true;
        }
        if now >= deadline_ns || !record.refresh_coming(now) {
            if again {
                self.retry_failed(host, "no new token in time");
            } else {
                let e = no_token(&source, &record, now);
                self.fail(host, &e);
            }
            return true;
        }
        false
    }
}
