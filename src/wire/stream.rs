//! Streaming translation of one response: upstream SSE bytes in, the
//! client API's frames out (a provider's decoder feeding the client's
//! writer through hub events), chunk by chunk, with memory bounded by the
//! framer cap.

use crate::error::ApiError;
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

pub struct StreamTranslation {
    framer: SseFramer,
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
            framer: SseFramer::new(MAX_EVENT_BYTES),
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
            self.fail(&e.to_string(), &mut out);
        }
        self.drain(&mut out);
        out
    }

    /// The upstream body ended: whatever is owed, then `[DONE]`.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.failed {
            if let Err(e) = self.framer.finish(&mut self.events) {
                self.fail(&e.to_string(), &mut out);
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
