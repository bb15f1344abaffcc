//! Istio: the filter attached to an Istio gateway Deployment or to
//! applications' sidecars, the providers as mesh services, and the canary
//! and mirror of a new gateway version.
//!
//! The filter is attached with an EnvoyFilter (an ECDS resource plus the
//! HTTP filter naming it), not a WasmPlugin: it must hold the request
//! headers until it has read the body's `model`, which needs the Wasm
//! option `allow_on_headers_stop_iteration`, and istiod sets no such field
//! from a WasmPlugin (without it Envoy stops the body as well, and the
//! request hangs). istio-agent fetches the module for either resource.

use super::config::KubeConfig;
use super::k8s;
use super::{labels, meta, Doc};
use crate::envoy::PLUGIN_NAME;
use crate::gateway_file::GatewayFile;
use llm_gateway::config::Provider;
use llm_gateway::flow::CLUSTER_HEADER;
use serde_json::{json, Value};

/// The port the Istio gateway's Envoy listens on (unprivileged).
pub const GATEWAY_PORT: u16 = 8080;
/// Pods of applications whose sidecars run the filter carry this label.
pub const ATTACH_LABEL: &str = "llm-gateway.io/attach";
const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// Istio's stats filter: the gateway filter goes right before it, so the
/// mesh's metrics see the answer the client gets.
const ISTIO_STATS: &str = "istio.stats";

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// The dedicated gateway Deployment (`version: stable`).
    Gateway,
    /// Its canary (`version: canary`).
    Canary,
    /// Applications' sidecars, outbound.
    Sidecar,
}

/// A provider reached through the mesh: a host outside the cluster gets a
/// ServiceEntry; TLS is originated by the sidecar or gateway.
struct External<'a> {
    provider: &'a Provider,
    /// Port the mesh routes to: plain HTTP, TLS originated on the way out.
    mesh_port: u16,
}

fn in_cluster(host: &str) -> bool {
    host.ends_with(".svc.cluster.local") || host.ends_with(".svc")
}

fn externals(gw: &GatewayFile) -> Vec<External<'_>> {
    gw.gateway
        .providers
        .iter()
        .map(|p| External {
            provider: p,
            // Istio's TLS origination: the app side speaks HTTP on port 80,
            // the DestinationRule makes it TLS to the provider's port.
            mesh_port: if p.endpoint.is_tls() {
                80
            } else {
                p.endpoint.port
            },
        })
        .collect()
}

fn ms(v: u64) -> String {
    format!("{v}ms")
}

/// One ServiceEntry and one DestinationRule per provider host.
pub fn provider_services(k: &KubeConfig, gw: &GatewayFile) -> (Vec<Doc>, Vec<Doc>) {
    let health = &gw.plugin.health;
    let mut seen = std::collections::BTreeSet::new();
    let (mut entries, mut rules) = (Vec::new(), Vec::new());
    for e in externals(gw) {
        let ep = &e.provider.endpoint;
        if !seen.insert((ep.host.clone(), ep.port)) {
            continue;
        }
        let name = format!("{}-{}", k.name, ep.host.replace('.', "-"));
        if !in_cluster(&ep.host) {
            let mut ports =
                vec![json!({"number": e.mesh_port, "name": "http", "protocol": "HTTP"})];
            if ep.is_tls() {
                ports[0]["targetPort"] = json!(ep.port);
                // Apps calling the provider over HTTPS themselves keep working.
                ports.push(json!({"number": ep.port, "name": "https", "protocol": "TLS"}));
            }
            entries.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": meta(k, &name),
                "spec": {
                    "hosts": [ep.host],
                    "location": "MESH_EXTERNAL",
                    "resolution": "DNS",
                    "ports": ports
                }
            }));
        }
        let connect = e.provider.timeouts.connect_ms.map_or("10s".to_string(), ms);
        let mut policy = json!({
            "connectionPool": {
                "tcp": {"maxConnections": 1024, "connectTimeout": connect},
                "http": {"http1MaxPendingRequests": 1024, "maxRequestsPerConnection": 0, "idleTimeout": "60s"}
            },
            // The filter's passive health decides per target; this mirrors
            // it at the mesh level (and shows in the mesh's metrics).
            "outlierDetection": {
                "consecutive5xxErrors": health.consecutive_failures,
                "consecutiveGatewayErrors": health.consecutive_failures,
                "interval": "10s",
                "baseEjectionTime": ms(health.base_ejection_ms),
                "maxEjectionPercent": 100
            }
        });
        if ep.is_tls() {
            policy["portLevelSettings"] = json!([{
                "port": {"number": e.mesh_port},
                "tls": {"mode": "SIMPLE", "sni": ep.host}
            }]);
        }
        rules.push(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": meta(k, &name),
            "spec": {"host": ep.host, "trafficPolicy": policy}
        }));
    }
    (entries, rules)
}

/// One provider's route: the header the filter sets names its cluster.
fn provider_route(gw: &GatewayFile, e: &External) -> Value {
    let p = e.provider;
    let timeout = p
        .timeouts
        .total_ms
        .map_or(format!("{}s", gw.envoy.route_timeout_seconds), ms);
    json!({
        "name": p.name,
        "match": [{"headers": {CLUSTER_HEADER: {"exact": p.cluster}}}],
        "route": [{"destination": {"host": p.endpoint.host, "port": {"number": e.mesh_port}}}],
        "headers": {"request": {"remove": [CLUSTER_HEADER]}},
        "timeout": timeout,
        "retries": {"attempts": 1, "retryOn": "reset,connect-failure"}
    })
}

fn virtual_service(k: &KubeConfig, name: &str, spec: Value) -> Doc {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": meta(k, name),
        "spec": spec
    })
}

/// Routes the filter's decision: the routing header it sets names the
/// provider's cluster; the mesh sends the request to that provider.
///
/// The filter also sets the request's authority to the provider's host,
/// and the route is chosen again after it: a gateway's routes match any
/// host, while a sidecar picks the virtual host of the provider's host —
/// so in sidecar mode each provider host gets its own routes, the filter's
/// first and, for every other caller of that host, the host itself.
pub fn provider_routes(k: &KubeConfig, gw: &GatewayFile, mode: Mode) -> Vec<Doc> {
    let all = externals(gw);
    if mode != Mode::Sidecar {
        let routes: Vec<Value> = all.iter().map(|e| provider_route(gw, e)).collect();
        let spec = json!({"hosts": ["*"], "gateways": [k.name], "http": routes});
        return vec![virtual_service(k, &format!("{}-routes", k.name), spec)];
    }
    let mut hosts: Vec<(&str, u16)> = all
        .iter()
        .map(|e| (e.provider.endpoint.host.as_str(), e.mesh_port))
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
        .into_iter()
        .map(|(host, port)| {
            let mut routes: Vec<Value> = all
                .iter()
                .filter(|e| e.provider.endpoint.host == host)
                .map(|e| provider_route(gw, e))
                .collect();
            routes.push(json!({
                "name": "others",
                "route": [{"destination": {"host": host, "port": {"number": port}}}]
            }));
            let name = format!("{}-sidecar-{}", k.name, host.replace('.', "-"));
            virtual_service(k, &name, json!({"hosts": [host], "http": routes}))
        })
        .collect()
}

/// The Istio Gateway the gateway Deployment serves.
pub fn gateway(k: &KubeConfig) -> Doc {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": meta(k, &k.name),
        "spec": {
            "selector": {"app.kubernetes.io/name": k.name},
            "servers": [{"port": {"number": GATEWAY_PORT, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]
        }
    })
}

/// A Deployment Istio injects as a gateway (its Envoy is istio-proxy);
/// the EnvoyFilter adds the filter.
pub fn gateway_deployment(k: &KubeConfig, gw: &GatewayFile, version: &str) -> Doc {
    let name = if version == "stable" {
        k.name.clone()
    } else {
        format!("{}-{version}", k.name)
    };
    let mut pod_labels = labels(k, version);
    pod_labels["sidecar.istio.io/inject"] = json!("true");
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(k, &name),
        "spec": {
            "replicas": if version == "stable" { k.replicas.min } else { 1 },
            "selector": {"matchLabels": {"app.kubernetes.io/name": k.name, "version": version}},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "inject.istio.io/templates": "gateway",
                        "proxy.istio.io/config": STATS_ANNOTATION
                    }
                },
                "spec": {
                    "affinity": k8s::anti_affinity(k),
                    "terminationGracePeriodSeconds": gw.envoy.route_timeout_seconds.min(600) + 5,
                    "containers": [{
                        "name": "istio-proxy",
                        // Replaced by the injector with the mesh's proxy.
                        "image": "auto",
                        "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
                        "env": k8s::secret_env(k, gw),
                        "resources": k8s::resources(k)
                    }]
                }
            }
        }
    })
}

/// The gateway pods accept clients on the gateway port and the mesh's own
/// traffic (istiod's pushes go out; Prometheus scrapes 15020).
pub fn gateway_network_policy(k: &KubeConfig, gw: &GatewayFile) -> Doc {
    let mut np = k8s::network_policy(k, gw, GATEWAY_PORT, Some(15020));
    if let Some(egress) = np["spec"]["egress"].as_array_mut() {
        egress.push(json!({
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}}}],
            "ports": [{"port": 15012, "protocol": "TCP"}, {"port": 15017, "protocol": "TCP"}]
        }));
        egress.push(json!({"ports": [{"port": 443, "protocol": "TCP"}]}));
    }
    np
}

/// The filter for one attachment: an ECDS resource holding the Wasm
/// configuration, and the HTTP filter naming it, before Istio's stats.
pub fn filter_patch(k: &KubeConfig, gw: &GatewayFile, mode: Mode) -> Doc {
    let version = |v: &str| json!({"app.kubernetes.io/name": k.name, "version": v});
    let (name, selector, context) = match mode {
        Mode::Gateway => (k.name.clone(), version("stable"), "GATEWAY"),
        Mode::Canary => (format!("{}-canary", k.name), version("canary"), "GATEWAY"),
        Mode::Sidecar => (
            format!("{}-sidecar", k.name),
            json!({ATTACH_LABEL: "true"}),
            "SIDECAR_OUTBOUND",
        ),
    };
    let resource = format!("{}.{name}", k.namespace);
    let plugin_json = serde_json::to_string(&gw.plugin).unwrap_or_default();
    let (uri, sha256) = match k.plugin.istio_fetch {
        super::config::IstioFetch::Oci => (k.plugin.oci.clone(), None),
        super::config::IstioFetch::Https => (k.plugin.url.clone(), Some(k.plugin.sha256.clone())),
    };
    let mut remote = json!({"http_uri": {"uri": uri, "cluster": "_", "timeout": "30s"}});
    if let Some(sha) = sha256 {
        remote["sha256"] = json!(sha);
    }
    let mut vm = json!({
        "vm_id": PLUGIN_NAME,
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"remote": remote}
    });
    let env = gw.env_keys();
    if !env.is_empty() {
        vm["environment_variables"] = json!({"host_env_keys": env});
    }
    let wasm = json!({
        "name": resource,
        "typed_config": {
            "@type": WASM_TYPE,
            "config": {
                "name": resource,
                "root_id": PLUGIN_NAME,
                "allow_on_headers_stop_iteration": true,
                "failure_policy": "FAIL_RELOAD",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": plugin_json},
                "vm_config": vm
            }
        }
    });
    let filter = json!({
        "name": resource,
        "config_discovery": {
            "config_source": {"ads": {}, "initial_fetch_timeout": "0s"},
            "type_urls": [WASM_TYPE]
        }
    });
    let mut patches = vec![
        json!({"applyTo": "EXTENSION_CONFIG", "patch": {"operation": "ADD", "value": wasm}}),
        json!({
            "applyTo": "HTTP_FILTER",
            "match": {
                "context": context,
                "listener": {"filterChain": {"filter": {
                    "name": "envoy.filters.network.http_connection_manager",
                    "subFilter": {"name": ISTIO_STATS}
                }}}
            },
            "patch": {"operation": "INSERT_BEFORE", "value": filter}
        }),
        // The filter's `;label=value` metric name segments become
        // Prometheus labels (read at the proxy's start).
        json!({"applyTo": "BOOTSTRAP", "patch": {"operation": "MERGE", "value": {
            "stats_config": crate::envoy::stats_config()
        }}}),
    ];
    if mode == Mode::Sidecar {
        // An application's outbound traffic all crosses the same
        // connection manager: the filter is off there, and on only for
        // requests to the sidecar host.
        patches[1]["patch"]["value"]["disabled"] = json!(true);
        patches.push(json!({
            "applyTo": "VIRTUAL_HOST",
            "match": {
                "context": context,
                "routeConfiguration": {"vhost": {"name": format!("{}:80", k.sidecar_host)}}
            },
            "patch": {"operation": "MERGE", "value": {"typed_per_filter_config": {
                // An empty `config` switches it on (Envoy: route::v3::FilterConfig).
                resource.as_str(): {"@type": ROUTE_FILTER_CONFIG, "config": {}}
            }}}
        }));
    }
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": meta(k, &name),
        "spec": {
            "workloadSelector": {"labels": selector},
            "configPatches": patches
        }
    })
}

/// A per-route filter configuration that only switches a filter on.
const ROUTE_FILTER_CONFIG: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

/// Istio exports only its own metrics unless told otherwise.
pub const STATS_ANNOTATION: &str =
    r#"{"proxyStatsMatcher": {"inclusionRegexps": [".*llm_gateway.*", ".*gen_ai.*"]}}"#;

/// Subsets of the gateway Service: the two versions.
pub fn gateway_subsets(k: &KubeConfig) -> Doc {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": meta(k, &k.name),
        "spec": {
            "host": service_host(k),
            "subsets": [
                {"name": "stable", "labels": {"version": "stable"}},
                {"name": "canary", "labels": {"version": "canary"}}
            ]
        }
    })
}

pub fn service_host(k: &KubeConfig) -> String {
    format!("{}.{}.svc.cluster.local", k.name, k.namespace)
}

/// Mesh clients calling the gateway: testers carrying the canary header
/// always reach the canary; the others are split by weight, and a share of
/// the stable version's requests is mirrored to the canary.
pub fn canary_routes(k: &KubeConfig) -> Doc {
    let c = &k.canary;
    let host = service_host(k);
    let dest = |subset: &str| json!({"host": host, "subset": subset});
    let mut split = json!({
        "name": "split",
        "route": [
            {"destination": dest("stable"), "weight": 100 - c.percent},
            {"destination": dest("canary"), "weight": c.percent}
        ]
    });
    if c.mirror_percent > 0.0 {
        split["mirror"] = dest("canary");
        split["mirrorPercentage"] = json!({"value": c.mirror_percent});
    }
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": meta(k, &format!("{}-canary", k.name)),
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "name": "pinned",
                    "match": [{"headers": {c.header.as_str(): {"regex": ".+"}}}],
                    "route": [{"destination": dest("canary")}]
                },
                split
            ]
        }
    })
}

/// The name applications call in sidecar mode. It has no endpoints of its
/// own: the filter in the caller's sidecar picks the provider.
pub fn sidecar_host(k: &KubeConfig) -> Doc {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": meta(k, &format!("{}-sidecar-host", k.name)),
        "spec": {
            "hosts": [k.sidecar_host],
            "location": "MESH_INTERNAL",
            "resolution": "NONE",
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]
        }
    })
}

/// The sidecar's DNS answers the sidecar host; the filter's metrics are
/// exported.
const SIDECAR_PROXY_CONFIG: &str = r#"{"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_DNS_AUTO_ALLOCATE": "true"}, "proxyStatsMatcher": {"inclusionRegexps": [".*llm_gateway.*", ".*gen_ai.*"]}}"#;

/// What an application's Deployment adds to use the filter in its own
/// sidecar (a strategic-merge patch): the label the EnvoyFilter selects,
/// the keys in the sidecar's environment, and the sidecar's DNS answering
/// the sidecar host.
pub fn sidecar_pod_patch(k: &KubeConfig, gw: &GatewayFile) -> Doc {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "your-app"},
        "spec": {"template": {
            "metadata": {
                "labels": {ATTACH_LABEL: "true"},
                "annotations": {"proxy.istio.io/config": SIDECAR_PROXY_CONFIG}
            },
            "spec": {"containers": [{"name": "istio-proxy", "env": k8s::secret_env(k, gw)}]}
        }}
    })
}

/// Istio's routes cannot express failover pools (aggregate clusters with
/// the per-attempt filter in the router) nor shadow models (a mirror to an
/// internal listener chosen by a header).
pub fn check_istio(gw: &GatewayFile) -> Result<(), String> {
    if let Some(rule) = gw.gateway.rules.cluster().next() {
        return Err(format!(
            "rate_limits rule '{}' has scope cluster, which the mesh modes do not render (the rate-limit filter reads the filter's state right after it); use scope: instance here, or deploy kubernetes/ (Envoy with the rendered bootstrap), which has it",
            rule.name
        ));
    }
    if let Some(p) = gw
        .gateway
        .providers
        .iter()
        .find(|p| p.token_endpoint.is_some())
    {
        return Err(format!(
            "provider '{}' gets its access tokens from another host (token.url), which the mesh modes do not render as a service; deploy kubernetes/ (Envoy with the rendered bootstrap), which has it",
            p.name
        ));
    }
    let what = |m: &llm_gateway::config::Model| {
        if m.failover {
            Some("a failover pool (the mesh has no aggregate clusters with the per-attempt filter); set `failover: {enabled: false}`")
        } else if m.shadow.is_some() {
            Some("a shadow model (the mesh's routes cannot mirror to the gateway's internal listener); remove `shadow`")
        } else {
            None
        }
    };
    match gw.gateway.models.iter().find_map(|m| what(m).map(|w| (m, w))) {
        Some((m, why)) => Err(format!(
            "model '{}' has {why}, or deploy kubernetes/ (Envoy with the rendered bootstrap), which has both",
            m.name
        )),
        None => Ok(()),
    }
}
