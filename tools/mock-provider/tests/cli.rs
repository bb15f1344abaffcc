mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[test]
fn prints_exactly_the_listening_line() {
    let s = Server::start();
    assert_eq!(s.line, format!("mock-provider listening on {}\n", s.addr));
    assert!(s.addr.ip().is_loopback());
    assert_ne!(s.addr.port(), 0);
}

#[test]
fn exits_cleanly_on_sigterm_and_sigint() {
    let mut s = Server::start();
    assert_eq!(s.get("/__mock/health").status, 200);
    assert!(s.signal_and_wait("TERM").success());

    let mut s = Server::start();
    assert!(s.signal_and_wait("INT").success());
}

#[test]
fn exits_promptly_with_a_stream_in_flight() {
    let mut s = Server::start();
    let addr = s.addr;
    let t = std::thread::spawn(move || {
        Conn::connect(addr).send(
            "POST",
            "/v1/chat/completions",
            &[("x-mock-chunk-delay-ms", "10000")],
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]})
                .to_string()
                .as_bytes(),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    assert!(s.signal_and_wait("TERM").success());
    assert!(start.elapsed() < Duration::from_secs(5));
    let r = t.join().expect("client thread");
    assert!(!r.complete);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let s = Server::start();
    let mut conn = s.conn();
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}).to_string();
    let stream =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]})
            .to_string();
    for i in 0..3 {
        let r = conn.send("POST", "/v1/chat/completions", &[], chat.as_bytes());
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None, "no connection: close");
        let r = conn.send("POST", "/v1/chat/completions", &[], stream.as_bytes());
        assert!(r.complete);
        assert!(r.text().ends_with("data: [DONE]\n\n"));
        let r = conn.send(
            "POST",
            "/v1/chat/completions",
            &[("x-mock-status", "500")],
            chat.as_bytes(),
        );
        assert_eq!(r.status, 500);
        let r = conn.send("POST", "/v1/messages", &[], b"{}");
        assert_eq!(r.status, 401, "round {i}");
    }
}

#[test]
fn bad_arguments_and_help() {
    let bin = env!("CARGO_BIN_EXE_mock-provider");
    let out = Command::new(bin)
        .args(["--listen", "not-an-address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));

    let out = Command::new(bin).arg("--help").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--api-key"));

    // Port already taken: fails with a message, no listening line.
    let s = Server::start();
    let out = Command::new(bin)
        .args(["--listen", &s.addr.to_string()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}
