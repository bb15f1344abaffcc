//! Requests to providers that take an access token: the token from the
//! shared cache, a bounded wait while it is fetched, or a 503 naming the
//! provider.

use super::{Exchange, Phase, StreamFlow};
use crate::error::ApiError;
use crate::host::Host;
use crate::tokens::{cache, Placement, TokenSource};
use std::rc::Rc;

/// Sends the request to `path` with `token` where the provider takes it.
fn apply(host: &mut dyn Host, source: &TokenSource, path: &str, token: &str) {
    match source.placement {
        Placement::Query => {
            let sep = if path.contains('?') { '&' } else { '?' };
            host.set_request_header(":path", Some(&format!("{path}{sep}access_token={token}")));
        }
        Placement::Bearer => {
            host.set_request_header(":path", Some(path));
            host.set_request_header("authorization", Some(&format!("Bearer {token}")));
        }
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
        matches!(self.phase, Phase::AwaitingToken { .. })
    }

    /// A held request looks for its token again (the root's timer): sends
    /// it on when the token is there, answers 503 at its deadline. Returns
    /// whether it stopped waiting.
    pub fn on_token_tick(&mut self, host: &mut dyn Host) -> bool {
        let Phase::AwaitingToken { deadline_ns } = self.phase else {
            return true;
        };
        let path = self.token_path.clone().unwrap_or_default();
        let Some(source) = self
            .target
            .as_ref()
            .and_then(|(p, _)| self.gw.providers[*p].token.as_ref().map(Rc::clone))
        else {
            return true;
        };
        let now = host.now_nanos();
        let record = cache::read(host.store(), &source.key);
        if let Some(token) = record.usable(now) {
            apply(host, &source, &path, token);
            self.access_token = Some(token.to_string());
            self.phase = Phase::Forwarded;
            host.resume_request();
            return true;
        }
        if now >= deadline_ns || !record.refresh_coming(now) {
            let e = no_token(&source, &record, now);
            self.fail(host, &e);
            return true;
        }
        false
    }
}
