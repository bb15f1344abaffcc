//! Guardrails in the flow: the request's text checked (and masked) before
//! it is routed, an external moderation callout that holds the request,
//! the response checked as a whole or, for streams, event by event.

use super::{Phase, StreamFlow, Verdict};
use crate::guardrails::{
    blocked_request, flagged, unavailable, Direction, GuardSet, Hit, ModerationVerdict,
    StreamGuard, Tally,
};
use crate::host::{Host, LogLevel};
use crate::metrics;
use crate::wire::hub::{ChatResponse, FinishReason};
use crate::wire::openai::ParsedRequest;
use crate::wire::Api;
use std::rc::Rc;

/// Stream value carrying a failover request's response rules to each
/// attempt (a hex bitset).
pub const GUARD_KEY: &str = "llmgw.guard";
/// Stream value in which an attempt hands its response hits back.
pub const GUARD_HITS_KEY: &str = "llmgw.guard_hits";

/// A request held while its moderation callout is out.
pub(super) struct Held {
    pub req: ParsedRequest,
    pub model: usize,
    pub upstream: Option<String>,
    pub rule: usize,
}

impl StreamFlow {
    /// The rules of this request: the model's and the consumer's.
    fn guard_set(&self, model: usize) -> GuardSet {
        let consumer = self
            .consumer
            .and_then(|i| self.gw.consumers.get(i))
            .map(|c| c.guardrails)
            .unwrap_or_default();
        self.gw.models[model].guardrails.union(consumer)
    }

    /// Checks the request's text; masks it in place (re-serialising the
    /// body). `Err`: refused, answered.
    pub(super) fn screen_request(
        &mut self,
        host: &mut dyn Host,
        req: &mut ParsedRequest,
        model: usize,
    ) -> Result<(), Verdict> {
        let (request, response) = self.gw.guardrails.split(self.guard_set(model));
        let chat = self.api.operation() == crate::providers::Operation::ChatCompletions
            && self.api != Api::CountTokens;
        if chat {
            self.guard_response = response;
        }
        if request.is_empty() {
            return Ok(());
        }
        let rules = Rc::clone(&self.gw.guardrails);
        let mut tally = self.guard_tally.borrow_mut();
        let mut blocked = None;
        let mut masked = false;
        let mut body = req.take_body();
        self.api.visit_text(&mut body, &mut |text| {
            if blocked.is_some() {
                return;
            }
            let (b, m) = rules.check_masked(text, request, Direction::Request, &mut tally);
            blocked = b;
            masked |= m;
        });
        drop(tally);
        if let Some(rule) = blocked {
            let name = rules.rules[rule].name.clone();
            return Err(self.fail(host, &blocked_request(&name)));
        }
        if masked {
            req.raw = serde_json::to_vec(&body).unwrap_or_default();
            self.body_rewritten = true;
        }
        req.put_body(body);
        Ok(())
    }

    /// The moderation rule among the request's rules, if any.
    pub(super) fn moderation_rule(&self, model: usize) -> Option<usize> {
        let (request, _) = self.gw.guardrails.split(self.guard_set(model));
        self.gw.guardrails.moderation(request).map(|(i, _)| i)
    }

    /// Sends the request's text to moderation rule `rule` and holds the
    /// request until the answer (or goes on / refuses at once when the
    /// call cannot be sent).
    pub(super) fn moderate(
        &mut self,
        host: &mut dyn Host,
        req: ParsedRequest,
        model: usize,
        upstream: Option<String>,
        rule: usize,
    ) -> Verdict {
        let gw = Rc::clone(&self.gw);
        let crate::guardrails::RuleKind::Moderation(m) = &gw.guardrails.rules[rule].kind else {
            return self.proceed(host, req, model, upstream);
        };
        let text = self.api.joined_text(req.body());
        let body = m.request_body(&text);
        let len = body.len().to_string();
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":path", &m.target.path),
            (":authority", &m.target.authority),
            ("content-type", "application/json"),
            ("content-length", &len),
        ];
        if let Some((name, value)) = &m.target.auth {
            headers.push((name.as_str(), value.as_str()));
        }
        match host.dispatch_call(&m.target.cluster, &headers, &body, m.timeout_ms) {
            Ok(_) => {
                self.phase = Phase::Held;
                self.held = Some(Held {
                    req,
                    model,
                    upstream,
                    rule,
                });
                Verdict::Pause
            }
            Err(why) => {
                let why = format!("the call could not be sent ({why})");
                match self.moderation_failed(host, rule, &why) {
                    Some(v) => v,
                    None => self.proceed(host, req, model, upstream),
                }
            }
        }
    }

    /// The moderation service answered (or timed out).
    pub fn on_callout_response(&mut self, host: &mut dyn Host, status: Option<u16>, body: &[u8]) {
        if self.phase == Phase::RetryCallout {
            return self.on_retry_answer(host, status, body);
        }
        if self.awaits_embedding() {
            return self.on_embedding(host, status, body);
        }
        let Some(held) = self.held.take() else {
            return;
        };
        let gw = Rc::clone(&self.gw);
        let Some((_, m)) = gw
            .guardrails
            .moderation(GuardSet::default().with(held.rule))
        else {
            return;
        };
        let name = gw.guardrails.rules[held.rule].name.clone();
        let verdict = match m.verdict(status, body) {
            ModerationVerdict::Allowed => {
                self.telemetry.moderation = Some((held.rule, "allowed"));
                None
            }
            ModerationVerdict::Flagged(categories) => {
                self.telemetry.moderation = Some((held.rule, "flagged"));
                self.guard_tally
                    .borrow_mut()
                    .add(held.rule, Direction::Request, 1);
                self.guard_tally.borrow_mut().blocked = Some((held.rule, Direction::Request));
                Some(self.fail(host, &flagged(&name, &categories)))
            }
            ModerationVerdict::Failed(why) => self.moderation_failed(host, held.rule, &why),
        };
        if verdict.is_some() {
            return;
        }
        let verdict = self.proceed(host, held.req, held.model, held.upstream);
        if verdict == Verdict::Continue {
            host.resume_request();
        }
    }

    /// No verdict: the rule's failure mode decides. `Some`: answered.
    fn moderation_failed(
        &mut self,
        host: &mut dyn Host,
        rule: usize,
        why: &str,
    ) -> Option<Verdict> {
        let gw = Rc::clone(&self.gw);
        let r = &gw.guardrails.rules[rule];
        let crate::guardrails::RuleKind::Moderation(m) = &r.kind else {
            return None;
        };
        host.log(
            LogLevel::Warn,
            &format!("guardrail '{}': moderation failed: {why}", r.name),
        );
        if m.fail_open {
            self.telemetry.moderation = Some((rule, "failed_open"));
            None
        } else {
            self.telemetry.moderation = Some((rule, "failed_closed"));
            Some(self.fail(host, &unavailable(&r.name, why)))
        }
    }

    /// Response rules apply: the response goes through the hub.
    pub(super) fn screens_response(&self) -> bool {
        !self.guard_response.is_empty()
    }

    /// The stream stage of the response rules, if any.
    pub(super) fn stream_guard(&self) -> Option<StreamGuard> {
        self.screens_response().then(|| {
            StreamGuard::new(
                Rc::clone(&self.gw.guardrails),
                self.guard_response,
                Rc::clone(&self.guard_tally),
            )
        })
    }

    /// Checks a whole response: masks in place; a block empties the choice
    /// and ends it with `content_filter`.
    pub(super) fn screen_response(&mut self, r: &mut ChatResponse) {
        if !self.screens_response() {
            return;
        }
        let rules = Rc::clone(&self.gw.guardrails);
        let mut tally = self.guard_tally.borrow_mut();
        for c in &mut r.choices {
            let mut blocked = false;
            for text in [c.reasoning.as_mut(), c.content.as_mut()]
                .into_iter()
                .flatten()
            {
                blocked |= rules
                    .check(text, self.guard_response, Direction::Response, &mut tally)
                    .is_some();
            }
            if blocked {
                c.content = None;
                c.reasoning = None;
                c.tool_calls.clear();
                c.finish_reason = Some(FinishReason::ContentFilter);
            }
        }
    }

    /// A failover request: the attempt's response hits (once).
    pub(super) fn take_pool_guard_hits(&mut self, host: &dyn Host) {
        if !self.pooled || self.guard_hits_taken {
            return;
        }
        self.guard_hits_taken = true;
        if let Some(v) = host.stream_value(GUARD_HITS_KEY) {
            let mut tally = self.guard_tally.borrow_mut();
            for h in decode_hits(&v) {
                tally.add(h.rule, h.direction, h.count);
            }
        }
    }

    /// The access-log field: `rule:action:direction:count,…` and the
    /// moderation outcome (never the matched text).
    pub(super) fn guardrails_field(&self) -> Option<String> {
        let rules = &self.gw.guardrails.rules;
        let tally = self.guard_tally.borrow();
        let mut field: Vec<String> = tally
            .hits
            .iter()
            .filter_map(|h| {
                let r = rules.get(h.rule)?;
                Some(format!(
                    "{}:{}:{}:{}",
                    r.name,
                    r.action.name(),
                    h.direction.name(),
                    h.count
                ))
            })
            .collect();
        if let Some((rule, outcome)) = self.telemetry.moderation {
            if let Some(r) = rules.get(rule) {
                field.push(format!("{}:moderation:{outcome}", r.name));
            }
        }
        (!field.is_empty()).then(|| field.join(","))
    }

    /// Guardrail hits and moderation outcomes as metrics (at `on_log`).
    pub(super) fn record_guardrails(&mut self, host: &mut dyn Host) {
        self.take_pool_guard_hits(&*host);
        let rules = &self.gw.guardrails.rules;
        for h in &self.guard_tally.borrow().hits {
            let Some(r) = rules.get(h.rule) else {
                continue;
            };
            host.metric(&metrics::guardrail_hits(
                &r.name,
                r.action.name(),
                h.direction.name(),
                u64::from(h.count),
            ));
        }
        if let Some((rule, outcome)) = self.telemetry.moderation {
            if let Some(r) = rules.get(rule) {
                host.metric(&metrics::moderation(&r.name, outcome));
            }
        }
    }

    /// A failover attempt hands its response hits to the downstream filter.
    pub(super) fn hand_over_guard_hits(&self, host: &mut dyn Host) {
        let tally = self.guard_tally.borrow();
        if !tally.hits.is_empty() {
            host.set_stream_value(GUARD_HITS_KEY, &encode_hits(&tally));
        }
    }
}

/// `rule:direction:count;…` (direction 0 request, 1 response).
fn encode_hits(t: &Tally) -> String {
    t.hits
        .iter()
        .map(|h| {
            let d = u8::from(h.direction == Direction::Response);
            format!("{}:{d}:{}", h.rule, h.count)
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn decode_hits(s: &str) -> Vec<Hit> {
    s.split(';')
        .filter_map(|h| {
            let mut f = h.split(':');
            let rule = f.next()?.parse().ok()?;
            let direction = match f.next()? {
                "0" => Direction::Request,
                _ => Direction::Response,
            };
            let count = f.next()?.parse().ok()?;
            Some(Hit {
                rule,
                direction,
                count,
            })
        })
        .collect()
}

/// A response rule set as a stream value, and back.
pub(super) fn encode_set(set: GuardSet) -> String {
    format!("{:x}", set.0)
}

pub(super) fn decode_set(s: &str) -> GuardSet {
    GuardSet(u64::from_str_radix(s, 16).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_and_sets_round_trip_through_stream_values() {
        let mut t = Tally::default();
        t.add(3, Direction::Response, 2);
        t.add(0, Direction::Request, 1);
        assert_eq!(decode_hits(&encode_hits(&t)), t.hits);
        let set = GuardSet::default().with(0).with(63);
        assert_eq!(decode_set(&encode_set(set)), set);
        assert_eq!(decode_set("zz"), GuardSet::default());
    }
}
