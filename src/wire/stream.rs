//! Streaming translation of one response: upstream SSE bytes in, the
//! client API's frames out (a provider's decoder feeding the client's
//! writer through hub events), chunk by chunk, with memory bounded by the
//! framer cap.

use crate::error::ApiError;
use crate::wire::hub::{StreamDecoder, StreamEvent, StreamWriter, Usage};
use crate::wire::sse::{SseEvent, SseFramer};

/// Largest incomplete upstream event held (a single huge tool-call argument
/// or image chunk still fits; a runaway stream does not).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

pub struct StreamTranslation {
    framer: SseFramer,
    decoder: Box<dyn StreamDecoder>,
    writer: Box<dyn StreamWriter>,
    events: Vec<SseEvent>,
    hub: Vec<StreamEvent>,
    failed: bool,
}

impl StreamTranslation {
    pub fn new(decoder: Box<dyn StreamDecoder>, writer: Box<dyn StreamWriter>) -> Self {
        Self {
            framer: SseFramer::new(MAX_EVENT_BYTES),
            decoder,
            writer,
            events: Vec::new(),
            hub: Vec::new(),
            failed: false,
        }
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

    /// Whether the stream ended (or will end) in an error event.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        for ev in self.events.drain(..) {
            if self.failed {
                break;
            }
            self.decoder.on_event(&ev, &mut self.hub);
            for h in self.hub.drain(..) {
                if matches!(h, StreamEvent::Error(_)) {
                    self.failed = true;
                }
                self.writer.write(&h, out);
            }
        }
        self.events.clear();
    }

    fn render(&mut self, out: &mut Vec<u8>) {
        for h in self.hub.drain(..) {
            if matches!(h, StreamEvent::Error(_)) {
                self.failed = true;
            }
            self.writer.write(&h, out);
        }
    }

    fn fail(&mut self, why: &str, out: &mut Vec<u8>) {
        // Events framed before the fault still go out first.
        self.drain(out);
        let e = ApiError::new(
            502,
            "api_error",
            format!("The provider's stream could not be read: {why}."),
        )
        .with_code("upstream_stream_error");
        self.writer.write(&StreamEvent::Error(e), out);
        self.failed = true;
    }
}
