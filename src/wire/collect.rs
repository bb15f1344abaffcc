//! A whole hub response and the hub events of its stream, both ways: a
//! stream gathered into one response (`Capture`), and a response told as
//! stream events (`replay`) that a client API's writer frames like any
//! provider's stream. The response cache keeps answers whole.

use crate::wire::hub::{ChatResponse, Choice, FinishReason, StreamEvent, ToolCall};

/// Characters per replayed text event: a client sees a stream of several
/// chunks, as from a provider.
const CHUNK_CHARS: usize = 64;

/// The hub events of a whole answer, in stream order.
pub fn replay(r: &ChatResponse) -> Vec<StreamEvent> {
    let mut out = vec![StreamEvent::Start {
        id: r.id.clone(),
        model: r.model.clone(),
    }];
    for c in &r.choices {
        let choice = c.index;
        if let Some(text) = &c.reasoning {
            for piece in pieces(text) {
                out.push(StreamEvent::Reasoning {
                    choice,
                    text: piece.to_string(),
                });
            }
        }
        if let Some(text) = &c.content {
            for piece in pieces(text) {
                out.push(StreamEvent::Text {
                    choice,
                    text: piece.to_string(),
                });
            }
        }
        for (i, call) in c.tool_calls.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            out.push(StreamEvent::ToolCallStart {
                choice,
                index,
                id: call.id.clone(),
                name: call.name.clone(),
            });
            out.push(StreamEvent::ToolCallArgs {
                choice,
                index,
                fragment: call.arguments.clone(),
            });
        }
        if let Some(reason) = c.finish_reason {
            out.push(StreamEvent::Finish { choice, reason });
        }
    }
    if let Some(u) = r.usage {
        out.push(StreamEvent::Usage(u));
    }
    out
}

/// `text` cut into runs of at most `CHUNK_CHARS` characters.
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .char_indices()
            .nth(CHUNK_CHARS)
            .map_or(rest.len(), |(i, _)| i);
        let (head, tail) = rest.split_at(end);
        rest = tail;
        Some(head)
    })
}

/// Gathers a stream's hub events into one response, up to `cap` bytes of
/// text (the response cache's capture of what the client was sent, and a
/// whole Gemini answer decoded from its chunks).
pub struct Capture {
    response: ChatResponse,
    bytes: usize,
    cap: usize,
    spoiled: bool,
}

impl Capture {
    pub fn new(cap: usize) -> Self {
        Self::starting(ChatResponse::default(), cap)
    }

    /// Gathers onto `response` (its choices, id and usage as a start).
    pub fn starting(response: ChatResponse, cap: usize) -> Self {
        Self {
            response,
            bytes: 0,
            cap,
            spoiled: false,
        }
    }

    pub fn on_event(&mut self, event: &StreamEvent) {
        if !self.spoiled {
            self.push(event.clone());
        }
    }

    pub fn push(&mut self, event: StreamEvent) {
        if self.spoiled {
            return;
        }
        match event {
            StreamEvent::Start { id, model } => {
                self.response.id = id;
                self.response.model = model;
            }
            StreamEvent::Text { choice, text } => {
                self.grow(text.len());
                let c = self.choice(choice);
                c.content.get_or_insert_with(String::new).push_str(&text);
            }
            StreamEvent::Reasoning { choice, text } => {
                self.grow(text.len());
                let c = self.choice(choice);
                c.reasoning.get_or_insert_with(String::new).push_str(&text);
            }
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => {
                self.grow(id.len() + name.len());
                let c = self.choice(choice);
                if index as usize != c.tool_calls.len() {
                    self.spoiled = true;
                    return;
                }
                c.tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: String::new(),
                });
            }
            StreamEvent::ToolCallArgs {
                choice,
                index,
                fragment,
            } => {
                self.grow(fragment.len());
                let c = self.choice(choice);
                match c.tool_calls.get_mut(index as usize) {
                    Some(call) => call.arguments.push_str(&fragment),
                    None => self.spoiled = true,
                }
            }
            StreamEvent::Finish { choice, reason } => {
                self.choice(choice).finish_reason = Some(reason);
            }
            StreamEvent::Usage(u) => self.response.usage = Some(u),
            StreamEvent::Error(_) => self.spoiled = true,
        }
    }

    fn grow(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.cap {
            self.spoiled = true;
        }
    }

    fn choice(&mut self, index: u32) -> &mut Choice {
        let choices = &mut self.response.choices;
        let at = match choices.iter().position(|c| c.index == index) {
            Some(at) => at,
            None => {
                choices.push(Choice {
                    index,
                    ..Choice::default()
                });
                choices.len() - 1
            }
        };
        &mut choices[at]
    }

    /// The response gathered, whatever came.
    pub fn into_response(self) -> ChatResponse {
        self.response
    }

    /// The answer, if it is one worth keeping (see [`complete`]): nothing
    /// went wrong and it stayed within the cap.
    pub fn take(self) -> Option<ChatResponse> {
        (!self.spoiled && complete(&self.response)).then_some(self.response)
    }
}

/// Whether an answer may be cached: every choice finished by stopping, at
/// its length limit or to call tools (not cut by a content filter, not
/// broken off).
pub fn complete(r: &ChatResponse) -> bool {
    !r.choices.is_empty()
        && r.choices.iter().all(|c| {
            matches!(
                c.finish_reason,
                Some(FinishReason::Stop | FinishReason::Length | FinishReason::ToolCalls)
            )
        })
}
