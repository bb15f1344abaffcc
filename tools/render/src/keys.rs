//! `llm-gateway-render keys`: encrypts provider keys (and consumers'
//! signing secrets) for the gateway file as `enc:v1:…` values, re-encrypts
//! a file's values under a new master key, and checks that they open.
//! The plaintext comes from stdin, never from the command line; the master
//! keys from `LLMGW_MASTER_KEY` (and `LLMGW_MASTER_KEY_PREVIOUS` when
//! rotating); randomness from the operating system.

use crate::gateway_file::GatewayFile;
use llm_gateway::secrets::envelope::{MasterKeys, PREFIX};
use llm_gateway::secrets::{Purpose, Secret};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

pub const USAGE: &str = "usage: llm-gateway-render keys encrypt (--provider NAME | --consumer NAME)
       llm-gateway-render keys rotate --config gateway.yaml
       llm-gateway-render keys check --config gateway.yaml

  encrypt  reads a key on stdin, prints enc:v1:… for that provider (or a
           consumer's signing secret), sealed with LLMGW_MASTER_KEY
  rotate   re-encrypts every enc: value of the file under LLMGW_MASTER_KEY,
           opening them with it or LLMGW_MASTER_KEY_PREVIOUS; rewrites the
           file in place (atomically), comments and layout kept
  check    opens every enc: value of the file; exit 1 naming the first that
           does not open

  A master key is base64 of 32 random bytes: head -c 32 /dev/urandom | base64";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn masters() -> Result<MasterKeys, String> {
    let keys = MasterKeys::from_env(&env).map_err(|e| format!("the master key {e}"))?;
    if keys.is_empty() {
        return Err("LLMGW_MASTER_KEY is not set (base64 of 32 random bytes)".into());
    }
    Ok(keys)
}

fn nonce() -> Result<[u8; 12], String> {
    let mut n = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut n))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(n)
}

/// Whose secret a value is.
enum Owner {
    Provider(String),
    Consumer(String),
}

impl Owner {
    fn purpose(&self) -> Purpose<'_> {
        match self {
            Owner::Provider(n) => Purpose::Provider(n),
            Owner::Consumer(n) => Purpose::Consumer(n),
        }
    }
}

/// Every `enc:` value of a gateway file with its field and owner.
fn sealed_values(yaml: &str) -> Result<Vec<(String, String, Owner)>, String> {
    let doc: Value = serde_yaml::from_str(yaml).map_err(|e| format!("not valid YAML: {e}"))?;
    let mut out = Vec::new();
    let list = |key: &str| {
        doc.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for (i, p) in list("providers").iter().enumerate() {
        let name = p["name"].as_str().unwrap_or_default();
        let mut push = |field: String, v: &Value| {
            if let Some(v) = v.as_str().filter(|v| v.starts_with(PREFIX)) {
                out.push((field, v.to_string(), Owner::Provider(name.to_string())));
            }
        };
        push(format!("providers[{i}].api_key"), &p["api_key"]);
        for (j, k) in p["api_keys"].as_array().into_iter().flatten().enumerate() {
            push(format!("providers[{i}].api_keys[{j}]"), k);
        }
    }
    for (i, c) in list("consumers").iter().enumerate() {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        if let Some(v) = c["signing_secret"]
            .as_str()
            .filter(|v| v.starts_with(PREFIX))
        {
            out.push((
                format!("consumers[{i}].signing_secret"),
                v.to_string(),
                Owner::Consumer(name),
            ));
        }
    }
    Ok(out)
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("encrypt") => {
            let masters = masters()?;
            let key = masters.current().ok_or("LLMGW_MASTER_KEY is not set")?;
            let mut plain = Secret::new(String::new());
            std::io::stdin()
                .read_to_string(&mut plain)
                .map_err(|e| format!("cannot read the key from stdin: {e}"))?;
            let plain = Secret::new(plain.trim().to_string());
            if plain.is_empty() {
                return Err("no key on stdin".into());
            }
            let (provider, consumer) = (flag("--provider"), flag("--consumer"));
            let purpose = match (&provider, &consumer) {
                (Some(p), None) => Purpose::Provider(p),
                (None, Some(c)) => Purpose::Consumer(c),
                _ => return Err("give exactly one of --provider NAME, --consumer NAME".into()),
            };
            println!("{}", key.encrypt(&plain, purpose, nonce()?));
            Ok(())
        }
        Some("check") => {
            let path = flag("--config").ok_or("--config is required")?;
            let text = read(&path)?;
            let masters = masters()?;
            let values = sealed_values(&text)?;
            for (field, value, owner) in &values {
                masters
                    .open(value, owner.purpose())
                    .map_err(|e| format!("{path}: {field}: {e}"))?;
            }
            // The whole file must also be a valid gateway file.
            GatewayFile::parse_in(&text, Path::new(&path).parent().unwrap_or(Path::new(".")))
                .map_err(|e| format!("{path}: {e}"))?;
            eprintln!("{path}: ok ({} encrypted values open)", values.len());
            Ok(())
        }
        Some("rotate") => {
            let path = flag("--config").ok_or("--config is required")?;
            let mut text = read(&path)?;
            let masters = masters()?;
            let key = masters.current().ok_or("LLMGW_MASTER_KEY is not set")?;
            let values = sealed_values(&text)?;
            for (field, value, owner) in &values {
                let purpose = owner.purpose();
                let plain = masters
                    .open(value, purpose)
                    .map_err(|e| format!("{path}: {field}: {e}"))?;
                // Ciphertexts are unique (random nonces): replacing the text
                // keeps the file's comments and layout.
                text = text.replace(value.as_str(), &key.encrypt(&plain, purpose, nonce()?));
            }
            let tmp = format!("{path}.tmp");
            std::fs::write(&tmp, &text)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("cannot write {path}: {e}"))?;
            eprintln!(
                "{path}: {} values re-encrypted under LLMGW_MASTER_KEY",
                values.len()
            );
            Ok(())
        }
        _ => Err(String::new()),
    }
}
