mod common;

use common::*;
use serde_json::json;

const H: [(&str, &str); 2] = [("authorization", "Bearer sk-test"), JSON];

#[test]
fn clean_and_flagged_inputs() {
    let s = Server::start();
    let r = s.post("/v1/moderations", &H, &json!({"input": "bake bread"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["results"][0]["flagged"], false);
    assert_eq!(v["results"][0]["categories"]["violence"], false);
    let r = s.post(
        "/v1/moderations",
        &H,
        &json!({"model": "omni-moderation-latest", "input": ["x [[flag:violence]]"]}),
    );
    let v = r.json();
    assert_eq!(v["model"], "omni-moderation-latest");
    assert_eq!(v["results"][0]["flagged"], true);
    assert_eq!(v["results"][0]["categories"]["violence"], true);
    assert_eq!(v["results"][0]["categories"]["hate"], false);
}

#[test]
fn failures_on_demand() {
    let s = Server::start();
    let r = s.post(
        "/v1/moderations",
        &H,
        &json!({"input": "[[moderation:503]]"}),
    );
    assert_eq!(r.status, 503);
    let r = s.post(
        "/v1/moderations",
        &H,
        &json!({"input": "[[moderation:garbage]]"}),
    );
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("<html>"));
    let r = s.post("/v1/moderations", &H, &json!({"model": "m"}));
    assert_eq!(r.status, 400);
    let t = std::time::Instant::now();
    let r = s.post(
        "/v1/moderations",
        &H,
        &json!({"input": "[[moderation:slow]]"}),
    );
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(2_900));
}
