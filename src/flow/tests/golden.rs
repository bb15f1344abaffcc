//! The golden request corpus: every request of each client API's corpus,
//! sent through the flow to every provider type, and what the provider
//! would receive (path, credentials, Anthropic headers, body) or the error
//! the client gets instead. Provider types that receive the same are
//! grouped. After a deliberate change, `LLMGW_BLESS=1 cargo test golden`
//! rewrites `tests/golden/` for review in the diff.

use super::*;
use crate::providers::TYPES;
use std::collections::BTreeMap;

const CHAT_CORPORA: &[(&str, &str, &str)] = &[
    (
        "openai_chat",
        "openai_in",
        include_str!("../../../tests/fixtures/openai_chat/requests.json"),
    ),
    (
        "anthropic",
        "openai",
        include_str!("../../../tests/fixtures/anthropic/requests.json"),
    ),
    (
        "gemini",
        "openai",
        include_str!("../../../tests/fixtures/gemini/requests.json"),
    ),
];
const MESSAGES: &str = include_str!("../../../tests/fixtures/anthropic_ingress/requests.json");
const RESPONSES: &str = include_str!("../../../tests/fixtures/responses/requests.json");

/// Headers that carry credentials or Anthropic's API version.
const RECORDED_HEADERS: &[&str] = &[
    "authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "anthropic-version",
    "anthropic-beta",
    "x-amz-date",
];

const UPSTREAM_MODEL: &str = "upstream-model";
const AZURE_BASE: &str = "https://golden.openai.azure.com";

/// One provider of each type, and a model on each.
fn gateway() -> Rc<crate::config::Gateway> {
    let providers: Vec<Value> = TYPES
        .iter()
        .map(|t| {
            let mut p = json!({"name": t.kind, "type": t.kind});
            if t.kind.starts_with("vertex") {
                p["vertex"] = json!({"project": "golden-project", "region": "us-central1"});
                p["token"] = json!({"url": "http://metadata.google.internal/token"});
            } else if t.kind == "ernie" {
                p["token"] = json!({"client_id": "golden-ak", "client_secret": "golden-sk"});
            } else if t.kind == "bedrock" {
                // Signed per request (SigV4) at the test host's clock.
                p["aws"] = json!({"region": "us-east-1", "access_key_id": "AKIDGOLDEN",
                    "secret_access_key": "golden/secret"});
            } else if t.sends_key {
                p["api_key"] = json!("sk-golden");
            }
            if t.base_url.is_none() && !t.kind.starts_with("vertex") {
                p["base_url"] = json!(AZURE_BASE);
            }
            p
        })
        .collect();
    let models: Vec<Value> = TYPES
        .iter()
        .map(
            |t| json!({"name": t.kind, "targets": [{"provider": t.kind, "model": UPSTREAM_MODEL}]}),
        )
        .collect();
    let cfg = json!({"providers": providers, "models": models,
                     "limits": {"max_request_body_bytes": 1 << 20}});
    let cfg = PluginConfig::from_json(cfg.to_string().as_bytes()).unwrap();
    Rc::new(compile(&cfg, &|_| None).unwrap())
}

/// What the provider of `kind` receives for `body` sent to `path`.
fn outcome(gw: &Rc<crate::config::Gateway>, path: &str, kind: &str, body: &Value) -> Value {
    let mut body = body.clone();
    body["model"] = json!(kind);
    let mut h = request("POST", path, &body.to_string());
    h.request_headers
        .insert("anthropic-version".into(), "2023-06-01".into());
    let mut f = StreamFlow::new(Rc::clone(gw), 7);
    // Token providers find a token in the cache.
    for source in gw.providers.iter().filter_map(|p| p.token.as_ref()) {
        crate::tokens::cache::fulfil(&h.store, &source.key, "golden-token", u64::MAX, u64::MAX)
            .unwrap();
    }
    run(&mut f, &mut h);
    if let Some((status, sent)) = &h.sent {
        let error: Value = serde_json::from_slice(sent).unwrap();
        return json!({"status": status, "error": error});
    }
    let provider = gw.providers.iter().find(|p| p.name == kind).unwrap();
    let prefix = &provider.endpoint.path_prefix;
    let upstream_path = &h.request_headers[":path"];
    let upstream_path = upstream_path
        .strip_suffix("?access_token=golden-token")
        .unwrap_or(upstream_path);
    let relative = upstream_path.strip_prefix(prefix.as_str()).unwrap();
    let headers: BTreeMap<&str, &str> = RECORDED_HEADERS
        .iter()
        .filter_map(|&name| h.request_headers.get(name).map(|v| (name, v.as_str())))
        .collect();
    json!({
        "path": format!("{{base}}{relative}"),
        "headers": headers,
        "body": serde_json::from_slice::<Value>(&h.request_body).unwrap(),
    })
}

/// Every case's outcomes, provider types with equal ones grouped.
fn render(path: &str, cases: &[(String, Value)]) -> Value {
    let gw = gateway();
    let rendered: Vec<Value> = cases
        .iter()
        .map(|(name, body)| {
            let mut groups: Vec<(Value, Vec<&str>)> = Vec::new();
            for t in TYPES {
                let got = outcome(&gw, path, t.kind, body);
                match groups.iter_mut().find(|(o, _)| *o == got) {
                    Some((_, kinds)) => kinds.push(t.kind),
                    None => groups.push((got, vec![t.kind])),
                }
            }
            let outcomes: Vec<Value> = groups
                .into_iter()
                .map(|(mut o, kinds)| {
                    o["providers"] = json!(kinds);
                    o
                })
                .collect();
            json!({"name": name, "request": body, "outcomes": outcomes})
        })
        .collect();
    Value::Array(rendered)
}

/// The corpus's request bodies, by case name (`field` of each case).
fn corpus(source: &str, field: &str, text: &str) -> Vec<(String, Value)> {
    let cases: Vec<Value> = serde_json::from_str(text).unwrap();
    cases
        .into_iter()
        .filter_map(|c| {
            let body = c.get(field)?.clone();
            body.is_object()
                .then(|| (format!("{source}: {}", c["name"].as_str().unwrap()), body))
        })
        .collect()
}

/// Compares with `tests/golden/{file}`, or rewrites it when blessing.
fn check(file: &str, got: &Value) {
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if std::env::var_os("LLMGW_BLESS").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want: Value = match std::fs::read_to_string(&path) {
        Ok(s) => serde_json::from_str(&s).unwrap(),
        Err(e) => panic!("{path}: {e}; run LLMGW_BLESS=1 cargo test golden"),
    };
    let (want, got) = (want.as_array().unwrap(), got.as_array().unwrap());
    for (w, g) in want.iter().zip(got) {
        assert_eq!(
            w, g,
            "{file}: case '{}' changed; if deliberate, LLMGW_BLESS=1 cargo test golden",
            g["name"]
        );
    }
    assert_eq!(want.len(), got.len(), "{file}: case count changed");
}

#[test]
fn golden_chat_completions() {
    let cases: Vec<(String, Value)> = CHAT_CORPORA
        .iter()
        .flat_map(|(source, field, text)| corpus(source, field, text))
        .collect();
    check(
        "chat_completions.json",
        &render("/v1/chat/completions", &cases),
    );
}

#[test]
fn golden_messages() {
    let cases = corpus("anthropic_ingress", "anthropic", MESSAGES);
    check("messages.json", &render("/v1/messages", &cases));
}

#[test]
fn golden_responses() {
    let cases = corpus("responses", "responses", RESPONSES);
    check("responses.json", &render("/v1/responses", &cases));
}
