//! The user's `gateway.yaml`: the filter's `PluginConfig` plus the
//! Envoy-level sections only the renderer reads.

use llm_gateway::config::{compile, Gateway, PluginConfig};
use llm_gateway::consumers::sha256;
use llm_gateway::error::ConfigError;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SocketConfig {
    #[serde(default = "loopback")]
    pub address: String,
    pub port: u16,
    /// HTTPS on the listener (not on admin).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// A certificate chain and its private key, PEM files Envoy reads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: String,
    pub key_file: String,
}

/// Envoy's CORS filter, for browser apps calling the gateway directly.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`), or `*` for any.
    pub allow_origins: Vec<String>,
    /// How long a browser may cache a preflight answer.
    #[serde(default = "default_cors_max_age")]
    pub max_age_seconds: u32,
}

fn default_cors_max_age() -> u32 {
    86_400
}

fn loopback() -> String {
    "127.0.0.1".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvoyConfig {
    /// Upper bound for one request, streaming included.
    #[serde(default = "default_route_timeout")]
    pub route_timeout_seconds: u32,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u32,
    /// CA bundle for verifying https providers.
    #[serde(default = "default_ca_file")]
    pub ca_file: String,
    /// `stdout`, `none`, or a file path for a JSON access log.
    #[serde(default = "default_access_log")]
    pub access_log: String,
    /// OpenTelemetry tracing; off when absent.
    #[serde(default)]
    pub tracing: Option<TracingConfig>,
    /// Envoy's compressor for JSON answers to clients that accept gzip, and
    /// its decompressor for gzip request bodies.
    #[serde(default = "yes")]
    pub compression: bool,
    /// Cross-origin requests from browsers; none allowed when absent.
    #[serde(default)]
    pub cors: Option<CorsConfig>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// The OTLP collector, `host:port` (4317 for gRPC, 4318 for HTTP).
    pub collector: String,
    #[serde(default)]
    pub protocol: OtlpProtocol,
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Share of requests traced, 0–100.
    #[serde(default = "default_sampling")]
    pub sampling_percent: f64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    #[default]
    Grpc,
    Http,
}

fn default_service_name() -> String {
    "llm-gateway".into()
}
fn default_sampling() -> f64 {
    100.0
}

impl TracingConfig {
    /// The collector's host and port.
    pub fn host_port(&self) -> Result<(String, u16), ConfigError> {
        let bad = || {
            ConfigError::new(
                "envoy.tracing.collector",
                format!("'{}' must be host:port", self.collector),
            )
        };
        let (host, port) = self.collector.rsplit_once(':').ok_or_else(bad)?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(bad)?;
        if host.is_empty() || host.contains('/') {
            return Err(bad());
        }
        Ok((host.to_string(), port))
    }
}

fn default_route_timeout() -> u32 {
    300
}
fn default_connect_timeout() -> u32 {
    10
}
fn default_ca_file() -> String {
    "/etc/ssl/certs/ca-certificates.crt".into()
}
fn default_access_log() -> String {
    "stdout".into()
}

impl Default for EnvoyConfig {
    fn default() -> Self {
        Self {
            route_timeout_seconds: default_route_timeout(),
            connect_timeout_seconds: default_connect_timeout(),
            ca_file: default_ca_file(),
            access_log: default_access_log(),
            tracing: None,
            compression: true,
            cors: None,
        }
    }
}

/// A parsed and validated gateway file.
#[derive(Debug)]
pub struct GatewayFile {
    pub listener: SocketConfig,
    pub admin: Option<SocketConfig>,
    pub envoy: EnvoyConfig,
    pub plugin: PluginConfig,
    pub gateway: Gateway,
    /// How the gateway runs in Kubernetes and Istio (`render istio`).
    pub kubernetes: Option<crate::kube::config::KubeConfig>,
    /// Files `file:` keys were read from, with the SHA-256 of what was read
    /// (a watcher re-renders when one changes: a rotated key).
    pub key_files: Vec<(PathBuf, [u8; 32])>,
}

const ENVOY_SECTIONS: [&str; 4] = ["listener", "admin", "envoy", "kubernetes"];
/// Sections the filter itself reads (`PluginConfig`).
const PLUGIN_SECTIONS: [&str; 15] = [
    "providers",
    "guardrails",
    "log_fields",
    "models",
    "limits",
    "pricing",
    "consumers",
    "auth",
    "metrics",
    "health",
    "failover",
    "rate_limits",
    "model_map",
    "routing_rules",
    "cache",
];

fn section<T: serde::de::DeserializeOwned>(
    value: Option<Value>,
    name: &str,
) -> Result<Option<T>, ConfigError> {
    value
        .map(|v| serde_json::from_value(v).map_err(|e| ConfigError::new(name, e.to_string())))
        .transpose()
}

/// What `file:PATH` names, relative paths taken from `base` (the gateway
/// file's directory).
fn key_file_path(spec: &str, base: &Path) -> Option<PathBuf> {
    let path = Path::new(spec.strip_prefix("file:")?.trim());
    Some(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    })
}

/// Reads a `file:` key: its content, trimmed, and the digest of what was
/// read. Errors name the field and the file, never the content.
fn read_key_file(field: &str, path: &Path) -> Result<(String, [u8; 32]), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            field,
            format!("cannot read key file {}: {e}", path.display()),
        )
    })?;
    let digest = sha256(text.as_bytes());
    let key = text.trim();
    if key.is_empty() {
        return Err(ConfigError::new(
            field,
            format!("key file {} is empty", path.display()),
        ));
    }
    Ok((key.to_string(), digest))
}

/// Replaces `file:PATH` keys by what the files hold: a provider key goes
/// into the filter's configuration as a literal, a consumer key as its
/// `sha256:` digest (the filter never holds a consumer's plain key).
fn resolve_key_files(
    plugin: &mut PluginConfig,
    base: &Path,
) -> Result<Vec<(PathBuf, [u8; 32])>, ConfigError> {
    let mut files = Vec::new();
    for (i, p) in plugin.providers.iter_mut().enumerate() {
        let keys = p
            .api_key
            .iter_mut()
            .map(|k| (format!("providers[{i}].api_key"), k));
        let pool = p.api_keys.iter_mut().enumerate();
        let pool = pool.map(|(j, k)| (format!("providers[{i}].api_keys[{j}]"), k));
        let token = p.token.iter_mut().flat_map(|t| {
            [
                ("client_id", &mut t.client_id),
                ("client_secret", &mut t.client_secret),
                ("service_account", &mut t.service_account),
            ]
            .into_iter()
            .filter_map(move |(name, v)| {
                v.as_mut()
                    .map(|v| (format!("providers[{i}].token.{name}"), v))
            })
        });
        for (field, key) in keys.chain(pool).chain(token) {
            if let Some(path) = key_file_path(key, base) {
                let (plain, digest) = read_key_file(&field, &path)?;
                *key = plain;
                files.push((path, digest));
            }
        }
    }
    for (i, c) in plugin.consumers.iter_mut().enumerate() {
        for (j, key) in c.api_keys.iter_mut().enumerate() {
            if let Some(path) = key_file_path(key, base) {
                let (plain, digest) =
                    read_key_file(&format!("consumers[{i}].api_keys[{j}]"), &path)?;
                *key = format!("sha256:{}", hex(&sha256(plain.as_bytes())));
                files.push((path, digest));
            }
        }
    }
    Ok(files)
}

/// Expands `file:PATH` entries of guardrail word lists: one term per line
/// (blank lines and lines starting with `#` skipped). The files are
/// watched like key files.
fn resolve_word_files(
    plugin: &mut PluginConfig,
    base: &Path,
) -> Result<Vec<(PathBuf, [u8; 32])>, ConfigError> {
    let mut files = Vec::new();
    for (i, g) in plugin.guardrails.iter_mut().enumerate() {
        let mut words = Vec::with_capacity(g.words.len());
        for (j, w) in g.words.iter().enumerate() {
            let Some(path) = key_file_path(w, base) else {
                words.push(w.clone());
                continue;
            };
            let field = format!("guardrails[{i}].words[{j}]");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::new(
                    &field,
                    format!("cannot read word list {}: {e}", path.display()),
                )
            })?;
            let before = words.len();
            words.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
            if words.len() == before {
                return Err(ConfigError::new(
                    field,
                    format!("word list {} has no terms", path.display()),
                ));
            }
            files.push((path, sha256(text.as_bytes())));
        }
        g.words = words;
    }
    Ok(files)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl GatewayFile {
    /// Parses a gateway file's text; `file:` keys are read relative to the
    /// current directory.
    #[cfg(test)]
    pub fn parse(yaml: &str) -> Result<Self, ConfigError> {
        Self::parse_in(yaml, Path::new("."))
    }

    /// Parses a gateway file's text; relative `file:` keys are read from
    /// `base` (the file's directory).
    pub fn parse_in(yaml: &str, base: &Path) -> Result<Self, ConfigError> {
        let value: Value = serde_yaml::from_str(yaml)
            .map_err(|e| ConfigError::new("gateway file", format!("not valid YAML: {e}")))?;
        let Value::Object(mut map) = value else {
            return Err(ConfigError::new("gateway file", "must be a YAML mapping"));
        };
        let listener = section::<SocketConfig>(map.remove("listener"), "listener")?
            .ok_or_else(|| ConfigError::new("listener", "is required (address and port)"))?;
        let admin = section::<SocketConfig>(map.remove("admin"), "admin")?;
        let envoy = section::<EnvoyConfig>(map.remove("envoy"), "envoy")?.unwrap_or_default();
        let kubernetes =
            section::<crate::kube::config::KubeConfig>(map.remove("kubernetes"), "kubernetes")?;
        if let Some(k) = &kubernetes {
            k.validate()?;
        }
        if let Some(unknown) = map.keys().find(|k| !PLUGIN_SECTIONS.contains(&k.as_str())) {
            return Err(ConfigError::new(
                unknown.clone(),
                format!(
                    "unknown section; expected one of {}, {}",
                    ENVOY_SECTIONS.join(", "),
                    PLUGIN_SECTIONS.join(", ")
                ),
            ));
        }
        let mut plugin: PluginConfig = serde_json::from_value(Value::Object(map))
            .map_err(|e| ConfigError::new("gateway file", e.to_string()))?;
        // Filter state nobody reads is not worth writing on every request.
        if plugin.log_fields.is_none() {
            plugin.log_fields = Some(envoy.access_log != "none" || envoy.tracing.is_some());
        }
        let mut key_files = resolve_key_files(&mut plugin, base)?;
        key_files.extend(resolve_word_files(&mut plugin, base)?);
        // Keys are not needed to render; missing ones only disable providers.
        let gateway = compile(&plugin, &|_| None)?;
        if envoy.route_timeout_seconds == 0 {
            return Err(ConfigError::new(
                "envoy.route_timeout_seconds",
                "must be at least 1",
            ));
        }
        if let Some(t) = &envoy.tracing {
            t.host_port()?;
            if !(0.0..=100.0).contains(&t.sampling_percent) {
                return Err(ConfigError::new(
                    "envoy.tracing.sampling_percent",
                    "must be between 0 and 100",
                ));
            }
        }
        if admin.as_ref().is_some_and(|a| a.tls.is_some()) {
            return Err(ConfigError::new(
                "admin.tls",
                "is not supported: keep admin on loopback",
            ));
        }
        if let Some(tls) = &listener.tls {
            for (field, path) in [("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
                if path.trim().is_empty() {
                    return Err(ConfigError::new(
                        format!("listener.tls.{field}"),
                        "must be a file path",
                    ));
                }
            }
        }
        if let Some(cors) = &envoy.cors {
            if cors.allow_origins.is_empty() {
                return Err(ConfigError::new(
                    "envoy.cors.allow_origins",
                    "needs at least one origin (or \"*\")",
                ));
            }
            for (i, o) in cors.allow_origins.iter().enumerate() {
                let exact = o.starts_with("http://") || o.starts_with("https://");
                if o != "*" && (!exact || o.ends_with('/') || o.chars().any(|c| c.is_whitespace()))
                {
                    return Err(ConfigError::new(
                        format!("envoy.cors.allow_origins[{i}]"),
                        format!("'{o}' must be an origin such as https://app.example.com (no path), or \"*\""),
                    ));
                }
            }
        }
        if envoy.access_log.trim().is_empty() {
            return Err(ConfigError::new(
                "envoy.access_log",
                "must be 'stdout', 'none' or a file path",
            ));
        }
        Ok(Self {
            listener,
            admin,
            envoy,
            plugin,
            gateway,
            kubernetes,
            key_files,
        })
    }

    /// Host environment variables the filter reads keys from.
    pub fn env_keys(&self) -> Vec<String> {
        let master = llm_gateway::secrets::envelope::MASTER_KEY_ENV;
        let consumer_keys = self
            .plugin
            .consumers
            .iter()
            .flat_map(|c| c.api_keys.iter().chain(&c.signing_secret))
            .filter_map(|k| match k.strip_prefix("env:") {
                Some(name) => Some(name.to_string()),
                None => k.starts_with("enc:").then(|| master.to_string()),
            });
        let mut keys: Vec<String> = self
            .gateway
            .providers
            .iter()
            .flat_map(|p| p.key_envs.iter().cloned())
            .chain(consumer_keys)
            .collect();
        // Encrypted keys need the master key, and the previous one during a
        // rotation.
        if keys.iter().any(|k| k == master) {
            keys.push(llm_gateway::secrets::envelope::PREVIOUS_MASTER_KEY_ENV.to_string());
        }
        keys.sort();
        keys.dedup();
        keys
    }
}
