//! The `kubernetes:` section of the gateway file: how the gateway runs in
//! a cluster and in an Istio mesh. Only `llm-gateway-render istio` reads it.

use llm_gateway::error::ConfigError;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubeConfig {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Names the Deployment, Service, ConfigMap and the other objects.
    #[serde(default = "default_name")]
    pub name: String,
    /// The Envoy image of the gateway Deployment (Kubernetes without Istio).
    #[serde(default = "default_envoy_image")]
    pub envoy_image: String,
    pub plugin: PluginSource,
    /// The Secret holding the provider keys, one entry per `env:` key.
    #[serde(default = "default_secret")]
    pub secret: String,
    #[serde(default)]
    pub replicas: Replicas,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub canary: Canary,
    /// The host applications' sidecars call in sidecar mode
    /// (`http://<host>/v1/...`); the mesh gives it no endpoint of its own.
    #[serde(default = "default_sidecar_host")]
    pub sidecar_host: String,
    /// Namespaces whose pods may call the gateway (NetworkPolicy); empty:
    /// every namespace.
    #[serde(default)]
    pub client_namespaces: Vec<String>,
    /// The namespace Prometheus scrapes from (NetworkPolicy on admin).
    #[serde(default = "default_monitoring")]
    pub monitoring_namespace: String,
}

/// Where the `.wasm` comes from: an OCI image for Istio's WasmPlugin, and
/// an `https://` URL with its SHA-256 (WasmPlugin's alternative, and what
/// the plain Deployment downloads and checks before Envoy starts).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginSource {
    pub oci: String,
    pub url: String,
    pub sha256: String,
    /// Which of the two istio-agent fetches for the mesh.
    #[serde(default)]
    pub istio_fetch: IstioFetch,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Default)]
#[serde(rename_all = "lowercase")]
pub enum IstioFetch {
    #[default]
    Oci,
    Https,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Replicas {
    #[serde(default = "default_min")]
    pub min: u32,
    #[serde(default = "default_max")]
    pub max: u32,
    /// HPA target: average CPU utilisation, percent of the request.
    #[serde(default = "default_cpu_percent")]
    pub cpu_percent: u32,
    /// HPA target: LLM requests per second per pod
    /// (`llm_gateway_requests_total` through prometheus-adapter).
    #[serde(default = "default_rps")]
    pub requests_per_second: u32,
}

impl Default for Replicas {
    fn default() -> Self {
        Self {
            min: default_min(),
            max: default_max(),
            cpu_percent: default_cpu_percent(),
            requests_per_second: default_rps(),
        }
    }
}

/// Container resources of the gateway (Envoy + filter).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default = "default_cpu")]
    pub cpu: String,
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default = "default_cpu_limit")]
    pub cpu_limit: String,
    #[serde(default = "default_memory_limit")]
    pub memory_limit: String,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpu: default_cpu(),
            memory: default_memory(),
            cpu_limit: default_cpu_limit(),
            memory_limit: default_memory_limit(),
        }
    }
}

/// Two gateway versions side by side (`stable`, `canary`) in the mesh.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// Share of requests the canary gets.
    #[serde(default = "default_canary_percent")]
    pub percent: u32,
    /// A request carrying this header (any value) goes to the canary.
    #[serde(default = "default_canary_header")]
    pub header: String,
    /// Share of the stable version's requests copied to the canary (its
    /// answers are dropped; the copies do reach the providers and cost).
    #[serde(default)]
    pub mirror_percent: f64,
}

impl Default for Canary {
    fn default() -> Self {
        Self {
            percent: default_canary_percent(),
            header: default_canary_header(),
            mirror_percent: 0.0,
        }
    }
}

fn default_namespace() -> String {
    "llm-gateway".into()
}
fn default_name() -> String {
    "llm-gateway".into()
}
fn default_envoy_image() -> String {
    "envoyproxy/envoy:v1.40-latest".into()
}
fn default_secret() -> String {
    "llm-gateway-provider-keys".into()
}
fn default_sidecar_host() -> String {
    "llm-gateway.mesh.internal".into()
}
fn default_monitoring() -> String {
    "monitoring".into()
}
fn default_min() -> u32 {
    2
}
fn default_max() -> u32 {
    10
}
fn default_cpu_percent() -> u32 {
    70
}
fn default_rps() -> u32 {
    50
}
fn default_cpu() -> String {
    "500m".into()
}
fn default_memory() -> String {
    "256Mi".into()
}
fn default_cpu_limit() -> String {
    "2".into()
}
fn default_memory_limit() -> String {
    "1Gi".into()
}
fn default_canary_percent() -> u32 {
    10
}
fn default_canary_header() -> String {
    "x-llm-gateway-canary".into()
}

/// A DNS-1123 label, as Kubernetes names and namespaces must be.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A lowercase HTTP header name.
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl KubeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let f =
            |field: &str, why: String| Err(ConfigError::new(format!("kubernetes.{field}"), why));
        for (field, v) in [
            ("namespace", &self.namespace),
            ("name", &self.name),
            ("secret", &self.secret),
            ("monitoring_namespace", &self.monitoring_namespace),
        ] {
            if !is_dns_label(v) {
                return f(field, format!("'{v}' must be a DNS label (a-z, 0-9, '-')"));
            }
        }
        for (i, ns) in self.client_namespaces.iter().enumerate() {
            if !is_dns_label(ns) {
                return f(
                    &format!("client_namespaces[{i}]"),
                    format!("'{ns}' must be a DNS label"),
                );
            }
        }
        if !self.plugin.oci.starts_with("oci://") {
            return f("plugin.oci", "must be an oci:// image reference".into());
        }
        if !self.plugin.url.starts_with("https://") {
            return f("plugin.url", "must be an https:// URL of the .wasm".into());
        }
        let sha = &self.plugin.sha256;
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return f("plugin.sha256", "must be 64 lowercase hex digits".into());
        }
        let r = &self.replicas;
        if r.min < 1 || r.max < r.min {
            return f("replicas", "needs 1 <= min <= max".into());
        }
        if !(1..=100).contains(&r.cpu_percent) {
            return f("replicas.cpu_percent", "must be 1 to 100".into());
        }
        if r.requests_per_second == 0 {
            return f("replicas.requests_per_second", "must be at least 1".into());
        }
        let c = &self.canary;
        if c.percent > 100 {
            return f("canary.percent", "must be 0 to 100".into());
        }
        if !(0.0..=100.0).contains(&c.mirror_percent) {
            return f("canary.mirror_percent", "must be 0 to 100".into());
        }
        if !is_header_name(&c.header) {
            return f(
                "canary.header",
                format!("'{}' must be a lowercase header name", c.header),
            );
        }
        let host = &self.sidecar_host;
        if !host.split('.').all(is_dns_label) || !host.contains('.') {
            return f("sidecar_host", format!("'{host}' must be a DNS name"));
        }
        Ok(())
    }
}
