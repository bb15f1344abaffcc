//! Gateway API keys: who is calling, and which models they may use. Keys are
//! kept only as SHA-256 digests and compared in constant time.

use crate::error::{ApiError, ConfigError};
use crate::ratelimit::Period;
use crate::secrets::envelope::{self, MasterKeys, OpenError, Purpose};
use crate::secrets::Secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Names the consumer in limits, logs and (opt-in) metrics.
    pub name: String,
    /// `sha256:<64 hex>` digests of keys, or `env:NAME` for a key held in a
    /// host environment variable.
    pub api_keys: Vec<String>,
    /// Models this consumer may use (`*` at the end matches a prefix);
    /// absent means every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Token budgets per UTC calendar day / month (input + output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaConfig>,
    /// Requests must be signed with this secret (`env:NAME` or `enc:v1:…`):
    /// HMAC-SHA256 over method, path, timestamp, nonce and the body's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Guardrails (by name) applied to this consumer's requests, on top of
    /// the model's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_month: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether requests need a consumer key. Defaults to true when consumers
    /// are configured; set false to run without keys locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// How far a signed request's timestamp may be from the gateway's clock
    /// (seconds, default 300); a nonce is remembered that long after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_window_seconds: Option<u64>,
    /// Buckets of remembered nonces in shared data (default 4096, each
    /// holding 32): the bound on their memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_slots: Option<u32>,
}

/// A consumer's request-signing secret.
#[derive(Debug, Clone)]
pub enum SigningKey {
    Secret(Secret),
    /// Configured, but its environment variable is unset (or the master
    /// key for it): the consumer's requests are refused.
    Missing(String),
}

#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: String,
    digests: Vec<[u8; 32]>,
    quotas: Vec<(Period, u64)>,
    /// (pattern, is_prefix); None = all models.
    models: Option<Vec<(String, bool)>>,
    /// Requests must be signed (see `secrets::signature`).
    pub signing: Option<SigningKey>,
    /// Guardrails of this consumer's requests (set by `config`).
    pub guardrails: crate::guardrails::GuardSet,
}

impl Consumer {
    /// Token budgets, per period.
    pub fn quotas(&self) -> impl Iterator<Item = (Period, u64)> + '_ {
        self.quotas.iter().copied()
    }

    pub fn may_use(&self, model: &str) -> bool {
        match &self.models {
            None => true,
            Some(patterns) => patterns.iter().any(|(p, prefix)| {
                if *prefix {
                    model.starts_with(p.as_str())
                } else {
                    model == p
                }
            }),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Consumers {
    pub required: bool,
    list: Vec<Consumer>,
    /// Seconds a signed request's timestamp may be off.
    pub signature_window_s: u64,
    /// Nonce buckets in shared data (when any consumer signs).
    pub nonce_slots: u32,
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Equal in time independent of where the inputs differ.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Consumers {
    pub fn compile(
        configs: &[ConsumerConfig],
        auth: &AuthConfig,
        env: &dyn Fn(&str) -> Option<String>,
        warn: &mut dyn FnMut(String),
    ) -> Result<Self, ConfigError> {
        let mut list: Vec<Consumer> = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let field = format!("consumers[{i}]");
            let valid = !c.name.is_empty()
                && c.name.len() <= 64
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
            if !valid {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    format!(
                        "'{}' must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.'",
                        c.name
                    ),
                ));
            }
            if list.iter().any(|o| o.name == c.name) {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    format!("duplicate consumer name '{}'", c.name),
                ));
            }
            if c.api_keys.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.api_keys"),
                    "needs at least one key",
                ));
            }
            let mut digests = Vec::with_capacity(c.api_keys.len());
            for (j, k) in c.api_keys.iter().enumerate() {
                let kfield = format!("{field}.api_keys[{j}]");
                if let Some(hex) = k.strip_prefix("sha256:") {
                    digests.push(parse_hex32(&hex.to_ascii_lowercase()).ok_or_else(|| {
                        ConfigError::new(&kfield, "a sha256: key needs 64 hex digits")
                    })?);
                } else if let Some(name) = k.strip_prefix("env:") {
                    match env(name).filter(|v| !v.trim().is_empty()) {
                        Some(v) => digests.push(sha256(v.trim().as_bytes())),
                        None => warn(format!(
                            "consumer '{}': environment variable {name} is not set; that key is disabled",
                            c.name
                        )),
                    }
                } else {
                    return Err(ConfigError::new(
                        kfield,
                        "must be 'sha256:<hex digest>', 'env:NAME' or (read by llm-gateway-render) 'file:PATH'; plain keys are not stored in config",
                    ));
                }
            }
            let models = c.models.as_ref().map(|ms| {
                ms.iter()
                    .map(|m| match m.strip_suffix('*') {
                        Some(p) => (p.to_string(), true),
                        None => (m.clone(), false),
                    })
                    .collect()
            });
            let mut quotas = Vec::new();
            if let Some(q) = &c.quota {
                for (period, limit, name) in [
                    (Period::Day, q.tokens_per_day, "tokens_per_day"),
                    (Period::Month, q.tokens_per_month, "tokens_per_month"),
                ] {
                    match limit {
                        Some(0) => {
                            return Err(ConfigError::new(
                                format!("{field}.quota.{name}"),
                                "must be at least 1",
                            ))
                        }
                        Some(l) => quotas.push((period, l)),
                        None => {}
                    }
                }
            }
            let signing = match &c.signing_secret {
                None => None,
                Some(spec) => Some(signing_key(
                    spec,
                    &c.name,
                    &format!("{field}.signing_secret"),
                    env,
                    warn,
                )?),
            };
            list.push(Consumer {
                name: c.name.clone(),
                digests,
                quotas,
                models,
                signing,
                guardrails: Default::default(),
            });
        }
        let window = auth.signature_window_seconds.unwrap_or(300);
        if !(1..=86_400).contains(&window) {
            return Err(ConfigError::new(
                "auth.signature_window_seconds",
                "must be between 1 and 86400",
            ));
        }
        let slots = auth.nonce_slots.unwrap_or(4096);
        if !(1..=65_536).contains(&slots) {
            return Err(ConfigError::new(
                "auth.nonce_slots",
                "must be between 1 and 65536",
            ));
        }
        Ok(Self {
            required: auth.required.unwrap_or(!list.is_empty()),
            list,
            signature_window_s: window,
            nonce_slots: slots,
        })
    }

    /// The consumer a request's key belongs to. Every digest is compared,
    /// so timing does not depend on which (if any) matches.
    pub fn authenticate(&self, presented: Option<&str>) -> Result<Option<usize>, ApiError> {
        let key = match presented.map(str::trim).filter(|k| !k.is_empty()) {
            Some(k) => k,
            None if !self.required => return Ok(None),
            None => {
                return Err(ApiError::new(
                    401,
                    "invalid_request_error",
                    "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' (or 'x-api-key: <key>').",
                )
                .with_code("missing_api_key"))
            }
        };
        if self.list.is_empty() && !self.required {
            // No consumers: the key is the client's business (no hashing).
            return Ok(None);
        }
        let digest = sha256(key.as_bytes());
        let mut found: Option<usize> = None;
        for (i, c) in self.list.iter().enumerate() {
            for d in &c.digests {
                if ct_eq(d, &digest) && found.is_none() {
                    found = Some(i);
                }
            }
        }
        match found {
            Some(c) => Ok(Some(c)),
            None if !self.required => Ok(None),
            None => Err(
                ApiError::new(401, "invalid_request_error", "Incorrect API key provided.")
                    .with_code("invalid_api_key"),
            ),
        }
    }
}

/// Reads a consumer's signing secret: `env:NAME` or `enc:v1:…` (sealed for
/// `consumer:<name>`); never a plain value in the configuration.
fn signing_key(
    spec: &str,
    consumer: &str,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
    warn: &mut dyn FnMut(String),
) -> Result<SigningKey, ConfigError> {
    let missing = |what: String, warn: &mut dyn FnMut(String)| {
        warn(format!(
            "consumer '{consumer}': {what}; its requests are refused until it is set"
        ));
        Ok(SigningKey::Missing(what))
    };
    if let Some(name) = spec.strip_prefix("env:") {
        return match env(name).filter(|v| !v.trim().is_empty()) {
            Some(v) => Ok(SigningKey::Secret(Secret::new(v.trim().to_string()))),
            None => missing(format!("environment variable {name} is not set"), warn),
        };
    }
    if spec.starts_with(envelope::PREFIX) {
        let masters =
            MasterKeys::from_env(env).map_err(|e| ConfigError::new(field, e.to_string()))?;
        return match masters.open(spec, Purpose::Consumer(consumer)) {
            Ok(secret) => Ok(SigningKey::Secret(secret)),
            Err(OpenError::NoMasterKey) => {
                missing(format!("{} is not set", envelope::MASTER_KEY_ENV), warn)
            }
            Err(e) => Err(ConfigError::new(field, e.to_string())),
        };
    }
    Err(ConfigError::new(
        field,
        "must be 'env:NAME' or 'enc:v1:…' (llm-gateway-render keys encrypt --consumer NAME); plain secrets are not stored in config",
    ))
}

impl Consumers {
    /// Whether any consumer signs its requests (nonces are kept).
    pub fn signing(&self) -> bool {
        self.list.iter().any(|c| c.signing.is_some())
    }

    pub fn get(&self, index: usize) -> Option<&Consumer> {
        self.list.get(index)
    }

    /// The index of the consumer named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|c| c.name == name)
    }

    /// Sets the guardrails of consumer `index` (config order).
    pub fn set_guardrails(&mut self, index: usize, set: crate::guardrails::GuardSet) {
        if let Some(c) = self.list.get_mut(index) {
            c.guardrails = set;
        }
    }

    pub fn all(&self) -> &[Consumer] {
        &self.list
    }
}

/// The key a client presented: `Authorization: Bearer`, `x-api-key` or `api-key`.
pub fn presented_key(
    authorization: Option<&str>,
    x_api_key: Option<&str>,
    api_key: Option<&str>,
) -> Option<String> {
    let bearer = authorization.and_then(|a| {
        let (scheme, rest) = a.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim().to_string())
    });
    bearer
        .or_else(|| x_api_key.map(String::from))
        .or_else(|| api_key.map(String::from))
}

/// 403 for a model outside the consumer's allow-list.
pub fn model_not_allowed(consumer: &Consumer, model: &str) -> ApiError {
    ApiError::new(
        403,
        "permission_error",
        format!(
            "Consumer '{}' is not allowed to use model '{model}'.",
            consumer.name
        ),
    )
    .with_param("model")
    .with_code("model_not_allowed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &[u8; 32]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn consumers(required: Option<bool>) -> Consumers {
        let cfg = vec![
            ConsumerConfig {
                name: "team-a".into(),
                api_keys: vec![format!("sha256:{}", hex(&sha256(b"key-a")))],
                models: Some(vec!["gpt-4o-mini".into(), "claude-*".into()]),
                quota: None,
                signing_secret: None,
                guardrails: vec![],
            },
            ConsumerConfig {
                name: "team-b".into(),
                api_keys: vec!["env:TEAM_B_KEY".into(), "env:UNSET".into()],
                models: None,
                quota: None,
                signing_secret: None,
                guardrails: vec![],
            },
        ];
        let env = |n: &str| (n == "TEAM_B_KEY").then(|| "key-b".to_string());
        let mut warnings = Vec::new();
        let c = Consumers::compile(
            &cfg,
            &AuthConfig {
                required,
                ..Default::default()
            },
            &env,
            &mut |w| warnings.push(w),
        )
        .unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("UNSET is not set"));
        c
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn authenticates_and_checks_models() {
        let c = consumers(None);
        assert!(c.required);
        let a = c
            .get(c.authenticate(Some("key-a")).unwrap().unwrap())
            .unwrap();
        assert_eq!(a.name, "team-a");
        assert!(a.may_use("gpt-4o-mini") && a.may_use("claude-sonnet-4-5"));
        assert!(!a.may_use("gpt-4o"));
        assert_eq!(c.authenticate(Some("key-b")).unwrap(), Some(1));
        let e = c.authenticate(Some("nope")).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref()),
            (401, Some("invalid_api_key"))
        );
        let e = c.authenticate(None).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref()),
            (401, Some("missing_api_key"))
        );
        let e = model_not_allowed(a, "gpt-4o");
        assert_eq!((e.status, e.param.as_deref()), (403, Some("model")));
    }

    #[test]
    fn auth_can_be_switched_off() {
        let c = consumers(Some(false));
        assert!(c.authenticate(None).unwrap().is_none());
        assert!(c.authenticate(Some("wrong")).unwrap().is_none());
        assert_eq!(c.authenticate(Some("key-a")).unwrap(), Some(0));
        let none = Consumers::compile(&[], &AuthConfig::default(), &|_| None, &mut |_| {}).unwrap();
        assert!(!none.required);
    }

    #[test]
    fn presented_key_sources() {
        assert_eq!(
            presented_key(Some("Bearer  k1 "), Some("k2"), None).as_deref(),
            Some("k1")
        );
        assert_eq!(
            presented_key(Some("Basic x"), Some("k2"), None).as_deref(),
            Some("k2")
        );
        assert_eq!(presented_key(None, None, Some("k3")).as_deref(), Some("k3"));
        assert_eq!(presented_key(None, None, None), None);
    }

    #[test]
    fn bad_consumer_config() {
        let bad = |keys: Vec<&str>, name: &str| {
            Consumers::compile(
                &[ConsumerConfig {
                    name: name.into(),
                    api_keys: keys.into_iter().map(String::from).collect(),
                    models: None,
                    quota: None,
                    signing_secret: None,
                    guardrails: vec![],
                }],
                &AuthConfig::default(),
                &|_| None,
                &mut |_| {},
            )
            .unwrap_err()
        };
        assert_eq!(bad(vec!["sk-plain"], "a").field, "consumers[0].api_keys[0]");
        assert_eq!(
            bad(vec!["sha256:abc"], "a").field,
            "consumers[0].api_keys[0]"
        );
        assert_eq!(bad(vec![], "a").field, "consumers[0].api_keys");
        assert_eq!(bad(vec!["env:X"], "a b").field, "consumers[0].name");
    }
}
