//! `llm-gateway-render`: gateway.yaml → Envoy bootstrap YAML, or the
//! directory of watched files Envoy reloads from (`--out-dir`, `--watch`).

mod apply;
mod cluster_limits;
mod envoy;
mod gateway_file;
mod keys;
mod kube;
mod local_reply;
mod watch;
mod xds;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: llm-gateway-render --config gateway.yaml [--wasm PATH]
                           [--out envoy.yaml | --out-dir DIR [--watch]] [--check]
       llm-gateway-render keys (encrypt | rotate | check) ...   (see keys --help)
       llm-gateway-render istio --config gateway.yaml --out DIR [--check]
                          Kubernetes and Istio manifests (the `kubernetes:`
                          section); --check only reports files that differ

  --config FILE      the gateway file to render (required)
  --wasm PATH        the filter (default: target/wasm32-wasip1/release/llm_gateway.wasm)
  --out FILE         write a static bootstrap here instead of stdout (changes
                     need an Envoy restart)
  --out-dir DIR      write DIR/bootstrap.yaml and the files Envoy watches
                     (listener, routes, clusters, filter configuration) and a
                     copy of the filter: start Envoy with -c DIR/bootstrap.yaml;
                     running this again applies a changed gateway file live
  --watch            with --out-dir: keep running and apply every change of the
                     gateway file, its file: keys or the .wasm (one line each)
  --interval-ms N    how often --watch looks for changes (default 250)
  --check            only validate the gateway file";

const HEADER: &str =
    "# Rendered by llm-gateway-render from the gateway file; edit that, not this.\n";

struct Args {
    config: String,
    wasm: String,
    out: Option<String>,
    out_dir: Option<String>,
    watch: bool,
    interval_ms: u64,
    check: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: String::new(),
        wasm: "target/wasm32-wasip1/release/llm_gateway.wasm".to_string(),
        out: None,
        out_dir: None,
        watch: false,
        interval_ms: 250,
        check: false,
    };
    let mut config = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--config" => config = Some(value("--config")?),
            "--wasm" => args.wasm = value("--wasm")?,
            "--out" => args.out = Some(value("--out")?),
            "--out-dir" => args.out_dir = Some(value("--out-dir")?),
            "--watch" => args.watch = true,
            "--interval-ms" => {
                args.interval_ms = value("--interval-ms")?
                    .parse()
                    .ok()
                    .filter(|n| (10..=60_000).contains(n))
                    .ok_or("--interval-ms must be a number of milliseconds, 10 to 60000")?
            }
            "--check" => args.check = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    args.config = config.ok_or("--config is required")?;
    if args.out.is_some() && args.out_dir.is_some() {
        return Err("--out and --out-dir exclude each other".into());
    }
    if args.watch && args.out_dir.is_none() {
        return Err("--watch needs --out-dir".into());
    }
    Ok(args)
}

fn run(args: &Args) -> Result<(), String> {
    let config = Path::new(&args.config);
    let (seen, gw) = watch::load(config, Path::new(&args.wasm), None);
    let gw = gw?;
    if args.check {
        eprintln!(
            "{}: ok ({} providers, {} models)",
            args.config,
            gw.gateway.providers.len(),
            gw.gateway.models.len()
        );
        return Ok(());
    }
    if let Some(dir) = &args.out_dir {
        let (dir, wasm) = (Path::new(dir), Path::new(&args.wasm));
        let applied = apply::apply(dir, &gw, wasm)?;
        let news = !applied.written.is_empty() || applied.bootstrap_changed;
        if news || !args.watch {
            println!(
                "llm-gateway-render: {}",
                watch::describe(config, &gw, &applied)
            );
        }
        if args.watch {
            println!(
                "llm-gateway-render: watching {} (and its file: keys) and {}",
                config.display(),
                wasm.display()
            );
            let interval = Duration::from_millis(args.interval_ms);
            watch::watch(config, wasm, dir, interval, seen);
        }
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

/// `istio --config FILE --out DIR [--check]`.
fn kube_command(argv: &[String]) -> Result<(), String> {
    let (mut config, mut out, mut check) = (None, None, false);
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => config = it.next().cloned(),
            "--out" => out = it.next().cloned(),
            "--check" => check = true,
            other => return Err(format!("istio: unknown argument '{other}'\n\n{USAGE}")),
        }
    }
    let config = config.ok_or("istio: --config FILE is required")?;
    let out = out.ok_or("istio: --out DIR is required")?;
    let text =
        std::fs::read_to_string(&config).map_err(|e| format!("cannot read {config}: {e}"))?;
    let base = Path::new(&config).parent().unwrap_or(Path::new("."));
    let gw =
        gateway_file::GatewayFile::parse_in(&text, base).map_err(|e| format!("{config}: {e}"))?;
    let files = kube::render(&gw)?;
    let differ = kube::write(&files, Path::new(&out), check)?;
    if check && !differ.is_empty() {
        return Err(format!(
            "{out} is stale ({}): run `make render`",
            differ.join(", ")
        ));
    }
    println!(
        "llm-gateway-render: {} files in {out}, {} changed",
        files.len(),
        differ.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("keys") {
        return match keys::run(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.is_empty() => {
                eprintln!("{}", keys::USAGE);
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if argv.first().map(String::as_str) == Some("istio") {
        return match kube_command(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
