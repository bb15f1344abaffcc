//! The bootstrap in its dynamic form: what follows the gateway file is
//! served to Envoy from files it watches — the listener (LDS), its routes
//! (RDS), the clusters (CDS) and the filter's configuration (ECDS) — so an
//! edit applies without restarting Envoy. The static bootstrap is the one
//! source: this module only moves its parts into resources.

use crate::envoy::{PLUGIN_NAME, UPSTREAM_ROOT_ID};
use serde_json::{json, Value};
use std::path::Path;

pub const BOOTSTRAP: &str = "bootstrap.yaml";
pub const LDS: &str = "lds.json";
pub const RDS: &str = "rds.json";
pub const CDS: &str = "cds.json";

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// The ECDS file of one instance of the filter.
pub fn ecds_file(filter: &str) -> String {
    format!("ecds-{filter}.json")
}

/// The files Envoy reads: the bootstrap (read once, at start) and the
/// watched resources, in the order they are safe to apply: clusters before
/// the routes and filter configuration that name them, the listener last.
pub struct Bundle {
    pub bootstrap: Value,
    pub resources: Vec<(String, Vec<Value>)>,
}

/// A watched file as a config source: Envoy re-reads it whenever a file is
/// moved into `dir` (the atomic rename every write ends with).
fn source(dir: &Path, file: &str) -> Value {
    json!({
        "path_config_source": {
            "path": dir.join(file).to_string_lossy(),
            "watched_directory": {"path": dir.to_string_lossy()}
        },
        "resource_api_version": "V3"
    })
}

fn typed(mut v: Value, type_url: &str) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.insert(
            "@type".into(),
            json!(format!("type.googleapis.com/{type_url}")),
        );
    }
    v
}

/// Takes a Wasm filter out of `filter` into an ECDS resource, leaving a
/// reference to the file in its place.
fn to_ecds(filter: &mut Value, name: &str, dir: &Path, out: &mut Vec<(String, Vec<Value>)>) {
    let config = filter["typed_config"].take();
    let resource = json!({
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": name,
        "typed_config": config
    });
    let file = ecds_file(name);
    *filter = json!({
        "name": name,
        "config_discovery": {"config_source": source(dir, &file), "type_urls": [WASM_TYPE]}
    });
    out.push((file, vec![resource]));
}

/// Splits a static bootstrap (from `envoy::render_with`, with the upstream
/// filter) into its dynamic form, reading the watched files from `dir`
/// (an absolute path).
pub fn split(mut bootstrap: Value, dir: &Path) -> Result<Bundle, String> {
    let statics = bootstrap
        .get_mut("static_resources")
        .and_then(Value::as_object_mut)
        .ok_or("the bootstrap has no static_resources")?;
    let clusters = statics.remove("clusters").unwrap_or(json!([]));
    let listeners = statics.remove("listeners").unwrap_or(json!([]));
    let mut listeners: Vec<Value> = listeners.as_array().cloned().unwrap_or_default();
    if listeners.is_empty() {
        return Err("the bootstrap has no listener".into());
    }
    bootstrap
        .as_object_mut()
        .map(|b| b.remove("static_resources"));

    // Every listener (the gateway's, and the internal one shadow copies
    // arrive on) shares the routes and the filter's configuration.
    let mut routes = None;
    let mut ecds = Vec::new();
    for listener in &mut listeners {
        let hcm = &mut listener["filter_chains"][0]["filters"][0]["typed_config"];
        let route_config = hcm
            .as_object_mut()
            .and_then(|h| h.remove("route_config"))
            .ok_or("the listener has no route_config")?;
        let route_name = route_config["name"].clone();
        routes.get_or_insert(route_config);
        hcm["rds"] = json!({"route_config_name": route_name, "config_source": source(dir, RDS)});
        let filters = hcm["http_filters"]
            .as_array_mut()
            .ok_or("the listener has no http_filters")?;
        for f in filters.iter_mut() {
            if f["name"] == "envoy.filters.http.wasm" {
                to_ecds(f, PLUGIN_NAME, dir, &mut ecds);
            } else if f["name"] == "envoy.filters.http.router" {
                let upstream = f["typed_config"]["upstream_http_filters"].as_array_mut();
                for u in upstream.into_iter().flatten() {
                    if u["name"] == "envoy.filters.http.wasm" {
                        to_ecds(u, UPSTREAM_ROOT_ID, dir, &mut ecds);
                    }
                }
            }
        }
    }
    // One resource per filter instance, however many listeners name it.
    let mut seen = std::collections::BTreeSet::new();
    ecds.retain(|(file, _)| seen.insert(file.clone()));
    if ecds.len() != 2 {
        return Err("the bootstrap must have the filter and its per-attempt instance".into());
    }
    let routes = routes.ok_or("the bootstrap has no routes")?;

    let clusters: Vec<Value> = clusters
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| typed(c.clone(), "envoy.config.cluster.v3.Cluster"))
        .collect();
    let mut resources = vec![
        (CDS.to_string(), clusters),
        (
            RDS.to_string(),
            vec![typed(routes, "envoy.config.route.v3.RouteConfiguration")],
        ),
    ];
    resources.extend(ecds);
    resources.push((
        LDS.to_string(),
        listeners
            .into_iter()
            .map(|l| typed(l, "envoy.config.listener.v3.Listener"))
            .collect(),
    ));

    bootstrap["node"] = json!({"id": PLUGIN_NAME, "cluster": PLUGIN_NAME});
    bootstrap["dynamic_resources"] = json!({
        "lds_config": source(dir, LDS),
        "cds_config": source(dir, CDS)
    });
    Ok(Bundle {
        bootstrap,
        resources,
    })
}

/// A watched file's content: a discovery response holding the resources.
pub fn file_text(resources: &[Value]) -> String {
    let doc = json!({"resources": resources});
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// The resources of a watched file written earlier (for the clusters a new
/// configuration drops, which stay a moment longer).
pub fn read_resources(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("resources").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}
