//! mock-provider: a fast, deterministic mock of the OpenAI(-compatible), Azure OpenAI,
//! Anthropic Messages, Gemini, Google Vertex AI (Gemini and Claude, with Google's
//! OAuth token endpoint and the GCE metadata server), AWS Bedrock Runtime
//! (Converse) and Baidu ERNIE v1 (with its OAuth token endpoint) HTTP APIs, used by
//! llm-gateway's end-to-end tests and benchmarks. See README.md for the CLI,
//! endpoints, knobs and recording API.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// Validation helpers return the ready-made error response as `Err`; that path is
// cold, so the size of `Response` in `Result` does not matter here.
#![allow(clippy::result_large_err)]

mod anthropic;
mod bedrock;
mod body;
mod cli;
mod common;
mod encoding;
mod ernie;
mod eventstream;
mod faults;
mod gemini;
mod google;
mod inject;
mod knobs;
mod moderation;
mod oauth;
mod openai;
mod record;
mod responses;
mod server;
mod sigv4;
mod vertex;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match cli::parse(&args) {
        Ok(cli::Parsed::Run(cfg)) => cfg,
        Ok(cli::Parsed::Help) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(cli::USAGE.as_bytes());
            let _ = out.flush();
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("mock-provider: {msg}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = cfg.threads {
        builder.worker_threads(n);
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mock-provider: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(server::run(cfg));
    // Do not wait for in-flight connections (e.g. a stream with a long chunk delay).
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mock-provider: {e}");
            ExitCode::FAILURE
        }
    }
}
