//! What the OAuth-style token endpoints share (Baidu AIP's for ERNIE,
//! Google's for Vertex AI and the GCE metadata server): the store of issued
//! access tokens (expiry, revocation, counts, the `/__mock/*/revoke` and
//! `/__mock/*/tokens` admin answers), OAuth JSON errors and form parameters.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::common::{json_resp, query_param, with_key, Resp};

// ---------------------------------------------------------------------------
// Access tokens

struct Entry {
    /// `None`: the lifetime is too long to represent (never expires).
    expires: Option<Instant>,
    revoked: bool,
}

#[derive(Default)]
struct Table {
    issued: u64,
    tokens: HashMap<String, Entry>,
}

/// The access tokens one token endpoint of this server process issued.
pub struct Tokens {
    ttl: u64,
    /// Differs between processes, so tokens are unique per server process.
    nonce: u64,
    table: Mutex<Table>,
}

/// What a presented access token is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenState {
    Valid,
    Expired,
    /// Unknown or revoked.
    Invalid,
}

/// A bijective 64-bit mixer (SplitMix64's finaliser).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One issued token: what `Tokens::issue`'s closure is given.
pub struct Issue<'a> {
    /// 32 hex digits, unique per token and per server process.
    pub unique: &'a str,
    /// The token's number (1 for the first one issued).
    pub n: u64,
    /// The store's per-process nonce (for derived values such as refresh tokens).
    pub nonce: u64,
}

impl Tokens {
    /// A store whose tokens live `ttl` seconds.
    pub fn new(ttl: u64) -> Tokens {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Tokens {
            ttl,
            nonce: mix(nanos ^ (u64::from(std::process::id()) << 32)),
            table: Mutex::new(Table::default()),
        }
    }

    /// The tokens' lifetime in seconds (`expires_in`).
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        match self.table.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Issue a new token, spelled by `spell` from its unique part; earlier
    /// tokens stay valid.
    pub fn issue(&self, spell: impl FnOnce(&Issue<'_>) -> String) -> String {
        let mut t = self.lock();
        t.issued += 1;
        let n = t.issued;
        // `mix` is a bijection, so distinct `n` give distinct tokens.
        let unique = format!(
            "{:016x}{:016x}",
            self.nonce,
            mix(self.nonce.wrapping_add(n))
        );
        let token = spell(&Issue {
            unique: &unique,
            n,
            nonce: self.nonce,
        });
        let expires = Instant::now().checked_add(Duration::from_secs(self.ttl));
        t.tokens.insert(
            token.clone(),
            Entry {
                expires,
                revoked: false,
            },
        );
        token
    }

    pub fn check(&self, token: &str) -> TokenState {
        let t = self.lock();
        match t.tokens.get(token) {
            None => TokenState::Invalid,
            Some(e) if e.revoked => TokenState::Invalid,
            Some(e) if e.expires.is_some_and(|x| Instant::now() >= x) => TokenState::Expired,
            Some(_) => TokenState::Valid,
        }
    }

    /// Revoke every token issued so far; returns how many were not revoked yet.
    pub fn revoke_all(&self) -> u64 {
        let mut t = self.lock();
        let mut n = 0;
        for e in t.tokens.values_mut().filter(|e| !e.revoked) {
            e.revoked = true;
            n += 1;
        }
        n
    }

    /// `(issued, valid)`: tokens issued, and those neither expired nor revoked.
    pub fn counts(&self) -> (u64, u64) {
        let t = self.lock();
        let now = Instant::now();
        let valid = t
            .tokens
            .values()
            .filter(|e| !e.revoked && e.expires.is_none_or(|x| now < x))
            .count() as u64;
        (t.issued, valid)
    }
}

/// `POST /__mock/<provider>/revoke` → `{"revoked": n}`.
pub fn admin_revoke(tokens: &Tokens) -> Resp {
    json_resp(200, &json!({"revoked": tokens.revoke_all()}))
}

/// `GET /__mock/<provider>/tokens` → `{"issued": n, "valid": m}`.
pub fn admin_tokens(tokens: &Tokens) -> Resp {
    let (issued, valid) = tokens.counts();
    json_resp(200, &json!({"issued": issued, "valid": valid}))
}

// ---------------------------------------------------------------------------
// OAuth errors (RFC 6749 §5.2) and parameters

/// `{"error": error, "error_description": description}`.
pub fn error(status: u16, error: &str, description: &str) -> Resp {
    json_resp(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// The `error` code and a description for an HTTP status.
fn status_error_text(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => (
            "invalid_request",
            "The request is missing a required parameter",
        ),
        401 => ("invalid_client", "Client authentication failed"),
        403 => (
            "unauthorized_client",
            "The client is not authorized to use this grant type",
        ),
        429 | 503 => (
            "temporarily_unavailable",
            "The service is temporarily unavailable, please try again later",
        ),
        s if s >= 500 => ("server_error", "The server encountered an unexpected error"),
        _ => ("invalid_request", "The request is invalid"),
    }
}

/// A generic token-endpoint error (knob parse errors, 413).
pub fn generic_error(status: u16, message: &str) -> Resp {
    error(status, status_error_text(status).0, message)
}

/// Default body of `x-mock-status` on a token endpoint; with
/// `x-mock-echo-key`, the credential is the `error` and ends the description.
pub fn status_error(status: u16, key: Option<&str>) -> Resp {
    let (code, description) = status_error_text(status);
    match key {
        Some(k) => error(status, k, &with_key(description, k)),
        None => error(status, code, description),
    }
}

pub fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A parameter of an `application/x-www-form-urlencoded` body (`None` when
/// the body is of another type).
pub fn form_param(content_type: Option<&str>, body: &[u8], name: &str) -> Option<String> {
    if is_form(content_type) {
        query_param(Some(&String::from_utf8_lossy(body)), name)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_are_revoked() {
        let t = Tokens::new(3600);
        let a = t.issue(|i| format!("tok.{}", i.unique));
        let b = t.issue(|i| format!("tok.{}.{}", i.unique, i.n));
        assert_ne!(a, b);
        assert!(b.ends_with(".2"), "{b}");
        assert_eq!(a.len(), 4 + 32);
        assert_eq!(t.ttl(), 3600);
        assert_eq!(t.check(&a), TokenState::Valid);
        assert_eq!(t.check("tok.nope"), TokenState::Invalid);
        assert_eq!(t.counts(), (2, 2));
        assert_eq!(t.revoke_all(), 2);
        assert_eq!(t.revoke_all(), 0);
        assert_eq!(t.check(&a), TokenState::Invalid);
        assert_eq!(t.counts(), (2, 0));
        let c = t.issue(|i| i.unique.to_string());
        assert_eq!(t.check(&c), TokenState::Valid);
        assert_eq!(t.counts(), (3, 1));

        let short = Tokens::new(1);
        let s = short.issue(|i| i.unique.to_string());
        if let Ok(mut table) = short.table.lock() {
            if let Some(e) = table.tokens.get_mut(&s) {
                e.expires = Instant::now().checked_sub(Duration::from_millis(1));
            }
        }
        assert_eq!(short.check(&s), TokenState::Expired);
        assert_eq!(short.counts(), (1, 0));
        // A lifetime too long for `Instant` never expires.
        let forever = Tokens::new(u64::MAX);
        let f = forever.issue(|i| i.unique.to_string());
        assert_eq!(forever.check(&f), TokenState::Valid);
    }

    #[test]
    fn form_parameters() {
        let form = Some("application/x-www-form-urlencoded; charset=utf-8");
        assert_eq!(
            form_param(form, b"a=1&b=x%2By", "b").as_deref(),
            Some("x+y")
        );
        assert_eq!(form_param(Some("application/json"), b"a=1", "a"), None);
        assert_eq!(form_param(None, b"a=1", "a"), None);
    }
}
