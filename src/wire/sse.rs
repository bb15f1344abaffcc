//! Incremental Server-Sent Events framer (WHATWG EventSource parsing rules).
//!
//! Envoy hands the filter an upstream response body in arbitrary chunks: a
//! chunk may end in the middle of a line, between the CR and LF of a CRLF
//! pair, or inside a multi-byte UTF-8 code point. [`SseFramer`] keeps only the
//! unfinished tail between calls and yields each event as soon as its
//! terminating blank line arrives, so every provider stream (OpenAI,
//! Anthropic, Gemini) can be translated event by event.
//!
//! Work per chunk is linear in the chunk: line terminators are searched for
//! only in the new bytes, because the pending (incomplete) line by
//! construction never contains one, so nothing already held is rescanned.

use std::fmt;

/// The UTF-8 byte order mark, skipped once at the very start of a stream.
const BOM: char = '\u{FEFF}';

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `event:` field; None when absent (the spec's default type "message").
    pub event: Option<String>,
    /// `data:` lines joined with '\n' (no trailing newline).
    pub data: String,
    /// `id:` field, if the event carried one.
    pub id: Option<String>,
}

/// Why a stream could not be framed; the caller should stop feeding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// A single line/event grew past the configured cap without completing.
    TooLarge { limit: usize },
    /// The bytes of a complete line were not valid UTF-8.
    InvalidUtf8,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::TooLarge { limit } => write!(
                f,
                "server-sent event exceeds the {limit}-byte buffer limit before completing"
            ),
            SseError::InvalidUtf8 => {
                f.write_str("server-sent event stream line is not valid UTF-8")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// Splits a byte stream into [`SseEvent`]s, holding at most one incomplete
/// event (bounded by `max_buffered`) between calls.
#[derive(Debug)]
pub struct SseFramer {
    /// Cap on bytes held for one incomplete event, so a stream that never
    /// terminates a line cannot grow memory without bound.
    max_buffered: usize,
    /// Bytes of the current line not yet terminated; never contains CR or LF.
    line: Vec<u8>,
    /// `line` is complete but ended in a CR that was the last byte seen: it is
    /// processed once the next byte shows whether an LF (CRLF) follows.
    cr_pending: bool,
    /// The next line processed is the first of the stream (BOM check).
    at_start: bool,
    /// `event:` of the event being built.
    event: Option<String>,
    /// Joined `data:` values of the event being built.
    data: String,
    /// Whether any `data` line was seen: `data:` with an empty value still
    /// makes an event, so emptiness of `data` cannot tell.
    has_data: bool,
    /// `id:` of the event being built.
    id: Option<String>,
    /// Set after an error so later calls report it instead of misparsing.
    failed: Option<SseError>,
    /// Stream bytes processed so far (a held CR not yet counted).
    consumed: u64,
    /// Stream offset just past the last blank line (an event's end, or a
    /// comment-only block's).
    boundary: u64,
    /// Where each dispatched event's block starts (the boundary before it)
    /// and ends (just past its blank line), when asked for
    /// (`with_offsets`), taken by the caller with `take_spans`.
    spans: Option<Vec<(u64, u64)>>,
}

impl SseFramer {
    /// `max_buffered` caps the bytes held for one incomplete event (pending line + accumulated data).
    pub fn new(max_buffered: usize) -> Self {
        Self {
            max_buffered,
            line: Vec::new(),
            cr_pending: false,
            at_start: true,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            failed: None,
            consumed: 0,
            boundary: 0,
            spans: None,
        }
    }

    /// A framer that also records where each event ends in the stream, so
    /// a caller passing raw bytes on can cut them at event boundaries.
    pub fn with_offsets(max_buffered: usize) -> Self {
        Self {
            spans: Some(Vec::new()),
            ..Self::new(max_buffered)
        }
    }

    /// Stream offset just past the last blank line seen: everything before
    /// it belongs to complete events (or comments).
    pub fn boundary(&self) -> u64 {
        self.boundary
    }

    /// The (start, end) stream offsets of the events dispatched since the
    /// last call (only for `with_offsets`), in order.
    pub fn take_spans(&mut self) -> Vec<(u64, u64)> {
        self.spans.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Feeds a chunk; pushes every event completed by it onto `out`.
    ///
    /// Events completed before an error in the same chunk are still pushed.
    /// After an error every later call returns that error again.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.feed_inner(chunk, out);
        if let Err(err) = &result {
            self.fail(err.clone());
        }
        result
    }

    /// End of stream: dispatches a final event that has data but lacked the terminating blank line
    /// (servers that end without it must not lose their last event); discards an incomplete trailing
    /// line only if it is empty; a non-empty unterminated last line is processed as a line first.
    ///
    /// On success the framer is reset and may frame a new stream.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.finish_inner(out);
        match &result {
            Ok(()) => {
                self.reset_event();
                self.line.clear();
                self.cr_pending = false;
                self.at_start = true;
            }
            Err(err) => self.fail(err.clone()),
        }
        result
    }

    /// Bytes currently held (for tests and memory accounting).
    pub fn buffered(&self) -> usize {
        self.line.len() + self.fields_len()
    }

    fn feed_inner(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        // Stream offset of `chunk[0]`; `end(rest)` is the offset where the
        // unprocessed `rest` of the chunk begins.
        let base = self.consumed;
        self.consumed += chunk.len() as u64;
        let end = |rest: &[u8]| base + (chunk.len() - rest.len()) as u64;
        let mut rest = chunk;
        if self.cr_pending {
            if let Some((&first, tail)) = rest.split_first() {
                // The held CR ends the held line; an LF right after it is the
                // second half of the same CRLF terminator.
                self.cr_pending = false;
                if first == b'\n' {
                    rest = tail;
                }
                self.process_held_line(out, end(rest))?;
            }
        }
        loop {
            let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) else {
                return self.hold(rest);
            };
            let (content, tail) = rest.split_at(pos);
            let Some((&term, mut tail)) = tail.split_first() else {
                // Unreachable: `pos` indexes a terminator inside `rest`.
                return self.hold(rest);
            };
            if term == b'\r' {
                match tail.split_first() {
                    Some((&b'\n', after)) => tail = after,
                    Some(_) => {}
                    None => {
                        // CR is the last byte seen: wait to learn if LF follows.
                        self.hold(content)?;
                        self.cr_pending = true;
                        return Ok(());
                    }
                }
            }
            if self.line.is_empty() {
                self.process_line(content, out, end(tail))?;
            } else {
                self.hold(content)?;
                self.process_held_line(out, end(tail))?;
            }
            rest = tail;
        }
    }

    fn finish_inner(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let end = self.consumed;
        if self.cr_pending || !self.line.is_empty() {
            self.cr_pending = false;
            self.process_held_line(out, end)?;
        }
        self.dispatch(out, end);
        Ok(())
    }

    /// Appends bytes of an unterminated line, enforcing the cap first so the
    /// held bytes never exceed it.
    fn hold(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.check_cap(self.line.len().saturating_add(bytes.len()))?;
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Processes the line held in `self.line`, keeping its allocation.
    /// `end`: the stream offset just past the line's terminator.
    fn process_held_line(&mut self, out: &mut Vec<SseEvent>, end: u64) -> Result<(), SseError> {
        let line = std::mem::take(&mut self.line);
        let result = self.process_line(&line, out, end);
        self.line = line;
        self.line.clear();
        result
    }

    /// Errors when holding `line_len` more bytes next to the current event's
    /// fields would pass the cap. Checked on every complete line too, so the
    /// outcome does not depend on where the chunks were split.
    fn check_cap(&self, line_len: usize) -> Result<(), SseError> {
        if self.fields_len().saturating_add(line_len) > self.max_buffered {
            return Err(SseError::TooLarge {
                limit: self.max_buffered,
            });
        }
        Ok(())
    }

    fn process_line(
        &mut self,
        line: &[u8],
        out: &mut Vec<SseEvent>,
        end: u64,
    ) -> Result<(), SseError> {
        self.check_cap(line.len())?;
        let mut line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out, end);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // comment
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            // An empty type means the default "message", same as absent.
            "event" => self.event = (!value.is_empty()).then(|| value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {} // `retry`, NUL-bearing `id` and unknown fields are ignored
        }
        Ok(())
    }

    /// Ends the current event at stream offset `end`: emits it if it had
    /// data, and always clears its fields so an `event:`-only block does not
    /// leak into the next event.
    fn dispatch(&mut self, out: &mut Vec<SseEvent>, end: u64) {
        let start = std::mem::replace(&mut self.boundary, end);
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
                id: self.id.take(),
            });
            if let Some(spans) = self.spans.as_mut() {
                spans.push((start, end));
            }
        }
        self.reset_event();
    }

    fn reset_event(&mut self) {
        self.event = None;
        self.data.clear();
        self.has_data = false;
        self.id = None;
    }

    fn fields_len(&self) -> usize {
        self.data.len()
            + self.event.as_ref().map_or(0, String::len)
            + self.id.as_ref().map_or(0, String::len)
    }

    /// Records the error and drops held memory; the stream is abandoned.
    fn fail(&mut self, err: SseError) {
        self.failed = Some(err);
        self.line = Vec::new();
        self.cr_pending = false;
        self.event = None;
        self.data = String::new();
        self.has_data = false;
        self.id = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 1 << 16;

    fn ev(event: Option<&str>, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    fn d(data: &str) -> SseEvent {
        ev(None, data, None)
    }

    fn run_chunks(cap: usize, chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
        let mut framer = SseFramer::new(cap);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.feed(chunk, &mut out)?;
        }
        framer.finish(&mut out)?;
        assert_eq!(framer.buffered(), 0, "finish must release everything");
        Ok(out)
    }

    fn run_whole(input: &[u8]) -> Vec<SseEvent> {
        run_chunks(CAP, &[input]).unwrap()
    }

    fn fixtures() -> Vec<(&'static str, Vec<u8>, Vec<SseEvent>)> {
        vec![
            (
                "openai",
                concat!(
                    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
                    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
                    "data: [DONE]\n\n",
                )
                .into(),
                vec![
                    d("{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}"),
                    d("{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}"),
                    d("[DONE]"),
                ],
            ),
            (
                "anthropic",
                concat!(
                    "event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
                    ": ping\n\n",
                    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
                    "event: content_block_delta\n",
                    ": keep-alive in the middle\n",
                    "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"a:b\"}}\n\n",
                    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                )
                .into(),
                vec![
                    ev(Some("message_start"), "{\"type\":\"message_start\"}", None),
                    ev(Some("ping"), "{\"type\": \"ping\"}", None),
                    ev(
                        Some("content_block_delta"),
                        "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"a:b\"}}",
                        None,
                    ),
                    ev(Some("message_stop"), "{\"type\":\"message_stop\"}", None),
                ],
            ),
            (
                "gemini-crlf",
                concat!(
                    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\r\n\r\n",
                    "data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\r\n\r\n",
                )
                .into(),
                vec![
                    d("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}"),
                    d("{\"candidates\":[{\"finishReason\":\"STOP\"}]}"),
                ],
            ),
            (
                "lone-cr",
                "data: a\r\rdata: b\rdata: c\r\r\revent: e\rdata: d\r\r".into(),
                vec![d("a"), d("b\nc"), ev(Some("e"), "d", None)],
            ),
            (
                "mixed-line-ends",
                "data: a\r\ndata: b\n\r\ndata: c\r\n\rdata: d\n\r\r\n\n".into(),
                vec![d("a\nb"), d("c"), d("d")],
            ),
            (
                "multi-line-data",
                "data: line1\ndata: line2\ndata:\ndata: line4\n\ndata:\n\ndata:\ndata:\n\n".into(),
                vec![d("line1\nline2\n\nline4"), d(""), d("\n")],
            ),
            (
                "id",
                concat!(
                    "id: 42\ndata: x\n\n",
                    "id: 4\u{0}3\ndata: y\n\n",
                    "data: z\nid: 7\nid: 8\u{0}\n\n",
                    "data: w\n\n",
                    "id:\ndata: v\n\n",
                )
                .into(),
                vec![
                    ev(None, "x", Some("42")),
                    d("y"),
                    ev(None, "z", Some("7")),
                    d("w"),
                    ev(None, "v", Some("")),
                ],
            ),
            (
                "no-space-after-colon",
                "data:no-space\n\nevent:tight\ndata:  two spaces\n\ndata: trailing \n\n".into(),
                vec![
                    d("no-space"),
                    ev(Some("tight"), " two spaces", None),
                    d("trailing "),
                ],
            ),
            (
                "field-without-colon",
                concat!(
                    "data\n\n",
                    "data\ndata\n\n",
                    "event: x\nevent\ndata: y\n\n",
                    "retry: 1000\nfoo: bar\nDATA: no\ndata : no\ndata: kept\n\n",
                )
                .into(),
                vec![d(""), d("\n"), d("y"), d("kept")],
            ),
            (
                "event-only-block",
                "event: orphan\n\ndata: next\n\nevent: a\nid: 1\n\ndata: after\n\n".into(),
                vec![d("next"), d("after")],
            ),
            (
                "bom",
                "\u{FEFF}data: bom\n\n\u{FEFF}data: not-a-field\n\ndata: end\n\n".into(),
                vec![d("bom"), d("end")],
            ),
            (
                "bom-then-blank",
                "\u{FEFF}\ndata: x\n\n".into(),
                vec![d("x")],
            ),
            (
                "utf8",
                "event: 事件\ndata: 你好，世界\ndata: 🚀🎉 done ✓\n\ndata: é\u{1F600}\n\n".into(),
                vec![
                    ev(Some("事件"), "你好，世界\n🚀🎉 done ✓", None),
                    d("é😀"),
                ],
            ),
            (
                "final-without-blank-line",
                "data: one\n\ndata: last".into(),
                vec![d("one"), d("last")],
            ),
            (
                "final-after-newline",
                "data: a\ndata: b\n".into(),
                vec![d("a\nb")],
            ),
            (
                "final-after-cr",
                "event: done\ndata: z\r".into(),
                vec![ev(Some("done"), "z", None)],
            ),
            (
                "final-comment-only",
                "data: a\n\n: bye".into(),
                vec![d("a")],
            ),
            ("empty", Vec::new(), vec![]),
        ]
    }

    #[test]
    fn fixtures_whole_match_expected() {
        for (name, input, expected) in fixtures() {
            assert_eq!(run_whole(&input), expected, "fixture {name}");
        }
    }

    #[test]
    fn fixtures_split_at_every_offset() {
        for (name, input, expected) in fixtures() {
            for i in 0..=input.len() {
                let (a, b) = input.split_at(i);
                let got = run_chunks(CAP, &[a, b]).unwrap();
                assert_eq!(got, expected, "fixture {name} split at {i}");
            }
        }
    }

    #[test]
    fn fixtures_one_byte_at_a_time() {
        for (name, input, expected) in fixtures() {
            let chunks: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(
                run_chunks(CAP, &chunks).unwrap(),
                expected,
                "fixture {name}"
            );
        }
    }

    #[test]
    fn fixtures_three_chunks_and_empty_chunks() {
        for (name, input, expected) in fixtures() {
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let (ab, c) = input.split_at(j);
                    let (a, b) = ab.split_at(i);
                    let got = run_chunks(CAP, &[a, &[], b, &[], c]).unwrap();
                    assert_eq!(got, expected, "fixture {name} split at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn events_are_yielded_as_soon_as_complete() {
        let mut framer = SseFramer::new(CAP);
        let mut out = Vec::new();
        framer.feed(b"data: a\n", &mut out).unwrap();
        assert!(out.is_empty());
        framer.feed(b"\ndata: b\n\nda", &mut out).unwrap();
        assert_eq!(out, vec![d("a"), d("b")]);
        assert_eq!(framer.buffered(), 2);
    }

    #[test]
    fn cr_at_chunk_end_waits_for_next_byte() {
        let mut framer = SseFramer::new(CAP);
        let mut out = Vec::new();
        framer.feed(b"data: x\r\n\r", &mut out).unwrap();
        assert!(out.is_empty(), "the final CR may be half of a CRLF");
        framer.feed(b"", &mut out).unwrap();
        assert!(out.is_empty(), "an empty chunk shows nothing");
        framer.feed(b"\n", &mut out).unwrap();
        assert_eq!(out, vec![d("x")]);

        // finish() resolves a held CR as a line end.
        let mut out = Vec::new();
        framer.feed(b"data: y\n\r", &mut out).unwrap();
        assert!(out.is_empty());
        framer.finish(&mut out).unwrap();
        assert_eq!(out, vec![d("y")]);

        // A held CR followed by a non-LF byte is a lone CR.
        let mut framer = SseFramer::new(CAP);
        let mut out = Vec::new();
        framer.feed(b"data: x\r", &mut out).unwrap();
        framer.feed(b"\rdata: y\r", &mut out).unwrap();
        assert_eq!(out, vec![d("x")]);
    }

    #[test]
    fn unterminated_line_longer_than_cap_is_too_large() {
        let cap = 64;
        let mut input = b"data: ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 200));
        for chunk_size in [1, 7, 10, 64, 65, 500] {
            let mut framer = SseFramer::new(cap);
            let mut out = Vec::new();
            let mut err = None;
            for chunk in input.chunks(chunk_size) {
                match framer.feed(chunk, &mut out) {
                    Ok(()) => assert!(framer.buffered() <= cap + chunk.len()),
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            assert_eq!(
                err,
                Some(SseError::TooLarge { limit: cap }),
                "chunk {chunk_size}"
            );
            assert!(out.is_empty());
            // The error is sticky and nothing panics afterwards.
            assert_eq!(
                framer.feed(b"\n\n", &mut out),
                Err(SseError::TooLarge { limit: cap })
            );
            assert_eq!(
                framer.finish(&mut out),
                Err(SseError::TooLarge { limit: cap })
            );
            assert_eq!(framer.buffered(), 0);
        }
    }

    #[test]
    fn many_small_events_beyond_cap_in_total_are_fine() {
        let cap = 64;
        let input = b"event: t\ndata: hello\nid: 1\n\n: c\n\r\n".repeat(1000);
        for chunk_size in [1, 3, 17, 64, 4096, input.len()] {
            let mut framer = SseFramer::new(cap);
            let mut out = Vec::new();
            for chunk in input.chunks(chunk_size) {
                framer.feed(chunk, &mut out).unwrap();
                assert!(framer.buffered() <= cap);
            }
            framer.finish(&mut out).unwrap();
            assert_eq!(out.len(), 1000);
            assert!(out.iter().all(|e| *e == ev(Some("t"), "hello", Some("1"))));
        }
    }

    #[test]
    fn event_accumulating_past_cap_is_too_large_at_any_split() {
        let cap = 64;
        let input = b"data: 0123456789\n".repeat(10);
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(
                run_chunks(cap, &[a, b]),
                Err(SseError::TooLarge { limit: cap }),
                "split at {i}"
            );
        }
        // A long comment counts too, whether or not it was split.
        let mut long_comment = b"data: x\n:".to_vec();
        long_comment.extend(std::iter::repeat_n(b'c', 100));
        long_comment.extend_from_slice(b"\n\n");
        for i in 0..=long_comment.len() {
            let (a, b) = long_comment.split_at(i);
            assert_eq!(
                run_chunks(cap, &[a, b]),
                Err(SseError::TooLarge { limit: cap }),
                "split at {i}"
            );
        }
    }

    #[test]
    fn line_exactly_at_cap_is_accepted() {
        let line = b"data: 0123456789";
        let mut input = line.to_vec();
        input.extend_from_slice(b"\n\n");
        assert_eq!(
            run_chunks(line.len(), &[&input]).unwrap(),
            vec![d("0123456789")]
        );
        assert_eq!(
            run_chunks(line.len() - 1, &[&input]),
            Err(SseError::TooLarge {
                limit: line.len() - 1
            })
        );
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(
            run_chunks(CAP, &[b"data: \xff\n\n"]),
            Err(SseError::InvalidUtf8)
        );
        // A code point cut short by the line end.
        assert_eq!(
            run_chunks(CAP, &[b"data: \xF0\x9F\n\n"]),
            Err(SseError::InvalidUtf8)
        );
        // An unterminated last line is checked by finish().
        let mut framer = SseFramer::new(CAP);
        let mut out = Vec::new();
        framer.feed(b"data: ok\n\ndata: \xC3", &mut out).unwrap();
        assert_eq!(out, vec![d("ok")]);
        assert_eq!(framer.finish(&mut out), Err(SseError::InvalidUtf8));
        assert_eq!(framer.feed(b"\n", &mut out), Err(SseError::InvalidUtf8));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn code_point_split_across_chunks_is_not_an_error() {
        let input = "data: 中🚀\n\n".as_bytes();
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(
                run_chunks(CAP, &[a, b]).unwrap(),
                vec![d("中🚀")],
                "split at {i}"
            );
        }
    }

    #[test]
    fn finish_resets_for_a_new_stream() {
        let mut framer = SseFramer::new(CAP);
        let mut out = Vec::new();
        framer.feed(b"event: x\ndata: partial", &mut out).unwrap();
        framer.finish(&mut out).unwrap();
        assert_eq!(out, vec![ev(Some("x"), "partial", None)]);
        assert_eq!(framer.buffered(), 0);
        let mut out = Vec::new();
        framer
            .feed("\u{FEFF}data: next\n\n".as_bytes(), &mut out)
            .unwrap();
        framer.finish(&mut out).unwrap();
        assert_eq!(out, vec![d("next")]);
    }

    #[test]
    fn incomplete_event_without_data_is_dropped_at_finish() {
        assert_eq!(run_whole(b"event: only\nid: 3\n"), vec![]);
        assert_eq!(run_whole(b"event: only"), vec![]);
    }

    #[test]
    fn errors_display_clearly() {
        assert_eq!(
            SseError::TooLarge { limit: 1024 }.to_string(),
            "server-sent event exceeds the 1024-byte buffer limit before completing"
        );
        assert_eq!(
            SseError::InvalidUtf8.to_string(),
            "server-sent event stream line is not valid UTF-8"
        );
    }

    #[test]
    fn event_ends_and_boundaries_at_every_split() {
        let stream = b"data: a\n\n: ping\r\n\r\ndata: b\r\rdata: c\r\n\r\ndata: tail";
        // The comment-only block (9..19) moves the boundary, no event.
        let want = [(0u64, 9u64), (19, 28), (28, 39)];
        for cut in 0..=stream.len() {
            let mut f = SseFramer::with_offsets(CAP);
            let mut out = Vec::new();
            f.feed(&stream[..cut], &mut out).unwrap();
            let mut spans = f.take_spans();
            // Nothing past the boundary belongs to a complete block.
            assert!(f.boundary() <= cut as u64);
            f.feed(&stream[cut..], &mut out).unwrap();
            spans.extend(f.take_spans());
            assert_eq!(spans, want, "cut {cut}");
            assert_eq!(f.boundary(), 39, "cut {cut}");
            f.finish(&mut out).unwrap();
            assert_eq!(f.take_spans(), [(39, stream.len() as u64)]);
            assert_eq!(out.len(), 4);
        }
    }
}
