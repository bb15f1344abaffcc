//! Every shared-data key the filter uses, in one place: the whole key
//! space. Keys never expire, so each family is bounded by the configuration
//! (values a client controls go through [`super::slots`]).

use super::slots::{all_slot_keys, slot_key};

/// Prefix of a rate-limit rule's keys (and the hash salt of its slots).
fn rate_limit_prefix(rule: &str) -> String {
    format!("llmgw/rl/{rule}")
}

/// A rate-limit rule's bucket for static dimension values (consumer, model,
/// route), e.g. `llmgw/rl/rpm/team-a/chat`.
pub fn rate_limit(rule: &str, values: &[String]) -> String {
    let mut k = rate_limit_prefix(rule);
    for v in values {
        k.push('/');
        k.push_str(v);
    }
    k
}

/// The slot of a rate-limit rule a client-controlled value (IP, header)
/// falls in, e.g. `llmgw/rl/per-ip#17`.
pub fn rate_limit_slot(rule: &str, value: &str, slots: u32) -> String {
    slot_key(&rate_limit_prefix(rule), value, slots)
}

/// Every slot of a rate-limit rule, for pre-creation.
pub fn rate_limit_slots(rule: &str, slots: u32) -> Vec<String> {
    all_slot_keys(&rate_limit_prefix(rule), slots).collect()
}

/// Prefix of the remembered nonces of signed requests.
pub const NONCES: &str = "llmgw/nonce";

/// The nonce bucket a consumer's nonce falls in, e.g. `llmgw/nonce#17`.
pub fn nonce_slot(consumer: &str, nonce: &str, slots: u32) -> String {
    slot_key(NONCES, &format!("{consumer}\n{nonce}"), slots)
}

/// Every nonce bucket, for pre-creation.
pub fn nonce_slots(slots: u32) -> Vec<String> {
    all_slot_keys(NONCES, slots).collect()
}

/// The response cache's entries: `llmgw/cache#<n>`, `n < entries`; a
/// digest picks its slot (`cache`).
pub fn cache_entry(n: u32) -> String {
    format!("llmgw/cache#{n}")
}

/// Every cache entry, for pre-creation and the registry.
pub fn cache_entries(entries: u32) -> impl Iterator<Item = String> {
    (0..entries).map(cache_entry)
}

/// Prefix of a model's semantic-cache index pages (`#<n>` follows).
pub fn cache_index(model: &str) -> String {
    format!("llmgw/cache/sem/{model}")
}

/// The bytes all cache entries hold.
pub const CACHE_BYTES: &str = "llmgw/cache/bytes";

/// A consumer's token quota for one calendar `window` (`day`, `month`).
pub fn quota(consumer: &str, window: &str) -> String {
    format!("llmgw/quota/{consumer}/{window}")
}

/// A target's adaptive concurrency limit.
pub fn adaptive(provider: &str, model: &str) -> String {
    format!("llmgw/adaptive/{provider}/{model}")
}

/// A target's passive health.
pub fn target_health(provider: &str, model: &str) -> String {
    ["llmgw/health/", provider, "/", model].concat()
}

/// A provider key's health, by the key's id (a short digest, never the
/// key): a rotated key starts with fresh health instead of inheriting the
/// cool-down of the key it replaced.
pub fn provider_key_health(provider: &str, key_id: &str) -> String {
    format!("llmgw/keys/{provider}/{key_id}")
}

/// A provider's access token (token-exchange providers), per credential
/// (`credential_id`, a short digest): new credentials start a new token.
pub fn access_token(provider: &str, credential_id: &str) -> String {
    format!("llmgw/token/{provider}/{credential_id}")
}

/// The prefix of a configured model's (pool's) strategy state.
pub fn pool(model: &str) -> String {
    format!("llmgw/pool/{model}")
}

/// A target's id within its pool: position, provider and configured
/// upstream model. It names the target's strategy state, so a changed
/// target gets a new id and fresh state; it is also what sticky splits hash.
pub fn target_id(index: usize, provider: &str, model: &str) -> String {
    format!("{index}:{provider}/{model}")
}

/// A pool's round-robin weights.
pub fn round_robin(pool_key: &str) -> String {
    format!("{pool_key}/rr")
}

/// A target's in-flight count within its pool.
pub fn in_flight(pool_key: &str, target_id: &str) -> String {
    format!("{pool_key}/inflight/{target_id}")
}

/// A target's latency average within its pool.
pub fn latency(pool_key: &str, target_id: &str) -> String {
    format!("{pool_key}/latency/{target_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_pinned() {
        assert_eq!(
            rate_limit("rpm", &["team-a".into(), "chat".into()]),
            "llmgw/rl/rpm/team-a/chat"
        );
        assert_eq!(rate_limit("global", &[]), "llmgw/rl/global");
        assert_eq!(
            rate_limit_slot("ip", "203.0.113.7", 1024),
            slot_key("llmgw/rl/ip", "203.0.113.7", 1024)
        );
        assert_eq!(
            rate_limit_slots("ip", 2),
            ["llmgw/rl/ip#0", "llmgw/rl/ip#1"]
        );
        assert_eq!(quota("team-a", "day"), "llmgw/quota/team-a/day");
        assert_eq!(adaptive("oa", "gpt-4o"), "llmgw/adaptive/oa/gpt-4o");
        assert_eq!(target_health("oa", "gpt-4o"), "llmgw/health/oa/gpt-4o");
        assert_eq!(
            provider_key_health("oa", "9f86d081884c"),
            "llmgw/keys/oa/9f86d081884c"
        );
        let pool = pool("chat");
        assert_eq!(pool, "llmgw/pool/chat");
        assert_eq!(target_id(1, "oa", "gpt-4o"), "1:oa/gpt-4o");
        assert_eq!(round_robin(&pool), "llmgw/pool/chat/rr");
        assert_eq!(
            in_flight(&pool, "1:oa/gpt-4o"),
            "llmgw/pool/chat/inflight/1:oa/gpt-4o"
        );
        assert_eq!(latency(&pool, "x"), "llmgw/pool/chat/latency/x");
    }
}
