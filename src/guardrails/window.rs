//! Checking a response stream as it passes: text is held back only as long
//! as it could still be the start of a match — the longest term in use
//! less one character, and a trailing run of characters personal data is
//! made of — then released, masked where a rule masks. Memory per stream
//! is that window per choice.

use super::pii::{is_pii_byte, MAX_PII_CHARS};
use super::scan::{mask_chars, Finding, Scratch};
use super::{blocked_response, Direction, GuardSet, Guardrails, RuleKind, Tally};
use crate::wire::hub::{FinishReason, StreamEvent};
use crate::wire::stream::EventFilter;
use aho_corasick::automaton::StateID;
use std::cell::RefCell;
use std::rc::Rc;

/// Held text of one choice's content or reasoning, and where the scan of
/// everything it was sent stands.
#[derive(Debug)]
struct Window {
    choice: u32,
    reasoning: bool,
    /// Text not released yet.
    pending: String,
    pending_chars: usize,
    /// Index (from the start of the stream) of `pending`'s first character.
    base: usize,
    /// The automaton's state after the last character.
    state: Option<StateID>,
    /// Where the trailing run of PII characters began, if the text ends in
    /// one.
    run: Option<usize>,
    /// Matches not acted on yet (positions from the start of the stream).
    found: Vec<Finding>,
    /// Character ranges to mask, applied as text is released: `pending`
    /// itself stays as sent, so detectors read the original text.
    masks: Vec<(usize, usize)>,
}

/// The response rules of one stream, applied to hub events. Each
/// character is folded and fed to the automaton once, as it arrives;
/// matches are acted on when the text they start in is released.
pub struct StreamGuard {
    rules: Rc<Guardrails>,
    set: GuardSet,
    /// Characters a word match may still need: the longest term less one.
    hold_words: usize,
    /// A PII rule is in use: hold the trailing run of PII characters.
    hold_pii: bool,
    windows: Vec<Window>,
    scratch: Scratch,
    /// Shared with the flow, which records it when the stream ends.
    tally: Rc<RefCell<Tally>>,
    stopped: bool,
}

impl StreamGuard {
    /// `set`: the stream's response rules; hits are counted into `tally`.
    pub fn new(rules: Rc<Guardrails>, set: GuardSet, tally: Rc<RefCell<Tally>>) -> Self {
        let mut hold_words = 0;
        let mut hold_pii = false;
        for (i, r) in rules.rules.iter().enumerate() {
            if !set.contains(i) {
                continue;
            }
            match r.kind {
                RuleKind::Words => hold_words = hold_words.max(r.longest.saturating_sub(1)),
                RuleKind::Pii(_) => hold_pii = true,
                RuleKind::Moderation(_) => {}
            }
        }
        Self {
            rules,
            set,
            hold_words,
            hold_pii,
            windows: Vec::new(),
            scratch: Scratch::default(),
            tally,
            stopped: false,
        }
    }

    /// A block rule stopped the stream: nothing more goes to the client.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    pub fn tally(&self) -> Tally {
        self.tally.borrow().clone()
    }

    /// Characters held at most per window (the longest term less one, or
    /// the PII run cap).
    pub fn window_chars(&self) -> usize {
        if self.hold_pii {
            self.hold_words.max(MAX_PII_CHARS)
        } else {
            self.hold_words
        }
    }

    /// Passes one event: text is held and checked, anything else first
    /// releases what its choice holds (order is kept).
    pub fn on_event(&mut self, event: StreamEvent, out: &mut Vec<StreamEvent>) {
        if self.stopped {
            return;
        }
        match event {
            StreamEvent::Text { choice, text } => self.push(choice, false, &text, out),
            StreamEvent::Reasoning { choice, text } => self.push(choice, true, &text, out),
            StreamEvent::Start { .. } | StreamEvent::Usage(_) => out.push(event),
            StreamEvent::ToolCallStart { choice, .. }
            | StreamEvent::ToolCallArgs { choice, .. }
            | StreamEvent::Finish { choice, .. } => {
                self.flush(Some(choice), out);
                if !self.stopped {
                    out.push(event);
                }
            }
            StreamEvent::Error(_) => {
                self.flush(None, out);
                if !self.stopped {
                    out.push(event);
                }
            }
        }
    }

    /// The stream ended: everything held is checked and released.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.stopped {
            self.flush(None, out);
        }
    }

    fn flush(&mut self, choice: Option<u32>, out: &mut Vec<StreamEvent>) {
        let mut i = 0;
        while i < self.windows.len() && !self.stopped {
            if choice.is_none_or(|c| c == self.windows[i].choice) {
                self.release(i, true, out);
            }
            i += 1;
        }
    }

    fn push(&mut self, choice: u32, reasoning: bool, text: &str, out: &mut Vec<StreamEvent>) {
        let i = match self
            .windows
            .iter()
            .position(|w| w.choice == choice && w.reasoning == reasoning)
        {
            Some(i) => i,
            None => {
                self.windows.push(Window {
                    choice,
                    reasoning,
                    pending: String::new(),
                    pending_chars: 0,
                    base: 0,
                    state: self.rules.start_state(),
                    run: None,
                    found: Vec::new(),
                    masks: Vec::new(),
                });
                self.windows.len() - 1
            }
        };
        // Content after reasoning (or the reverse): what the other holds
        // goes first.
        for j in 0..self.windows.len() {
            if j != i && self.windows[j].choice == choice && !self.windows[j].pending.is_empty() {
                self.release(j, true, out);
            }
        }
        if self.stopped {
            return;
        }
        let (rules, set, hold_pii) = (&self.rules, self.set, self.hold_pii);
        let w = &mut self.windows[i];
        for c in text.chars() {
            let index = w.base + w.pending_chars;
            let f = rules.folder().fold(c);
            if let Some(state) = w.state.as_mut() {
                rules.feed_char(state, f, index, set, &mut w.found);
            }
            if hold_pii {
                let pii = f.is_ascii() && is_pii_byte(f as u8);
                match w.run {
                    None if pii => w.run = Some(index),
                    Some(start) if !pii || index - start >= MAX_PII_CHARS => {
                        scan_run(rules, set, &mut self.scratch, w, start, index);
                        w.run = pii.then_some(index);
                    }
                    _ => {}
                }
            }
            w.pending.push(c);
            w.pending_chars += 1;
        }
        self.release(i, false, out);
    }

    /// Acts on the matches that start in what can be released, and
    /// releases it (all of it when `last`).
    fn release(&mut self, i: usize, last: bool, out: &mut Vec<StreamEvent>) {
        let (rules, set) = (&self.rules, self.set);
        let w = &mut self.windows[i];
        let total = w.base + w.pending_chars;
        if last {
            if let Some(start) = w.run.take() {
                scan_run(rules, set, &mut self.scratch, w, start, total);
            }
        }
        let mut boundary = if last {
            total
        } else {
            total.saturating_sub(self.hold_words)
        };
        if let Some(start) = w.run {
            boundary = boundary.min(start);
        }
        let boundary = boundary.max(w.base);
        if w.pending.is_empty() {
            return;
        }
        w.found.sort_by_key(|f| (f.start, f.end));
        let ready = w.found.partition_point(|f| f.start < boundary);
        let blocked = rules.act_ranges(
            &w.found[..ready],
            usize::MAX,
            Direction::Response,
            &mut self.tally.borrow_mut(),
            &mut w.masks,
        );
        w.found.drain(..ready);
        let (choice, reasoning) = (w.choice, w.reasoning);
        let emit = |t: String, out: &mut Vec<StreamEvent>| {
            if !t.is_empty() {
                out.push(if reasoning {
                    StreamEvent::Reasoning { choice, text: t }
                } else {
                    StreamEvent::Text { choice, text: t }
                });
            }
        };
        // Released: up to the block, or to the boundary.
        let upto = blocked.map_or(boundary, |(_, start)| start.max(w.base));
        let n = upto - w.base;
        let head = prefix_chars(&w.pending, n).len();
        w.masks.sort_unstable();
        let base = w.base;
        let local: Vec<(usize, usize)> = w
            .masks
            .iter()
            .filter(|m| m.0 < upto && m.1 > base)
            .map(|m| (m.0.max(base) - base, m.1.min(upto) - base))
            .collect();
        let released = if local.is_empty() {
            w.pending[..head].to_string()
        } else {
            mask_chars(&w.pending[..head], &local)
        };
        emit(released, out);
        if let Some((rule, _)) = blocked {
            out.push(StreamEvent::Finish {
                choice,
                reason: FinishReason::ContentFilter,
            });
            out.push(StreamEvent::Error(blocked_response(
                &rules.rules[rule].name,
            )));
            self.stopped = true;
            self.windows.clear();
            return;
        }
        w.pending.drain(..head);
        w.pending_chars -= n;
        w.base = boundary;
        w.masks.retain(|m| m.1 > boundary);
    }
}

/// Scans the PII run of characters `start..end` (stream positions) of `w`.
fn scan_run(
    rules: &Guardrails,
    set: GuardSet,
    scratch: &mut Scratch,
    w: &mut Window,
    start: usize,
    end: usize,
) {
    let from = start.saturating_sub(w.base);
    let to = end.saturating_sub(w.base);
    let head = prefix_chars(&w.pending, from).len();
    let run = prefix_chars(&w.pending[head..], to - from);
    rules.pii_findings(run, w.base + from, set, scratch, &mut w.found);
}

impl EventFilter for StreamGuard {
    fn on_event(&mut self, event: StreamEvent, out: &mut Vec<StreamEvent>) {
        StreamGuard::on_event(self, event, out);
    }
    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        StreamGuard::finish(self, out);
    }
}

/// The first `n` characters of `s`.
fn prefix_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}
