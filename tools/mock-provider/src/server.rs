//! Listener, HTTP/1.1 connection handling, recording and routing.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::RETRY_AFTER;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::body::Body;
use crate::cli::Config;
use crate::common::{bytes_resp, credential, json_resp, Ctx, Resp};
use crate::encoding::EncodingChoice;
use crate::knobs::Knobs;
use crate::record::{Recorded, Recorder};
use crate::sigv4::Credential;
use crate::{anthropic, bedrock, ernie, faults, gemini, google, oauth, openai, vertex};

/// Request bodies larger than this are refused with 413.
const MAX_BODY: usize = 32 * 1024 * 1024;

pub struct State {
    pub api_key: Option<String>,
    pub recorder: Option<Recorder>,
    pub seq: AtomicU64,
    /// Encoding when a request has no `x-mock-encoding` (`auto` with `--compress`).
    pub default_encoding: EncodingChoice,
    /// `--max-requests-per-connection`.
    pub max_requests_per_connection: Option<u64>,
    /// AWS credentials Bedrock accepts: the built-in ones, then `--aws-credentials`.
    pub aws_credentials: Vec<Credential>,
    /// Baidu OAuth clients `(API Key, Secret Key)`: the built-in one, then `--ernie-client`.
    pub ernie_clients: Vec<(String, String)>,
    /// The ERNIE access tokens issued (`--ernie-token-ttl` is their lifetime).
    pub ernie_tokens: ernie::Tokens,
    /// Google service accounts the token endpoint takes JWTs from: the
    /// built-in one, then `--google-service-account` (a later email wins).
    pub google_accounts: Vec<google::ServiceAccount>,
    /// The Google access tokens issued (`--google-token-ttl` is their lifetime).
    pub google_tokens: google::Tokens,
}

impl State {
    /// The credential with this key id (a later `--aws-credentials` wins).
    pub fn aws_credential(&self, key_id: &str) -> Option<&Credential> {
        self.aws_credentials
            .iter()
            .rev()
            .find(|c| c.key_id == key_id)
    }

    /// The secret of this Baidu OAuth client (a later `--ernie-client` wins).
    pub fn ernie_client_secret(&self, id: &str) -> Option<&str> {
        self.ernie_clients
            .iter()
            .rev()
            .find(|(i, _)| i == id)
            .map(|(_, secret)| secret.as_str())
    }
}

/// `handle`'s error: hyper then closes the connection without answering
/// (`x-mock-reset-before-headers`).
#[derive(Debug)]
pub struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("x-mock-reset-before-headers: closing without an answer")
    }
}

impl std::error::Error for DropConnection {}

pub async fn run(cfg: Config) -> std::io::Result<()> {
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let builtin = google::ServiceAccount::builtin().map_err(std::io::Error::other)?;
    let state = Arc::new(State {
        api_key: cfg.api_key.clone(),
        recorder: cfg.record.then(Recorder::new),
        seq: AtomicU64::new(0),
        default_encoding: if cfg.compress {
            EncodingChoice::Auto
        } else {
            EncodingChoice::Identity
        },
        max_requests_per_connection: cfg.max_requests_per_connection,
        aws_credentials: bedrock::builtin_credentials()
            .into_iter()
            .chain(cfg.aws_credentials.iter().cloned())
            .collect(),
        ernie_clients: std::iter::once((
            ernie::BUILTIN_CLIENT.0.to_string(),
            ernie::BUILTIN_CLIENT.1.to_string(),
        ))
        .chain(cfg.ernie_clients.iter().cloned())
        .collect(),
        ernie_tokens: ernie::Tokens::new(cfg.ernie_token_ttl),
        google_accounts: std::iter::once(builtin)
            .chain(cfg.google_accounts.iter().cloned())
            .collect(),
        google_tokens: google::Tokens::new(cfg.google_token_ttl),
    });

    // Install the signal handlers before announcing readiness, so a test that
    // stops the server right after reading the line never hits the default action.
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "mock-provider listening on {addr}")?;
        out.flush()?;
    }

    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((stream, _peer)) => {
                    let state = state.clone();
                    tokio::spawn(serve_connection(stream, state));
                }
                Err(e) => {
                    // e.g. EMFILE: back off briefly instead of spinning.
                    eprintln!("mock-provider: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            sig = &mut shutdown => {
                eprintln!("mock-provider: received {sig}, shutting down");
                break;
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    })
}

async fn serve_connection(stream: TcpStream, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(stream);
    if let Some(max) = state.max_requests_per_connection {
        return serve_limited(io, state, max).await;
    }
    let svc = service_fn(move |req| {
        let state = state.clone();
        async move { handle(&state, req).await }
    });
    // Errors here are client disconnects, malformed requests, or the deliberate
    // aborts of the reset knobs (the connection is then closed without the
    // rest of the answer); nothing to report.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc)
        .await;
}

/// `--max-requests-per-connection`: after the last allowed response has been
/// written, close the idle keep-alive connection. Keep-alive is turned off
/// only once the response head is out, so the answer carries no
/// `connection: close` and the client learns of the close only from the FIN.
async fn serve_limited(io: TokioIo<TcpStream>, state: Arc<State>, max: u64) {
    let served = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let done_tx = Arc::new(Mutex::new(Some(done_tx)));
    let svc = service_fn(move |req| {
        let state = state.clone();
        let served = served.clone();
        let done_tx = done_tx.clone();
        async move {
            let n = served.fetch_add(1, Ordering::Relaxed) + 1;
            let resp = handle(&state, req).await?;
            let last = (n >= max)
                .then(|| done_tx.lock().ok().and_then(|mut tx| tx.take()))
                .flatten();
            Ok::<_, DropConnection>(match last {
                // Dropped with the body, once the response is written.
                Some(tx) => resp.map(|b| Body::Tracked {
                    body: Box::new(b),
                    _done: tx,
                }),
                None => resp,
            })
        }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = done_rx => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// The API family a path belongs to; decides the error format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Family {
    OpenAi,
    Azure,
    Anthropic,
    Gemini,
    Bedrock,
    /// Baidu ERNIE v1 chat (`/rpc/2.0/…`, `?access_token=`).
    Ernie,
    /// Baidu AIP OAuth token endpoint (`/oauth/2.0/token`).
    ErnieOAuth,
    /// Google Vertex AI (`/v1/projects/…`, `Authorization: Bearer`).
    Vertex,
    /// Google's OAuth token endpoint (`/token`, JWT bearer grant).
    GoogleOAuth,
    /// The GCE/GKE metadata server (`/computeMetadata/…`).
    GoogleMetadata,
}

pub fn family_of(path: &str) -> Family {
    if path == ernie::TOKEN_PATH {
        Family::ErnieOAuth
    } else if path == google::TOKEN_PATH {
        Family::GoogleOAuth
    } else if path.starts_with(google::METADATA_PREFIX) {
        Family::GoogleMetadata
    } else if vertex::is_vertex_path(path) {
        Family::Vertex
    } else if path.starts_with(ernie::RPC_PREFIX) {
        Family::Ernie
    } else if path.starts_with("/openai/deployments/") {
        Family::Azure
    } else if path.starts_with("/model/") {
        Family::Bedrock
    } else if path == "/v1/messages" || path.starts_with("/v1/messages/") {
        Family::Anthropic
    } else if gemini::parse_path(path).is_some() {
        Family::Gemini
    } else {
        Family::OpenAi
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Result<Resp, DropConnection> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();

    if let Some(admin) = path.strip_prefix("/__mock/") {
        return Ok(admin_route(state, &parts.method, admin));
    }

    let family = family_of(path);
    let body: Bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                let resp = error_for(family, 413, "Request body too large.");
                return Ok(with_default_encoding(state, &parts.headers, resp));
            }
            // The client went away mid-body; the answer will not be read.
            return Ok(bytes_resp(
                400,
                "text/plain",
                "failed to read the request body",
            ));
        }
    };

    if let Some(rec) = &state.recorder {
        rec.push(Recorded {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
    }

    let mut knobs = match Knobs::from_headers(&parts.headers) {
        Ok(k) => k.scoped_to(path),
        Err(msg) => {
            let resp = error_for(family, 400, &msg);
            return Ok(with_default_encoding(state, &parts.headers, resp));
        }
    };
    if knobs.echo_key {
        knobs.credential = Some(match family {
            // The client secret may also come in a form body.
            Family::ErnieOAuth => ernie::oauth_credential(
                parts.uri.query(),
                parts
                    .headers
                    .get(hyper::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                &body,
            ),
            // The assertion comes in a form body.
            Family::GoogleOAuth => google::assertion_credential(
                parts
                    .headers
                    .get(hyper::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                &body,
            ),
            _ => credential(family, &parts.headers, parts.uri.query()),
        });
    }
    if knobs.reset_before_headers {
        if let Some(ms) = knobs.first_byte_ms.filter(|ms| *ms > 0) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        return Err(DropConnection);
    }
    let seq = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let ctx = Ctx {
        state,
        method: &parts.method,
        path,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        knobs: &knobs,
        seq,
    };

    let mut resp = match (&knobs.body, knobs.status) {
        (Some(b), status) => faults::raw_body_resp(status.unwrap_or(200), b),
        (None, Some(status)) => match &knobs.error_body {
            Some(b) => crate::common::raw_error_resp(status, b),
            None => mock_status_for(family, status, knobs.credential.as_deref()),
        },
        (None, None) => match family {
            Family::Azure => openai::handle_azure(&ctx),
            Family::Anthropic => anthropic::handle(&ctx),
            Family::Gemini => gemini::handle(&ctx),
            Family::Bedrock => bedrock::handle(&ctx),
            Family::OpenAi => openai::handle(&ctx),
            Family::Ernie => ernie::handle_chat(&ctx),
            Family::ErnieOAuth => ernie::handle_token(&ctx),
            Family::Vertex => vertex::handle(&ctx),
            Family::GoogleOAuth => google::handle_token(&ctx),
            Family::GoogleMetadata => google::handle_metadata(&ctx),
        },
    };

    let encoding = knobs
        .encoding
        .unwrap_or(state.default_encoding)
        .resolve(&parts.headers);
    if encoding.is_some() || faults::shapes(&knobs) {
        resp = faults::shape(resp, &knobs, encoding);
    }
    if let Some(ra) = &knobs.retry_after {
        resp.headers_mut().insert(RETRY_AFTER, ra.clone());
    }
    if let Some(ms) = knobs.first_byte_ms.filter(|ms| *ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if path.ends_with("/moderations") && crate::moderation::is_slow(&body) {
        tokio::time::sleep(Duration::from_millis(crate::moderation::SLOW_MS)).await;
    }
    Ok(resp)
}

/// Answers given before the knobs are known follow `--compress` alone.
fn with_default_encoding(state: &State, headers: &HeaderMap, mut resp: Resp) -> Resp {
    if let Some(enc) = state.default_encoding.resolve(headers) {
        faults::compress(&mut resp, enc);
    }
    resp
}

/// Default body for `x-mock-status` without `x-mock-error-body`; `key` is
/// the credential to echo (`x-mock-echo-key`).
fn mock_status_for(family: Family, status: u16, key: Option<&str>) -> Resp {
    if status < 400 {
        return bytes_resp(status, "application/json", "{}");
    }
    match family {
        Family::OpenAi => openai::status_error(status, key),
        Family::Azure => openai::azure_status_error(status, key),
        Family::Anthropic => anthropic::status_error(status, key),
        Family::Gemini => gemini::status_error(status, key),
        Family::Bedrock => bedrock::status_error(status, key),
        Family::Ernie => ernie::status_error(status, key),
        Family::ErnieOAuth => ernie::oauth_status_error(status, key),
        Family::Vertex => gemini::vertex_status_error(status, key),
        Family::GoogleOAuth => oauth::status_error(status, key),
        Family::GoogleMetadata => google::metadata_status_error(status, key),
    }
}

/// A generic error in the family's own format (knob parse errors, 413).
fn error_for(family: Family, status: u16, msg: &str) -> Resp {
    match family {
        Family::OpenAi | Family::Azure => {
            openai::error(status, msg, "invalid_request_error", None, None)
        }
        Family::Anthropic => anthropic::error(status, msg),
        Family::Gemini => gemini::error(status, msg),
        Family::Bedrock => bedrock::error(status, msg),
        Family::Ernie => ernie::error(status, msg),
        Family::ErnieOAuth => ernie::oauth_generic_error(status, msg),
        Family::Vertex => gemini::error(status, msg),
        Family::GoogleOAuth => oauth::generic_error(status, msg),
        Family::GoogleMetadata => google::metadata_error(status, msg),
    }
}

fn admin_route(state: &State, method: &Method, route: &str) -> Resp {
    match (method, route) {
        (&Method::GET, "health") => bytes_resp(200, "text/plain", "ok"),
        (&Method::GET, "requests") => {
            let recorded = state
                .recorder
                .as_ref()
                .map(Recorder::snapshot)
                .unwrap_or_default();
            match serde_json::to_vec(&recorded) {
                Ok(b) => bytes_resp(200, "application/json", b),
                Err(_) => bytes_resp(500, "text/plain", "serialization failed"),
            }
        }
        (&Method::DELETE, "requests") => {
            if let Some(r) = &state.recorder {
                r.clear();
            }
            let mut resp = Resp::new(crate::body::Body::empty());
            *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
            resp
        }
        (&Method::POST, "ernie/revoke") => oauth::admin_revoke(&state.ernie_tokens),
        (&Method::GET, "ernie/tokens") => oauth::admin_tokens(&state.ernie_tokens),
        (&Method::POST, "google/revoke") => oauth::admin_revoke(&state.google_tokens),
        (&Method::GET, "google/tokens") => oauth::admin_tokens(&state.google_tokens),
        (
            _,
            "health" | "requests" | "ernie/revoke" | "ernie/tokens" | "google/revoke"
            | "google/tokens",
        ) => json_resp(
            405,
            &serde_json::json!({"error": format!("method {method} not allowed on /__mock/{route}")}),
        ),
        _ => json_resp(
            404,
            &serde_json::json!({"error": format!("unknown admin endpoint /__mock/{route}")}),
        ),
    }
}
