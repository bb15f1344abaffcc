//! Admission before a request can cost anything (rate limits, quotas, the
//! target's adaptive limit), and settling it afterwards: reservations,
//! passive health of targets and keys.

use super::{StreamFlow, Verdict, TARGET_HEADER};
use crate::admission::{self, Facts};
use crate::config::Target;
use crate::error::ApiError;
use crate::health;
use crate::host::{Host, LogLevel};
use crate::metrics;
use crate::ratelimit::{adaptive, Feedback};
use crate::state::keys;
use crate::wire::openai::ParsedRequest;
use std::rc::Rc;

impl StreamFlow {
    /// Rate limits, quotas and the target's adaptive limit, checked and
    /// reserved before the request can cost anything. `Err` carries the
    /// verdict of the refusal already sent.
    pub(super) fn admit(
        &mut self,
        host: &mut dyn Host,
        req: &ParsedRequest,
        model: &str,
        target: &Target,
    ) -> Result<(), Verdict> {
        let gw = Rc::clone(&self.gw);
        let consumer = self.consumer.and_then(|i| gw.consumers.get(i));
        // Counting tokens costs nothing and generates nothing.
        if self.api == crate::wire::Api::CountTokens {
            return Ok(());
        }
        // Nothing to check or reserve: skip the facts (a hostcall for the
        // client address, a pass over the prompt).
        if !gw.rules.rules.is_empty() || consumer.is_some_and(|c| c.quotas().next().is_some()) {
            self.admit_limits(host, req, model, consumer.map(|c| c.name.as_str()))?;
        }
        self.admit_adaptive(host, model, target)
    }

    /// Rate-limit rules and the consumer's quotas.
    fn admit_limits(
        &mut self,
        host: &mut dyn Host,
        req: &ParsedRequest,
        model: &str,
        consumer: Option<&str>,
    ) -> Result<(), Verdict> {
        let gw = Rc::clone(&self.gw);
        let now = host.now_nanos();
        let ip = client_ip(&*host, gw.rules.trusted_hops);
        let request = self.facts(req);
        let (prompt_tokens, max_tokens) = (request.prompt_tokens, request.max_tokens);
        let (outcome, cluster) = {
            let reader: &dyn Host = &*host;
            let header = |name: &str| reader.request_header(name);
            let facts = Facts {
                consumer,
                model,
                route: self.telemetry.operation,
                client_ip: ip.as_deref(),
                header: &header,
                prompt_tokens,
                max_tokens,
            };
            let outcome = admission::admit(&gw.rules, &gw.consumers, reader.store(), &facts, now);
            let cluster = outcome
                .is_ok()
                .then(|| admission::cluster::plan(&gw.rules, &gw.consumers, &facts, now))
                .flatten();
            (outcome, cluster)
        };
        if let Some((values, hold)) = cluster {
            for (name, value) in &values {
                host.set_stream_value(name, value);
            }
            self.cluster = Some(hold);
        }
        match outcome {
            Ok(reservation) => self.reservation = Some(reservation),
            Err(refusal) => {
                host.metric(&metrics::rate_limited(&refusal.limit));
                let headers: Vec<(&str, &str)> = refusal
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                return Err(self.fail_with(host, &refusal.error, &headers));
            }
        }
        Ok(())
    }

    /// The target's adaptive concurrency limit, when its provider has one.
    fn admit_adaptive(
        &mut self,
        host: &mut dyn Host,
        model: &str,
        target: &Target,
    ) -> Result<(), Verdict> {
        let gw = Rc::clone(&self.gw);
        let provider = &gw.providers[target.provider];
        // A failover request may be served by another target: its attempts
        // are not counted against this one's adaptive limit.
        let pooled = gw.model(model).is_some_and(|m| m.failover);
        let Some(spec) = provider.adaptive.filter(|_| !pooled) else {
            return Ok(());
        };
        let key = keys::adaptive(&provider.name, &target.model);
        // Read only now: a clock read is a hostcall in Envoy.
        let now = host.now_nanos();
        match adaptive::acquire(host.store(), &key, &spec, now, admission::MAX_CAS_RETRIES) {
            Ok(Some(limit)) => {
                host.metric(&metrics::adaptive_limit(
                    &provider.name,
                    &target.model,
                    limit,
                ));
                self.adaptive = Some((key, spec, now));
                Ok(())
            }
            Err(_) if gw.rules.fail_open => Ok(()),
            Ok(None) | Err(_) => {
                if let Some(reservation) = self.reservation.take() {
                    admission::release(&reservation, host.store(), now);
                }
                host.metric(&metrics::rate_limited("adaptive_concurrency"));
                let e = ApiError::new(
                    503,
                    "api_error",
                    format!(
                        "Provider '{}' is at its adaptive concurrency limit for model '{}'; retry shortly.",
                        provider.name, target.model
                    ),
                )
                .with_code("target_overloaded");
                Err(self.fail_with(host, &e, &[("retry-after", "1")]))
            }
        }
    }

    /// Settles reservations with what the request really used.
    pub(super) fn settle(&mut self, host: &mut dyn Host, now: u64) {
        if !self.pooled && !self.cluster_refused {
            // Pool attempts record their own health upstream.
            self.record_target_health(host, now);
        }
        if let Some(in_flight) = self.in_flight.take() {
            let ok = (200..300).contains(&self.telemetry.status);
            let ttfb = self.telemetry.first_byte_ms().filter(|_| ok);
            let _ = crate::route_select::on_finish(host.store(), in_flight, ttfb, now);
        }
        let t = &self.telemetry;
        let success = (200..300).contains(&t.status) && !t.stream_error;
        if let Some(reservation) = self.reservation.take() {
            if self.phase == super::Phase::Answered || self.cluster_refused {
                // Refused after admission (e.g. the provider's translation
                // rejected it): it never reached a provider.
                admission::release(&reservation, host.store(), now);
            } else {
                admission::reconcile(&reservation, host.store(), t.usage.as_ref(), success, now);
            }
        }
        if let Some((key, spec, taken)) = self.adaptive.take() {
            let feedback = match t.status {
                429 | 500..=599 => Feedback::Overloaded,
                200..=299 if !t.stream_error => Feedback::Success {
                    latency_ms: t.first_byte_ms().unwrap_or(0),
                },
                _ => Feedback::Ignore,
            };
            let store = host.store();
            let _ = adaptive::release(
                store,
                &key,
                &spec,
                feedback,
                taken,
                now,
                admission::MAX_CAS_RETRIES,
            );
            let limit = adaptive::current_limit(store, &key, &spec);
            if let Some((provider, model)) = &self.target {
                let name = self.gw.providers[*provider].name.clone();
                host.metric(&metrics::adaptive_limit(&name, model, limit));
            }
        }
    }

    /// Tells Envoy's rate-limit filter what the request used, for the
    /// cluster token rules it settles when the stream is done (after the
    /// log, where this runs: the tests' token counts depend on it).
    pub(super) fn settle_cluster(&mut self, host: &mut dyn Host) {
        let Some(hold) = &self.cluster else {
            return;
        };
        let t = &self.telemetry;
        let success = (200..300).contains(&t.status) && !t.stream_error && !self.cluster_refused;
        for (name, value) in admission::cluster::settlement(hold, t.usage.as_ref(), success) {
            host.set_stream_value(&name, &value);
        }
    }

    /// A key answered 401/403 is disabled; 429 cools it down.
    pub(super) fn record_key_health(&self, host: &dyn Host, status: u16) {
        let (Some((provider, _)), Some(k)) = (&self.target, self.key) else {
            return;
        };
        let p = &self.gw.providers[*provider];
        let (true, Some(key)) = (p.keys.len() >= 2, p.keys.get(k)) else {
            return;
        };
        let observation = match status {
            401 | 403 => health::Observation::Disabled,
            429 => health::Observation::Throttled {
                retry_after_ms: retry_after_ms(host),
            },
            200..=299 => health::Observation::Success,
            _ => health::Observation::Neutral,
        };
        let spec = health::HealthSpec::default();
        if health::record(
            host.store(),
            &keys::provider_key_health(&p.name, &key.id),
            &spec,
            observation,
            host.now_nanos(),
        ) {
            host.log(
                LogLevel::Warn,
                &format!(
                    "provider '{}': key #{} taken out of rotation after HTTP {status}",
                    p.name,
                    k + 1
                ),
            );
        }
    }

    /// Passive health: failures eject the target, 429 cools it down.
    pub(super) fn record_target_health(&self, host: &mut dyn Host, now: u64) {
        let Some((provider, model)) = &self.target else {
            return;
        };
        let status = self.telemetry.status;
        let observation = match status {
            _ if self.telemetry.client_closed => health::Observation::Neutral,
            200..=299 if !self.telemetry.stream_error => health::Observation::Success,
            429 => health::Observation::Throttled {
                retry_after_ms: self.retry_after_ms,
            },
            0 | 500..=599 => health::Observation::Failure,
            200..=299 => health::Observation::Failure,
            _ => health::Observation::Neutral,
        };
        let p = &self.gw.providers[*provider];
        let key = keys::target_health(&p.name, model);
        if health::record(host.store(), &key, &self.gw.health, observation, now) {
            host.metric(&metrics::ejection(p.kind, &p.name, model));
            host.log(
                LogLevel::Warn,
                &format!("target {}/{model} ejected after HTTP {status}", p.name),
            );
        }
    }

    /// Fills in provider and model from the header the attempt set.
    pub(super) fn observe_pool_target(&mut self, host: &dyn Host) {
        let Some(label) = host.response_header(TARGET_HEADER) else {
            return;
        };
        let Some((name, model)) = label.split_once('/') else {
            return;
        };
        if let Some(p) = self.gw.providers.iter().find(|p| p.name == name) {
            self.telemetry.provider = Some((p.name.clone(), p.kind));
            self.telemetry.response_model = Some(model.to_string());
        }
    }
}

/// The response's `retry-after`, in ms (seconds form only).
pub(super) fn retry_after_ms(host: &dyn Host) -> Option<u64> {
    host.response_header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000))
}

/// The client's IP: with `trusted_hops` proxies in front of Envoy, the
/// `x-forwarded-for` entry that many from the right; else the TCP peer.
pub(crate) fn client_ip(host: &dyn Host, trusted_hops: u32) -> Option<String> {
    if trusted_hops > 0 {
        let xff = host.request_header("x-forwarded-for").unwrap_or_default();
        let hops: Vec<&str> = xff
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let n = trusted_hops as usize;
        if hops.len() >= n {
            return hops.get(hops.len() - n).map(|h| h.to_string());
        }
    }
    host.client_address()
}
