//! `llm-gateway-render istio`: the gateway file as Kubernetes and Istio
//! manifests (`istio/`), generated from the same source as the Envoy
//! bootstrap so the two never drift.

pub mod config;
pub mod k8s;
pub mod mesh;

use crate::gateway_file::GatewayFile;
use crate::{envoy, xds};
use config::KubeConfig;
use serde_json::{json, Value};
use std::path::Path;

/// One Kubernetes object.
pub type Doc = Value;

/// A file of the output tree: its path under `--out` and its text.
pub struct File {
    pub path: String,
    pub text: String,
}

pub fn meta(k: &KubeConfig, name: &str) -> Value {
    json!({
        "name": name,
        "namespace": k.namespace,
        "labels": {"app.kubernetes.io/name": k.name, "app.kubernetes.io/part-of": "llm-gateway"}
    })
}

/// Pod labels; `version` tells the canary's subsets apart.
pub fn labels(k: &KubeConfig, version: &str) -> Value {
    json!({"app.kubernetes.io/name": k.name, "app.kubernetes.io/part-of": "llm-gateway", "version": version})
}

const HEADER: &str =
    "# Rendered by `llm-gateway-render istio` from the gateway file; edit that, not this.\n";

fn yaml_docs(docs: &[Doc]) -> Result<String, String> {
    let mut text = String::from(HEADER);
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        text.push_str(&serde_yaml::to_string(d).map_err(|e| format!("cannot write YAML: {e}"))?);
    }
    Ok(text)
}

fn kustomization(resources: &[&str]) -> Doc {
    json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources
    })
}

/// The Kubernetes form of the Envoy configuration: exactly the files
/// `make run` serves Envoy (bootstrap plus watched listener, routes,
/// clusters and filter configuration), for a Pod that mounts them at
/// `k8s::CONFIG_DIR` and the filter at `k8s::WASM_PATH`. The listener and
/// admin bind every address of the Pod.
pub fn envoy_files(gw: &GatewayFile) -> Result<Vec<(String, String)>, String> {
    let mut bootstrap = envoy::render_with(gw, k8s::WASM_PATH, true);
    bind_all(&mut bootstrap);
    let bundle = xds::split(bootstrap, Path::new(k8s::CONFIG_DIR))?;
    let yaml =
        serde_yaml::to_string(&bundle.bootstrap).map_err(|e| format!("cannot write YAML: {e}"))?;
    let mut files = vec![(
        xds::BOOTSTRAP.to_string(),
        format!("{}{yaml}", crate::HEADER),
    )];
    for (file, list) in &bundle.resources {
        files.push((file.clone(), xds::file_text(list)));
    }
    Ok(files)
}

/// A Pod is reached on its own address, not on loopback.
pub fn bind_all(bootstrap: &mut Value) {
    let listener = &mut bootstrap["static_resources"]["listeners"][0]["address"]["socket_address"];
    listener["address"] = json!("0.0.0.0");
    if bootstrap.get("admin").is_some() {
        bootstrap["admin"]["address"]["socket_address"]["address"] = json!("0.0.0.0");
    }
}

/// Refuses what must not reach a cluster object: literal provider keys
/// (they belong in the Secret).
fn check_keys(gw: &GatewayFile) -> Result<(), String> {
    for (i, p) in gw.plugin.providers.iter().enumerate() {
        let keys = p.api_key.iter().chain(&p.api_keys);
        if keys.into_iter().any(|k| !k.starts_with("env:")) {
            return Err(format!(
                "providers[{i}] ({}): in Kubernetes a key comes from the Secret: write `env:NAME` and put NAME in it",
                p.name
            ));
        }
    }
    Ok(())
}

pub fn render(gw: &GatewayFile) -> Result<Vec<File>, String> {
    let k = gw.kubernetes.as_ref().ok_or(
        "the gateway file has no `kubernetes:` section (namespace, plugin source, replicas)",
    )?;
    check_keys(gw)?;
    let admin_port = gw.admin.as_ref().map(|a| a.port);
    let mut out = Vec::new();
    let mut put = |path: &str, docs: &[Doc]| -> Result<(), String> {
        out.push(File {
            path: path.to_string(),
            text: yaml_docs(docs)?,
        });
        Ok(())
    };

    // Kubernetes without Istio.
    let configmap = k8s::configmap(k, &envoy_files(gw)?);
    put("kubernetes/namespace.yaml", &[k8s::namespace(k, false)])?;
    put("kubernetes/configmap.yaml", &[configmap])?;
    put("kubernetes/deployment.yaml", &[k8s::deployment(k, gw)])?;
    put(
        "kubernetes/service.yaml",
        &[k8s::service(k, gw.listener.port)],
    )?;
    put("kubernetes/hpa.yaml", &[k8s::hpa(k)])?;
    put("kubernetes/pdb.yaml", &[k8s::pdb(k)])?;
    put(
        "kubernetes/networkpolicy.yaml",
        &[k8s::network_policy(k, gw, gw.listener.port, admin_port)],
    )?;
    put(
        "kubernetes/kustomization.yaml",
        &[kustomization(&[
            "namespace.yaml",
            "configmap.yaml",
            "deployment.yaml",
            "service.yaml",
            "hpa.yaml",
            "pdb.yaml",
            "networkpolicy.yaml",
        ])],
    )?;
    put("prometheus-adapter-values.yaml", &[k8s::adapter_values()])?;

    // The providers as mesh services (both Istio modes).
    mesh::check_istio(gw)?;
    let (entries, rules) = mesh::provider_services(k, gw);
    put("mesh/serviceentries.yaml", &entries)?;
    put("mesh/destinationrules.yaml", &rules)?;
    put(
        "mesh/kustomization.yaml",
        &[kustomization(&[
            "serviceentries.yaml",
            "destinationrules.yaml",
        ])],
    )?;

    // Istio, gateway mode: an Istio gateway Deployment with the filter.
    put("gateway/namespace.yaml", &[k8s::namespace(k, true)])?;
    put(
        "gateway/deployment.yaml",
        &[mesh::gateway_deployment(k, gw, "stable")],
    )?;
    put(
        "gateway/service.yaml",
        &[k8s::service(k, mesh::GATEWAY_PORT)],
    )?;
    put("gateway/hpa.yaml", &[k8s::hpa(k)])?;
    put("gateway/pdb.yaml", &[k8s::pdb(k)])?;
    put(
        "gateway/networkpolicy.yaml",
        &[mesh::gateway_network_policy(k, gw)],
    )?;
    put(
        "gateway/envoyfilter.yaml",
        &[mesh::filter_patch(k, gw, mesh::Mode::Gateway)],
    )?;
    put("gateway/gateway.yaml", &[mesh::gateway(k)])?;
    put(
        "gateway/routes.yaml",
        &mesh::provider_routes(k, gw, mesh::Mode::Gateway),
    )?;
    put(
        "gateway/kustomization.yaml",
        &[kustomization(&[
            "../mesh",
            "namespace.yaml",
            "deployment.yaml",
            "service.yaml",
            "hpa.yaml",
            "pdb.yaml",
            "networkpolicy.yaml",
            "envoyfilter.yaml",
            "gateway.yaml",
            "routes.yaml",
        ])],
    )?;

    // Istio, canary and mirroring of a new gateway version (on top of gateway/).
    put(
        "canary/deployment.yaml",
        &[mesh::gateway_deployment(k, gw, "canary")],
    )?;
    put(
        "canary/envoyfilter.yaml",
        &[mesh::filter_patch(k, gw, mesh::Mode::Canary)],
    )?;
    put("canary/destinationrule.yaml", &[mesh::gateway_subsets(k)])?;
    put("canary/virtualservice.yaml", &[mesh::canary_routes(k)])?;
    put(
        "canary/kustomization.yaml",
        &[kustomization(&[
            "deployment.yaml",
            "envoyfilter.yaml",
            "destinationrule.yaml",
            "virtualservice.yaml",
        ])],
    )?;

    // Istio, sidecar mode: applications' own sidecars run the filter.
    put(
        "sidecar/envoyfilter.yaml",
        &[mesh::filter_patch(k, gw, mesh::Mode::Sidecar)],
    )?;
    put("sidecar/serviceentry.yaml", &[mesh::sidecar_host(k)])?;
    put(
        "sidecar/routes.yaml",
        &mesh::provider_routes(k, gw, mesh::Mode::Sidecar),
    )?;
    put(
        "sidecar/kustomization.yaml",
        &[kustomization(&[
            "../mesh",
            "envoyfilter.yaml",
            "serviceentry.yaml",
            "routes.yaml",
        ])],
    )?;
    put("sidecar/pod-patch.yaml", &[mesh::sidecar_pod_patch(k, gw)])?;
    Ok(out)
}

/// Writes the tree, or with `check` only compares: the files that differ.
pub fn write(files: &[File], out: &Path, check: bool) -> Result<Vec<String>, String> {
    let mut differ = Vec::new();
    for f in files {
        let path = out.join(&f.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(f.text.as_str()) {
            continue;
        }
        differ.push(f.path.clone());
        if !check {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            std::fs::write(&path, &f.text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(differ)
}
