//! `llm-gateway-render`: gateway.yaml → Envoy bootstrap YAML.

mod envoy;
mod gateway_file;
mod local_reply;

use gateway_file::GatewayFile;
use std::process::ExitCode;

const USAGE: &str =
    "usage: llm-gateway-render --config gateway.yaml [--wasm PATH] [--out envoy.yaml] [--check]

  --config FILE  the gateway file to render (required)
  --wasm PATH    where Envoy loads the filter from
                 (default: target/wasm32-wasip1/release/llm_gateway.wasm)
  --out FILE     write the bootstrap here instead of stdout
  --check        only validate the gateway file";

const HEADER: &str =
    "# Rendered by llm-gateway-render from the gateway file; edit that, not this.\n";

struct Args {
    config: String,
    wasm: String,
    out: Option<String>,
    check: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut config = None;
    let mut wasm = "target/wasm32-wasip1/release/llm_gateway.wasm".to_string();
    let mut out = None;
    let mut check = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--config" => config = Some(value("--config")?),
            "--wasm" => wasm = value("--wasm")?,
            "--out" => out = Some(value("--out")?),
            "--check" => check = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let config = config.ok_or("--config is required")?;
    Ok(Args {
        config,
        wasm,
        out,
        check,
    })
}

fn run(args: &Args) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("cannot read {}: {e}", args.config))?;
    let gw = GatewayFile::parse(&text).map_err(|e| format!("{}: {e}", args.config))?;
    if args.check {
        eprintln!(
            "{}: ok ({} providers, {} models)",
            args.config,
            gw.gateway.providers.len(),
            gw.gateway.models.len()
        );
        return Ok(());
    }
    let bootstrap = envoy::render(&gw, &args.wasm);
    let yaml = serde_yaml::to_string(&bootstrap).map_err(|e| format!("cannot write YAML: {e}"))?;
    let text = format!("{HEADER}{yaml}");
    match &args.out {
        Some(path) => std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}")),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
