//! The floor of any filter that routes on the request body, for
//! `make profile`: hold the request headers, buffer the body, read it, set
//! the routing header and write the body back, and mark the response. No
//! parsing, no validation, no metrics. What llm-gateway costs above this is
//! its own work; what this costs above plain Envoy is the price of a Wasm
//! filter that reads the body before routing.
//!
//! Configuration: the cluster name to route to (plugin configuration string).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { cluster: Rc::from("") })
    });
}}

struct Root {
    cluster: Rc<str>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(Some(bytes)) => match String::from_utf8(bytes) {
                Ok(name) if !name.trim().is_empty() => {
                    self.cluster = Rc::from(name.trim());
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            cluster: Rc::clone(&self.cluster),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    cluster: Rc<str>,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let _ = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            "x-llm-gateway-cluster",
            Some(&self.cluster),
        );
        let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, size, &body);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let _ = hostcalls::set_map_value(
            MapType::HttpResponseHeaders,
            "x-llm-gateway-target",
            Some("floor"),
        );
        Action::Continue
    }
}
