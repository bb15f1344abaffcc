//! Validation of `PluginConfig` into the form the filter uses per request:
//! lookups by name are precomputed, keys resolved, cluster names derived.

use super::{Endpoint, PluginConfig, ProviderConfig, TimeoutsConfig};
use crate::admission::Rules;
use crate::consumers::Consumers;
use crate::error::ConfigError;
use crate::guardrails::{CalloutTarget, GuardSet, Guardrails, RuleKind};
use crate::health::HealthSpec;
use crate::pricing::PriceTable;
use crate::providers::aws::{bedrock_base_url, is_region, AwsConfig, AwsSigner};
use crate::providers::azure;
use crate::providers::sigv4::Credentials;
use crate::providers::vertex::VertexConfig;
use crate::providers::PathStyle;
use crate::providers::{is_header_name, known_types, type_spec, AuthStyle, ModelNames};
use crate::ratelimit::AdaptiveSpec;
use crate::redact::SecretSet;
use crate::route_select::{ModelMap, PoolPolicy, RuleSet};
use crate::secrets::envelope::{self, MasterKeys, OpenError, Purpose};
use crate::secrets::Secret;
use crate::tokens::{Exchange, ServiceAccount, TokenSource};
use crate::wire::hub::Translator;
use crate::wire::Wire;
use hashbrown::HashMap;
use std::fmt;
use std::rc::Rc;

/// A provider's egress edge: how a request of another wire is translated
/// for it.
#[derive(Clone)]
pub struct Egress(pub Rc<dyn Translator>);

impl fmt::Debug for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Egress")
    }
}

#[derive(Debug, Clone)]
pub struct ProviderKey {
    /// Kept to scrub it from error bodies; never logged; wiped on drop.
    pub secret: Secret,
    /// Names the key's health in shared data: the first 12 hex digits of
    /// its SHA-256 (which says nothing usable about the key).
    pub id: String,
    /// Precomputed auth header, if the provider takes one (its value holds
    /// the key: wiped on drop too).
    pub header: Option<(String, Secret)>,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub kind: &'static str,
    /// The API the provider speaks: a client of the same API passes
    /// through, any other is translated by `egress`.
    pub wire: Wire,
    pub egress: Egress,
    /// Serves the OpenAI Responses API itself.
    pub responses_api: bool,
    /// `anthropic-version` sent when the client did not choose one.
    pub anthropic_version: Option<String>,
    /// Envoy cluster serving this provider.
    pub cluster: String,
    pub endpoint: Endpoint,
    /// Host env vars named by `env:NAME` keys.
    pub key_envs: Vec<String>,
    /// The key pool (keys whose env var is unset are left out).
    pub keys: Vec<ProviderKey>,
    /// The keys, prepared for masking them in what clients receive.
    pub secrets: Rc<SecretSet>,
    /// The upstream model names the provider takes (see `ProviderType`).
    pub model_names: ModelNames,
    /// Signs each request (Bedrock with AWS credentials).
    pub signer: Option<AwsSigner>,
    /// Where its access tokens come from (ERNIE v1, Vertex AI).
    pub token: Option<Rc<TokenSource>>,
    /// The token endpoint's cluster and address, when it is on another
    /// host than the provider (the renderer adds the cluster).
    pub token_endpoint: Option<(String, Endpoint)>,
    /// Why requests cannot go to this provider, if they cannot.
    pub unavailable: Option<String>,
    pub extra_headers: Vec<(String, String)>,
    /// AIMD admission limit per target of this provider.
    pub adaptive: Option<AdaptiveSpec>,
    pub timeouts: TimeoutsConfig,
    pub health_check: Option<super::HealthCheckConfig>,
}

#[derive(Debug, Clone)]
pub struct Target {
    /// Index into `Gateway::providers`.
    pub provider: usize,
    pub model: String,
    pub weight: u32,
    pub priority: u32,
    pub max_tokens: Option<u32>,
    /// Stable identity for strategy state in shared data.
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct Model {
    /// Position in `Gateway::models` (names its failover pools).
    pub index: usize,
    pub name: String,
    /// Sorted by priority tier, config order within a tier.
    pub targets: Vec<Target>,
    /// Requests go through a failover pool (targets on 2+ providers).
    pub failover: bool,
    pub policy: PoolPolicy,
    /// Guardrails of this model's requests and responses.
    pub guardrails: GuardSet,
    /// Where a copy of a share of the requests goes.
    pub shadow: Option<Shadow>,
    /// Answers kept in the response cache.
    pub cache: Option<crate::cache::Policy>,
    /// `cache.mode: semantic`: the provider and upstream model that embed
    /// prompts.
    pub cache_embedder: Option<(usize, String)>,
}

impl Model {
    /// The semantic-cache index of this model, if it has one.
    pub fn semantic_index(&self) -> Option<crate::cache::semantic::Index> {
        let s = self.cache.as_ref()?.semantic.as_ref()?;
        Some(crate::cache::semantic::Index {
            prefix: crate::state::keys::cache_index(&self.name),
            pages: s.pages,
        })
    }
}

fn compile_shadow(
    s: &super::ShadowConfig,
    own: usize,
    model_index: &HashMap<String, usize>,
    field: &str,
) -> Result<Shadow, ConfigError> {
    let model = *model_index.get(&s.model).ok_or_else(|| {
        ConfigError::new(
            format!("{field}.model"),
            format!("unknown model '{}'", s.model),
        )
    })?;
    if model == own {
        return Err(ConfigError::new(
            format!("{field}.model"),
            "a model cannot shadow itself",
        ));
    }
    if !(0.01..=100.0).contains(&s.percent) {
        return Err(ConfigError::new(
            format!("{field}.percent"),
            "must be between 0.01 and 100",
        ));
    }
    Ok(Shadow {
        model,
        per_10k: (s.percent * 100.0).round() as u32,
    })
}

/// A model's shadow: the model the copies go to, and how many.
#[derive(Debug, Clone, PartialEq)]
pub struct Shadow {
    /// Index into `Gateway::models`.
    pub model: usize,
    /// Copies per 10,000 requests.
    pub per_10k: u32,
}

#[derive(Debug, Clone)]
pub struct Gateway {
    pub providers: Vec<Provider>,
    /// In config order (the order `/v1/models` lists them).
    pub models: Vec<Model>,
    model_index: HashMap<String, usize>,
    pub max_request_body_bytes: usize,
    pub prices: PriceTable,
    pub consumers: Consumers,
    pub rules: Rules,
    pub health: HealthSpec,
    /// Attempts per failover request, the first included.
    pub max_attempts: u32,
    pub consumer_label: bool,
    pub model_map: ModelMap,
    pub routing_rules: RuleSet,
    /// Problems that do not stop the gateway (e.g. an unset consumer key).
    pub warnings: Vec<String>,
    /// Metric names by label set, built at first use (per VM).
    pub metric_names: crate::metrics::NameCache,
    /// Write access-log fields (filter state) for each request.
    pub log_fields: bool,
    pub guardrails: Rc<Guardrails>,
    /// The response cache's store, when a model is cached.
    pub cache: Option<crate::cache::Store>,
}

impl Gateway {
    /// The Envoy aggregate cluster of a failover pool that starts at target
    /// `first`; the renderer creates one per (model, first target).
    pub fn pool_cluster(&self, model: &Model, first: usize) -> String {
        format!("llmgw_pool_{}_{first}", model.index)
    }

    /// The provider clusters of that pool, in failover order: the first
    /// target, then the others by tier and config order, one per provider.
    pub fn pool_members(&self, model: &Model, first: usize) -> Vec<usize> {
        let mut order: Vec<usize> = Vec::new();
        let candidates = std::iter::once(first).chain(0..model.targets.len());
        for i in candidates {
            let Some(t) = model.targets.get(i) else {
                continue;
            };
            if t.weight > 0 && !order.contains(&t.provider) {
                order.push(t.provider);
            }
        }
        order
    }

    /// Position of a configured model in `models`.
    pub fn model_position(&self, name: &str) -> Option<usize> {
        self.model_index.get(name).copied()
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.model_index.get(name).map(|&i| &self.models[i])
    }

    /// A model is listed and routable when one of its targets is usable.
    pub fn is_available(&self, model: &Model) -> bool {
        model
            .targets
            .iter()
            .any(|t| t.weight > 0 && self.providers[t.provider].unavailable.is_none())
    }
}

/// The `anthropic-version` header sent unless `api_version` overrides it.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The Envoy cluster name for a provider; the renderer uses the same.
pub fn cluster_name(provider: &str) -> String {
    format!("llmgw_{provider}")
}

/// Validates the config. `env` resolves `env:NAME` keys (the host's
/// environment in the filter); a missing key makes the provider unavailable
/// rather than failing the whole gateway.
pub fn compile(
    config: &PluginConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Gateway, ConfigError> {
    if config.providers.is_empty() {
        return Err(ConfigError::new(
            "providers",
            "at least one provider is required",
        ));
    }
    // Opens `enc:` keys; a malformed master key fails only where one is used.
    let masters = MasterKeys::from_env(env);
    let mut providers = Vec::with_capacity(config.providers.len());
    let mut provider_index: HashMap<&str, usize> = HashMap::new();
    for (i, p) in config.providers.iter().enumerate() {
        let field = format!("providers[{i}]");
        let provider = compile_provider(p, &field, env, &masters)?;
        if provider_index.insert(p.name.as_str(), i).is_some() {
            return Err(ConfigError::new(
                format!("{field}.name"),
                format!("duplicate provider name '{}'", p.name),
            ));
        }
        providers.push(provider);
    }

    if config.models.is_empty() {
        return Err(ConfigError::new("models", "at least one model is required"));
    }
    let mut guardrails = Guardrails::compile(&config.guardrails)?;
    resolve_moderation(&mut guardrails, &providers, &provider_index)?;
    let mut models = Vec::with_capacity(config.models.len());
    let mut model_index = HashMap::new();
    for (i, m) in config.models.iter().enumerate() {
        let field = format!("models[{i}]");
        if m.name.trim().is_empty() || m.name.len() > 256 || m.name.chars().any(char::is_control) {
            return Err(ConfigError::new(
                format!("{field}.name"),
                "must be 1 to 256 characters, none of them control characters",
            ));
        }
        if m.targets.is_empty() {
            return Err(ConfigError::new(
                format!("{field}.targets"),
                format!("model '{}' needs at least one target", m.name),
            ));
        }
        let mut targets = Vec::with_capacity(m.targets.len());
        for (j, t) in m.targets.iter().enumerate() {
            let tfield = format!("{field}.targets[{j}]");
            let provider = *provider_index.get(t.provider.as_str()).ok_or_else(|| {
                ConfigError::new(
                    format!("{tfield}.provider"),
                    format!(
                        "unknown provider '{}'; declared providers: {}",
                        t.provider,
                        config
                            .providers
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            let model = t.model.clone().unwrap_or_else(|| m.name.clone());
            if model.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("{tfield}.model"),
                    "must not be empty",
                ));
            }
            let names = providers[provider].model_names;
            if !names.accepts(&model) {
                return Err(ConfigError::new(
                    format!("{tfield}.model"),
                    format!(
                        "'{model}' cannot be used with provider type '{}': the model name goes into the URL and must be {}",
                        providers[provider].kind,
                        names.rule()
                    ),
                ));
            }
            if t.max_tokens == Some(0) {
                return Err(ConfigError::new(
                    format!("{tfield}.max_tokens"),
                    "must be at least 1",
                ));
            }
            targets.push(Target {
                id: crate::state::keys::target_id(j, &config.providers[provider].name, &model),
                provider,
                model,
                weight: t.weight,
                priority: t.priority,
                max_tokens: t.max_tokens,
            });
        }
        if targets.iter().all(|t| t.weight == 0) {
            return Err(ConfigError::new(
                format!("{field}.targets"),
                "every target has weight 0; at least one must be positive",
            ));
        }
        // Stable sort keeps config order within a tier.
        targets.sort_by_key(|t| t.priority);
        if model_index.insert(m.name.clone(), i).is_some() {
            return Err(ConfigError::new(
                format!("{field}.name"),
                format!("duplicate model name '{}'", m.name),
            ));
        }
        let mut providers_used: Vec<usize> = targets.iter().map(|t| t.provider).collect();
        providers_used.sort_unstable();
        providers_used.dedup();
        let policy = PoolPolicy::compile(m.strategy, m.split.as_ref(), &m.name, &field)?;
        let model_guardrails = guardrails.resolve(&m.guardrails, &format!("{field}.guardrails"))?;
        models.push(Model {
            guardrails: model_guardrails,
            index: i,
            name: m.name.clone(),
            failover: config.failover.enabled && providers_used.len() > 1,
            targets,
            policy,
            shadow: None,
            cache: compile_cache(m, &field)?,
            cache_embedder: None,
        });
    }
    for i in 0..models.len() {
        let Some(semantic) = models[i].cache.as_ref().and_then(|c| c.semantic.as_ref()) else {
            continue;
        };
        let field = format!("models[{i}].cache.embeddings_model");
        let embedder = model_index
            .get(&semantic.embeddings_model)
            .map(|&j| &models[j])
            .ok_or_else(|| {
                ConfigError::new(
                    &field,
                    format!("unknown model '{}'", semantic.embeddings_model),
                )
            })?;
        let Some(t) = embedder.targets.first() else {
            continue;
        };
        models[i].cache_embedder = Some((t.provider, t.model.clone()));
    }
    for (i, m) in config.models.iter().enumerate() {
        if let Some(s) = &m.shadow {
            models[i].shadow = Some(compile_shadow(
                s,
                i,
                &model_index,
                &format!("models[{i}].shadow"),
            )?);
        }
    }

    let max = config.limits.max_request_body_bytes;
    if max == 0 || max > 64 * 1024 * 1024 {
        return Err(ConfigError::new(
            "limits.max_request_body_bytes",
            "must be between 1 and 67108864 (64 MiB)",
        ));
    }
    let max_response = config.limits.max_response_body_bytes;
    if !(1024 * 1024..=256 * 1024 * 1024).contains(&max_response) {
        return Err(ConfigError::new(
            "limits.max_response_body_bytes",
            "must be between 1048576 (1 MiB) and 268435456 (256 MiB)",
        ));
    }

    let prices = PriceTable::compile(&config.pricing)?;
    let is_model = |n: &str| model_index.contains_key(n);
    let model_map = ModelMap::compile(&config.model_map, &is_model)?;
    let is_consumer = |n: &str| config.consumers.iter().any(|c| c.name == n);
    let routing_rules = RuleSet::compile(&config.routing_rules, &is_model, &is_consumer)?;
    let mut warnings = Vec::new();
    let mut consumers = Consumers::compile(&config.consumers, &config.auth, env, &mut |w| {
        warnings.push(w)
    })?;
    for (i, c) in config.consumers.iter().enumerate() {
        let set = guardrails.resolve(&c.guardrails, &format!("consumers[{i}].guardrails"))?;
        consumers.set_guardrails(i, set);
    }

    let models_cache = models.iter().any(|m| m.cache.is_some());
    Ok(Gateway {
        providers,
        models,
        model_index,
        max_request_body_bytes: max as usize,
        prices,
        consumers,
        rules: Rules::compile(&config.rate_limits)?,
        health: HealthSpec::compile(&config.health)?,
        max_attempts: match config.failover.max_attempts {
            0 | 11.. => {
                return Err(ConfigError::new(
                    "failover.max_attempts",
                    "must be between 1 and 10",
                ))
            }
            n => n,
        },
        consumer_label: config.metrics.consumer_label,
        model_map,
        routing_rules,
        warnings,
        metric_names: Default::default(),
        log_fields: config.log_fields.unwrap_or(true),
        guardrails: Rc::new(guardrails),
        cache: match (&config.cache, models_cache) {
            (_, false) => None,
            (Some(c), true) => Some(c.compile("cache")?),
            (None, true) => Some(crate::cache::StoreConfig::default().compile("cache")?),
        },
    })
}

/// A model's cache policy.
fn compile_cache(
    m: &super::ModelConfig,
    field: &str,
) -> Result<Option<crate::cache::Policy>, ConfigError> {
    let Some(c) = &m.cache else {
        return Ok(None);
    };
    c.compile(&format!("{field}.cache")).map(Some)
}

/// Points each moderation rule at its provider: cluster, URL and key.
fn resolve_moderation(
    guardrails: &mut Guardrails,
    providers: &[Provider],
    index: &HashMap<&str, usize>,
) -> Result<(), ConfigError> {
    for (i, rule) in guardrails.rules.iter_mut().enumerate() {
        let RuleKind::Moderation(m) = &mut rule.kind else {
            continue;
        };
        let field = format!("guardrails[{i}].moderation.provider");
        let p = index
            .get(m.provider.as_str())
            .map(|&j| &providers[j])
            .ok_or_else(|| {
                ConfigError::new(&field, format!("unknown provider '{}'", m.provider))
            })?;
        if p.wire != Wire::OpenAiChat {
            return Err(ConfigError::new(
                &field,
                format!(
                    "provider '{}' is of type '{}'; moderation needs an OpenAI-compatible provider (POST /moderations)",
                    p.name, p.kind
                ),
            ));
        }
        m.target = CalloutTarget {
            cluster: p.cluster.clone(),
            authority: p.endpoint.authority().to_string(),
            path: format!("{}/moderations", p.endpoint.path_prefix),
            auth: p
                .keys
                .first()
                .and_then(|k| k.header.as_ref())
                .map(|(n, v)| (n.clone(), v.clone())),
        };
    }
    Ok(())
}

fn compile_provider(
    p: &ProviderConfig,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
    masters: &Result<MasterKeys, OpenError>,
) -> Result<Provider, ConfigError> {
    let valid_name = !p.name.is_empty()
        && p.name.len() <= 48
        && p.name
            .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid_name {
        return Err(ConfigError::new(
            format!("{field}.name"),
            format!(
                "'{}' must be 1-48 characters of a-z, 0-9, '-' or '_', starting with a letter or digit",
                p.name
            ),
        ));
    }
    let spec = type_spec(&p.kind).ok_or_else(|| {
        ConfigError::new(
            format!("{field}.type"),
            format!(
                "unknown provider type '{}'; known types: {}",
                p.kind,
                known_types().join(", ")
            ),
        )
    })?;
    let bedrock = spec.wire == Wire::Bedrock;
    if let Some(aws) = &p.aws {
        if !bedrock {
            return Err(ConfigError::new(
                format!("{field}.aws"),
                format!("is only used by type bedrock, not '{}'", spec.kind),
            ));
        }
        if !is_region(&aws.region) {
            return Err(ConfigError::new(
                format!("{field}.aws.region"),
                format!("'{}' is not an AWS region such as us-east-1", aws.region),
            ));
        }
    }
    let vertex = spec.paths == PathStyle::Vertex;
    match (&p.vertex, vertex) {
        (Some(_), false) => {
            return Err(ConfigError::new(
                format!("{field}.vertex"),
                format!(
                    "is only used by types vertex and vertex-anthropic, not '{}'",
                    spec.kind
                ),
            ))
        }
        (None, true) => {
            return Err(ConfigError::new(
                format!("{field}.vertex"),
                "is required: {project, region}",
            ))
        }
        (Some(v), true) => v
            .check()
            .map_err(|(name, why)| ConfigError::new(format!("{field}.vertex.{name}"), why))?,
        (None, false) => {}
    }
    let region_url = p
        .aws
        .as_ref()
        .map(|a| bedrock_base_url(&a.region))
        .or_else(|| p.vertex.as_ref().map(VertexConfig::base_url));
    let base_url = p
        .base_url
        .as_deref()
        .or(spec.base_url)
        .or(region_url.as_deref())
        .ok_or_else(|| {
            if bedrock {
                return ConfigError::new(
                    format!("{field}.aws.region"),
                    "is required for type 'bedrock' (or give base_url)",
                );
            }
            ConfigError::new(
                format!("{field}.base_url"),
                format!(
                    "is required for type '{}' (e.g. https://<resource>.openai.azure.com)",
                    spec.kind
                ),
            )
        })?;
    let endpoint =
        Endpoint::parse(base_url).map_err(|e| ConfigError::new(format!("{field}.base_url"), e))?;

    let auth = match &p.auth {
        Some(s) => AuthStyle::parse(s).map_err(|e| ConfigError::new(format!("{field}.auth"), e))?,
        None => spec.default_auth(),
    };
    let azure = spec.paths == crate::providers::PathStyle::AzureDeployments;
    if let Some(v) = &p.api_version {
        if !(azure || spec.wire == Wire::Anthropic) {
            return Err(ConfigError::new(
                format!("{field}.api_version"),
                format!(
                    "is only used by types azure and anthropic, not '{}'",
                    spec.kind
                ),
            ));
        }
        if !azure::valid_api_version(v) {
            return Err(ConfigError::new(
                format!("{field}.api_version"),
                format!("'{v}' is not a valid version (letters, digits and '-')"),
            ));
        }
    }
    let egress = Egress(
        spec.translator(
            p.api_version
                .as_deref()
                .unwrap_or(azure::DEFAULT_API_VERSION),
            p.vertex.as_ref(),
        ),
    );
    let anthropic_version = (spec.wire == Wire::Anthropic).then(|| {
        p.api_version
            .clone()
            .unwrap_or_else(|| ANTHROPIC_VERSION.into())
    });

    // `api_key` and `api_keys` together form the key pool.
    let specs: Vec<(String, &str)> = p
        .api_key
        .iter()
        .map(|k| (format!("{field}.api_key"), k.as_str()))
        .chain(
            p.api_keys
                .iter()
                .enumerate()
                .map(|(j, k)| (format!("{field}.api_keys[{j}]"), k.as_str())),
        )
        .collect();
    let mut key_envs = Vec::new();
    let mut keys = Vec::new();
    for (kfield, spec_text) in &specs {
        let secret = resolve_secret(kfield, spec_text, &p.name, env, masters, &mut key_envs)?;
        if let Some(secret) = secret {
            keys.push(ProviderKey {
                header: auth.header(&secret).map(|(n, v)| (n, Secret::new(v))),
                id: crate::consumers::sha256(secret.as_bytes())[..6]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                secret,
            });
        }
    }

    // Bedrock without an API key signs every request with AWS credentials.
    let signer = match (&p.aws, bedrock && specs.is_empty()) {
        (Some(aws), true) => aws_signer(aws, field, &p.name, env, masters, &mut key_envs)?,
        (None, true) => {
            return Err(ConfigError::new(
                format!("{field}.aws"),
                "is required for type 'bedrock' unless api_key holds a Bedrock API key",
            ))
        }
        _ => None,
    };
    let signs = bedrock && specs.is_empty();
    let exchanges = spec.wire == Wire::Ernie || spec.paths == PathStyle::Vertex;
    if exchanges && !specs.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.api_key"),
            format!(
                "type '{}' takes no api_key: its requests carry access tokens from `token`",
                spec.kind
            ),
        ));
    }
    let (token, token_endpoint) =
        compile_token(p, spec, field, &endpoint, env, masters, &mut key_envs)?;
    let keyless_ok =
        !exchanges && (auth == AuthStyle::None || (!spec.key_required && specs.is_empty()));
    let unavailable = if !keys.is_empty() || keyless_ok || signer.is_some() || token.is_some() {
        None
    } else if signs || exchanges {
        let token_env = p
            .aws
            .as_ref()
            .and_then(|a| a.session_token.strip_prefix("env:"));
        let missing: Vec<&str> = key_envs
            .iter()
            .map(String::as_str)
            .filter(|n| Some(*n) != token_env && env(n).is_none_or(|v| v.trim().is_empty()))
            .collect();
        Some(format!(
            "provider '{}' has no {}: environment variable {} is not set",
            p.name,
            if signs {
                "AWS credentials"
            } else {
                "token credentials"
            },
            missing.join(", ")
        ))
    } else if key_envs.is_empty() {
        Some(format!("provider '{}' has no api_key configured", p.name))
    } else {
        Some(format!(
            "provider '{}' has no API key: environment variable {} is not set",
            p.name,
            key_envs.join(", ")
        ))
    };

    let mut extra_headers = Vec::new();
    for (j, h) in p.headers.iter().enumerate() {
        let name = h.name.to_ascii_lowercase();
        if !is_header_name(&name) || name.starts_with(':') || name == "host" {
            return Err(ConfigError::new(
                format!("{field}.headers[{j}].name"),
                format!("'{}' is not a header name that may be set", h.name),
            ));
        }
        if h.value.contains(['\r', '\n']) {
            return Err(ConfigError::new(
                format!("{field}.headers[{j}].value"),
                "must not contain line breaks",
            ));
        }
        extra_headers.push((name, h.value.clone()));
    }

    let adaptive = p
        .adaptive_concurrency
        .map(|a| AdaptiveSpec::compile(&a, &format!("{field}.adaptive_concurrency")))
        .transpose()?;

    let timeouts = p.timeouts.unwrap_or_default();
    for (name, v) in [
        ("connect_ms", timeouts.connect_ms),
        ("first_byte_ms", timeouts.first_byte_ms),
        ("total_ms", timeouts.total_ms),
    ] {
        if v.is_some_and(|ms| ms == 0 || ms > 3_600_000) {
            return Err(ConfigError::new(
                format!("{field}.timeouts.{name}"),
                "must be between 1 and 3600000 ms",
            ));
        }
    }

    let health_check = p.health_check.clone();
    if let Some(hc) = &health_check {
        if !hc.path.starts_with('/') || hc.path.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                format!("{field}.health_check.path"),
                "must be an absolute path such as /health",
            ));
        }
        if hc.interval_ms == 0
            || hc.timeout_ms == 0
            || hc.unhealthy_threshold == 0
            || hc.healthy_threshold == 0
        {
            return Err(ConfigError::new(
                format!("{field}.health_check"),
                "intervals, timeouts and thresholds must be positive",
            ));
        }
    }

    Ok(Provider {
        name: p.name.clone(),
        kind: spec.kind,
        wire: spec.wire,
        egress,
        responses_api: spec.responses_api,
        anthropic_version,
        cluster: cluster_name(&p.name),
        endpoint,
        key_envs,
        secrets: Rc::new(SecretSet::new(
            keys.iter()
                .map(|k| k.secret.as_str())
                .chain(token.iter().flat_map(|t| t.secrets()))
                .chain(signer.iter().flat_map(|s| {
                    let c = &s.credentials;
                    std::iter::once(c.secret_access_key.as_str()).chain(c.session_token.as_deref())
                })),
        )),
        keys,
        signer,
        token,
        token_endpoint,
        model_names: spec.model_names,
        unavailable,
        extra_headers,
        adaptive,
        timeouts,
        health_check,
    })
}

/// A token endpoint's own cluster: its name and address.
type TokenCluster = (String, Endpoint);

/// The access-token source of a token provider (ERNIE v1: Baidu's OAuth;
/// Vertex AI: a service account's JWT grant, or a metadata server), None
/// while its credentials' variables are unset; and the token endpoint when
/// it needs a cluster of its own (also while the credentials are unset:
/// the renderer has no secrets).
fn compile_token(
    p: &ProviderConfig,
    spec: &crate::providers::ProviderType,
    field: &str,
    endpoint: &Endpoint,
    env: &dyn Fn(&str) -> Option<String>,
    masters: &Result<MasterKeys, OpenError>,
    key_envs: &mut Vec<String>,
) -> Result<(Option<Rc<TokenSource>>, Option<TokenCluster>), ConfigError> {
    let tfield = format!("{field}.token");
    let baidu = spec.wire == Wire::Ernie;
    let google = spec.paths == PathStyle::Vertex;
    let t = match (&p.token, baidu || google) {
        (None, false) => return Ok((None, None)),
        (Some(_), false) => {
            return Err(ConfigError::new(
                tfield,
                format!(
                    "is only used by types ernie, vertex and vertex-anthropic, not '{}'",
                    spec.kind
                ),
            ))
        }
        (None, true) if baidu => {
            return Err(ConfigError::new(
                tfield,
                "is required for type 'ernie': {client_id, client_secret}",
            ))
        }
        (None, true) => return Err(ConfigError::new(
            tfield,
            "is required: {service_account} (a JSON key), or {url} (a metadata server's token URL)",
        )),
        (Some(t), true) => t,
    };
    let named = |name: &str, v: &Option<String>| v.as_ref().map(|_| name.to_string());
    let unused: Vec<String> = if baidu {
        [
            named("service_account", &t.service_account),
            named("scope", &t.scope),
        ]
        .into_iter()
        .flatten()
        .collect()
    } else {
        [
            named("client_id", &t.client_id),
            named("client_secret", &t.client_secret),
        ]
        .into_iter()
        .flatten()
        .collect()
    };
    if let Some(name) = unused.first() {
        return Err(ConfigError::new(
            format!("{tfield}.{name}"),
            format!("is not used by type '{}'", spec.kind),
        ));
    }
    let mut resolve = |name: &str, text: &Option<String>| -> Result<Option<Secret>, ConfigError> {
        match text {
            Some(text) => resolve_secret(
                &format!("{tfield}.{name}"),
                text,
                &p.name,
                env,
                masters,
                key_envs,
            ),
            None => Err(ConfigError::new(format!("{tfield}.{name}"), "is required")),
        }
    };
    let exchange = if baidu {
        let id = resolve("client_id", &t.client_id)?;
        let secret = resolve("client_secret", &t.client_secret)?;
        id.zip(secret)
            .map(|(client_id, client_secret)| Exchange::Baidu {
                client_id,
                client_secret,
            })
    } else if t.service_account.is_some() {
        match resolve("service_account", &t.service_account)? {
            Some(json) => {
                let sa = ServiceAccount::parse(json.as_str())
                    .map_err(|why| ConfigError::new(format!("{tfield}.service_account"), why))?;
                Some(Exchange::ServiceAccount(Rc::new(sa)))
            }
            None => None,
        }
    } else if t.url.is_some() {
        Some(Exchange::Metadata)
    } else {
        return Err(ConfigError::new(
            tfield,
            "needs service_account (a JSON key), or url (a metadata server's token URL)",
        ));
    };
    let url = match (&t.url, baidu) {
        (Some(u), _) => u.clone(),
        (None, true) => format!("{}{}", endpoint.origin(), crate::tokens::BAIDU_TOKEN_PATH),
        (None, false) => crate::tokens::GOOGLE_TOKEN_URL.to_string(),
    };
    let token_endpoint =
        Endpoint::parse(&url).map_err(|e| ConfigError::new(format!("{tfield}.url"), e))?;
    let own_host = token_endpoint.origin() == endpoint.origin();
    let cluster = if own_host {
        cluster_name(&p.name)
    } else {
        format!("{}_token", cluster_name(&p.name))
    };
    let separate = (!own_host).then(|| (cluster.clone(), token_endpoint.clone()));
    let target = crate::tokens::Target {
        cluster,
        authority: token_endpoint.authority().to_string(),
        path: match token_endpoint.path_prefix.as_str() {
            "" => "/".to_string(),
            path => path.to_string(),
        },
        url,
    };
    let Some(exchange) = exchange else {
        return Ok((None, separate));
    };
    let source = TokenSource::compile(t, &tfield, &p.name, exchange, target)?;
    Ok((Some(Rc::new(source)), separate))
}

/// The signer of a Bedrock provider, or None (unavailable) when a
/// credential's variable is unset. The session token is optional.
fn aws_signer(
    aws: &AwsConfig,
    field: &str,
    provider: &str,
    env: &dyn Fn(&str) -> Option<String>,
    masters: &Result<MasterKeys, OpenError>,
    key_envs: &mut Vec<String>,
) -> Result<Option<AwsSigner>, ConfigError> {
    let resolve = |name: &str, text: &str, envs: &mut Vec<String>| {
        let kfield = format!("{field}.aws.{name}");
        if text.starts_with("file:") {
            return Err(ConfigError::new(
                kfield,
                "must be a literal, env:NAME or an encrypted key",
            ));
        }
        resolve_secret(&kfield, text, provider, env, masters, envs)
    };
    let id = resolve("access_key_id", &aws.access_key_id, key_envs)?;
    let secret = resolve("secret_access_key", &aws.secret_access_key, key_envs)?;
    // An unset token variable means long-term keys: not a missing credential.
    let token = resolve("session_token", &aws.session_token, &mut Vec::new())?;
    if let Some(name) = aws.session_token.strip_prefix("env:") {
        key_envs.push(name.to_string());
    }
    let (Some(id), Some(secret)) = (id, secret) else {
        return Ok(None);
    };
    if !id.as_str().bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ConfigError::new(
            format!("{field}.aws.access_key_id"),
            "must hold only letters and digits (an AWS access key id such as AKIA…)",
        ));
    }
    Ok(Some(AwsSigner {
        region: aws.region.clone(),
        credentials: Credentials {
            access_key_id: id.as_str().to_string(),
            secret_access_key: zeroize::Zeroizing::new(secret.as_str().to_string()),
            session_token: token.map(|t| t.as_str().to_string()),
        },
    }))
}

/// A provider secret as configured: a literal, `env:NAME` (None when the
/// variable is unset or empty; NAME is recorded in `envs` for the
/// renderer) or an encrypted key.
fn resolve_secret(
    kfield: &str,
    spec_text: &str,
    provider: &str,
    env: &dyn Fn(&str) -> Option<String>,
    masters: &Result<MasterKeys, OpenError>,
    key_envs: &mut Vec<String>,
) -> Result<Option<Secret>, ConfigError> {
    Ok(match spec_text.strip_prefix("env:") {
        Some(name) => {
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ConfigError::new(
                    kfield,
                    format!("'env:{name}' must name an environment variable (A-Z, 0-9, _)"),
                ));
            }
            key_envs.push(name.to_string());
            env(name)
                .map(|v| Secret::new(v.trim().to_string()))
                .filter(|v| !v.is_empty())
        }
        None if spec_text.starts_with(envelope::PREFIX) => {
            let masters = masters
                .as_ref()
                .map_err(|e| ConfigError::new(kfield, e.to_string()))?;
            match masters.open(spec_text, Purpose::Provider(provider)) {
                Ok(secret) => Some(secret),
                // Like an unset `env:` key: the provider is unavailable
                // and says which variable is missing.
                Err(OpenError::NoMasterKey) => {
                    key_envs.push(envelope::MASTER_KEY_ENV.to_string());
                    None
                }
                Err(e) => return Err(ConfigError::new(kfield, e.to_string())),
            }
        }
        None if spec_text.starts_with("file:") => {
            // The renderer reads key files; a filter configured by hand
            // must not send `file:…` to the provider as the key.
            return Err(ConfigError::new(
                    kfield,
                    "'file:' keys are read by llm-gateway-render, which puts the key in the filter's configuration; this one was not read",
                ));
        }
        None if spec_text.trim().is_empty() => {
            return Err(ConfigError::new(
                kfield,
                "must not be empty; omit it for providers without keys",
            ))
        }
        None => Some(Secret::new(spec_text.trim().to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> PluginConfig {
        PluginConfig::from_json(json.as_bytes()).unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const BASE: &str = r#"{
        "providers": [
            {"name": "oa", "type": "openai", "api_key": "env:OA_KEY"},
            {"name": "local", "type": "ollama"},
            {"name": "ds", "type": "deepseek", "base_url": "http://127.0.0.1:9999/v1", "api_key": "sk-lit"}
        ],
        "models": [
            {"name": "gpt", "targets": [
                {"provider": "ds", "model": "deepseek-chat", "priority": 1},
                {"provider": "oa", "model": "gpt-4o", "weight": 3}
            ]},
            {"name": "llama3", "targets": [{"provider": "local"}]}
        ]
    }"#;

    #[test]
    fn compiles_and_resolves_keys() {
        let env = |n: &str| (n == "OA_KEY").then(|| "sk-env".to_string());
        let gw = compile(&cfg(BASE), &env).unwrap();
        let oa = &gw.providers[0];
        assert_eq!(oa.cluster, "llmgw_oa");
        assert_eq!(oa.endpoint.authority(), "api.openai.com");
        assert_eq!(
            oa.keys[0].header,
            Some(("authorization".into(), "Bearer sk-env".to_string().into()))
        );
        assert!(oa.unavailable.is_none());
        assert!(gw.providers[1].keys.is_empty());
        assert!(gw.providers[1].unavailable.is_none());
        let m = gw.model("gpt").unwrap();
        // Sorted by priority: the oa target (tier 0) first.
        assert_eq!(m.targets[0].model, "gpt-4o");
        assert_eq!(m.targets[1].model, "deepseek-chat");
        assert_eq!(gw.model("llama3").unwrap().targets[0].model, "llama3");
        assert_eq!(gw.max_request_body_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn missing_env_key_makes_provider_unavailable() {
        let gw = compile(&cfg(BASE), &no_env).unwrap();
        let why = gw.providers[0].unavailable.as_deref().unwrap();
        assert!(why.contains("OA_KEY is not set"), "{why}");
        // gpt still has the ds target.
        assert!(gw.is_available(gw.model("gpt").unwrap()));
    }

    #[test]
    fn encrypted_keys_open_with_the_master_key_and_fail_naming_the_field() {
        use crate::secrets::envelope::{MasterKey, MASTER_KEY_ENV};
        const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        const OTHER: &str = "HxwdHhkaGxgXFBUWERITEA8MDQ4LCAkKBwQFBgMAAQI=";
        let master = MasterKey::parse(MASTER).unwrap();
        let for_b = master.encrypt("sk-b-secret", Purpose::Provider("b"), [3; 12]);
        let for_a = master.encrypt("sk-a-secret", Purpose::Provider("a"), [4; 12]);
        let config = |b_key: &str| {
            cfg(&format!(
                r#"{{"providers": [{{"name": "a", "type": "openai", "api_keys": ["{for_a}"]}},
                                  {{"name": "b", "type": "openai", "api_key": "{b_key}"}}],
                    "models": [{{"name": "m", "targets": [{{"provider": "a"}}]}}]}}"#
            ))
        };
        let with =
            |key: &'static str| move |n: &str| (n == MASTER_KEY_ENV).then(|| key.to_string());
        let gw = compile(&config(&for_b), &with(MASTER)).unwrap();
        assert_eq!(gw.providers[0].keys[0].secret.as_str(), "sk-a-secret");
        assert_eq!(gw.providers[1].keys[0].secret.as_str(), "sk-b-secret");
        assert_eq!(
            gw.providers[1].keys[0]
                .header
                .as_ref()
                .map(|(n, v)| (n.as_str(), v.as_str())),
            Some(("authorization", "Bearer sk-b-secret"))
        );
        // Another master key: configure fails at the field, no secret shown.
        let e = compile(&config(&for_b), &with(OTHER)).unwrap_err();
        assert_eq!(e.field, "providers[0].api_keys[0]");
        assert_eq!(
            e.problem,
            "cannot be decrypted with the configured master key"
        );
        // a's ciphertext copied to b does not open as b's.
        let e = compile(&config(&for_a), &with(MASTER)).unwrap_err();
        assert_eq!(e.field, "providers[1].api_key");
        assert!(e.problem.starts_with("cannot be decrypted"), "{e}");
        assert!(!e.to_string().contains("sk-a-secret"));
        let e = compile(&config("enc:v9:AAAA"), &with(MASTER)).unwrap_err();
        assert!(e.problem.contains("unknown encryption version 'v9'"), "{e}");
        let e = compile(&config(&for_b), &with("bm90IDMyIGJ5dGVz")).unwrap_err();
        assert!(
            e.problem
                .contains("LLMGW_MASTER_KEY must be base64 of 32 bytes"),
            "{e}"
        );
        // No master key: like an unset env: key, the provider is unavailable.
        let gw = compile(&config(&for_b), &no_env).unwrap();
        let why = gw.providers[1].unavailable.as_deref().unwrap();
        assert!(why.contains("LLMGW_MASTER_KEY is not set"), "{why}");
        assert_eq!(gw.providers[1].key_envs, [MASTER_KEY_ENV]);
    }

    fn err(json: &str) -> ConfigError {
        match PluginConfig::from_json(json.as_bytes()) {
            Err(e) => e,
            Ok(c) => compile(&c, &no_env).unwrap_err(),
        }
    }

    #[test]
    fn errors_name_field_and_problem() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"providers":[],"models":[]}"#,
                "providers",
                "at least one",
            ),
            (
                r#"{"providers":[{"name":"a","type":"nope"}],"models":[{"name":"m","targets":[{"provider":"a"}]}]}"#,
                "providers[0].type",
                "unknown provider type 'nope'",
            ),
            (
                r#"{"providers":[{"name":"A b","type":"openai"}],"models":[]}"#,
                "providers[0].name",
                "must be",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai","base_url":"ftp://x"}],"models":[]}"#,
                "providers[0].base_url",
                "http",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai"},{"name":"a","type":"openai"}],"models":[]}"#,
                "providers[1].name",
                "duplicate",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai"}],"models":[{"name":"m","targets":[{"provider":"b"}]}]}"#,
                "models[0].targets[0].provider",
                "unknown provider 'b'",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai"}],"models":[{"name":"m","targets":[]}]}"#,
                "models[0].targets",
                "at least one target",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai"}],"models":[{"name":"m","targets":[{"provider":"a","weight":0}]}]}"#,
                "models[0].targets",
                "weight 0",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai","auth":"basic"}],"models":[]}"#,
                "providers[0].auth",
                "not an auth style",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai","api_key":"env:"}],"models":[]}"#,
                "providers[0].api_key",
                "environment variable",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai","api_keys":["k","file:/run/key"]}],"models":[]}"#,
                "providers[0].api_keys[1]",
                "read by llm-gateway-render",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai"}],"models":[{"name":"m","targets":[{"provider":"a"}]}],"limits":{"max_request_body_bytes":0}}"#,
                "limits.max_request_body_bytes",
                "between",
            ),
            (
                r#"{"providers":[{"name":"a","type":"openai","headers":[{"name":":path","value":"x"}]}],"models":[]}"#,
                "providers[0].headers[0].name",
                "may be set",
            ),
        ];
        for (json, field, problem) in cases {
            let e = err(json);
            assert_eq!(&e.field, field, "{json}: {e}");
            assert!(e.problem.contains(problem), "{json}: {e}");
        }
    }

    #[test]
    fn azure_needs_base_url_and_valid_deployments() {
        let e = err(r#"{"providers":[{"name":"az","type":"azure","api_key":"k"}],"models":[]}"#);
        assert_eq!(e.field, "providers[0].base_url");
        assert!(e.problem.contains("required for type 'azure'"), "{e}");
        let e = err(
            r#"{"providers":[{"name":"az","type":"azure","base_url":"https://r.openai.azure.com","api_key":"k"}],
            "models":[{"name":"m","targets":[{"provider":"az","model":"bad/name"}]}]}"#,
        );
        assert_eq!(e.field, "models[0].targets[0].model");
        let e = err(
            r#"{"providers":[{"name":"a","type":"openai","api_version":"2024-01-01"}],"models":[]}"#,
        );
        assert_eq!(e.field, "providers[0].api_version");
        let gw = compile(
            &cfg(r#"{"providers":[{"name":"az","type":"azure","base_url":"https://r.openai.azure.com","api_key":"k"}],
                "models":[{"name":"m","targets":[{"provider":"az","model":"dep"}]}]}"#),
            &no_env,
        )
        .unwrap();
        assert_eq!(gw.providers[0].wire, Wire::OpenAiChat);
        assert_eq!(
            gw.providers[0].egress.0.path(
                crate::providers::Operation::ChatCompletions,
                "",
                "dep",
                false
            ),
            "/openai/deployments/dep/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            gw.providers[0].keys[0].header,
            Some(("api-key".into(), "k".to_string().into()))
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = err(r#"{"providers":[{"name":"a","type":"openai","apikey":"x"}],"models":[]}"#);
        assert!(e.problem.contains("unknown field `apikey`"), "{e}");
    }
}
