//! Kubernetes without Istio: the gateway as a Deployment of stock Envoy
//! running the bootstrap `make run` starts, with the filter downloaded and
//! checked before Envoy starts.

use super::config::KubeConfig;
use super::{labels, meta, Doc};
use crate::gateway_file::GatewayFile;
use serde_json::{json, Value};

/// Where the Deployment mounts the bootstrap and the filter.
pub const CONFIG_DIR: &str = "/etc/llm-gateway";
pub const PLUGIN_DIR: &str = "/etc/llm-gateway/plugin";
pub const WASM_PATH: &str = "/etc/llm-gateway/plugin/llm_gateway.wasm";
/// Downloads the `.wasm` and checks its SHA-256 (Envoy starts only then).
const FETCH_IMAGE: &str = "curlimages/curl:8.11.1";

pub fn namespace(k: &KubeConfig, istio_injection: bool) -> Doc {
    let mut ns = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": k.namespace}
    });
    if istio_injection {
        ns["metadata"]["labels"] = json!({"istio-injection": "enabled"});
    }
    ns
}

/// Envoy's files, mounted at `CONFIG_DIR`. Envoy watches the directory:
/// when the ConfigMap changes, the kubelet swaps the files in at once (a
/// rename of its `..data` link) and Envoy applies them without a restart.
pub fn configmap(k: &KubeConfig, files: &[(String, String)]) -> Doc {
    let data: serde_json::Map<String, Value> = files
        .iter()
        .map(|(name, text)| (name.clone(), Value::String(text.clone())))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(k, &format!("{}-envoy", k.name)),
        "data": data
    })
}

/// The provider keys, each from the Secret; a key not in it only disables
/// its provider (the filter says so per request).
pub fn secret_env(k: &KubeConfig, gw: &GatewayFile) -> Value {
    Value::Array(
        gw.env_keys()
            .iter()
            .map(|key| {
                json!({"name": key, "valueFrom": {"secretKeyRef": {
                    "name": k.secret, "key": key, "optional": true
                }}})
            })
            .collect(),
    )
}

/// Spread the replicas over nodes, so one node's loss leaves some serving.
pub fn anti_affinity(k: &KubeConfig) -> Value {
    json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
        "weight": 100,
        "podAffinityTerm": {
            "topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": k.name}}
        }
    }]}})
}

pub fn resources(k: &KubeConfig) -> Value {
    let r = &k.resources;
    json!({
        "requests": {"cpu": r.cpu, "memory": r.memory},
        "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit}
    })
}

pub fn deployment(k: &KubeConfig, gw: &GatewayFile) -> Doc {
    let admin_port = gw.admin.as_ref().map_or(9901, |a| a.port);
    let fetch = format!(
        "curl -fsSL --retry 5 --max-time 120 -o {WASM_PATH}.part \"$PLUGIN_URL\" && \
         echo \"$PLUGIN_SHA256  {WASM_PATH}.part\" | sha256sum -c - && mv {WASM_PATH}.part {WASM_PATH}"
    );
    let probe = json!({"httpGet": {"path": "/ready", "port": "admin"}, "periodSeconds": 5});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(k, &k.name),
        "spec": {
            "replicas": k.replicas.min,
            "selector": {"matchLabels": {"app.kubernetes.io/name": k.name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": labels(k, "stable"),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": admin_port.to_string(),
                        "prometheus.io/path": "/stats/prometheus"
                    }
                },
                "spec": {
                    "affinity": anti_affinity(k),
                    // Streams in flight get time to finish on a rollout.
                    "terminationGracePeriodSeconds": gw.envoy.route_timeout_seconds.min(600) + 5,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 101, "runAsGroup": 101, "fsGroup": 101},
                    "initContainers": [{
                        "name": "fetch-plugin",
                        "image": FETCH_IMAGE,
                        "command": ["sh", "-c", fetch],
                        "env": [
                            {"name": "PLUGIN_URL", "value": k.plugin.url},
                            {"name": "PLUGIN_SHA256", "value": k.plugin.sha256}
                        ],
                        "volumeMounts": [{"name": "plugin", "mountPath": PLUGIN_DIR}],
                        "securityContext": restricted(),
                        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}}
                    }],
                    "containers": [{
                        "name": "envoy",
                        "image": k.envoy_image,
                        "command": ["envoy"],
                        "args": ["-c", format!("{CONFIG_DIR}/{}", crate::xds::BOOTSTRAP), "--log-level", "warn"],
                        "ports": [
                            {"name": "http", "containerPort": gw.listener.port},
                            {"name": "admin", "containerPort": admin_port}
                        ],
                        "env": secret_env(k, gw),
                        "readinessProbe": probe,
                        "livenessProbe": {"httpGet": {"path": "/server_info", "port": "admin"}, "periodSeconds": 10, "failureThreshold": 6},
                        "resources": resources(k),
                        "securityContext": restricted(),
                        "volumeMounts": [
                            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": true},
                            {"name": "plugin", "mountPath": PLUGIN_DIR, "readOnly": true}
                        ]
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": format!("{}-envoy", k.name)}},
                        {"name": "plugin", "emptyDir": {"sizeLimit": "16Mi"}}
                    ]
                }
            }
        }
    })
}

fn restricted() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]}
    })
}

pub fn service(k: &KubeConfig, target_port: u16) -> Doc {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(k, &k.name),
        "spec": {
            "selector": {"app.kubernetes.io/name": k.name},
            // `http` tells Istio the protocol.
            "ports": [{"name": "http", "port": 80, "targetPort": target_port, "appProtocol": "http"}]
        }
    })
}

/// The custom metric the HPA reads: per-pod LLM requests per second.
pub const RPS_METRIC: &str = "llm_gateway_requests_per_second";

pub fn hpa(k: &KubeConfig) -> Doc {
    let r = &k.replicas;
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(k, &k.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": k.name},
            "minReplicas": r.min,
            "maxReplicas": r.max,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": r.cpu_percent}}},
                {"type": "Pods", "pods": {
                    "metric": {"name": RPS_METRIC},
                    "target": {"type": "AverageValue", "averageValue": r.requests_per_second.to_string()}
                }}
            ],
            // Scale down slowly: LLM traffic is bursty and streams are long.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}
        }
    })
}

pub fn pdb(k: &KubeConfig) -> Doc {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(k, &k.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": k.name}}
        }
    })
}

/// prometheus-adapter's rule (Helm values of the prometheus-community
/// chart) deriving the HPA's metric from the filter's request counter.
pub fn adapter_values() -> Value {
    json!({"rules": {"custom": [{
        "seriesQuery": "llm_gateway_requests_total{namespace!=\"\",pod!=\"\"}",
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": "^llm_gateway_requests_total$", "as": RPS_METRIC},
        "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)"
    }]}})
}

/// Who may reach the gateway, and where it may go: the providers' ports
/// and DNS. `extra_ports` adds the mesh's own (istiod, the sidecar's).
pub fn network_policy(
    k: &KubeConfig,
    gw: &GatewayFile,
    ingress_port: u16,
    admin_port: Option<u16>,
) -> Doc {
    let from: Value = if k.client_namespaces.is_empty() {
        json!([{"namespaceSelector": {}}])
    } else {
        json!([{"namespaceSelector": {"matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "In", "values": k.client_namespaces
        }]}}])
    };
    let mut ingress =
        vec![json!({"from": from, "ports": [{"port": ingress_port, "protocol": "TCP"}]})];
    if let Some(port) = admin_port {
        ingress.push(json!({
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": k.monitoring_namespace}}}],
            "ports": [{"port": port, "protocol": "TCP"}]
        }));
    }
    let mut ports: Vec<u16> = gw
        .gateway
        .providers
        .iter()
        .map(|p| p.endpoint.port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let provider_ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"port": p, "protocol": "TCP"}))
        .collect();
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(k, &k.name),
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": k.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": [
                {"ports": provider_ports},
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
            ]
        }
    })
}
