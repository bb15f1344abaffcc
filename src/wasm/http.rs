//! The HTTP context: forwards each callback to the core `StreamFlow`.

use super::abi;
use super::adapter::{MetricIds, ProxyHost};
use crate::config::Gateway;
use crate::error::ApiError;
use crate::flow::{Placement, StreamFlow, Verdict};
use crate::host::Host;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::rc::Rc;

pub struct HttpStream {
    /// Shared with the root's waiting list while the request waits for a
    /// provider token.
    flow: Option<Rc<RefCell<StreamFlow>>>,
    host: ProxyHost,
    context_id: u32,
}

impl HttpStream {
    pub fn new(
        gateway: Option<Rc<Gateway>>,
        placement: Placement,
        metric_ids: MetricIds,
        context_id: u32,
    ) -> Self {
        let seed = stream_seed(context_id);
        Self {
            flow: gateway.map(|gw| {
                Rc::new(RefCell::new(StreamFlow::with_placement(
                    gw, seed, placement,
                )))
            }),
            host: ProxyHost::new(metric_ids),
            context_id,
        }
    }

    /// Runs `f` on the flow; a request left waiting for its provider's
    /// token joins the root's waiting list.
    fn with_flow<T>(&mut self, f: impl FnOnce(&mut StreamFlow, &mut ProxyHost) -> T) -> Option<T> {
        let flow = self.flow.as_ref()?;
        let out = {
            let mut borrowed = flow.try_borrow_mut().ok()?;
            let out = f(&mut borrowed, &mut self.host);
            if borrowed.awaiting_token() {
                super::tokens::wait(self.context_id, flow);
            }
            out
        };
        Some(out)
    }
}

/// A callout's answer: its status (None when there was no answer) and body.
pub fn callout_response(body_size: usize) -> (Option<u16>, Vec<u8>) {
    let status = abi::header_pairs(abi::Map::CallResponse)
        .ok()
        .and_then(|headers| headers.get(":status")?.parse::<u16>().ok());
    let body = abi::buffer(abi::Buffer::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    (status, body)
}

thread_local! {
    /// Per-VM seed, read from the clock once; streams mix in their id.
    static VM_SEED: u64 = abi::now_nanos().unwrap_or(0x9e37_79b9_7f4a_7c15);
}

/// A distinct random seed per stream without a hostcall per stream.
fn stream_seed(context_id: u32) -> u64 {
    let id = u64::from(context_id);
    VM_SEED.with(|seed| seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (id << 32))
}

fn action(v: Verdict) -> Action {
    match v {
        Verdict::Continue => Action::Continue,
        Verdict::Pause => Action::Pause,
    }
}

impl Context for HttpStream {
    /// A callout's answer (status missing: no answer, e.g. the timeout).
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.host.begin_callback();
        let (status, body) = callout_response(body_size);
        self.with_flow(|flow, host| flow.on_callout_response(host, status, &body));
    }
}

impl HttpContext for HttpStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.host.begin_callback();
        match self.with_flow(|flow, host| flow.on_request_headers(host, end_of_stream)) {
            Some(v) => action(v),
            None => {
                let e = ApiError::new(
                    500,
                    "api_error",
                    "llm-gateway is not configured; see the Envoy log.",
                );
                self.host
                    .send_response(500, &[("content-type", "application/json")], &e.to_json());
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.host.begin_callback();
        self.host.request_body_size = body_size;
        self.with_flow(|flow, host| flow.on_request_body(host, body_size, end_of_stream))
            .map_or(Action::Continue, action)
    }

    /// Trailers end the body (a client's chunked trailers, or the ones
    /// Envoy's decompressor adds): whatever waited for the body's end
    /// happens now.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.host.begin_callback();
        let size = self.host.request_body_size;
        self.with_flow(|flow, host| flow.on_request_body(host, size, true))
            .map_or(Action::Continue, action)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.host.begin_callback();
        self.host.begin_response();
        self.with_flow(|flow, host| flow.on_response_headers(host, end_of_stream))
            .map_or(Action::Continue, action)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.host.begin_callback();
        self.host.response_body_size = body_size;
        self.with_flow(|flow, host| flow.on_response_body(host, body_size, end_of_stream))
            .map_or(Action::Continue, action)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.host.begin_callback();
        let size = self.host.response_body_size;
        self.with_flow(|flow, host| flow.on_response_trailers(host, size))
            .map_or(Action::Continue, action)
    }

    fn on_log(&mut self) {
        self.host.begin_callback();
        self.with_flow(|flow, host| flow.on_log(host));
    }
}
