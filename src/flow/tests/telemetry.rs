//! Metrics and access-log fields of every stream.

use super::*;

#[test]
fn every_stream_records_metrics_and_log_fields() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#,
    );
    run(&mut f, &mut h);
    f.on_log(&mut h);
    let counter = h.metrics.iter().find_map(|m| match m {
        MetricOp::Counter { name, delta } if name.starts_with(crate::metrics::REQUESTS) => {
            Some((name.as_str().to_string(), *delta))
        }
        _ => None,
    });
    assert_eq!(
        counter,
        Some((
            "llm_gateway_requests_total;llm_gateway_api=openai.chat_completions;gen_ai_operation_name=chat;gen_ai_provider_name=none;gen_ai_request_model=unknown;http_response_status_class=4xx;error_type=invalid_request_error".into(),
            1
        ))
    );
    assert_eq!(h.stream_values["llmgw.model"], "unknown");
    assert_eq!(h.stream_values["llmgw.api"], "openai.chat_completions");
    assert_eq!(h.stream_values["llmgw.error"], "invalid_request_error");

    // A passthrough success: usage read from the body as it passed.
    let mut f = flow();
    let mut h = passthrough_success(
        &mut f,
        br#"{"usage":{"prompt_tokens":1000,"completion_tokens":10}}"#,
    );
    assert_eq!(h.stream_values["llmgw.tokens_in"], "1000");
    assert_eq!(h.stream_values["llmgw.provider"], "mock");
    // gpt-4o-mini default price: 1000 × 0.15 + 10 × 0.60 = 156 µUSD.
    assert_eq!(h.stream_values["llmgw.cost_usd"], "0.000156");
    f.on_log(&mut h);
    assert!(h.metrics.iter().any(|m| matches!(m, MetricOp::Counter { name, delta: 156 } if name.starts_with(crate::metrics::COST))));
}

#[test]
fn log_fields_can_be_switched_off() {
    let mut cfg = PluginConfig::from_json(CONFIG.as_bytes()).unwrap();
    cfg.log_fields = Some(false);
    let gw = Rc::new(compile(&cfg, &|_| None).unwrap());
    let mut f = StreamFlow::new(gw, 1);
    let mut h = passthrough_success(
        &mut f,
        br#"{"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
    );
    f.on_log(&mut h);
    assert!(h.stream_values.is_empty(), "{:?}", h.stream_values);
    // Metrics are unaffected.
    assert!(h.metrics.iter().any(|m| matches!(m, MetricOp::Counter { name, delta: 3 } if name.starts_with(crate::metrics::TOKENS))));
}
