//! Checking a response stream as it passes: text is held back only as long
//! as it could still be the start of a match — the longest term in use
//! less one character, and a trailing run of characters personal data is
//! made of — then released, masked where a rule masks. Memory per stream
//! is that window per choice.

use super::pii::{is_pii_byte, MAX_PII_CHARS};
use super::scan::{Finding, Scratch};
use super::{blocked_response, Direction, GuardSet, Guardrails, RuleKind, Tally};
use crate::wire::hub::{FinishReason, StreamEvent};
use crate::wire::stream::EventFilter;
use std::cell::RefCell;
use std::rc::Rc;

/// Held text of one choice's content or reasoning.
#[derive(Debug)]
struct Window {
    choice: u32,
    reasoning: bool,
    pending: String,
}

/// The response rules of one stream, applied to hub events.
pub struct StreamGuard {
    rules: Rc<Guardrails>,
    set: GuardSet,
    /// Characters a word match may still need: the longest term less one.
    hold_words: usize,
    /// A PII rule is in use: hold the trailing run of PII characters.
    hold_pii: bool,
    windows: Vec<Window>,
    scratch: Scratch,
    found: Vec<Finding>,
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
            found: Vec::new(),
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
        self.windows[i].pending.push_str(text);
        self.release(i, false, out);
    }

    /// Checks window `i` and releases what can no longer start a match (all
    /// of it when `last`).
    fn release(&mut self, i: usize, last: bool, out: &mut Vec<StreamEvent>) {
        let pending = std::mem::take(&mut self.windows[i].pending);
        if pending.is_empty() {
            return;
        }
        self.rules
            .findings(&pending, self.set, &mut self.scratch, &mut self.found);
        let chars = pending.chars().count();
        let boundary = if last {
            chars
        } else {
            let mut b = chars.saturating_sub(self.hold_words);
            if self.hold_pii {
                let run = trailing_pii_run(&self.rules, &pending);
                if run < MAX_PII_CHARS {
                    b = b.min(chars - run);
                }
            }
            b
        };
        let (blocked, masked) = self.rules.act(
            &pending,
            &self.found,
            boundary,
            Direction::Response,
            &mut self.tally.borrow_mut(),
        );
        let text = masked.unwrap_or(pending);
        let (choice, reasoning) = (self.windows[i].choice, self.windows[i].reasoning);
        let emit = |t: String, out: &mut Vec<StreamEvent>| {
            if !t.is_empty() {
                out.push(if reasoning {
                    StreamEvent::Reasoning { choice, text: t }
                } else {
                    StreamEvent::Text { choice, text: t }
                });
            }
        };
        if let Some((rule, start)) = blocked {
            emit(prefix_chars(&text, start).to_string(), out);
            out.push(StreamEvent::Finish {
                choice,
                reason: FinishReason::ContentFilter,
            });
            out.push(StreamEvent::Error(blocked_response(
                &self.rules.rules[rule].name,
            )));
            self.stopped = true;
            self.windows.clear();
            return;
        }
        let head = prefix_chars(&text, boundary).len();
        emit(text[..head].to_string(), out);
        self.windows[i].pending = text[head..].to_string();
    }
}

/// The first `n` characters of `s`.
fn prefix_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

impl EventFilter for StreamGuard {
    fn on_event(&mut self, event: StreamEvent, out: &mut Vec<StreamEvent>) {
        StreamGuard::on_event(self, event, out);
    }
    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        StreamGuard::finish(self, out);
    }
}

/// Characters at the end of `s` that could belong to personal data.
fn trailing_pii_run(rules: &Guardrails, s: &str) -> usize {
    s.chars()
        .rev()
        .take_while(|&c| {
            let f = rules.folder().fold(c);
            f.is_ascii() && is_pii_byte(f as u8)
        })
        .take(MAX_PII_CHARS)
        .count()
}
