//! `config`: the filter's configuration, `config::PluginConfig::from_json`
//! then `config::compile`, as the filter does on every (re)configuration.
//!
//! Input: the JSON the filter receives (the plugin part of gateway.yaml).
//!
//! Checks: no panic, errors render; a parsed config survives the trip the
//! renderer gives it (serialized to JSON into Envoy's config, parsed again
//! by the filter) unchanged, and compiles the same way after it; a compiled
//! gateway answers `/v1/models` with JSON, finds each of its models by name,
//! and its `model_map` resolves the configured names without panicking.

use crate::common::{check_api_error, json, json_eq};
use llm_gateway::config::{compile, Gateway, PluginConfig};
use llm_gateway::flow::models;

pub fn config(data: &[u8]) {
    let cfg = match PluginConfig::from_json(data) {
        Ok(cfg) => cfg,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    // Keys set for some `env:NAME` references, missing for others.
    let env = |name: &str| name.len().is_multiple_of(2).then(|| format!("key-{name}"));
    let compiled = compile(&cfg, &env);

    let text = serde_json::to_vec(&cfg).expect("PluginConfig serializes");
    let again = PluginConfig::from_json(&text).unwrap_or_else(|e| {
        panic!(
            "the serialized config does not parse back ({e}): {}",
            String::from_utf8_lossy(&text)
        )
    });
    if again != cfg {
        // Floats may move by one ULP (see `json_eq`); nothing else may change.
        let (a, b) = (
            serde_json::to_value(&cfg).expect("serializes"),
            serde_json::to_value(&again).expect("serializes"),
        );
        assert!(
            json_eq(&a, &b),
            "the config changes through JSON:\n{a}\n{b}"
        );
    }
    let recompiled = compile(&again, &env);
    assert_eq!(
        compiled.is_ok(),
        recompiled.is_ok(),
        "the config compiles differently after the trip through JSON: {:?} / {:?}",
        compiled.as_ref().err().map(ToString::to_string),
        recompiled.as_ref().err().map(ToString::to_string),
    );
    if again == cfg {
        assert_eq!(
            compiled.as_ref().err().map(ToString::to_string),
            recompiled.as_ref().err().map(ToString::to_string),
            "the same config compiles to different errors"
        );
    }
    let _ = compile(&cfg, &|_| None);

    let gw = match compiled {
        Ok(gw) => gw,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    gateway(&gw);
}

fn gateway(gw: &Gateway) {
    let list = json(&models::list(gw, &|_| true), "/v1/models");
    assert_eq!(list["object"], "list");
    let _ = models::list(gw, &|n| n.len().is_multiple_of(2));
    for (i, m) in gw.models.iter().enumerate() {
        let found = gw
            .model(&m.name)
            .unwrap_or_else(|| panic!("model '{}' not found by name", m.name));
        assert_eq!(found.name, m.name);
        assert_eq!(gw.model_position(&m.name), Some(i));
        for t in &m.targets {
            assert!(
                t.provider < gw.providers.len(),
                "target of an unknown provider"
            );
        }
        match models::retrieve(gw, &m.name, &|_| true) {
            Ok(body) => {
                json(&body, "/v1/models/{id}");
            }
            Err(e) => check_api_error(&e, 404..=404, "/v1/models/{id}"),
        }
        if let Some(r) = gw.model_map.resolve(&m.name) {
            assert!(
                gw.model(r.pool).is_some(),
                "model_map resolves to an unknown model"
            );
        }
        for first in 0..m.targets.len() {
            let members = gw.pool_members(m, first);
            assert!(members.iter().all(|&p| p < gw.providers.len()));
        }
    }
    check_api_error(
        &models::not_found(gw, "no-such-model", &|_| true),
        404..=404,
        "models::not_found",
    );
}
