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

/// A scratch directory under the target dir, fresh for each test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llmgw-render-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn file_keys_are_read_into_the_configuration() {
    let dir = scratch("keys");
    std::fs::write(dir.join("provider.key"), "sk-from-file\n").unwrap();
    std::fs::write(dir.join("team.key"), "team-secret").unwrap();
    let file = FILE.replace(
        "base_url: http://127.0.0.1:18080/v1",
        "base_url: http://127.0.0.1:18080/v1\n    api_keys: [file:provider.key, literal]",
    ) + "consumers: [{name: team, api_keys: [file:team.key]}]\n";
    let gw = GatewayFile::parse_in(&file, &dir).unwrap();
    assert_eq!(gw.plugin.providers[0].api_keys, ["sk-from-file", "literal"]);
    // A consumer key becomes its digest: the plain key is never configured.
    let digest: String = llm_gateway::consumers::sha256(b"team-secret")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        gw.plugin.consumers[0].api_keys,
        [format!("sha256:{digest}")]
    );
    let files: Vec<_> = gw.key_files.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(files, [dir.join("provider.key"), dir.join("team.key")]);
    assert_eq!(
        gw.key_files[0].1,
        llm_gateway::consumers::sha256(b"sk-from-file\n")
    );

    let missing = FILE.replace(
        "api_key: env:DEEPSEEK_API_KEY",
        "api_key: file:/nonexistent/deepseek.key",
    );
    let e = GatewayFile::parse_in(&missing, &dir).unwrap_err();
    assert_eq!(e.field, "providers[1].api_key");
    assert!(
        e.problem
            .contains("cannot read key file /nonexistent/deepseek.key"),
        "{e}"
    );
    std::fs::write(dir.join("empty.key"), " \n").unwrap();
    let empty = FILE.replace("api_key: env:DEEPSEEK_API_KEY", "api_key: file:empty.key");
    let e = GatewayFile::parse_in(&empty, &dir).unwrap_err();
    assert!(e.problem.contains("is empty"), "{e}");
}

#[test]
fn the_dynamic_form_serves_every_part_from_watched_files() {
    let dir = scratch("split");
    let gw = GatewayFile::parse(FILE).unwrap();
    let wasm = dir.join("filter.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    let out = dir.join("xds");
    let applied = crate::apply::apply(&out, &gw, &wasm).unwrap();
    assert_eq!(
        applied.written,
        [
            "cds.json",
            "rds.json",
            "ecds-llm_gateway.json",
            "ecds-llm_gateway_upstream.json",
            "lds.json"
        ]
    );
    let out = std::fs::canonicalize(&out).unwrap();
    let boot: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(out.join("bootstrap.yaml")).unwrap())
            .unwrap();
    assert!(boot.get("static_resources").is_none());
    let lds = &boot["dynamic_resources"]["lds_config"]["path_config_source"];
    assert_eq!(lds["path"], out.join("lds.json").to_string_lossy().as_ref());
    assert_eq!(
        lds["watched_directory"]["path"],
        out.to_string_lossy().as_ref()
    );

    let listener = &read_json(&out.join("lds.json"))["resources"][0];
    assert_eq!(
        listener["@type"],
        "type.googleapis.com/envoy.config.listener.v3.Listener"
    );
    let hcm = &listener["filter_chains"][0]["filters"][0]["typed_config"];
    assert!(hcm.get("route_config").is_none());
    assert_eq!(hcm["rds"]["route_config_name"], "llm_gateway");
    let filters = hcm["http_filters"].as_array().unwrap();
    assert_eq!(filters[2]["name"], "llm_gateway");
    assert!(
        filters[2]["config_discovery"]["config_source"]["path_config_source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("/ecds-llm_gateway.json")
    );
    // The per-attempt filter is always there, so a failover pool can be
    // added without changing the listener.
    let upstream = &filters[3]["typed_config"]["upstream_http_filters"][0];
    assert_eq!(upstream["name"], "llm_gateway_upstream");

    let ecds = &read_json(&out.join("ecds-llm_gateway.json"))["resources"][0];
    let config = &ecds["typed_config"]["config"];
    assert_eq!(config["vm_config"]["vm_id"], "llm_gateway");
    let code = config["vm_config"]["code"]["local"]["filename"]
        .as_str()
        .unwrap();
    assert!(
        code.starts_with(&*out.join("llm_gateway-").to_string_lossy()),
        "{code}"
    );
    assert_eq!(std::fs::read(code).unwrap(), b"\0asm\x01\0\0\0");
    let clusters = read_json(&out.join("cds.json"));
    assert_eq!(clusters["resources"].as_array().unwrap().len(), 3);
    assert_eq!(
        read_json(&out.join("rds.json"))["resources"][0]["name"],
        "llm_gateway"
    );
    // The filter configuration holds keys: the owner alone reads it.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("ecds-llm_gateway.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_dir(&out).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}

#[test]
fn applying_again_writes_only_what_changed() {
    let dir = scratch("again");
    let wasm = dir.join("filter.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    let out = dir.join("xds");
    let gw = GatewayFile::parse(FILE).unwrap();
    crate::apply::apply(&out, &gw, &wasm).unwrap();
    let again = crate::apply::apply(&out, &gw, &wasm).unwrap();
    assert!(again.written.is_empty());
    assert!(!again.bootstrap_changed);

    // A model's target moves to another provider: the filter's
    // configuration changes, nothing else.
    let moved = FILE.replace(
        "  - name: deepseek-chat\n    targets: [{provider: deepseek}]",
        "  - name: deepseek-chat\n    targets: [{provider: qwen}]",
    );
    assert_ne!(moved, FILE);
    let a = crate::apply::apply(&out, &GatewayFile::parse(&moved).unwrap(), &wasm).unwrap();
    assert_eq!(
        a.written,
        ["ecds-llm_gateway.json", "ecds-llm_gateway_upstream.json"]
    );

    // A new build of the filter: a new code path, the old copy kept until
    // the next one replaces it.
    std::fs::write(&wasm, b"\0asm\x01\0\0\0\0\x01x").unwrap();
    let a = crate::apply::apply(&out, &GatewayFile::parse(&moved).unwrap(), &wasm).unwrap();
    assert_eq!(
        a.written,
        ["ecds-llm_gateway.json", "ecds-llm_gateway_upstream.json"]
    );
    let codes = |out: &std::path::Path| {
        std::fs::read_dir(out)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".wasm")
            })
            .count()
    };
    assert_eq!(codes(&out), 2);
    std::fs::write(&wasm, b"\0asm\x01\0\0\0\0\x01y").unwrap();
    crate::apply::apply(&out, &GatewayFile::parse(&moved).unwrap(), &wasm).unwrap();
    assert_eq!(codes(&out), 2);

    // A removed provider's cluster goes, after the routes stop naming it.
    let removed = moved.replace(
        "  - name: deepseek\n    type: deepseek\n    api_key: env:DEEPSEEK_API_KEY\n",
        "",
    );
    assert_ne!(removed, moved);
    let a = crate::apply::apply(&out, &GatewayFile::parse(&removed).unwrap(), &wasm).unwrap();
    assert_eq!(a.removed_clusters, ["llmgw_deepseek"]);
    let names: Vec<String> = read_json(&out.join("cds.json"))["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["llmgw_mock", "llmgw_qwen"]);
}

#[test]
fn encrypted_keys_and_signing_secrets_reach_the_vm_environment() {
    let file = FILE.replace(
        "api_key: env:DEEPSEEK_API_KEY",
        "api_key: enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ) + "consumers:\n  - {name: t, api_keys: [env:TEAM_KEY], signing_secret: env:TEAM_SIGNING}\n  - {name: u, api_keys: [env:U_KEY], signing_secret: \"enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}\n";
    let gw = GatewayFile::parse(&file).unwrap();
    assert_eq!(
        gw.env_keys(),
        [
            "DASHSCOPE_API_KEY",
            "LLMGW_MASTER_KEY",
            "LLMGW_MASTER_KEY_PREVIOUS",
            "TEAM_KEY",
            "TEAM_SIGNING",
            "U_KEY"
        ]
    );
}

#[test]
fn tls_and_cors_are_envoys_own() {
    let file = FILE
        .replace(
            "listener: {address: 0.0.0.0, port: 10000}",
            "listener: {address: 0.0.0.0, port: 10000, tls: {cert_file: /c.pem, key_file: /k.pem}}",
        )
        .replace(
            "envoy: {access_log: none, route_timeout_seconds: 60}",
            "envoy: {access_log: none, route_timeout_seconds: 60, cors: {allow_origins: [\"https://app.example.com\", \"*\"]}}",
        );
    let b = render(&GatewayFile::parse(&file).unwrap(), "/x/llm_gateway.wasm");
    let chain = &b["static_resources"]["listeners"][0]["filter_chains"][0];
    let tls = &chain["transport_socket"]["typed_config"]["common_tls_context"];
    assert_eq!(
        tls["tls_certificates"][0]["certificate_chain"]["filename"],
        "/c.pem"
    );
    assert_eq!(
        tls["tls_certificates"][0]["private_key"]["filename"],
        "/k.pem"
    );
    let hcm = &chain["filters"][0]["typed_config"];
    assert_eq!(hcm["http_filters"][0]["name"], "envoy.filters.http.cors");
    let policy = &hcm["route_config"]["virtual_hosts"][0]["typed_per_filter_config"]
        ["envoy.filters.http.cors"];
    assert_eq!(
        policy["allow_origin_string_match"],
        serde_json::json!([{"exact": "https://app.example.com"}, {"safe_regex": {"regex": ".*"}}])
    );
    assert!(policy["allow_headers"]
        .as_str()
        .unwrap()
        .contains("x-llmgw-signature"));

    for (bad, field) in [
        ("cors: {allow_origins: []}", "envoy.cors.allow_origins"),
        (
            "cors: {allow_origins: [\"app.example.com\"]}",
            "envoy.cors.allow_origins[0]",
        ),
        (
            "cors: {allow_origins: [\"https://a.example/\"]}",
            "envoy.cors.allow_origins[0]",
        ),
    ] {
        let f = FILE.replace("access_log: none,", &format!("access_log: none, {bad},"));
        assert_eq!(GatewayFile::parse(&f).unwrap_err().field, field, "{bad}");
    }
    let admin_tls = FILE.replace(
        "admin: {port: 9901}",
        "admin: {port: 9901, tls: {cert_file: a, key_file: b}}",
    );
    assert_eq!(
        GatewayFile::parse(&admin_tls).unwrap_err().field,
        "admin.tls"
    );
}

#[test]
fn word_list_files_are_expanded_and_watched() {
    let dir = scratch("words");
    std::fs::write(dir.join("zh.txt"), "# 示例\n敏感词\n\n  機密  \n").unwrap();
    let file = FILE.to_string()
        + "guardrails:\n  - name: zh\n    words: [file:zh.txt, inline]\n    action: mask\n";
    let gw = GatewayFile::parse_in(&file, &dir).unwrap();
    assert_eq!(gw.plugin.guardrails[0].words, ["敏感词", "機密", "inline"]);
    assert_eq!(gw.key_files[0].0, dir.join("zh.txt"));
    std::fs::write(dir.join("blank.txt"), "# nothing\n\n").unwrap();
    let e = GatewayFile::parse_in(&file.replace("zh.txt", "blank.txt"), &dir).unwrap_err();
    assert_eq!(e.field, "guardrails[0].words[0]");
    assert!(e.problem.contains("has no terms"), "{e}");
    let e = GatewayFile::parse_in(&file.replace("zh.txt", "none.txt"), &dir).unwrap_err();
    assert!(e.problem.contains("cannot read word list"), "{e}");
}

#[test]
fn the_guardrails_example_renders() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/guardrails");
    let text = std::fs::read_to_string(dir.join("gateway.yaml")).unwrap();
    let gw = GatewayFile::parse_in(&text, &dir).unwrap();
    let words = &gw.plugin.guardrails[0].words;
    assert!(words.contains(&"机密文件".to_string()) && words.contains(&"内部资料".to_string()));
    render(&gw, "/x/llm_gateway.wasm");
}

const KUBE: &str = r#"
listener: {port: 10000}
admin: {port: 9901}
kubernetes:
  plugin:
    oci: oci://r.example/p:1
    url: https://r.example/p.wasm
    sha256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
providers:
  - {name: a, type: openai, api_key: env:A_KEY}
  - {name: b, type: anthropic, api_key: env:B_KEY}
models:
  - {name: m, targets: [{provider: a}]}
"#;

#[test]
fn kubernetes_section_errors_name_the_field() {
    let cases = [
        ("name: Bad_Name", "kubernetes.name"),
        ("replicas: {min: 3, max: 2}", "kubernetes.replicas"),
        ("canary: {header: X-Canary}", "kubernetes.canary.header"),
        ("sidecar_host: nodot", "kubernetes.sidecar_host"),
    ];
    for (line, field) in cases {
        let text = KUBE.replace("kubernetes:\n", &format!("kubernetes:\n  {line}\n"));
        let err = GatewayFile::parse(&text).unwrap_err().to_string();
        assert!(err.contains(field), "{line}: {err}");
    }
    let bad_sha = KUBE.replace("\"aaaa", "\"AAAA");
    let err = GatewayFile::parse(&bad_sha).unwrap_err().to_string();
    assert!(err.contains("kubernetes.plugin.sha256"), "{err}");
}

#[test]
fn istio_modes_refuse_failover_pools_and_name_the_model() {
    let gw = GatewayFile::parse(KUBE).unwrap();
    assert!(crate::kube::render(&gw).is_ok());
    let pooled = KUBE.replace(
        "{name: m, targets: [{provider: a}]}",
        "{name: m, targets: [{provider: a}, {provider: b}]}",
    );
    let gw = GatewayFile::parse(&pooled).unwrap();
    let err = crate::kube::render(&gw).err().unwrap();
    assert!(err.contains("model 'm' has a failover pool"), "{err}");
    let shadowed = KUBE.replace(
        "{name: m, targets: [{provider: a}]}",
        "{name: m, targets: [{provider: a}], shadow: {model: s, percent: 5}}\n  - {name: s, targets: [{provider: b}]}",
    );
    let gw = GatewayFile::parse(&shadowed).unwrap();
    let err = crate::kube::render(&gw).err().unwrap();
    assert!(err.contains("model 'm' has a shadow model"), "{err}");
    // A token endpoint on another host has no mesh service.
    let vertex = KUBE.replace(
        "  - {name: b, type: anthropic, api_key: env:B_KEY}",
        "  - {name: b, type: anthropic, api_key: env:B_KEY}\n  - {name: v, type: vertex, vertex: {project: my-project, region: us-east5}, token: {service_account: env:SA}}",
    );
    let gw = GatewayFile::parse(&vertex).unwrap();
    let err = crate::kube::render(&gw).err().unwrap();
    assert!(
        err.contains("provider 'v' gets its access tokens from another host"),
        "{err}"
    );
}

#[test]
fn shadows_add_the_internal_listener_and_mirror_every_route() {
    let text = FILE.replace(
        "  - name: deepseek-chat\n    targets: [{provider: deepseek}]",
        "  - name: deepseek-chat\n    targets: [{provider: deepseek}]\n    shadow: {model: mock-gpt, percent: 10}",
    );
    let gw = GatewayFile::parse(&text).unwrap();
    let b = render(&gw, "/x.wasm");
    let listeners = b["static_resources"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2);
    let internal = &listeners[1];
    assert_eq!(internal["name"], "llmgw_shadow");
    assert!(internal["internal_listener"].is_object());
    assert_eq!(internal["filter_chains"][0]["name"], "llmgw_shadow");
    let hcm = &internal["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["preserve_external_request_id"], true);
    let names: Vec<&str> = hcm["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["envoy.filters.http.wasm", "envoy.filters.http.router"]
    );
    let main = &listeners[0]["filter_chains"][0]["filters"][0]["typed_config"];
    let routes = main["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap();
    for r in routes {
        assert_eq!(
            r["route"]["request_mirror_policies"][0]["cluster_header"],
            "x-llm-gateway-mirror"
        );
    }
    // The copy's attempt is rewritten upstream: the router has the filter.
    let router = main["http_filters"].as_array().unwrap().last().unwrap();
    assert!(router["typed_config"]["upstream_http_filters"].is_array());
    assert_eq!(
        b["bootstrap_extensions"][0]["name"],
        "envoy.bootstrap.internal_listener"
    );
    let clusters = b["static_resources"]["clusters"].as_array().unwrap();
    let shadow = clusters
        .iter()
        .find(|c| c["name"] == "llmgw_shadow")
        .unwrap();
    assert_eq!(
        shadow["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["envoy_internal_address"]["server_listener_name"],
        "llmgw_shadow"
    );
    // The dynamic form serves both listeners, sharing routes and filter.
    let bundle = crate::xds::split(
        crate::envoy::render_with(&gw, "/x.wasm", true),
        std::path::Path::new("/tmp/x"),
    )
    .unwrap();
    let lds = &bundle
        .resources
        .iter()
        .find(|(f, _)| f == "lds.json")
        .unwrap()
        .1;
    assert_eq!(lds.len(), 2);
    assert_eq!(
        bundle
            .resources
            .iter()
            .filter(|(f, _)| f.starts_with("ecds-"))
            .count(),
        2
    );
}

#[test]
fn kubernetes_configmap_binds_every_address_and_names_the_mounted_filter() {
    let gw = GatewayFile::parse(KUBE).unwrap();
    let files = crate::kube::envoy_files(&gw).unwrap();
    let get = |name: &str| &files.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(get("bootstrap.yaml").contains("0.0.0.0"));
    assert!(get("lds.json").contains("\"0.0.0.0\""));
    assert!(get("ecds-llm_gateway.json").contains("/etc/llm-gateway/plugin/llm_gateway.wasm"));
}

const CLUSTER_LIMITS: &str = r#"
rate_limits:
  cluster: {service: "10.0.0.5:8081", timeout_ms: 150, failure_mode: allow}
  rules:
    - {name: local, requests: {limit: 9, per: second}}
    - {name: team-rpm, scope: cluster, by: [consumer], requests: {limit: 60, per: minute}}
    - {name: team-tpm, scope: cluster, by: [consumer], tokens: {limit: 9000, per: minute, count: input}}
"#;

#[test]
fn cluster_rules_add_envoys_rate_limit_filter_after_ours() {
    let gw = GatewayFile::parse(&format!("{FILE}{CLUSTER_LIMITS}")).unwrap();
    let b = render(&gw, "/x/llm_gateway.wasm");
    let hcm =
        &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let filters = hcm["http_filters"].as_array().unwrap();
    let names: Vec<&str> = filters
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let at = names
        .iter()
        .position(|n| *n == "envoy.filters.http.ratelimit")
        .unwrap();
    assert_eq!(names[at - 1], "envoy.filters.http.wasm");
    assert_eq!(names[at + 1], "envoy.filters.http.router");
    let rl = &filters[at]["typed_config"];
    assert_eq!(rl["domain"], "llm-gateway");
    assert_eq!(rl["failure_mode_deny"], false);
    assert_eq!(rl["timeout"], "0.150s");
    let limits = rl["rate_limits"].as_array().unwrap();
    // One descriptor per request rule; two per token rule (admission and
    // settlement when the stream is done); none for the instance rule.
    assert_eq!(limits.len(), 3);
    assert_eq!(
        limits[0]["actions"][1]["extension"]["typed_config"]["key"],
        "wasm.llmgw.rl.team-rpm"
    );
    assert!(limits[0].get("hits_addend").is_none());
    assert_eq!(
        limits[1]["hits_addend"]["format"],
        "%FILTER_STATE(wasm.llmgw.rl.hits.input:PLAIN)%"
    );
    assert_eq!(limits[2]["apply_on_stream_done"], true);
    assert_eq!(
        limits[2]["hits_addend"]["format"],
        "%FILTER_STATE(wasm.llmgw.rl.used.input:PLAIN)%"
    );
    assert_eq!(
        limits[2]["actions"][2]["metadata"]["metadata_key"]["path"][1]["key"],
        "rule:team-tpm"
    );
    let clusters = b["static_resources"]["clusters"].as_array().unwrap();
    let rls = clusters
        .iter()
        .find(|c| c["name"] == "llmgw_ratelimit")
        .unwrap();
    assert_eq!(rls["type"], "STATIC");
    let addr = &rls["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"];
    assert_eq!(addr["socket_address"]["port_value"], 8081);
    // The service's refusal keeps its body; its outage has its own reply.
    let mappers = hcm["local_reply_config"]["mappers"].as_array().unwrap();
    assert!(mappers[0].get("body_format_override").is_none());
    assert!(mappers.iter().any(
        |m| m["body_format_override"]["json_format"]["error"]["code"] == "rate_limit_unavailable"
    ));
    // Without cluster rules, neither the filter nor the cluster.
    let plain = render(&GatewayFile::parse(FILE).unwrap(), "/x/llm_gateway.wasm");
    assert!(!plain.to_string().contains("envoy.filters.http.ratelimit"));
    assert!(!plain.to_string().contains("llmgw_ratelimit"));
}

#[test]
fn istio_modes_refuse_cluster_rules_and_name_the_rule() {
    let gw = GatewayFile::parse(&format!("{KUBE}{CLUSTER_LIMITS}")).unwrap();
    let err = crate::kube::render(&gw).err().unwrap();
    assert!(err.contains("rule 'team-rpm' has scope cluster"), "{err}");
}

#[test]
fn cluster_quotas_add_a_descriptor_pair_per_period() {
    let text = format!(
        "{FILE}consumers:\n  - {{name: team-a, api_keys: [\"env:K\"], quota: {{tokens_per_day: 100}}}}\nrate_limits:\n  cluster: {{service: \"127.0.0.1:8081\", quotas: true}}\n"
    );
    let b = render(&GatewayFile::parse(&text).unwrap(), "/x/llm_gateway.wasm");
    let hcm =
        &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let rl = hcm["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "envoy.filters.http.ratelimit")
        .unwrap();
    let limits = rl["typed_config"]["rate_limits"].as_array().unwrap();
    // Only the day: no consumer has a monthly quota.
    assert_eq!(limits.len(), 2);
    let actions = &limits[0]["actions"];
    assert_eq!(actions[0]["generic_key"]["descriptor_value"], "day");
    assert_eq!(actions[1]["extension"]["name"], "consumer");
    assert_eq!(
        actions[2]["extension"]["typed_config"]["key"],
        "wasm.llmgw.rl.quota.day"
    );
    assert_eq!(limits[1]["apply_on_stream_done"], true);
    assert_eq!(
        limits[1]["actions"][3]["metadata"]["metadata_key"]["path"][1]["key"],
        "quota:day"
    );
}

#[test]
fn token_endpoints_on_another_host_get_a_cluster() {
    let text = r#"
listener: {address: 127.0.0.1, port: 10000}
providers:
  - name: gemini-vertex
    type: vertex
    vertex: {project: my-project, region: europe-west4}
    token: {service_account: env:GOOGLE_SA_KEY}
  - name: ernie
    type: ernie
    token: {client_id: env:QIANFAN_AK, client_secret: env:QIANFAN_SK}
models:
  - {name: g, targets: [{provider: gemini-vertex, model: gemini-2.5-flash}]}
  - {name: e, targets: [{provider: ernie, model: completions_pro}]}
"#;
    let gw = GatewayFile::parse(text).unwrap();
    assert_eq!(gw.env_keys(), ["GOOGLE_SA_KEY", "QIANFAN_AK", "QIANFAN_SK"]);
    let b = render(&gw, "/x/llm_gateway.wasm");
    let clusters = b["static_resources"]["clusters"].as_array().unwrap();
    let names: Vec<&str> = clusters.iter().filter_map(|c| c["name"].as_str()).collect();
    // Google's token endpoint is another host; Baidu's is ERNIE's own.
    assert!(names.contains(&"llmgw_gemini-vertex_token"), "{names:?}");
    assert!(!names.contains(&"llmgw_ernie_token"), "{names:?}");
    let token = clusters
        .iter()
        .find(|c| c["name"] == "llmgw_gemini-vertex_token")
        .unwrap();
    assert_eq!(
        token["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"]["address"],
        "oauth2.googleapis.com"
    );
    assert_eq!(
        token["transport_socket"]["typed_config"]["sni"],
        "oauth2.googleapis.com"
    );
    let vertex = clusters
        .iter()
        .find(|c| c["name"] == "llmgw_gemini-vertex")
        .unwrap();
    assert_eq!(
        vertex["transport_socket"]["typed_config"]["sni"],
        "europe-west4-aiplatform.googleapis.com"
    );
}
