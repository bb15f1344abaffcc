//! The floor of any filter that routes on the request body, for
//! `make profile`: hold the request headers, buffer the body, read it, set
//! the routing header and write the body back, and mark the response. No
//! parsing, no validation, no metrics. What llm-gateway costs above this is
//! its own work; what this costs above plain Envoy is the price of a Wasm
//! filter that reads the body before routing.
//!
//! Configuration (plugin configuration string): the cluster name to route
//! to, then optionally `calls`, which adds the host calls llm-gateway makes
//! on an OpenAI passthrough request (the same kinds, maps, names and sizes,
//! with no logic between them); `calls anthropic` adds those a translation to
//! Anthropic makes on top. What these cost in Envoy is a floor for any filter
//! that reads the client's headers, sets the provider's, reads the answer
//! for usage and records metrics, whatever its own code costs. Words such as
//! `-pairs` or `-metrics` leave one group of calls out, to price it.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { cluster: Rc::from(""), twin: None })
    });
}}

struct Root {
    cluster: Rc<str>,
    twin: Option<Rc<Twin>>,
}

/// The host calls of the gateway's twin: which groups, and the metric ids.
struct Twin {
    anthropic: bool,
    skipped: Vec<String>,
    counters: [u32; 4],
    histograms: [u32; 3],
}

impl Twin {
    /// The gateway's per-request metrics: four counters, three histograms.
    fn new(words: &[&str]) -> Option<Self> {
        let name = |kind: &str, i: usize| {
            format!("llmgw_floor.{kind}{i}.provider.mock_openai.model.gpt-4o-mini")
        };
        let mut counters = [0; 4];
        for (i, id) in counters.iter_mut().enumerate() {
            *id = hostcalls::define_metric(MetricType::Counter, &name("counter", i)).ok()?;
        }
        let mut histograms = [0; 3];
        for (i, id) in histograms.iter_mut().enumerate() {
            *id = hostcalls::define_metric(MetricType::Histogram, &name("histogram", i)).ok()?;
        }
        let mut anthropic = false;
        let mut skipped = Vec::new();
        for word in words {
            match (*word, word.strip_prefix('-')) {
                ("anthropic", _) => anthropic = true,
                (_, Some(group)) => skipped.push(group.to_string()),
                _ => return None,
            }
        }
        Some(Self {
            anthropic,
            skipped,
            counters,
            histograms,
        })
    }

    fn makes(&self, group: &str) -> bool {
        !self.skipped.iter().any(|s| s == group)
    }
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let Ok(Some(bytes)) = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
        else {
            return false;
        };
        let Ok(config) = String::from_utf8(bytes) else {
            return false;
        };
        let words: Vec<&str> = config.split_whitespace().collect();
        match words.as_slice() {
            [cluster] => self.cluster = Rc::from(*cluster),
            [cluster, "calls", rest @ ..] => {
                self.cluster = Rc::from(*cluster);
                match Twin::new(rest) {
                    Some(twin) => self.twin = Some(Rc::new(twin)),
                    None => return false,
                }
            }
            _ => return false,
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            cluster: Rc::clone(&self.cluster),
            twin: self.twin.clone(),
            events: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    cluster: Rc<str>,
    twin: Option<Rc<Twin>>,
    /// The answer is an event stream (translated chunk by chunk, not held).
    events: bool,
}

impl Context for Stream {}

impl Stream {
    /// Whether the twin makes this group of calls.
    fn makes(&self, group: &str) -> bool {
        self.twin.as_ref().is_some_and(|t| t.makes(group))
    }

    fn translates(&self) -> bool {
        self.twin.as_ref().is_some_and(|t| t.anthropic)
    }

    /// The clock, read as the gateway reads it (once per callback that times).
    fn clock(&self) {
        if self.makes("clock") {
            let _ = hostcalls::get_current_time();
        }
    }

    fn set(&self, map: MapType, group: &str, name: &str, value: Option<&str>) {
        if self.makes(group) {
            let _ = hostcalls::set_map_value(map, name, value);
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        self.clock();
        if self.makes("pairs") {
            let _ = hostcalls::get_map(MapType::HttpRequestHeaders);
        }
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
        self.clock();
        let request = MapType::HttpRequestHeaders;
        if self.translates() {
            // The gateway's path to Anthropic; the same length, so the
            // mock's OpenAI endpoint still answers.
            self.set(request, "path", ":path", Some("/v1/chat/completions"));
        }
        self.set(request, "authority", ":authority", Some("127.0.0.1"));
        let _ = hostcalls::set_map_value(request, "x-llm-gateway-cluster", Some(&self.cluster));
        if self.translates() {
            self.set(request, "auth", "authorization", None);
            self.set(request, "auth", "x-api-key", Some("sk-upstream-key"));
            self.set(request, "auth", "anthropic-version", Some("2023-06-01"));
        } else {
            self.set(
                request,
                "auth",
                "authorization",
                Some("Bearer sk-upstream-key"),
            );
        }
        let length = body.len().to_string();
        self.set(request, "length", "content-length", Some(&length));
        let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, size, &body);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.makes("pairs") {
            let headers = hostcalls::get_map(MapType::HttpResponseHeaders).unwrap_or_default();
            self.events = headers
                .iter()
                .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream"));
        }
        let _ = hostcalls::set_map_value(
            MapType::HttpResponseHeaders,
            "x-llm-gateway-target",
            Some("floor"),
        );
        if self.translates() {
            // Held until the whole answer is translated, as the gateway does.
            self.set(
                MapType::HttpResponseHeaders,
                "length",
                "content-length",
                None,
            );
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if self.twin.is_none() {
            return Action::Continue;
        }
        self.clock();
        if self.translates() && !self.events && !end_of_stream {
            return Action::Pause;
        }
        if !(self.makes("body") && (end_of_stream || size > 0)) {
            return Action::Continue;
        }
        let body = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        if self.translates() {
            // The translated answer is about as long as the provider's.
            if !self.events {
                let length = body.len().to_string();
                let response = MapType::HttpResponseHeaders;
                self.set(response, "length", "content-length", Some(&length));
            }
            let _ = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, size, &body);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(twin) = &self.twin else {
            return;
        };
        if twin.makes("shared") {
            let _ = hostcalls::get_shared_data("llmgw/health/mock_openai/gpt-4o-mini");
        }
        if twin.makes("metrics") {
            for id in twin.counters {
                let _ = hostcalls::increment_metric(id, 1);
            }
            for id in twin.histograms {
                let _ = hostcalls::record_metric(id, 42);
            }
        }
    }
}
