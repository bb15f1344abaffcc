//! Builds the Envoy bootstrap for a gateway file.

use crate::gateway_file::{
    CorsConfig, GatewayFile, OtlpProtocol, SocketConfig, TlsConfig, TracingConfig,
};
use llm_gateway::config::{Endpoint, Provider};
use llm_gateway::flow::{CLUSTER_HEADER, SHADOW_CHAIN, SHADOW_CLUSTER, SHADOW_ROUTE_HEADER};
use llm_gateway::metrics::{HISTOGRAM_BUCKETS, LABELS};
use serde_json::{json, Value};

/// The root id and VM id the filter registers under.
pub const PLUGIN_NAME: &str = "llm_gateway";
/// Root id of the per-attempt (upstream) instance of the same filter.
pub const UPSTREAM_ROOT_ID: &str = "llm_gateway_upstream";

/// Every failover pool: (cluster name, member provider clusters).
fn pools(gw: &GatewayFile) -> Vec<(String, Vec<String>)> {
    let g = &gw.gateway;
    g.models
        .iter()
        .filter(|m| m.failover)
        .flat_map(|m| {
            (0..m.targets.len())
                .filter(|&i| m.targets[i].weight > 0)
                .map(move |i| {
                    let members = g
                        .pool_members(m, i)
                        .into_iter()
                        .map(|p| g.providers[p].cluster.clone())
                        .collect();
                    (g.pool_cluster(m, i), members)
                })
        })
        .collect()
}

/// Aggregate clusters: Envoy tries the members in order, one per attempt.
fn pool_clusters(gw: &GatewayFile) -> Vec<Value> {
    pools(gw)
        .into_iter()
        .map(|(name, members)| {
            json!({
                "name": name,
                "connect_timeout": format!("{}s", gw.envoy.connect_timeout_seconds),
                "lb_policy": "CLUSTER_PROVIDED",
                "cluster_type": {
                    "name": "envoy.clusters.aggregate",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
                        "clusters": members
                    }
                }
            })
        })
        .collect()
}

/// Routes to the pools: retry a failed attempt (before any response byte
/// went to the client) on the next member, never the same one twice.
fn pool_routes(gw: &GatewayFile, default_timeout: &str) -> Vec<Value> {
    let g = &gw.gateway;
    pools(gw)
        .into_iter()
        .map(|(name, members)| {
            let attempts = g.max_attempts.min(members.len() as u32).max(1);
            let first_byte = g
                .providers
                .iter()
                .filter(|p| members.contains(&p.cluster))
                .filter_map(|p| p.timeouts.first_byte_ms)
                .max();
            let mut retry = json!({
                "retry_on": "5xx,reset,reset-before-request,connect-failure,retriable-status-codes",
                "retriable_status_codes": [429],
                "num_retries": attempts - 1,
                "retry_priority": {
                    "name": "envoy.retry_priorities.previous_priorities",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                        "update_frequency": 1
                    }
                },
                "retry_host_predicate": [{
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}
                }],
                "host_selection_retry_max_attempts": 5,
                "retry_back_off": {"base_interval": "0.01s", "max_interval": "0.1s"}
            });
            if let Some(ms) = first_byte {
                retry["per_try_idle_timeout"] = json!(format!("{:.3}s", ms as f64 / 1000.0));
            }
            json!({
                "match": {"prefix": "/", "headers": [{
                    "name": CLUSTER_HEADER,
                    "string_match": {"exact": name}
                }]},
                "route": {"cluster": name, "timeout": default_timeout, "retry_policy": retry},
                "request_headers_to_remove": [CLUSTER_HEADER]
            })
        })
        .collect()
}

/// The CORS policy of the virtual host.
fn cors_policy(c: &CorsConfig) -> Value {
    let origins: Vec<Value> = c
        .allow_origins
        .iter()
        .map(|o| match o.as_str() {
            "*" => json!({"safe_regex": {"regex": ".*"}}),
            exact => json!({"exact": exact}),
        })
        .collect();
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": origins,
        "allow_methods": "GET, POST, OPTIONS",
        "allow_headers": "authorization, content-type, x-api-key, api-key, anthropic-version, anthropic-beta, openai-beta, x-stainless-os, x-stainless-lang, x-stainless-package-version, x-stainless-runtime, x-stainless-runtime-version, x-stainless-arch, x-stainless-retry-count, x-stainless-timeout, x-llmgw-timestamp, x-llmgw-nonce, x-llmgw-signature",
        "expose_headers": "x-llm-gateway-target, retry-after, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, x-request-id",
        "max_age": c.max_age_seconds.to_string()
    })
}

/// HTTPS on the listener: the certificate chain and key Envoy reads.
fn downstream_tls(t: &TlsConfig) -> Value {
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "tls_certificates": [{
                    "certificate_chain": {"filename": t.cert_file},
                    "private_key": {"filename": t.key_file}
                }],
                "alpn_protocols": ["h2", "http/1.1"]
            }
        }
    })
}

fn socket(s: &SocketConfig) -> Value {
    json!({"socket_address": {"address": s.address, "port_value": s.port}})
}

fn access_log(target: &str) -> Value {
    let format = json!({
        "start_time": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        // The filter records the client's path (`:path` is rewritten for
        // the provider; client `x-envoy-*` headers are removed).
        "path": "%FILTER_STATE(wasm.llmgw.path:PLAIN)%",
        "api": "%FILTER_STATE(wasm.llmgw.api:PLAIN)%",
        "status": "%RESPONSE_CODE%",
        "flags": "%RESPONSE_FLAGS%",
        "duration_ms": "%DURATION%",
        "upstream_cluster": "%UPSTREAM_CLUSTER%",
        "upstream_host": "%UPSTREAM_HOST%",
        "target": "%RESP(X-LLM-GATEWAY-TARGET)%",
        "model": "%FILTER_STATE(wasm.llmgw.model:PLAIN)%",
        "provider": "%FILTER_STATE(wasm.llmgw.provider:PLAIN)%",
        "consumer": "%FILTER_STATE(wasm.llmgw.consumer:PLAIN)%",
        "rule": "%FILTER_STATE(wasm.llmgw.rule:PLAIN)%",
        "upstream_model": "%FILTER_STATE(wasm.llmgw.upstream_model:PLAIN)%",
        "tokens_in": "%FILTER_STATE(wasm.llmgw.tokens_in:PLAIN)%",
        "tokens_out": "%FILTER_STATE(wasm.llmgw.tokens_out:PLAIN)%",
        "cost_usd": "%FILTER_STATE(wasm.llmgw.cost_usd:PLAIN)%",
        "ttft_ms": "%FILTER_STATE(wasm.llmgw.ttft_ms:PLAIN)%",
        "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
        "error": "%FILTER_STATE(wasm.llmgw.error:PLAIN)%",
        // `rule:action:direction:count,…`; never the matched text.
        "guardrails": "%FILTER_STATE(wasm.llmgw.guardrails:PLAIN)%",
        // `to:<model>` on a request copied to a shadow model, `of:<model>`
        // on the copy (same request_id).
        "shadow": "%FILTER_STATE(wasm.llmgw.shadow:PLAIN)%",
        // stop, length, tool_calls or content_filter, whatever the wire.
        "finish_reason": "%FILTER_STATE(wasm.llmgw.finish_reason:PLAIN)%",
        // hit, miss, store or bypass, for a model with a response cache.
        "cache": "%FILTER_STATE(wasm.llmgw.cache:PLAIN)%",
        // A semantic hit: the cosine similarity of the prompts.
        "cache_similarity": "%FILTER_STATE(wasm.llmgw.cache_similarity:PLAIN)%",
        "request_id": "%REQ(X-REQUEST-ID)%",
        "bytes_received": "%BYTES_RECEIVED%",
        "bytes_sent": "%BYTES_SENT%"
    });
    let (name, typed) = if target == "stdout" {
        (
            "envoy.access_loggers.stdout",
            json!({
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                "log_format": {"json_format": format}
            }),
        )
    } else {
        (
            "envoy.access_loggers.file",
            json!({
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": target,
                "log_format": {"json_format": format}
            }),
        )
    };
    json!([{"name": name, "typed_config": typed}])
}

/// The cluster of a provider's token endpoint on another host.
fn token_cluster(p: &Provider, gw: &GatewayFile) -> Option<Value> {
    let (name, e) = p.token_endpoint.as_ref()?;
    let mut c = endpoint_cluster(name, e, gw);
    c["connect_timeout"] = json!(format!("{}s", gw.envoy.connect_timeout_seconds));
    Some(c)
}

/// A cluster of one host (DNS unless an IP), TLS for https.
fn endpoint_cluster(name: &str, e: &Endpoint, gw: &GatewayFile) -> Value {
    let mut c = json!({
        "name": name,
        "type": if e.host_is_ip() { "STATIC" } else { "LOGICAL_DNS" },
        "dns_lookup_family": "V4_PREFERRED",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": e.host, "port_value": e.port}
            }}}]}]
        }
    });
    if e.is_tls() {
        c["transport_socket"] = upstream_tls(e, gw);
    }
    c
}

fn upstream_tls(e: &Endpoint, gw: &GatewayFile) -> Value {
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": e.host,
            "common_tls_context": {
                "validation_context": {
                    "trusted_ca": {"filename": gw.envoy.ca_file},
                    "match_typed_subject_alt_names": [{
                        "san_type": "DNS",
                        "matcher": {"exact": e.host}
                    }]
                }
            }
        }
    })
}

fn cluster(p: &Provider, gw: &GatewayFile) -> Value {
    let e = &p.endpoint;
    let mut c = json!({
        "name": p.cluster,
        "type": if e.host_is_ip() { "STATIC" } else { "LOGICAL_DNS" },
        "connect_timeout": match p.timeouts.connect_ms {
            Some(ms) => format!("{:.3}s", ms as f64 / 1000.0),
            None => format!("{}s", gw.envoy.connect_timeout_seconds),
        },
        "dns_lookup_family": "V4_PREFERRED",
        "per_connection_buffer_limit_bytes": buffer_limit(gw),
        "load_assignment": {
            "cluster_name": p.cluster,
            "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": {
                    "socket_address": {"address": e.host, "port_value": e.port}
                }},
                // Tells a failover attempt's filter which provider Envoy picked.
                "metadata": {"filter_metadata": {"llmgw": {"provider": p.name}}}
            }]}]
        }
    });
    if let Some(hc) = &p.health_check {
        let ms = |v: u64| format!("{:.3}s", v as f64 / 1000.0);
        c["health_checks"] = json!([{
            "timeout": ms(hc.timeout_ms),
            "interval": ms(hc.interval_ms),
            "unhealthy_threshold": hc.unhealthy_threshold,
            "healthy_threshold": hc.healthy_threshold,
            "http_health_check": {"path": hc.path, "host": e.authority()}
        }]);
    }
    if e.is_tls() {
        c["transport_socket"] = upstream_tls(e, gw);
    }
    c
}

/// One route per provider cluster (its timeouts), then a catch-all that
/// follows the filter's routing header. Routing is internal: providers never
/// see the header.
fn routes(gw: &GatewayFile, default_timeout: &str) -> Value {
    let ms = |v: u64| format!("{:.3}s", v as f64 / 1000.0);
    let mut routes: Vec<Value> = gw
        .gateway
        .providers
        .iter()
        .map(|p| {
            // A connection that dies before any response byte (most often a
            // keep-alive connection the provider closed unannounced just as
            // Envoy reused it) gets one more try; status codes are never
            // retried on a single target.
            let mut retry = json!({"retry_on": "reset-before-request,reset", "num_retries": 1});
            if let Some(first_byte) = p.timeouts.first_byte_ms {
                retry["per_try_idle_timeout"] = json!(ms(first_byte));
            }
            let route = json!({
                "cluster": p.cluster,
                "timeout": p.timeouts.total_ms.map_or(default_timeout.to_string(), ms),
                "retry_policy": retry,
            });
            json!({
                "match": {"prefix": "/", "headers": [{
                    "name": CLUSTER_HEADER,
                    "string_match": {"exact": p.cluster}
                }]},
                "route": route,
                "request_headers_to_remove": [CLUSTER_HEADER]
            })
        })
        .collect();
    routes.extend(pool_routes(gw, default_timeout));
    routes.push(json!({
        "match": {"prefix": "/"},
        "route": {"cluster_header": CLUSTER_HEADER, "timeout": default_timeout},
        "request_headers_to_remove": [CLUSTER_HEADER]
    }));
    if has_shadows(gw) {
        // Envoy copies a request the filter marked (the header names the
        // shadow cluster) to the gateway's internal listener.
        for r in &mut routes {
            r["route"]["request_mirror_policies"] =
                json!([{"cluster_header": SHADOW_ROUTE_HEADER}]);
        }
    }
    Value::Array(routes)
}

/// Some model copies requests to a shadow model.
pub fn has_shadows(gw: &GatewayFile) -> bool {
    gw.gateway.models.iter().any(|m| m.shadow.is_some())
}

/// The internal listener shadow copies arrive on (only Envoy itself can
/// connect to it): the same connection manager, without the client-facing
/// filters, keeping the copied request's id.
fn shadow_listener(hcm: &Value) -> Value {
    let mut hcm = hcm.clone();
    hcm["stat_prefix"] = json!(format!("{PLUGIN_NAME}_shadow"));
    hcm["preserve_external_request_id"] = json!(true);
    if let Some(filters) = hcm["http_filters"].as_array_mut() {
        filters.retain(|f| {
            f["name"] == "envoy.filters.http.wasm" || f["name"] == "envoy.filters.http.router"
        });
    }
    json!({
        "name": SHADOW_CLUSTER,
        "internal_listener": {},
        "filter_chains": [{
            "name": SHADOW_CHAIN,
            "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
        }]
    })
}

fn shadow_cluster(gw: &GatewayFile) -> Value {
    json!({
        "name": SHADOW_CLUSTER,
        "connect_timeout": format!("{}s", gw.envoy.connect_timeout_seconds),
        "load_assignment": {
            "cluster_name": SHADOW_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "envoy_internal_address": {"server_listener_name": SHADOW_CLUSTER}
            }}}]}]
        }
    })
}

/// Envoy's per-connection buffer limit, which also bounds what a filter
/// may buffer: room for the largest response the filter holds, and well
/// above the largest accepted request body, so the filter's own 413 always
/// answers first (a request chunk landing past the limit would otherwise
/// get Envoy's).
fn buffer_limit(gw: &GatewayFile) -> u64 {
    let limits = &gw.plugin.limits;
    (limits.max_request_body_bytes * 2 + 1024 * 1024).max(limits.max_response_body_bytes)
}

/// The connection manager's filters. Envoy's compressor (first, so it sees
/// responses last) gzips JSON answers for clients that accept it; the
/// filter asks providers for plain bodies. Envoy's decompressor (before the
/// filter) inflates gzip request bodies from clients that send them.
fn http_filters(gw: &GatewayFile, wasm: Value, router: Value) -> Value {
    let mut filters = Vec::new();
    if gw.envoy.cors.is_some() {
        // First: preflights are answered here, and every answer (the
        // filter's own errors included) gets the CORS headers on its way out.
        filters.push(json!({
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}
        }));
    }
    if gw.envoy.compression {
        filters.push(json!({
            "name": "envoy.filters.http.compressor",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
                "response_direction_config": {
                    // Envoy's default content types: JSON yes, event
                    // streams no (they go out event by event).
                    "common_config": {"min_content_length": 1024},
                    "remove_accept_encoding_header": true
                },
                "compressor_library": {
                    "name": "gzip",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip"}
                }
            }
        }));
        filters.push(json!({
            "name": "envoy.filters.http.decompressor",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor",
                "decompressor_library": {
                    "name": "gzip",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip"}
                },
                "request_direction_config": {"common_config": {"enabled": {"default_value": true, "runtime_key": "llmgw.request_decompression"}}},
                "response_direction_config": {"common_config": {"enabled": {"default_value": false, "runtime_key": "llmgw.response_decompression"}}}
            }
        }));
    }
    filters.push(wasm);
    // After the Wasm filter: it reads what the filter decided.
    filters.extend(crate::cluster_limits::filter(gw));
    filters.push(json!({"name": "envoy.filters.http.router", "typed_config": router}));
    Value::Array(filters)
}

fn virtual_host(gw: &GatewayFile, timeout: &str) -> Value {
    let mut vh = json!({
        "name": PLUGIN_NAME,
        "domains": ["*"],
        "routes": routes(gw, timeout)
    });
    if let Some(c) = &gw.envoy.cors {
        vh["typed_per_filter_config"] = json!({"envoy.filters.http.cors": cors_policy(c)});
    }
    vh
}

/// Renders the bootstrap. `wasm_path` is where Envoy finds the filter.
pub fn render(gw: &GatewayFile, wasm_path: &str) -> Value {
    render_with(gw, wasm_path, false)
}

/// Renders the bootstrap; with `upstream_filter`, the per-attempt filter is
/// in the router even without failover pools (a configuration served
/// through xDS may gain a pool later without changing the listener).
pub fn render_with(gw: &GatewayFile, wasm_path: &str, upstream_filter: bool) -> Value {
    let plugin_json = serde_json::to_string(&gw.plugin).unwrap_or_default();
    let mut vm_config = json!({
        "vm_id": PLUGIN_NAME,
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": wasm_path}}
    });
    let env_keys = gw.env_keys();
    if !env_keys.is_empty() {
        vm_config["environment_variables"] = json!({"host_env_keys": env_keys});
    }
    let wasm_filter = |root_id: &str| {
        json!({
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": root_id,
                    "root_id": root_id,
                    // Lets the filter hold request headers until it has read
                    // the body's `model`, then set the routing header.
                    "allow_on_headers_stop_iteration": true,
                    // Should the VM ever fail, a new one is started for the
                    // next request (shared data survives: it is per vm_id)
                    // instead of every request on that worker failing.
                    "failure_policy": "FAIL_RELOAD",
                    "reload_config": {"backoff": {"base_interval": "0.1s", "max_interval": "5s"}},
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": plugin_json
                    },
                    "vm_config": vm_config
                }
            }
        })
    };
    let mut router =
        json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"});
    if upstream_filter || has_shadows(gw) || gw.gateway.models.iter().any(|m| m.failover) {
        // The same filter rewrites every attempt of a failover pool, retries
        // included, for the provider Envoy picked.
        router["upstream_http_filters"] = json!([
            wasm_filter(UPSTREAM_ROOT_ID),
            {
                "name": "envoy.filters.http.upstream_codec",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}
            }
        ]);
    }
    let timeout = format!("{}s", gw.envoy.route_timeout_seconds);
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": PLUGIN_NAME,
        "codec_type": "AUTO",
        "generate_request_id": true,
        "stream_idle_timeout": timeout,
        "route_config": {
            "name": PLUGIN_NAME,
            "virtual_hosts": [virtual_host(gw, &timeout)]
        },
        "local_reply_config": crate::local_reply::config(gw.plugin.limits.max_request_body_bytes),
        "http_filters": http_filters(gw, wasm_filter(PLUGIN_NAME), router)
    });
    if gw.envoy.access_log != "none" {
        hcm["access_log"] = access_log(&gw.envoy.access_log);
    }
    let mut clusters: Vec<Value> = gw
        .gateway
        .providers
        .iter()
        .map(|p| cluster(p, gw))
        .collect();
    clusters.extend(
        gw.gateway
            .providers
            .iter()
            .filter_map(|p| token_cluster(p, gw)),
    );
    clusters.extend(pool_clusters(gw));
    clusters.extend(crate::cluster_limits::cluster(gw));
    if let Some(t) = &gw.envoy.tracing {
        hcm["tracing"] = tracing(t);
        clusters.push(collector_cluster(t));
    }
    let mut chain = json!({"filters": [{
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": hcm
    }]});
    if let Some(t) = &gw.listener.tls {
        chain["transport_socket"] = downstream_tls(t);
    }
    let mut listeners = vec![json!({
        "name": PLUGIN_NAME,
        "address": socket(&gw.listener),
        "per_connection_buffer_limit_bytes": buffer_limit(gw),
        "filter_chains": [chain]
    })];
    if has_shadows(gw) {
        listeners.push(shadow_listener(&chain["filters"][0]["typed_config"]));
        clusters.push(shadow_cluster(gw));
    }
    let mut bootstrap = json!({
        "static_resources": {
            "listeners": listeners,
            "clusters": clusters
        }
    });
    // The dynamic form has it always: a shadow added later needs no restart.
    if has_shadows(gw) || upstream_filter {
        bootstrap["bootstrap_extensions"] = json!([{
            "name": "envoy.bootstrap.internal_listener",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener"}
        }]);
    }
    if let Some(admin) = &gw.admin {
        bootstrap["admin"] = json!({"address": socket(admin)});
    }
    bootstrap["stats_config"] = stats_config();
    bootstrap
}

const COLLECTOR_CLUSTER: &str = "llmgw_otel_collector";

/// GenAI span attributes, read from the filter state the filter writes.
const SPAN_TAGS: &[(&str, &str)] = &[
    ("gen_ai.operation.name", "llmgw.operation"),
    ("llm_gateway.api", "llmgw.api"),
    ("gen_ai.provider.name", "llmgw.provider_type"),
    ("gen_ai.request.model", "llmgw.model"),
    ("gen_ai.response.model", "llmgw.upstream_model"),
    ("gen_ai.usage.input_tokens", "llmgw.tokens_in"),
    ("gen_ai.usage.output_tokens", "llmgw.tokens_out"),
    ("llm_gateway.provider", "llmgw.provider"),
    ("llm_gateway.cost_usd", "llmgw.cost_usd"),
    ("llm_gateway.ttft_ms", "llmgw.ttft_ms"),
    ("error.type", "llmgw.error"),
];

/// OpenTelemetry tracing on the connection manager, with GenAI attributes.
fn tracing(t: &TracingConfig) -> Value {
    let tags: Vec<Value> = SPAN_TAGS
        .iter()
        .map(|(tag, key)| json!({"tag": tag, "value": format!("%FILTER_STATE(wasm.{key}:PLAIN)%")}))
        .collect();
    let mut otel = json!({
        "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
        "service_name": t.service_name,
    });
    match t.protocol {
        OtlpProtocol::Grpc => {
            otel["grpc_service"] =
                json!({"envoy_grpc": {"cluster_name": COLLECTOR_CLUSTER}, "timeout": "1s"});
        }
        OtlpProtocol::Http => {
            otel["http_service"] = json!({
                "http_uri": {
                    "uri": format!("http://{}/v1/traces", t.collector),
                    "cluster": COLLECTOR_CLUSTER,
                    "timeout": "1s"
                },
                "request_headers_to_add": [{"header": {"key": "content-type", "value": "application/x-protobuf"}}]
            });
        }
    }
    json!({
        "random_sampling": {"value": t.sampling_percent},
        "custom_tags": tags,
        "provider": {"name": "envoy.tracers.opentelemetry", "typed_config": otel}
    })
}

fn collector_cluster(t: &TracingConfig) -> Value {
    let (host, port) = t.host_port().unwrap_or_default();
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let mut c = json!({
        "name": COLLECTOR_CLUSTER,
        "type": if is_ip { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": COLLECTOR_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": port}
            }}}]}]
        }
    });
    if t.protocol == OtlpProtocol::Grpc {
        c["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        });
    }
    c
}

/// Turns the filter's `;label=value` metric name segments into Prometheus
/// labels, and gives its histograms buckets that suit their units.
pub fn stats_config() -> Value {
    let tags: Vec<Value> = LABELS
        .iter()
        .map(|l| json!({"tag_name": l, "regex": format!("(;{l}=([^;]+))")}))
        .collect();
    let buckets: Vec<Value> = HISTOGRAM_BUCKETS
        .iter()
        .map(|(name, bounds)| json!({"match": {"prefix": name}, "buckets": bounds}))
        .collect();
    json!({"stats_tags": tags, "histogram_bucket_settings": buckets})
}
