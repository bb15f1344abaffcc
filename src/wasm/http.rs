//! The HTTP context: forwards each callback to the core `StreamFlow`.

use super::abi;
use super::adapter::{MetricIds, ProxyHost};
use crate::config::Gateway;
use crate::error::ApiError;
use crate::flow::{Placement, StreamFlow, Verdict};
use crate::host::Host;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

pub struct HttpStream {
    flow: Option<StreamFlow>,
    host: ProxyHost,
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
            flow: gateway.map(|gw| StreamFlow::with_placement(gw, seed, placement)),
            host: ProxyHost::new(metric_ids),
        }
    }
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
        let status = abi::header_pairs(abi::Map::CallResponse)
            .ok()
            .and_then(|pairs| {
                pairs
                    .into_iter()
                    .find(|(n, _)| n == ":status")
                    .and_then(|(_, v)| v.parse::<u16>().ok())
            });
        let body = abi::buffer(abi::Buffer::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        if let Some(flow) = self.flow.as_mut() {
            flow.on_callout_response(&mut self.host, status, &body);
        }
    }
}

impl HttpContext for HttpStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.host.begin_callback();
        match self.flow.as_mut() {
            Some(flow) => action(flow.on_request_headers(&mut self.host, end_of_stream)),
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
        match self.flow.as_mut() {
            Some(flow) => action(flow.on_request_body(&mut self.host, body_size, end_of_stream)),
            None => Action::Continue,
        }
    }

    /// Trailers end the body (a client's chunked trailers, or the ones
    /// Envoy's decompressor adds): whatever waited for the body's end
    /// happens now.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.host.begin_callback();
        let size = self.host.request_body_size;
        match self.flow.as_mut() {
            Some(flow) => action(flow.on_request_body(&mut self.host, size, true)),
            None => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.host.begin_callback();
        self.host.begin_response();
        match self.flow.as_mut() {
            Some(flow) => action(flow.on_response_headers(&mut self.host, end_of_stream)),
            None => Action::Continue,
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.host.begin_callback();
        self.host.response_body_size = body_size;
        match self.flow.as_mut() {
            Some(flow) => action(flow.on_response_body(&mut self.host, body_size, end_of_stream)),
            None => Action::Continue,
        }
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.host.begin_callback();
        let size = self.host.response_body_size;
        match self.flow.as_mut() {
            Some(flow) => action(flow.on_response_trailers(&mut self.host, size)),
            None => Action::Continue,
        }
    }

    fn on_log(&mut self) {
        self.host.begin_callback();
        if let Some(flow) = self.flow.as_mut() {
            flow.on_log(&mut self.host);
        }
    }
}
