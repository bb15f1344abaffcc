//! The proxy-wasm layer: the only module that names `proxy_wasm`.

mod abi;
mod adapter;
mod http;
mod tokens;

use crate::config::{compile, Gateway, PluginConfig};
use crate::flow::Placement;
use abi::{Buffer, Level};
use http::HttpStream;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { gateway: None, placement: Placement::Downstream, metric_ids: Default::default(), tokens: Default::default() }) });
}}

struct Root {
    gateway: Option<Rc<Gateway>>,
    placement: Placement,
    metric_ids: adapter::MetricIds,
    tokens: tokens::Refresher,
}

/// The root id the upstream (per-attempt) instance is configured with.
const UPSTREAM_ROOT_ID: &str = "llm_gateway_upstream";

impl Context for Root {
    /// A token endpoint's answer (status missing: no answer).
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let (status, body) = http::callout_response(body_size);
        self.tokens
            .on_response(token_id, status, &body, &self.metric_ids);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let root_id = abi::property(&["plugin_root_id"]).ok().flatten();
        if root_id.as_deref() == Some(UPSTREAM_ROOT_ID.as_bytes()) {
            self.placement = Placement::Upstream;
        }
        let bytes = match abi::buffer(Buffer::PluginConfiguration, 0, size) {
            Ok(Some(b)) => b,
            Ok(None) => {
                adapter::log(Level::Error, "llm-gateway: no plugin configuration given");
                return false;
            }
            Err(e) => {
                adapter::log(
                    Level::Error,
                    &format!("llm-gateway: cannot read plugin configuration: {e:?}"),
                );
                return false;
            }
        };
        let env = |name: &str| std::env::var(name).ok();
        match PluginConfig::from_json(&bytes).and_then(|c| compile(&c, &env)) {
            Ok(gw) => {
                let unavailable = gw.providers.iter().filter_map(|p| p.unavailable.as_ref());
                for why in unavailable.chain(gw.warnings.iter()) {
                    adapter::log(Level::Warn, &format!("llm-gateway: {why}"));
                }
                let now = abi::now_nanos().unwrap_or(0);
                // A reload keeps the state of what stays, drops the rest.
                let dropped = gw.forget_removed_state(&adapter::ProxyStore);
                match dropped.and_then(|d| Ok((d, gw.precreate_state(&adapter::ProxyStore, now)?))) {
                    Ok((dropped, keys)) => adapter::log(
                        Level::Info,
                        &format!(
                            "llm-gateway: configured {} providers, {} models, {keys} limit keys; dropped the state of {dropped} removed keys",
                            gw.providers.len(),
                            gw.models.len()
                        ),
                    ),
                    Err(e) => {
                        adapter::log(
                            Level::Error,
                            &format!(
                                "llm-gateway: cannot create rate-limit state in shared data: {e:?}"
                            ),
                        );
                        return false;
                    }
                }
                // Token providers are refreshed, and their waiting requests
                // woken, on the root's timer.
                let period = if gw.providers.iter().any(|p| p.token.is_some()) {
                    tokens::TICK_MS
                } else {
                    0
                };
                let _ = proxy_wasm::hostcalls::set_tick_period(std::time::Duration::from_millis(
                    period,
                ));
                self.gateway = Some(Rc::new(gw));
                true
            }
            Err(e) => {
                adapter::log(Level::Error, &format!("llm-gateway: {e}"));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(gw) = &self.gateway {
            self.tokens.tick(gw, &self.metric_ids);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HttpStream::new(
            self.gateway.clone(),
            self.placement,
            Rc::clone(&self.metric_ids),
            context_id,
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
