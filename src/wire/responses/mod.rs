//! The OpenAI Responses API (`POST /v1/responses`) as a client API:
//! validation in OpenAI's wording, the ingress edge of the hub (`to_hub`
//! requests in; `render_response`, [`ResponsesWriter`] out), errors in the
//! API's two shapes, and [`ResponsesWatcher`] for streams passed through to
//! a provider that serves the Responses API itself. Field and event names
//! follow the openai-python SDK's types (3.57).
//!
//! The gateway is stateless, so is this edge. Choices made where the
//! Responses API and the hub do not line up:
//!
//! * **State is refused, with the reason** (400 `unsupported_parameter`,
//!   "This gateway is stateless: …"): `previous_response_id`,
//!   `conversation`, `prompt` (a stored prompt), `background: true`,
//!   `item_reference` items (typed, or the untyped `{"id": …}` form) and
//!   `store: true`. OpenAI's default for `store` is true, but an absent
//!   `store` is taken as false: refusing every request that leaves it out
//!   would refuse the SDK's defaults. Every response says `store: false`.
//!   `file_id`s (in `input_image` or `input_file`) are refused likewise:
//!   the file lives at OpenAI, under whichever account uploaded it.
//! * **Unknown top-level fields** are 400 `unknown_parameter` (the SDK's
//!   `responses.create` fields are known); unknown members inside items,
//!   parts and tools are ignored, as new optional fields appear there often
//!   (`phase`, `status`, `annotations`, …).
//! * **Input.** `instructions` becomes the first system message; a string
//!   `input` one user message. Items, in order: messages (system and
//!   developer → system; user → user with `input_text`, `input_image` (URL
//!   or base64 data URI, `detail` kept) and `input_file` (`file_data` data
//!   URI or `file_url`; `filename` kept) parts; assistant → assistant with
//!   `output_text` parts, and `refusal` parts as text; assistant messages
//!   take only those two part types, other roles only the input types, as
//!   OpenAI enforces). `function_call` items become tool calls on an
//!   assistant message: the assistant message directly before (its text,
//!   or the calls before it), else a new one. `function_call_output` items
//!   become tool messages (`tool_call_id` = `call_id`), their output a
//!   string or input parts. `reasoning` items are accepted and dropped
//!   (also for the joining above): their content is the provider's own,
//!   encrypted or summarized, and no other provider can take it back.
//!   Items only hosted tools produce, and `custom_tool_call` & co, are 400
//!   naming the item type.
//! * **Tools**: function tools → hub tools (`strict` as given; when absent
//!   it stays absent rather than taking OpenAI's Responses default of true,
//!   so a schema that is not strict-compatible does not become a 400 at
//!   providers that enforce strict schemas). Every other tool type is 400
//!   naming it; hosted ones (`web_search`, `file_search`, `computer_use`,
//!   `code_interpreter`, `image_generation`, `mcp`, `local_shell`, …) say
//!   they need OpenAI's hosted tools. `tool_choice`: `auto`, `none`,
//!   `required`, `{type: function, name}`; other object forms
//!   (`allowed_tools`, hosted tool types) are 400.
//! * **Sampling and limits**: `max_output_tokens` (≥ 16, as OpenAI) →
//!   `max_tokens`; `temperature`, `top_p`, `parallel_tool_calls` as they
//!   are. `reasoning.effort` → `reasoning_effort` unchanged (`xhigh` and
//!   `max` included: OpenAI-compatible providers may take them, other edges
//!   refuse values they do not know rather than this edge guessing);
//!   `reasoning.summary` / `generate_summary` / `context` are dropped (the
//!   reasoning that comes back is always shown as a summary); a
//!   `reasoning.mode` other than `standard` is 400. `text.format` →
//!   `response_format` (`json_schema`: name, schema, strict; its
//!   `description` is dropped, the hub has no place for it).
//!   `safety_identifier`, else `user`, → `user`. `stream` as is, with
//!   `include_usage` whenever streaming (a Responses stream always ends
//!   with usage).
//! * **Dropped** (they tune OpenAI's service, not the answer):
//!   `prompt_cache_key`, `prompt_cache_retention`, `prompt_cache_options`
//!   (but `prewarm: true` is 400: it asks for no answer), `service_tier`,
//!   `metadata`, `text.verbosity`, `include` (extra data such as encrypted
//!   reasoning or log probabilities; the answer is the same without),
//!   `top_logprobs: 0`, `max_tool_calls` (it limits hosted tool calls
//!   only), `stream_options` (obfuscation), `image`, `access_programs`,
//!   `background_options`, and `truncation` either way: with `auto` OpenAI
//!   would drop the oldest items when the input overflows the context; a
//!   provider answers an overflow with its own error instead, so the
//!   client is told rather than answered differently.
//! * **Refused** (they would change the answer and cannot be honoured
//!   across providers): `top_logprobs` > 0, `context_management`
//!   (server-side compaction) and `moderation`.
//! * **Responses** (`render_response`, and the final event of a stream):
//!   id `resp_<request id>`; output items in the order reasoning (a
//!   `reasoning` item whose summary is the provider's reasoning text),
//!   message (`output_text`, no annotations), function calls (`call_id` =
//!   the hub tool call id, which carries e.g. Gemini's thought signature
//!   back). Item ids are `rs_`/`msg_`/`fc_` + request id + output index.
//!   Status `completed`, or `incomplete` with `incomplete_details.reason`
//!   `max_output_tokens` (finish `length`) or `content_filter`; the last
//!   item of an incomplete response is `incomplete`. Usage: input, cached,
//!   cache-write, output, reasoning and total tokens. Only the first
//!   choice. Fields that echo the request (`tools`, `tool_choice`,
//!   `temperature`, `instructions`, …) are not known to the renderer: the
//!   SDK-required ones take OpenAI's defaults (`tools: []`, `tool_choice:
//!   "auto"`, `parallel_tool_calls: true`), the optional ones are null.
//! * **Streams**: `response.created`, `response.in_progress`, then per item
//!   `output_item.added`, its part (`content_part.added` /
//!   `reasoning_summary_part.added`), deltas (`output_text.delta`,
//!   `reasoning_summary_text.delta`, `function_call_arguments.delta`), and
//!   when the next item starts or the stream ends, its `.done` events and
//!   `output_item.done`; last `response.completed` or
//!   `response.incomplete`. Text after a tool call starts a new message
//!   item. A provider error mid-stream is an `error` event (carrying both
//!   the `ResponseErrorEvent` fields and a nested `error` object, which is
//!   what makes the SDK raise) and nothing follows it.

mod errors;
mod facts;
mod input;
mod parse;
mod render;
#[cfg(test)]
mod tests;
mod to_hub;
mod watcher;
mod writer;

pub use errors::{render_error, stream_error};
pub use facts::facts;
pub use parse::parse_request;
pub(crate) use parse::KNOWN as KNOWN_FIELDS;
pub use render::render_response;
pub use to_hub::to_hub;
pub use watcher::{body_outcome, body_usage, ResponsesWatcher};
pub use writer::ResponsesWriter;
