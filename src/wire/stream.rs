//! Streaming translation of one response: upstream SSE bytes in, the
//! client API's frames out (a provider's decoder feeding the client's
//! writer through hub events), chunk by chunk, with memory bounded by the
//! framer cap.

use crate::error::ApiError;
use crate::wire::eventstream;
use crate::wire::hub::{FinishReason, StreamDecoder, StreamEvent, StreamWriter, Usage};
use crate::wire::sse::{SseEvent, SseFramer};

/// Largest incomplete upstream event held (a single huge tool-call argument
/// or image chunk still fits; a runaway stream does not).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// A stage between the provider's decoder and the client's writer that
/// may hold, change or stop hub events (guardrails).
pub trait EventFilter {
    fn on_event(&mut self, event: StreamEvent, out: &mut Vec<StreamEvent>);
    /// The stream ended well: release what is held.
    fn finish(&mut self, out: &mut Vec<StreamEvent>);
}

/// How a provider frames its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events (every provider so far).
    Sse,
    /// AWS's binary event stream (Amazon Bedrock).
    AwsEventStream,
}

/// Cuts the upstream bytes into events for the provider's decoder. An AWS
/// event-stream message becomes an event named by its `:event-type` (an
/// exception by its `:exception-type`) whose data is its payload.
enum Framer {
    Sse(SseFramer),
    Aws(eventstream::Decoder, Vec<eventstream::Message>),
}

impl Framer {
    fn new(framing: Framing) -> Self {
        match framing {
            Framing::Sse => Self::Sse(SseFramer::new(MAX_EVENT_BYTES)),
            Framing::AwsEventStream => {
                Self::Aws(eventstream::Decoder::with_max(MAX_EVENT_BYTES), Vec::new())
            }
        }
    }

    fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        match self {
            Self::Sse(f) => f.feed(chunk, out).map_err(|e| e.to_string()),
            Self::Aws(d, messages) => {
                let result = d.feed(chunk, messages).map_err(|e| e.to_string());
                out.extend(messages.drain(..).map(as_event));
                result
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), String> {
        match self {
            Self::Sse(f) => f.finish(out).map_err(|e| e.to_string()),
            Self::Aws(d, _) => d.finish().map_err(|e| e.to_string()),
        }
    }
}

fn as_event(m: eventstream::Message) -> SseEvent {
    let name = match m.header_str(":message-type") {
        Some("exception") | Some("error") => m
            .header_str(":exception-type")
            .or_else(|| m.header_str(":error-code"))
            .unwrap_or("exception"),
        _ => m.header_str(":event-type").unwrap_or_default(),
    };
    SseEvent {
        event: Some(name.to_string()),
        data: String::from_utf8_lossy(&m.payload).into_owned(),
        id: None,
    }
}

pub struct StreamTranslation {
    framer: Framer,
    decoder: Box<dyn StreamDecoder>,
    writer: Box<dyn StreamWriter>,
    filter: Option<Box<dyn EventFilter>>,
    events: Vec<SseEvent>,
    hub: Vec<StreamEvent>,
    filtered: Vec<StreamEvent>,
    failed: bool,
    /// The finish reason the client was sent.
    finish: Option<FinishReason>,
    /// Gathers the answer the client was sent (the response cache).
    capture: Option<crate::wire::collect::Capture>,
}

impl StreamTranslation {
    pub fn new(decoder: Box<dyn StreamDecoder>, writer: Box<dyn StreamWriter>) -> Self {
        Self {
            framer: Framer::new(Framing::Sse),
            decoder,
            writer,
            filter: None,
            events: Vec::new(),
            hub: Vec::new(),
            filtered: Vec::new(),
            failed: false,
            finish: None,
            capture: None,
        }
    }

    /// The provider frames its stream as `framing` (SSE by default).
    pub fn with_framing(mut self, framing: Framing) -> Self {
        self.framer = Framer::new(framing);
        self
    }

    /// Hub events pass through `filter` on their way to the writer.
    pub fn with_filter(mut self, filter: Box<dyn EventFilter>) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The hub events written to the client are also gathered by `capture`.
    pub fn with_capture(mut self, capture: crate::wire::collect::Capture) -> Self {
        self.capture = Some(capture);
        self
    }

    /// The answer gathered, if the stream ended complete and well.
    pub fn take_capture(&mut self) -> Option<crate::wire::hub::ChatResponse> {
        let capture = self.capture.take()?;
        if self.failed {
            return None;
        }
        capture.take()
    }

    /// Translates one upstream body chunk; returns the bytes to send now.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.failed {
            return out;
        }
        if let Err(e) = self.framer.feed(chunk, &mut self.events) {
            self.fail(&e, &mut out);
        }
        self.drain(&mut out);
        out
    }

    /// The upstream body ended: whatever is owed, then `[DONE]`.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.failed {
            if let Err(e) = self.framer.finish(&mut self.events) {
                self.fail(&e, &mut out);
            }
            self.drain(&mut out);
        }
        if !self.failed {
            self.decoder.finish(&mut self.hub);
            self.render(&mut out);
        }
        if !self.failed {
            if let Some(f) = self.filter.as_mut() {
                f.finish(&mut self.filtered);
                let mut held = std::mem::take(&mut self.filtered);
                self.write_all(&mut held, &mut out);
            }
        }
        self.writer.finish(&mut out);
        out
    }

    /// The body could not be read further (e.g. it failed to decode): an
    /// error event, after whatever was already framed.
    pub fn abort(&mut self, why: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.failed {
            self.fail(why, &mut out);
        }
        out
    }

    pub fn usage(&self) -> Option<Usage> {
        self.writer.usage()
    }

    /// How the model finished, as the client was told.
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish
    }

    /// Whether the stream ended (or will end) in an error event.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        for ev in events.drain(..) {
            if self.failed {
                continue;
            }
            self.decoder.on_event(&ev, &mut self.hub);
            self.render(out);
        }
        self.events = events;
    }

    /// Writes the decoded hub events (through the filter, if any); the
    /// buffers keep their capacity from event to event.
    fn render(&mut self, out: &mut Vec<u8>) {
        let mut events = match self.filter.as_mut() {
            Some(f) => {
                for h in self.hub.drain(..) {
                    f.on_event(h, &mut self.filtered);
                }
                std::mem::take(&mut self.filtered)
            }
            None => std::mem::take(&mut self.hub),
        };
        self.write_all(&mut events, out);
        if self.filter.is_some() {
            self.filtered = events;
        } else {
            self.hub = events;
        }
    }

    fn write_all(&mut self, events: &mut Vec<StreamEvent>, out: &mut Vec<u8>) {
        for h in events.drain(..) {
            if self.failed {
                continue;
            }
            match &h {
                StreamEvent::Error(_) => self.failed = true,
                StreamEvent::Finish { reason, .. } => self.finish = Some(*reason),
                _ => {}
            }
            if let Some(c) = self.capture.as_mut() {
                c.on_event(&h);
            }
            self.writer.write(&h, out);
        }
    }

    fn fail(&mut self, why: &str, out: &mut Vec<u8>) {
        // Events framed before the fault still go out first.
        self.drain(out);
        if self.failed {
            return;
        }
        let e = ApiError::new(
            502,
            "api_error",
            format!("The provider's stream could not be read: {why}."),
        )
        .with_code("upstream_stream_error");
        // Through the filter: what it holds was checked and goes first.
        self.hub.push(StreamEvent::Error(e));
        self.render(out);
        self.failed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::anthropic::AnthropicStreamDecoder;
    use crate::wire::eventstream::{encode, event, HeaderValue, Message};
    use crate::wire::hub::ResponseContext;
    use crate::wire::Wire;

    const SSE: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello 你好\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":8}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    fn ctx() -> ResponseContext {
        ResponseContext {
            model: "claude".into(),
            created: 1,
            request_id: "r".into(),
            input_tokens_estimate: 3,
        }
    }

    fn translate(framing: Framing, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut t = StreamTranslation::new(
            Box::new(AnthropicStreamDecoder::new()),
            Wire::OpenAiChat.writer(&ctx(), true),
        )
        .with_framing(framing);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(t.feed(c));
        }
        out.extend(t.finish());
        (out, t.failed())
    }

    /// The same events, as AWS event-stream messages named by event type.
    fn as_aws() -> Vec<u8> {
        let mut events = Vec::new();
        crate::wire::sse::SseFramer::new(MAX_EVENT_BYTES)
            .feed(SSE.as_bytes(), &mut events)
            .expect("framed");
        events
            .iter()
            .flat_map(|e| encode(&event(e.event.as_deref().unwrap_or(""), e.data.as_bytes())))
            .collect()
    }

    #[test]
    fn an_aws_event_stream_translates_like_the_same_events_over_sse() {
        let (sse, failed) = translate(Framing::Sse, &[SSE.as_bytes()]);
        assert!(!failed);
        assert!(String::from_utf8_lossy(&sse).contains("Hello 你好"));
        let aws = as_aws();
        for cut in 0..=aws.len() {
            let (out, failed) = translate(Framing::AwsEventStream, &[&aws[..cut], &aws[cut..]]);
            assert!(!failed, "cut at {cut}");
            assert_eq!(out, sse, "cut at {cut}");
        }
    }

    #[test]
    fn a_broken_event_stream_ends_in_one_error_after_what_was_framed() {
        let mut aws = as_aws();
        let last = aws.len() - 1;
        aws[last] ^= 0xff;
        let (out, failed) = translate(Framing::AwsEventStream, &[&aws]);
        let text = String::from_utf8_lossy(&out);
        assert!(failed);
        assert!(text.contains("Hello 你好"), "{text}");
        assert_eq!(text.matches("upstream_stream_error").count(), 1, "{text}");
        assert!(text.contains("event-stream message CRC mismatch"), "{text}");
    }

    #[test]
    fn exceptions_are_named_by_their_type() {
        let m = Message {
            headers: vec![
                (
                    ":exception-type".into(),
                    HeaderValue::String("throttlingException".into()),
                ),
                (
                    ":message-type".into(),
                    HeaderValue::String("exception".into()),
                ),
            ],
            payload: br#"{"message":"slow down"}"#.to_vec(),
        };
        let e = as_event(m);
        assert_eq!(e.event.as_deref(), Some("throttlingException"));
        assert_eq!(e.data, r#"{"message":"slow down"}"#);
    }
}
