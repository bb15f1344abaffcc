//! The root context's side of access tokens: on its timer it claims due
//! refreshes (one worker wins each, by compare-and-set in shared data),
//! calls the token endpoint, stores the answer, and wakes the requests of
//! this worker that wait for a token.

use super::abi::{self, Level};
use super::adapter::{self, MetricIds, ProxyHost, ProxyStore};
use crate::config::Gateway;
use crate::flow::StreamFlow;
use crate::tokens::{cache, TokenSource, LEASE_NS};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

/// How often the root looks at tokens and waiting requests.
pub const TICK_MS: u64 = 100;

/// A request of this worker held for its provider's token.
struct Waiter {
    context_id: u32,
    flow: Weak<RefCell<StreamFlow>>,
}

thread_local! {
    static WAITERS: RefCell<Vec<Waiter>> = const { RefCell::new(Vec::new()) };
    /// Requests sent once more from the root's timer (a refused token):
    /// their callouts answer the root, which hands the answer over.
    static RETRIES: RefCell<Vec<(u32, Waiter)>> = const { RefCell::new(Vec::new()) };
}

/// Holds `flow` (context `context_id`) until its token comes.
pub fn wait(context_id: u32, flow: &Rc<RefCell<StreamFlow>>) {
    WAITERS.with(|w| {
        let mut w = w.borrow_mut();
        if !w.iter().any(|x| x.context_id == context_id) {
            w.push(Waiter {
                context_id,
                flow: Rc::downgrade(flow),
            });
        }
    });
}

/// Lets each waiting request look for its token again; drops the ones
/// that stopped waiting or are gone.
fn wake(metric_ids: &MetricIds) {
    let waiters = WAITERS.with(|w| std::mem::take(&mut *w.borrow_mut()));
    let mut still = Vec::new();
    for waiter in waiters {
        let Some(flow) = waiter.flow.upgrade() else {
            continue;
        };
        if proxy_wasm::hostcalls::set_effective_context(waiter.context_id).is_err() {
            continue;
        }
        let mut host = ProxyHost::new(Rc::clone(metric_ids));
        let (done, callout) = match flow.try_borrow_mut() {
            Ok(mut f) => (f.on_token_tick(&mut host), f.retry_callout()),
            Err(_) => (false, None),
        };
        if let Some(token_id) = callout {
            RETRIES.with(|r| r.borrow_mut().push((token_id, waiter)));
        } else if !done {
            still.push(waiter);
        }
    }
    WAITERS.with(|w| w.borrow_mut().extend(still));
}

/// Hands a callout's answer to the request that sent itself once more;
/// false when the callout is not one of those.
pub fn deliver(token_id: u32, status: Option<u16>, body: &[u8], metric_ids: &MetricIds) -> bool {
    let found = RETRIES.with(|r| {
        let mut r = r.borrow_mut();
        let i = r.iter().position(|(id, _)| *id == token_id)?;
        Some(r.swap_remove(i).1)
    });
    let Some(waiter) = found else {
        return false;
    };
    let Some(flow) = waiter.flow.upgrade() else {
        return true;
    };
    if proxy_wasm::hostcalls::set_effective_context(waiter.context_id).is_err() {
        return true;
    }
    let mut host = ProxyHost::new(Rc::clone(metric_ids));
    if let Ok(mut f) = flow.try_borrow_mut() {
        f.on_callout_response(&mut host, status, body);
    }
    true
}

/// The root's token work: calls in flight, by callout token.
#[derive(Default)]
pub struct Refresher {
    in_flight: HashMap<u32, Rc<TokenSource>>,
}

impl Refresher {
    /// One timer tick.
    pub fn tick(&mut self, gw: &Gateway, metric_ids: &MetricIds) {
        let now = abi::now_nanos().unwrap_or(0);
        for source in gw.providers.iter().filter_map(|p| p.token.as_ref()) {
            match cache::claim(&ProxyStore, &source.key, now, LEASE_NS) {
                Ok(true) => self.call(source, now),
                Ok(false) => {}
                Err(e) => adapter::log(
                    Level::Warn,
                    &format!(
                        "llm-gateway: provider '{}': token state: {e:?}",
                        source.provider
                    ),
                ),
            }
        }
        wake(metric_ids);
    }

    fn call(&mut self, source: &Rc<TokenSource>, now: u64) {
        let (headers, body) = source.request(now);
        // Building it signs a JWT for service accounts: say what it cost.
        let built_us = abi::now_nanos().unwrap_or(now).saturating_sub(now) / 1_000;
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match abi::http_call(&source.cluster, &pairs, &body, u64::from(source.timeout_ms)) {
            Ok(token_id) => {
                adapter::log(
                    Level::Info,
                    &format!(
                        "llm-gateway: provider '{}': fetching an access token ({:?}, request built in {built_us} µs)",
                        source.provider, source.exchange
                    ),
                );
                self.in_flight.insert(token_id, Rc::clone(source));
            }
            Err(e) => {
                adapter::log(
                    Level::Warn,
                    &format!(
                        "llm-gateway: provider '{}': cannot call its token endpoint: {e}",
                        source.provider
                    ),
                );
                let _ = cache::fail(&ProxyStore, &source.key, now);
            }
        }
    }

    /// The token endpoint answered (or the call failed: no status).
    pub fn on_response(
        &mut self,
        token_id: u32,
        status: Option<u16>,
        body: &[u8],
        metric_ids: &MetricIds,
    ) {
        let Some(source) = self.in_flight.remove(&token_id) else {
            deliver(token_id, status, body, metric_ids);
            return;
        };
        let now = abi::now_nanos().unwrap_or(0);
        match source.parse(status, body, now) {
            Ok(issued) => {
                let stored = cache::fulfil(
                    &ProxyStore,
                    &source.key,
                    &issued.token,
                    issued.expires_ns,
                    issued.refresh_ns,
                );
                let secs = issued.expires_ns.saturating_sub(now) / 1_000_000_000;
                match stored {
                    Ok(()) => adapter::log(
                        Level::Info,
                        &format!(
                            "llm-gateway: provider '{}': new access token, valid for {secs} s",
                            source.provider
                        ),
                    ),
                    Err(e) => adapter::log(
                        Level::Warn,
                        &format!(
                            "llm-gateway: provider '{}': cannot store its access token: {e:?}",
                            source.provider
                        ),
                    ),
                }
            }
            Err(why) => {
                let failures = cache::fail(&ProxyStore, &source.key, now).unwrap_or(0);
                adapter::log(
                    Level::Warn,
                    &format!(
                        "llm-gateway: provider '{}': no access token ({failures} failure(s) in a row): {why}",
                        source.provider
                    ),
                );
            }
        }
    }
}
