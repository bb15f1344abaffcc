use crate::envoy::render;
use crate::gateway_file::GatewayFile;

const FILE: &str = r#"
listener: {address: 0.0.0.0, port: 10000}
admin: {port: 9901}
envoy: {access_log: none, route_timeout_seconds: 60}
providers:
  - name: mock
    type: openai
    base_url: http://127.0.0.1:18080/v1
  - name: deepseek
    type: deepseek
    api_key: env:DEEPSEEK_API_KEY
  - name: qwen
    type: qwen
    api_key: env:DASHSCOPE_API_KEY
models:
  - name: mock-gpt
    targets: [{provider: mock}]
  - name: deepseek-chat
    targets: [{provider: deepseek}]
"#;

#[test]
fn renders_clusters_route_and_filter() {
    let gw = GatewayFile::parse(FILE).unwrap();
    assert_eq!(gw.env_keys(), ["DASHSCOPE_API_KEY", "DEEPSEEK_API_KEY"]);
    let b = render(&gw, "/x/llm_gateway.wasm");
    let listener = &b["static_resources"]["listeners"][0];
    assert_eq!(listener["address"]["socket_address"]["address"], "0.0.0.0");
    let hcm = &listener["filter_chains"][0]["filters"][0]["typed_config"];
    assert!(hcm.get("access_log").is_none());
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap();
    // One route per provider, then the catch-all following the header.
    assert_eq!(routes.len(), 4);
    assert_eq!(
        routes[0]["match"]["headers"][0]["string_match"]["exact"],
        "llmgw_mock"
    );
    assert_eq!(routes[0]["route"]["cluster"], "llmgw_mock");
    assert_eq!(routes[0]["route"]["timeout"], "60s");
    assert_eq!(
        routes[3]["route"]["cluster_header"],
        "x-llm-gateway-cluster"
    );
    assert_eq!(
        routes[3]["request_headers_to_remove"][0],
        "x-llm-gateway-cluster"
    );
    let filters: Vec<&str> = hcm["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    // The compressor first (it sees responses last), the decompressor
    // before the filter (it inflates request bodies the filter reads).
    assert_eq!(
        filters,
        [
            "envoy.filters.http.compressor",
            "envoy.filters.http.decompressor",
            "envoy.filters.http.wasm",
            "envoy.filters.http.router"
        ]
    );
    let wasm = &wasm_filter(hcm)["typed_config"]["config"];
    assert_eq!(wasm["allow_on_headers_stop_iteration"], true);
    assert_eq!(wasm["failure_policy"], "FAIL_RELOAD");
    // Envoy's own replies are mapped to OpenAI errors, the 413 naming the
    // configured limit.
    let mappers = hcm["local_reply_config"]["mappers"].as_array().unwrap();
    let too_large = mappers
        .iter()
        .find(|m| m["body_format_override"]["json_format"]["error"]["code"] == "request_too_large")
        .unwrap();
    assert!(
        too_large["body_format_override"]["json_format"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4194304 bytes")
    );
    // Room for the largest response held, and far above the request limit.
    assert_eq!(listener["per_connection_buffer_limit_bytes"], 32 << 20);
    assert_eq!(
        wasm["vm_config"]["code"]["local"]["filename"],
        "/x/llm_gateway.wasm"
    );
    assert_eq!(
        wasm["vm_config"]["environment_variables"]["host_env_keys"],
        serde_json::json!(["DASHSCOPE_API_KEY", "DEEPSEEK_API_KEY"])
    );
    // The embedded plugin config is exactly the providers/models/limits part.
    let plugin: serde_json::Value =
        serde_json::from_str(wasm["configuration"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(plugin["providers"][1]["api_key"], "env:DEEPSEEK_API_KEY");
    assert!(plugin.get("listener").is_none());

    let clusters = b["static_resources"]["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 3);
    assert_eq!(clusters[0]["name"], "llmgw_mock");
    assert_eq!(clusters[0]["type"], "STATIC");
    assert!(clusters[0].get("transport_socket").is_none());
    assert_eq!(clusters[1]["type"], "LOGICAL_DNS");
    let tls = &clusters[1]["transport_socket"]["typed_config"];
    assert_eq!(tls["sni"], "api.deepseek.com");
    assert_eq!(
        clusters[2]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"]["port_value"],
        443
    );
    assert_eq!(
        b["admin"]["address"]["socket_address"]["address"],
        "127.0.0.1"
    );
}

fn wasm_filter(hcm: &serde_json::Value) -> &serde_json::Value {
    hcm["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .unwrap()
}

#[test]
fn compression_can_be_turned_off() {
    let file = FILE.replace("access_log: none", "access_log: none, compression: false");
    let b = render(&GatewayFile::parse(&file).unwrap(), "/x/llm_gateway.wasm");
    let hcm =
        &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["http_filters"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_files_name_the_field() {
    let cases = [
        ("providers: []\nmodels: []\n", "listener", "required"),
        ("listener: {port: 1}\nextra: 1\nproviders: []\nmodels: []\n", "extra", "unknown section"),
        ("listener: {port: 1, host: x}\n", "listener", "unknown field `host`"),
        ("listener: {port: 1}\nenvoy: {route_timeout_seconds: 0}\nproviders: [{name: a, type: openai}]\nmodels: [{name: m, targets: [{provider: a}]}]\n", "envoy.route_timeout_seconds", "at least 1"),
        ("listener: {port: 1}\nproviders: [{name: a, type: opneai}]\nmodels: []\n", "providers[0].type", "unknown provider type 'opneai'"),
        ("listener: [\n", "gateway file", "not valid YAML"),
    ];
    for (yaml, field, problem) in cases {
        let e = GatewayFile::parse(yaml).unwrap_err();
        assert_eq!(e.field, field, "{yaml}: {e}");
        assert!(e.problem.contains(problem), "{yaml}: {e}");
    }
}

#[test]
fn log_fields_follow_what_reads_them() {
    let plugin = |file: &str| {
        let gw = GatewayFile::parse(file).unwrap();
        let b = render(&gw, "/x/llm_gateway.wasm");
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        let value = wasm_filter(hcm)["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_str::<serde_json::Value>(&value).unwrap()
    };
    // No access log, no tracing: nothing reads the filter state.
    assert_eq!(plugin(FILE)["log_fields"], false);
    let logged = FILE.replace("access_log: none", "access_log: stdout");
    assert_eq!(plugin(&logged)["log_fields"], true);
    // An explicit setting wins (e.g. an access log configured elsewhere).
    let explicit = format!("{FILE}log_fields: true\n");
    assert_eq!(plugin(&explicit)["log_fields"], true);
}
