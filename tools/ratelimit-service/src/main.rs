//! `llm-gateway-rls`: the Rate Limit Service behind llm-gateway's
//! `scope: cluster` rules. Envoy's rate-limit filter asks it over gRPC
//! (envoy.service.ratelimit.v3); limitador keeps the counters in Redis, so
//! every Envoy replica that asks the same service shares them.
//!
//! Usage: llm-gateway-rls --config gateway.yaml [--listen 127.0.0.1:8081]
//!        [--redis redis://127.0.0.1:6379] [--reservation-ttl-seconds 600]
//!        [--store-timeout-ms 1000]

mod rules;
mod service;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use limitador::reservation::ReservationLimits;
use limitador::storage::redis::AsyncRedisStorage;
use limitador::storage::AsyncStorage;
use limitador::AsyncRateLimiterBuilder;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use service::{Limits, Service, Stats};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

struct Args {
    config: String,
    listen: SocketAddr,
    redis: String,
    reservation_ttl: Duration,
    store_timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut config = None;
    let mut listen = "127.0.0.1:8081".to_string();
    let mut redis = "redis://127.0.0.1:6379".to_string();
    let mut ttl = 600u64;
    let mut store_ms = 1000u64;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--config" => config = Some(value()?),
            "--listen" => listen = value()?,
            "--redis" => redis = value()?,
            "--reservation-ttl-seconds" => {
                ttl = value()?
                    .parse()
                    .map_err(|_| "--reservation-ttl-seconds: a number")?
            }
            "--store-timeout-ms" => {
                store_ms = value()?
                    .parse()
                    .map_err(|_| "--store-timeout-ms: a number")?
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(Args {
        config: config.ok_or("--config gateway.yaml is required")?,
        listen: listen
            .parse()
            .map_err(|_| format!("--listen '{listen}': not HOST:PORT"))?,
        redis,
        reservation_ttl: Duration::from_secs(ttl.clamp(1, 86_400)),
        store_timeout: Duration::from_millis(store_ms.clamp(1, 60_000)),
    })
}

/// Redis may come up after the service: wait for it, saying so.
async fn connect(url: &str, store_timeout: Duration) -> AsyncRedisStorage {
    let mut said = false;
    loop {
        match storage(url, store_timeout).await {
            Ok(s) => return s,
            Err(e) => {
                if !said {
                    eprintln!("llm-gateway-rls: waiting for Redis at {url}: {e}");
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// The store over one self-healing Redis connection. Its reconnects are
/// short (two tries, at most 400 ms apart) so that a failed one is soon
/// replaced by the next command's, and no call waits on Redis longer than
/// the store timeout: with redis-rs' defaults (six tries, backoff to 6.4 s,
/// no response timeout) a Redis restart could leave every call hanging
/// past Envoy's rate-limit timeout, refusing traffic long after Redis was
/// back.
async fn storage(url: &str, store_timeout: Duration) -> Result<AsyncRedisStorage, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_exponent_base(2)
        .set_factor(100)
        .set_max_delay(400)
        .set_connection_timeout(store_timeout)
        .set_response_timeout(store_timeout);
    let manager = ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|e| e.to_string())?;
    AsyncRedisStorage::new_with_conn_manager(manager)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("llm-gateway-rls: {e}");
            std::process::exit(2);
        }
    };
    let yaml = match std::fs::read_to_string(&args.config) {
        Ok(y) => y,
        Err(e) => {
            eprintln!("llm-gateway-rls: {}: {e}", args.config);
            std::process::exit(2);
        }
    };
    let cluster_rules = match rules::load(&yaml) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("llm-gateway-rls: {}: {e}", args.config);
            std::process::exit(2);
        }
    };
    let storage = connect(&args.redis, args.store_timeout).await;
    let limiter =
        AsyncRateLimiterBuilder::new(AsyncStorage::with_counter_storage(Box::new(storage)))
            .reservation_limits(ReservationLimits {
                max_fraction: 1.0,
                max_ttl: args.reservation_ttl,
            })
            .build();
    for rule in &cluster_rules {
        match rules::limit(rule) {
            Ok(limit) => {
                limiter.add_limit(limit);
            }
            Err(e) => {
                eprintln!("llm-gateway-rls: {e}");
                std::process::exit(2);
            }
        }
    }
    let stats = Arc::new(Stats::default());
    let limits = Arc::new(Limits {
        limiter,
        rules: std::sync::RwLock::new(rules::by_lookup(&cluster_rules)),
        namespace: llm_gateway::admission::cluster::DOMAIN.into(),
        reservation_ttl: args.reservation_ttl,
        store_timeout: args.store_timeout,
        stats: Arc::clone(&stats),
    });
    tokio::spawn(watch(args.config.clone(), yaml, Arc::clone(&limits)));
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("llm-gateway-rls: listen {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    let names: Vec<&str> = cluster_rules.iter().map(|r| r.name.as_str()).collect();
    println!(
        "llm-gateway-rls listening on {} (Redis {}, rules: {})",
        args.listen,
        args.redis,
        names.join(", ")
    );
    // Small gRPC frames each way: without TCP_NODELAY, Nagle and delayed
    // ACKs stall answers by ~40 ms.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    let served = tonic::transport::Server::builder()
        .add_service(RateLimitServiceServer::new(Service(limits)))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    println!(
        "llm-gateway-rls: ok {} over_limit {} settled {} errors {} unknown {}",
        stats.ok.load(Ordering::Relaxed),
        stats.over_limit.load(Ordering::Relaxed),
        stats.settled.load(Ordering::Relaxed),
        stats.errors.load(Ordering::Relaxed),
        stats.unknown.load(Ordering::Relaxed)
    );
    if let Err(e) = served {
        eprintln!("llm-gateway-rls: {e}");
        std::process::exit(1);
    }
}

/// Applies every saved change of the gateway file (polled each second, as
/// `make run`'s watcher does): limits that stay keep their counters; a file
/// that does not load keeps the previous limits.
async fn watch(path: String, mut applied: String, limits: Arc<Limits>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text == applied {
            continue;
        }
        match rules::load(&text) {
            Ok(new) => match limits.replace(&new).await {
                Ok(()) => {
                    let names: Vec<&str> = new.iter().map(|r| r.name.as_str()).collect();
                    println!(
                        "llm-gateway-rls: applied {path}: rules {}",
                        names.join(", ")
                    );
                    applied = text;
                }
                Err(e) => eprintln!("llm-gateway-rls: {path}: {e}; will retry"),
            },
            Err(e) => {
                eprintln!("llm-gateway-rls: {path}: {e}; kept the previous limits");
                applied = text;
            }
        }
    }
}
