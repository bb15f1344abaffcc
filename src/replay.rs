//! Signed requests (a consumer with a `signing_secret`): the timestamp
//! window, the signature, and each nonce admitted once.
//!
//! Nonces are remembered in shared data, in a fixed number of buckets
//! (`auth.nonce_slots`, pre-created) of at most [`PER_SLOT`] entries, each
//! entry a 64-bit hash of consumer and nonce with the time it may be
//! forgotten (its timestamp plus the window: after that the timestamp check
//! refuses a replay anyway). Memory is bounded by the bucket count; when a
//! bucket is full of live entries a new nonce is refused (429) rather than
//! an old one forgotten, so no replay gets through inside the window. A
//! bucket is updated by compare-and-set: of concurrent requests with the
//! same nonce exactly one is admitted.

use crate::consumers::{Consumer, SigningKey};
use crate::error::ApiError;
use crate::host::SharedStore;
use crate::secrets::signature::{self, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::state::{cas_update, ensure_state, keys, kind, Codec, Contention, Reader, Step, Writer};
use sha2::{Digest, Sha256};

/// Entries per nonce bucket.
pub const PER_SLOT: usize = 32;
const VERSION: u8 = 1;
const MAX_RETRIES: u32 = 32;

/// One bucket: (hash, forget after, Unix seconds).
#[derive(Debug, Default, PartialEq)]
struct Bucket(Vec<(u64, u64)>);

impl Codec for Bucket {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(kind::NONCES, VERSION, 2 + 16 * self.0.len());
        for &(h, until) in &self.0 {
            w = w.u64(h).u64(until);
        }
        w.finish()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::open(bytes, kind::NONCES, VERSION)?;
        let mut out = Vec::new();
        while !r.done() {
            out.push((r.u64()?, r.u64()?));
            if out.len() > PER_SLOT {
                return None;
            }
        }
        Some(Bucket(out))
    }
}

fn nonce_hash(consumer: &str, nonce: &str) -> u64 {
    let d = Sha256::new()
        .chain_update(consumer.as_bytes())
        .chain_update(b"\n")
        .chain_update(nonce.as_bytes())
        .finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

fn unauthorized(message: &str, code: &'static str) -> ApiError {
    ApiError::new(401, "authentication_error", message).with_code(code)
}

/// What a signed request carries.
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// Checks a consumer's signed request and remembers its nonce; `Ok` admits
/// it. `window_s` is `auth.signature_window_seconds`, `now_s` Unix seconds.
pub fn admit(
    store: &dyn SharedStore,
    consumer: &Consumer,
    req: &Signed,
    window_s: u64,
    slots: u32,
    now_s: u64,
) -> Result<(), ApiError> {
    let secret = match &consumer.signing {
        None => return Ok(()),
        Some(SigningKey::Secret(s)) => s,
        Some(SigningKey::Missing(_)) => return Err(unauthorized(
            "This API key must sign its requests, and the gateway has no signing secret for it.",
            "invalid_signature",
        )),
    };
    let (Some(ts), Some(nonce), Some(sig)) = (req.timestamp, req.nonce, req.signature) else {
        return Err(unauthorized(
            &format!("This API key must sign its requests: send {TIMESTAMP_HEADER}, {NONCE_HEADER} and {SIGNATURE_HEADER}."),
            "invalid_signature",
        ));
    };
    let ts_s: u64 = ts.trim().parse().map_err(|_| {
        unauthorized(
            &format!("{TIMESTAMP_HEADER} must be Unix seconds."),
            "invalid_signature",
        )
    })?;
    if ts_s.abs_diff(now_s) > window_s {
        return Err(unauthorized(
            &format!("The request's timestamp is more than {window_s} s from the gateway's clock."),
            "timestamp_out_of_window",
        ));
    }
    if !signature::valid_nonce(nonce) {
        return Err(unauthorized(
            &format!("{NONCE_HEADER} must be 16 to 64 characters of A-Z, a-z, 0-9, '-', '_'."),
            "invalid_signature",
        ));
    }
    let message = signature::canonical(req.method, req.path, ts.trim(), nonce, req.body);
    if !signature::verify(secret.as_bytes(), message.as_bytes(), sig) {
        return Err(unauthorized(
            "The request's signature does not match.",
            "invalid_signature",
        ));
    }
    remember(
        store,
        &consumer.name,
        nonce,
        ts_s.saturating_add(window_s),
        slots,
        now_s,
    )
}

/// Creates every nonce bucket (configure time), so that admitting a nonce
/// always compare-and-sets an existing key; returns how many.
pub fn precreate(store: &dyn SharedStore, slots: u32) -> Result<usize, Contention> {
    let all = keys::nonce_slots(slots);
    for key in &all {
        ensure_state(store, key, Bucket::default())?;
    }
    Ok(all.len())
}

/// Records a nonce; refuses one already recorded (a replay) or a full bucket.
fn remember(
    store: &dyn SharedStore,
    consumer: &str,
    nonce: &str,
    until_s: u64,
    slots: u32,
    now_s: u64,
) -> Result<(), ApiError> {
    let hash = nonce_hash(consumer, nonce);
    let key = keys::nonce_slot(consumer, nonce, slots);
    let outcome =
        cas_update(
            store,
            &key,
            MAX_RETRIES,
            Bucket::default,
            |Bucket(mut entries)| {
                entries.retain(|&(_, until)| until >= now_s);
                if entries.iter().any(|&(h, _)| h == hash) {
                    return Step::Keep(Err(unauthorized(
                        "This request was already received (its nonce was used).",
                        "request_replayed",
                    )));
                }
                if entries.len() >= PER_SLOT {
                    let free_in = entries.iter().map(|&(_, u)| u).min().unwrap_or(now_s);
                    let free_in = free_in.saturating_sub(now_s).saturating_add(1);
                    return Step::Keep(Err(ApiError::new(
                429,
                "rate_limit_error",
                format!("Too many signed requests within the replay window; retry in {free_in} s."),
            )
            .with_code("nonce_capacity_exceeded")));
                }
                entries.push((hash, until_s));
                Step::Write(Bucket(entries), Ok(()))
            },
        );
    match outcome {
        Ok(r) => r,
        // Fail closed: a nonce that cannot be recorded is not admitted.
        Err(Contention::RetriesExhausted | Contention::StoreFailed) => Err(ApiError::new(
            503,
            "api_error",
            "The gateway could not record the request's nonce; retry.",
        )
        .with_code("nonce_store_unavailable")),
    }
}

#[cfg(test)]
mod tests;
