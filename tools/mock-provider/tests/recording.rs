mod common;

use common::*;
use serde_json::{json, Value};

fn requests(s: &Server) -> Vec<Value> {
    let r = s.get("/__mock/requests");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json().as_array().expect("array").clone()
}

#[test]
fn records_requests_oldest_first() {
    let s = Server::start();
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "héllo"}]});
    s.post(
        "/v1/chat/completions",
        &[
            ("Authorization", "Bearer sk-1"),
            ("X-Custom-Header", "Value"),
            JSON,
        ],
        &body,
    );
    s.request(
        "POST",
        "/openai/deployments/d/chat/completions?api-version=2024-10-21&x=1",
        &[("api-key", "k")],
        "not json at all",
    );
    s.get("/v1/models");

    let recs = requests(&s);
    assert_eq!(recs.len(), 3);
    let first = &recs[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1/chat/completions");
    assert_eq!(first["query"], "");
    assert_eq!(first["body"], body.to_string());
    let headers = first["headers"].as_object().expect("headers");
    assert_eq!(headers["authorization"], "Bearer sk-1");
    assert_eq!(headers["x-custom-header"], "Value");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.keys().all(|k| k == &k.to_ascii_lowercase()));
    assert_eq!(
        first.as_object().expect("obj").keys().collect::<Vec<_>>(),
        ["method", "path", "query", "headers", "body"]
    );

    assert_eq!(recs[1]["path"], "/openai/deployments/d/chat/completions");
    assert_eq!(recs[1]["query"], "api-version=2024-10-21&x=1");
    assert_eq!(recs[1]["body"], "not json at all");
    assert_eq!(recs[2]["method"], "GET");
    assert_eq!(recs[2]["path"], "/v1/models");
    assert_eq!(recs[2]["body"], "");
}

#[test]
fn admin_endpoints_are_not_recorded_and_delete_clears() {
    let s = Server::start();
    let r = s.get("/__mock/health");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    s.post("/v1/embeddings", &[], &json!({"model": "m", "input": "x"}));
    assert_eq!(requests(&s).len(), 1);
    assert_eq!(
        requests(&s).len(),
        1,
        "GET /__mock/requests is not recorded"
    );

    let r = s.request("DELETE", "/__mock/requests", &[], "");
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert!(requests(&s).is_empty());
    assert_eq!(s.get("/__mock/nope").status, 404);
}

#[test]
fn repeated_headers_are_joined() {
    let s = Server::start();
    s.request(
        "GET",
        "/v1/models",
        &[("x-multi", "a"), ("x-multi", "b")],
        "",
    );
    let recs = requests(&s);
    assert_eq!(recs[0]["headers"]["x-multi"], "a, b");
}

#[test]
fn no_record_flag() {
    let s = Server::start_with(&["--no-record"]);
    s.post(
        "/v1/chat/completions",
        &[],
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(requests(&s).is_empty());
}

#[test]
fn ring_is_bounded_to_1000() {
    let s = Server::start();
    let mut conn = s.conn();
    for i in 0..1005 {
        let r = conn.send("GET", &format!("/v1/models?i={i}"), &[], b"");
        assert_eq!(r.status, 200);
    }
    let recs = requests(&s);
    assert_eq!(recs.len(), 1000);
    assert_eq!(recs[0]["query"], "i=5");
    assert_eq!(recs[999]["query"], "i=1004");
}
