//! OpenAI-style rate-limit response headers.

use super::Reservation;
use crate::ratelimit::Admission;

/// A wait as OpenAI writes it: `20ms`, `1s`, `6m0s`, `1h2m3s`.
pub fn reset_string(ms: u64) -> String {
    if ms == u64::MAX {
        return "never".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms.div_ceil(1000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn push(out: &mut Vec<(String, String)>, kind: &str, a: &Admission) {
    out.push((format!("x-ratelimit-limit-{kind}"), a.limit.to_string()));
    out.push((
        format!("x-ratelimit-remaining-{kind}"),
        a.remaining.to_string(),
    ));
    out.push((
        format!("x-ratelimit-reset-{kind}"),
        reset_string(a.reset_after_ms),
    ));
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the tightest
/// request and token limits that applied.
pub fn rate_limit_headers(t: &Reservation) -> Vec<(String, String)> {
    limit_headers(t.requests.as_ref(), t.tokens.as_ref())
}

/// The same headers for any pair of tightest limits.
pub fn limit_headers(
    requests: Option<&Admission>,
    tokens: Option<&Admission>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(a) = requests {
        push(&mut out, "requests", a);
    }
    if let Some(a) = tokens {
        push(&mut out, "tokens", a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_strings() {
        assert_eq!(reset_string(17), "17ms");
        assert_eq!(reset_string(1000), "1s");
        assert_eq!(reset_string(1001), "2s");
        assert_eq!(reset_string(360_000), "6m0s");
        assert_eq!(reset_string(3_723_000), "1h2m3s");
        assert_eq!(reset_string(u64::MAX), "never");
    }
}
