//! The response: labelled, decoded when the provider compressed it unasked,
//! passed through (checked), translated into the client's wire, or an
//! upstream error rewritten in the client's error shape; provider keys
//! masked.

use super::guard::retry_after_ms;
use super::{
    Exchange, Phase, Placement, ResponseMode, StreamFlow, Verdict, FINISH_KEY, TARGET_HEADER,
    USAGE_KEY,
};
use crate::admission;
use crate::content_coding::{Coding, Decoder};
use crate::error::ApiError;
use crate::host::{Host, LogLevel};
use crate::providers::Operation;
use crate::redact::Redactor;
use crate::wire::collect::Capture;
use crate::wire::hub::Usage;
use crate::wire::openai::render;
use crate::wire::pass_stream::{PassStream, Step};
use crate::wire::stream::{Framing, StreamTranslation};
use std::borrow::Cow;
use std::rc::Rc;

/// Characters of a bad body quoted in the 502 that replaces it.
const EXCERPT_CHARS: usize = 200;

impl StreamFlow {
    pub fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Verdict {
        // Anything else is a local reply: the filter's own, or Envoy's
        // (a stalled upload's 408, say), which its local-reply mappers shape.
        if self.phase != Phase::Forwarded {
            return Verdict::Continue;
        }
        self.response_done = end_of_stream;
        if self.pooled {
            // The attempt's filter named the target that answered.
            self.observe_pool_target(&*host);
        }
        if let Some((provider, model)) = &self.target {
            let label = [self.gw.providers[*provider].name.as_str(), "/", model].concat();
            host.set_response_header(TARGET_HEADER, Some(&label));
        }
        // The attempt of a pool says `store` itself (a provider never does).
        if self.placement == Placement::Upstream {
            host.set_response_header(crate::cache::CACHE_HEADER, None);
        }
        let said = self.pooled
            && host.response_header(crate::cache::CACHE_HEADER).as_deref() == Some("store");
        if let (Some(state), false) = (self.telemetry.cache, said) {
            host.set_response_header(crate::cache::CACHE_HEADER, Some(state));
        }
        let status = host
            .response_header(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        self.rate_limit_headers(host, status);
        self.telemetry.status = status;
        if status == 429 {
            self.retry_after_ms = retry_after_ms(&*host);
        }
        // A refusal by Envoy's rate-limit filter asked no provider.
        if !self.cluster_refused {
            self.record_key_health(&*host, status);
        }
        if self.placement == Placement::Upstream {
            // Envoy may retry this attempt elsewhere: record it now.
            let now = host.now_nanos();
            self.record_target_health(host, now);
        }
        // The instance that sent the request to a provider masks its keys
        // (for a failover pool, the attempt's).
        if let Some((provider, _)) = &self.target {
            let secrets = &self.gw.providers[*provider].secrets;
            if !secrets.is_empty() {
                self.redactor = Some(Redactor::new(Rc::clone(secrets)));
            }
        }
        let unreadable = self.take_content_coding(host);
        if status >= 400 {
            self.telemetry.error_type = Some(crate::error::kind_for_status(status).into());
            self.response = ResponseMode::NormalizeError(status);
            // A token provider's 401 may become a 503 to retry: held.
            let hold = match (&self.target, end_of_stream) {
                (Some((p, _)), false) if self.gw.providers[*p].token.is_some() => Verdict::Pause,
                _ => Verdict::Continue,
            };
            return json_headers(host, hold);
        }
        if !(200..300).contains(&status) {
            return Verdict::Continue;
        }
        let hold = if end_of_stream {
            Verdict::Continue
        } else {
            Verdict::Pause
        };
        if let Some(why) = unreadable {
            return self.reject(host, why, hold);
        }
        if self.pooled {
            // The attempt checked and translated it.
            return Verdict::Continue;
        }
        let stream = match &self.exchange {
            Exchange::Passthrough => self.telemetry.stream,
            Exchange::Translate { stream, .. } => *stream,
        };
        let framing = match &self.exchange {
            Exchange::Translate { egress, .. } => egress.framing(),
            Exchange::Passthrough => Framing::Sse,
        };
        let content_type = host.response_header("content-type");
        let translated = matches!(self.exchange, Exchange::Translate { .. });
        if stream && translated && content_type.as_deref().is_some_and(is_json) {
            self.response = ResponseMode::StreamAnsweredWithJson;
            host.set_response_header("content-length", None);
            return json_headers(host, hold);
        }
        if stream
            && content_type
                .as_deref()
                .is_some_and(|c| !is_stream_type(framing, c))
        {
            let why = format!(
                "The provider answered a streaming request with content-type '{}' instead of an event stream",
                content_type.unwrap_or_default()
            );
            return self.reject(host, why, hold);
        }
        match &self.exchange {
            Exchange::Passthrough if stream => {
                let watcher = self.api.wire().watcher();
                self.response = ResponseMode::PassStream(Box::new(PassStream::new(watcher)));
                Verdict::Continue
            }
            Exchange::Passthrough => {
                // Held so a truncated or non-JSON body can become a 502. Its
                // length changes only if the body does (set there).
                self.response = ResponseMode::CheckBody;
                hold
            }
            Exchange::Translate {
                egress,
                ctx,
                include_usage,
                ..
            } if stream => {
                host.set_response_header("content-length", None);
                host.set_response_header("content-type", Some("text/event-stream"));
                host.set_response_header("cache-control", Some("no-cache"));
                let decoder = egress.stream_decoder(ctx);
                let writer = self.api.wire().writer(ctx, *include_usage);
                let mut st = StreamTranslation::new(decoder, writer).with_framing(framing);
                if let Some(guard) = self.stream_guard() {
                    st = st.with_filter(Box::new(guard));
                }
                if let (Some(_), Some(store)) = (&self.cache, self.gw.cache) {
                    st = st.with_capture(Capture::new(store.max_entry_bytes));
                }
                self.response = ResponseMode::TranslateStream(Box::new(st));
                Verdict::Continue
            }
            Exchange::Translate { .. } => {
                self.response = ResponseMode::TranslateBody;
                // Held so a body that cannot be translated can still become
                // a 502.
                json_headers(host, hold)
            }
        }
    }

    pub fn on_response_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Verdict {
        if self.phase != Phase::Forwarded {
            return Verdict::Continue;
        }
        // The clock only matters for the first byte and the end.
        if end_of_stream || (body_size > 0 && self.telemetry.awaiting_first_byte()) {
            self.telemetry.body_chunk(host.now_nanos(), body_size);
        }
        if self.response.buffers() && !end_of_stream {
            return Verdict::Pause;
        }
        if end_of_stream && self.response.buffers() {
            if let Some(v) = self.retry_if_token_refused(host, body_size) {
                return v;
            }
        }
        // Its headers were held with the body: they may still change.
        let held = self.response.buffers();
        let reads = self.decoder.is_some()
            || self.redactor.is_some()
            || !matches!(self.response, ResponseMode::Passthrough);
        if reads {
            let raw = host.response_body(body_size).unwrap_or_default();
            if let Some(out) = self.transform_body(host, raw, end_of_stream) {
                host.set_response_body(&out);
            }
        }
        if end_of_stream {
            self.response_done = true;
            self.telemetry.end(host.now_nanos());
            if self.cache_finish(host) && held {
                // A whole answer's headers are still held.
                host.set_response_header(crate::cache::CACHE_HEADER, Some("store"));
            }
            self.hand_over_usage(host);
            self.take_pool_usage(&*host);
            self.publish_log_fields(host);
        }
        Verdict::Continue
    }

    /// Trailers end the response. A held body (`buffered` bytes) is
    /// finished as at a body's end; a stream already went on chunk by
    /// chunk, so only its accounting is finished (nothing more can be
    /// written once trailers arrive).
    pub fn on_response_trailers(&mut self, host: &mut dyn Host, buffered: usize) -> Verdict {
        if self.phase != Phase::Forwarded || self.response_done {
            return Verdict::Continue;
        }
        if self.response.buffers() {
            return self.on_response_body(host, buffered, true);
        }
        if let ResponseMode::PassStream(pass) = &mut self.response {
            let _ = pass.finish();
            self.telemetry.usage = pass.usage();
            self.telemetry.finish_reason = pass.finish_reason();
        }
        if let ResponseMode::TranslateStream(st) = &mut self.response {
            let _ = st.finish();
            self.telemetry.usage = st.usage();
            self.telemetry.finish_reason = st.finish_reason();
            let answer = st.take_capture();
            if let Some(pending) = self.cache.as_mut() {
                pending.answer = answer;
            }
        }
        self.response_done = true;
        self.telemetry.end(host.now_nanos());
        self.cache_finish(host);
        self.hand_over_usage(host);
        self.take_pool_usage(&*host);
        self.publish_log_fields(host);
        Verdict::Continue
    }

    /// The client's bytes for one chunk of the body (the whole body for the
    /// buffering modes), or None when the chunk goes on unchanged.
    fn transform_body(&mut self, host: &mut dyn Host, raw: Vec<u8>, end: bool) -> Option<Vec<u8>> {
        let (plain, decode_error) = match self.decoder.as_mut() {
            None => (Cow::Borrowed(raw.as_slice()), None),
            Some(d) => match decode(d, &raw, end) {
                Ok(bytes) => (Cow::Owned(bytes), None),
                Err(why) => (Cow::Owned(Vec::new()), Some(why)),
            },
        };
        // Decoded bytes always replace the raw chunk.
        let mut out: Option<Vec<u8>> = match &plain {
            Cow::Owned(b) => Some(b.clone()),
            Cow::Borrowed(_) => None,
        };
        let mode = std::mem::replace(&mut self.response, ResponseMode::Passthrough);
        self.response = match mode {
            ResponseMode::Passthrough => ResponseMode::Passthrough,
            ResponseMode::Discard => {
                out = Some(Vec::new());
                ResponseMode::Discard
            }
            ResponseMode::PassStream(_) if decode_error.is_some() => {
                let why = decode_error.unwrap_or_default();
                out = Some(self.stream_error_frame(&why));
                ResponseMode::Discard
            }
            ResponseMode::PassStream(mut pass) => {
                let (bytes, next) = self.pass_stream(pass.as_mut(), &plain, end);
                out = bytes.or(out);
                match next {
                    true => ResponseMode::PassStream(pass),
                    false => ResponseMode::Discard,
                }
            }
            ResponseMode::CheckBody => {
                let body = match decode_error {
                    Some(why) => Err(why),
                    None => self.api.wire().checked_outcome(&plain),
                };
                let bytes = match body {
                    Ok((usage, finish)) => {
                        self.telemetry.usage = usage;
                        self.telemetry.finish_reason = finish;
                        // An unchanged body stays in Envoy's buffer as it is.
                        out.take()
                    }
                    Err(why) => Some(self.bad_response(host, &why, &plain)),
                };
                if let Some(bytes) = &bytes {
                    set_length(host, bytes.len());
                }
                out = bytes;
                ResponseMode::Passthrough
            }
            ResponseMode::NormalizeError(status) => {
                // Envoy's own replies (no healthy upstream, a timeout)
                // come in OpenAI's shape, which every edge reads too.
                let err = match decode_error {
                    Some(why) => invalid_response(&why, b""),
                    None => self.upstream_error(status, &plain),
                };
                let before = err.status;
                let err = self.refused_token(host, err);
                if err.status != before {
                    // Only token providers' headers are held here.
                    host.set_response_header(":status", Some(&err.status.to_string()));
                    self.telemetry.status = err.status;
                }
                out = Some(self.error_body(err));
                ResponseMode::Passthrough
            }
            ResponseMode::Reject(why) => {
                let bytes = self.bad_response(host, &why, &plain);
                set_length(host, bytes.len());
                out = Some(bytes);
                ResponseMode::Passthrough
            }
            ResponseMode::StreamAnsweredWithJson => {
                let e = match decode_error {
                    Some(why) => invalid_response(&why, b""),
                    None => self.error_in_json(&plain),
                };
                let e = self.refused_token(host, e);
                let bytes = self.held_error(host, e);
                set_length(host, bytes.len());
                out = Some(bytes);
                ResponseMode::Passthrough
            }
            ResponseMode::TranslateBody => {
                let translated = match decode_error {
                    Some(why) => Err(invalid_response(&why, b"")),
                    None => self.translate_body(&plain),
                };
                let translated = translated.map_err(|e| self.refused_token(host, e));
                let bytes = match translated {
                    Ok(bytes) => bytes,
                    Err(e) => self.held_error(host, e),
                };
                set_length(host, bytes.len());
                out = Some(bytes);
                ResponseMode::Passthrough
            }
            ResponseMode::TranslateStream(mut st) => {
                let mut bytes = match decode_error {
                    Some(why) => st.abort(&why),
                    None => st.feed(&plain),
                };
                if end {
                    bytes.extend(st.finish());
                    self.telemetry.usage = st.usage();
                    self.telemetry.finish_reason = st.finish_reason();
                    let answer = st.take_capture();
                    if let Some(pending) = self.cache.as_mut() {
                        pending.answer = answer;
                    }
                }
                self.telemetry.stream_error |= st.failed();
                out = Some(bytes);
                ResponseMode::TranslateStream(st)
            }
        };
        self.mask(out, &plain, end)
    }

    /// One chunk of a passthrough stream: the bytes to send instead of the
    /// chunk (None: the chunk as it came), and whether the stream goes on.
    fn pass_stream(
        &mut self,
        pass: &mut PassStream,
        chunk: &[u8],
        end: bool,
    ) -> (Option<Vec<u8>>, bool) {
        let first = match pass.feed(chunk) {
            Step::Same => None,
            Step::Bytes(b) => Some(b),
            Step::Broken { mut good, why } => {
                good.extend(self.stream_error_frame(&why));
                return (Some(good), false);
            }
        };
        if !end {
            return (first, true);
        }
        // What the end releases comes after this chunk's bytes.
        let (mut extra, broken) = match pass.finish() {
            Step::Same => (Vec::new(), false),
            Step::Bytes(b) => (b, false),
            Step::Broken { mut good, why } => {
                good.extend(self.stream_error_frame(&why));
                (good, true)
            }
        };
        self.telemetry.usage = pass.usage();
        self.telemetry.finish_reason = pass.finish_reason();
        if !broken && !pass.complete() {
            extra.extend(
                self.stream_error_frame("The provider's stream ended before it was complete"),
            );
        }
        if extra.is_empty() {
            return (first, true);
        }
        let mut out = first.unwrap_or_else(|| chunk.to_vec());
        out.extend(extra);
        (Some(out), !broken)
    }

    /// Keys are masked in whatever goes out, changed or not (`out` None:
    /// the chunk `plain` goes out as it came).
    pub(super) fn mask(
        &mut self,
        out: Option<Vec<u8>>,
        plain: &[u8],
        end: bool,
    ) -> Option<Vec<u8>> {
        let Some(r) = self.redactor.as_mut() else {
            return out;
        };
        let masked = r.feed(out.as_deref().unwrap_or(plain), end);
        masked.or(out)
    }

    pub(super) fn translate_body(&mut self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let Exchange::Translate {
            egress,
            ctx,
            op,
            base64,
            ..
        } = &self.exchange
        else {
            return Ok(body.to_vec());
        };
        match op {
            Operation::ChatCompletions => {
                let mut r = egress.decode_response(body, ctx)?;
                self.telemetry.usage = r.usage;
                self.telemetry.finish_reason = r.choices.first().and_then(|c| c.finish_reason);
                let ctx = ctx.clone();
                self.screen_response(&mut r);
                if let Some(pending) = self.cache.as_mut() {
                    pending.answer = Some(r.clone());
                }
                self.api.wire().render_response(&r, &ctx)
            }
            Operation::Embeddings => egress.decode_embeddings(body, ctx).map(|r| {
                self.telemetry.usage = Some(Usage {
                    prompt_tokens: r.prompt_tokens,
                    total_tokens: r.prompt_tokens,
                    ..Default::default()
                });
                render::embeddings(&r, *base64)
            }),
        }
    }

    /// A 2xx whose headers are still held becomes the error `e`: status,
    /// log and telemetry, and the body in the client's shape.
    fn held_error(&mut self, host: &mut dyn Host, e: ApiError) -> Vec<u8> {
        let e = self.redacted(e);
        host.log(LogLevel::Warn, &e.message);
        host.set_response_header(":status", Some(&e.status.to_string()));
        self.telemetry.status = e.status;
        self.telemetry.error_type = Some(e.kind.to_string());
        self.error_body(e)
    }

    /// `e` with the target provider's keys redacted from every field.
    pub(super) fn redacted(&self, e: ApiError) -> ApiError {
        match &self.target {
            Some((p, _)) => e.redacted(&self.gw.providers[*p].secrets),
            None => e,
        }
    }

    /// An error body in the client's wire, with every key redacted.
    fn error_body(&self, e: ApiError) -> Vec<u8> {
        let e = self.redacted(e);
        self.api.wire().render_error(&e)
    }

    /// An upstream error response read by the edge that sent the request.
    /// A failover pool's attempt already rendered it in the client's wire.
    pub(super) fn upstream_error(&self, status: u16, body: &[u8]) -> ApiError {
        match (&self.exchange, &self.target) {
            (Exchange::Translate { egress, .. }, _) => egress.decode_error(status, body),
            (Exchange::Passthrough, Some((p, _))) if !self.pooled => {
                self.gw.providers[*p].egress.0.decode_error(status, body)
            }
            _ => self.api.wire().decode_error(status, body),
        }
    }

    /// A 2xx the client must not receive as it is: a 502 instead.
    fn bad_response(&mut self, host: &mut dyn Host, why: &str, body: &[u8]) -> Vec<u8> {
        // The excerpt of the provider's body may echo its key.
        let e = self.redacted(invalid_response(why, body));
        host.log(LogLevel::Warn, &e.message);
        host.set_response_header(":status", Some("502"));
        host.set_response_header("content-type", Some("application/json"));
        self.telemetry.status = 502;
        self.telemetry.error_type = Some(e.kind.to_string());
        self.error_body(e)
    }

    /// A stream that went wrong after its headers: an error event in the
    /// client's wire (the SDKs raise on it), and the request counts as
    /// failed.
    fn stream_error_frame(&mut self, why: &str) -> Vec<u8> {
        self.telemetry.stream_error = true;
        let e =
            ApiError::new(502, "api_error", format!("{why}.")).with_code("upstream_stream_error");
        let e = match &self.target {
            Some((p, _)) => e.redacted(&self.gw.providers[*p].secrets),
            None => e,
        };
        self.api.wire().stream_error(&e)
    }

    /// A 2xx the filter cannot pass on: headers held until the body (a 502
    /// saying why, quoting it) has arrived.
    fn reject(&mut self, host: &mut dyn Host, why: String, hold: Verdict) -> Verdict {
        self.response = ResponseMode::Reject(why);
        self.telemetry.status = 502;
        host.set_response_header(":status", Some("502"));
        json_headers(host, hold)
    }

    /// Takes over a `content-encoding` the filter can decode; returns why a
    /// body is unreadable when it cannot.
    fn take_content_coding(&mut self, host: &mut dyn Host) -> Option<String> {
        let header = host.response_header("content-encoding")?;
        match Coding::parse(&header) {
            Ok(None) => None,
            Ok(Some(coding)) => {
                self.decoder = Some(Decoder::new(coding));
                // What goes on is plain; Envoy's compressor may encode it
                // again for clients that accept it.
                host.set_response_header("content-encoding", None);
                host.set_response_header("content-length", None);
                None
            }
            Err(name) => Some(format!(
                "The provider answered with content-encoding '{name}', which the gateway did not ask for and cannot decode"
            )),
        }
    }

    /// `x-ratelimit-*` for the tightest limits of either scope: this
    /// instance's reservation and what the Rate Limit Service reported for
    /// the cluster rules (its own headers are removed). A refusal by
    /// Envoy's rate-limit filter is noted: the request reached no provider.
    fn rate_limit_headers(&mut self, host: &mut dyn Host, status: u16) {
        use admission::cluster;
        if self.placement == Placement::Upstream {
            return;
        }
        let mut requests = self.reservation.as_ref().and_then(|r| r.requests);
        let mut tokens = self.reservation.as_ref().and_then(|r| r.tokens);
        if self.cluster.is_some() {
            for (header, slot) in [
                (cluster::REQUESTS_HEADER, &mut requests),
                (cluster::TOKENS_HEADER, &mut tokens),
            ] {
                if let Some(a) = host
                    .response_header(header)
                    .and_then(|v| cluster::parse_status(&v))
                {
                    *slot = match *slot {
                        Some(c) if c.remaining <= a.remaining => Some(c),
                        _ => Some(a),
                    };
                }
            }
            let details = host.response_details().unwrap_or_default();
            if matches!(status, 429 | 500..=599)
                && matches!(
                    details.as_str(),
                    "request_rate_limited" | "rate_limiter_error"
                )
            {
                self.cluster_refused = true;
                let rule = host
                    .response_header(cluster::RULE_HEADER)
                    .unwrap_or_else(|| "cluster_unavailable".into());
                host.metric(&crate::metrics::rate_limited(&rule));
            }
        }
        if self.gw.rules.cluster.is_some() {
            for h in [
                cluster::REQUESTS_HEADER,
                cluster::TOKENS_HEADER,
                cluster::RULE_HEADER,
            ] {
                host.set_response_header(h, None);
            }
        }
        for (name, value) in admission::limit_headers(requests.as_ref(), tokens.as_ref()) {
            host.set_response_header(&name, Some(&value));
        }
    }

    /// A failover attempt hands its usage to the downstream filter, which
    /// accounts for the request (metrics, cost, limits, quotas).
    fn hand_over_usage(&self, host: &mut dyn Host) {
        if self.placement != Placement::Upstream {
            return;
        }
        self.hand_over_guard_hits(host);
        if let Some(u) = &self.telemetry.usage {
            host.set_stream_value(USAGE_KEY, &encode_usage(u));
        }
        if let Some(f) = self.telemetry.finish_reason {
            host.set_stream_value(FINISH_KEY, f.as_openai());
        }
    }

    /// The downstream side of `hand_over_usage`.
    pub(super) fn take_pool_usage(&mut self, host: &dyn Host) {
        if self.pooled && self.telemetry.usage.is_none() {
            self.telemetry.usage = host.stream_value(USAGE_KEY).and_then(|v| decode_usage(&v));
        }
        if self.pooled && self.telemetry.finish_reason.is_none() {
            self.telemetry.finish_reason = host
                .stream_value(FINISH_KEY)
                .map(|v| crate::wire::hub::FinishReason::from_name(&v));
        }
    }
}

fn decode(d: &mut Decoder, raw: &[u8], end: bool) -> Result<Vec<u8>, String> {
    let mut out = d.feed(raw).map_err(|e| e.0)?;
    if end {
        out.extend(d.finish().map_err(|e| e.0)?);
    }
    Ok(out)
}

fn json_headers(host: &mut dyn Host, verdict: Verdict) -> Verdict {
    host.set_response_header("content-type", Some("application/json"));
    host.set_response_header("content-length", None);
    verdict
}

fn set_length(host: &mut dyn Host, len: usize) {
    host.set_response_header("content-length", Some(&len.to_string()));
}

/// Whether `content_type` names the media type `expected` (parameters
/// such as `charset` aside).
fn media_type_is(content_type: &str, expected: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(expected))
}

fn is_json(content_type: &str) -> bool {
    media_type_is(content_type, "application/json")
}

/// Whether `content_type` is the stream type of `framing`.
fn is_stream_type(framing: Framing, content_type: &str) -> bool {
    let expected = match framing {
        Framing::Sse => "text/event-stream",
        Framing::AwsEventStream => "application/vnd.amazon.eventstream",
    };
    media_type_is(content_type, expected)
}

/// Whether a whole passthrough body is one JSON document.
/// 502 for a response that is not what the provider's API returns.
pub(super) fn invalid_response(why: &str, body: &[u8]) -> ApiError {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().count() > EXCERPT_CHARS {
        excerpt.push('…');
    }
    let message = if excerpt.is_empty() {
        format!("{why}.")
    } else {
        format!("{why}: {excerpt}")
    };
    ApiError::new(502, "api_error", message).with_code("upstream_invalid_response")
}

/// Usage as a stream value: six numbers, unknown ones empty.
fn encode_usage(u: &Usage) -> String {
    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{},{},{}",
        u.prompt_tokens,
        u.completion_tokens,
        u.total_tokens,
        opt(u.cached_tokens),
        opt(u.cache_creation_tokens),
        opt(u.reasoning_tokens)
    )
}

fn decode_usage(s: &str) -> Option<Usage> {
    let f: Vec<&str> = s.split(',').collect();
    let [p, c, t, cached, creation, reasoning] = f.as_slice() else {
        return None;
    };
    let opt = |v: &str| v.parse::<u64>().ok();
    Some(Usage {
        prompt_tokens: p.parse().ok()?,
        completion_tokens: c.parse().ok()?,
        total_tokens: t.parse().ok()?,
        cached_tokens: opt(cached),
        cache_creation_tokens: opt(creation),
        reasoning_tokens: opt(reasoning),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_round_trips_through_a_stream_value() {
        let u = Usage {
            prompt_tokens: 7,
            completion_tokens: 3,
            total_tokens: 10,
            cached_tokens: Some(2),
            cache_creation_tokens: None,
            reasoning_tokens: Some(1),
        };
        assert_eq!(decode_usage(&encode_usage(&u)), Some(u));
        assert_eq!(decode_usage("1,2"), None);
        assert_eq!(decode_usage("x,1,2,,,"), None);
    }

    /// One read checks an OpenAI answer and finds its outcome; whatever
    /// that read declines is checked and read as before.
    #[test]
    fn checked_outcome_agrees_with_check_then_outcome() {
        let bodies: &[&[u8]] = &[
            br#"{"choices":[{"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
            br#"{"choices":[],"usage":null,"x":"\u00e9"}"#,
            br#"{"usage":{"prompt_tokens":"3"},"choices":[{"finish_reason":"stop"}]}"#,
            br#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
            br#"[1,2]"#,
            br#""text""#,
            br#"{"choices":[{"finish_reason":"stop"}]"#,
            br#"{"choices":[]} trailing"#,
            b"<html>",
            b"",
        ];
        for wire in [
            crate::wire::Wire::OpenAiChat,
            crate::wire::Wire::Anthropic,
            crate::wire::Wire::OpenAiResponses,
        ] {
            for body in bodies {
                let before = crate::wire::checked_json(body).map(|()| wire.body_outcome(body));
                assert_eq!(wire.checked_outcome(body), before, "{wire:?} {body:?}");
            }
        }
    }

    #[test]
    fn bad_bodies_are_quoted_briefly() {
        let e = invalid_response("Not JSON", b"<html>\n  <body>Bad   gateway</body></html>");
        assert_eq!(e.status, 502);
        assert_eq!(
            e.message,
            "Not JSON: <html> <body>Bad gateway</body></html>"
        );
        let long = "x".repeat(500);
        let e = invalid_response("Not JSON", long.as_bytes());
        assert!(e.message.ends_with('…'));
        assert_eq!(crate::wire::checked_json(b"{\"a\":1}"), Ok(()));
        assert!(crate::wire::checked_json(b"{\"a\":")
            .unwrap_err()
            .contains("ended before"));
        assert!(crate::wire::checked_json(b"<html>")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(is_stream_type(
            Framing::Sse,
            "text/event-stream; charset=utf-8"
        ));
        assert!(is_stream_type(
            Framing::AwsEventStream,
            "application/vnd.amazon.eventstream"
        ));
        assert!(!is_stream_type(
            Framing::AwsEventStream,
            "text/event-stream"
        ));
        assert!(!is_stream_type(Framing::Sse, "application/json"));
    }
}
