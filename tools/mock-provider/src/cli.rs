//! Command-line parsing (hand-rolled to keep the dependency list short).

use std::net::SocketAddr;

use crate::google::{ServiceAccount, DEFAULT_TOKEN_TTL};
use crate::sigv4::Credential;

pub const USAGE: &str = "\
Usage: mock-provider [--listen ADDR] [--api-key KEY] [--no-record] [--threads N]
                     [--compress] [--max-requests-per-connection N]
                     [--aws-credentials KEY_ID:SECRET[:SESSION_TOKEN]]...
                     [--ernie-client ID:SECRET]... [--ernie-token-ttl SECONDS]
                     [--google-service-account EMAIL:PUBLIC_KEY_PEM_FILE]...
                     [--google-token-ttl SECONDS]

Options:
  --listen ADDR   address to bind (default 127.0.0.1:18080; port 0 picks a free port)
  --api-key KEY   require exactly this key on every provider API
                  (default: accept any non-empty key; OpenAI-compatible paths also
                  accept requests without a key)
  --no-record     do not record requests (GET /__mock/requests then returns [])
  --threads N     number of tokio worker threads (default: number of CPUs)
  --compress      compress answers per the request's accept-encoding, as real
                  providers do (x-mock-encoding: auto for every request)
  --max-requests-per-connection N
                  close a keep-alive connection after its Nth response
                  (no connection: close header; an idle close)
  --aws-credentials KEY_ID:SECRET[:SESSION_TOKEN]
                  add an AWS credential the Bedrock API accepts (SigV4), besides
                  the built-in ones; repeatable (a repeated KEY_ID replaces it)
  --ernie-client ID:SECRET
                  add a Baidu OAuth client (API Key:Secret Key) that
                  /oauth/2.0/token accepts, besides the built-in
                  mock-ernie-ak:mock-ernie-sk; repeatable (a repeated ID replaces it)
  --ernie-token-ttl SECONDS
                  lifetime of the ERNIE access tokens issued (default 2592000
                  = 30 days; at least 1)
  --google-service-account EMAIL:PUBLIC_KEY_PEM_FILE
                  add a Google service account whose RS256 JWTs the token
                  endpoint (POST /token) accepts, verified with the RSA public
                  key in that PEM file, besides the built-in
                  gateway@llmgw-test.iam.gserviceaccount.com; repeatable
                  (a repeated EMAIL replaces it)
  --google-token-ttl SECONDS
                  lifetime of the Google access tokens issued by /token and
                  the metadata server (default 3599; at least 1)
  -h, --help      print this help

Once listening, prints `mock-provider listening on IP:PORT` on stdout.
";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub api_key: Option<String>,
    pub record: bool,
    pub threads: Option<usize>,
    pub compress: bool,
    pub max_requests_per_connection: Option<u64>,
    /// `--aws-credentials`, in the order given.
    pub aws_credentials: Vec<Credential>,
    /// `--ernie-client ID:SECRET`, in the order given.
    pub ernie_clients: Vec<(String, String)>,
    /// `--ernie-token-ttl`, in seconds.
    pub ernie_token_ttl: u64,
    /// `--google-service-account`, in the order given (keys already read).
    pub google_accounts: Vec<ServiceAccount>,
    /// `--google-token-ttl`, in seconds.
    pub google_token_ttl: u64,
}

/// Default lifetime of an ERNIE access token (30 days, as Baidu issues them).
pub const DEFAULT_ERNIE_TOKEN_TTL: u64 = 2_592_000;

#[derive(Debug)]
pub enum Parsed {
    Run(Config),
    Help,
}

pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut listen = String::from("127.0.0.1:18080");
    let mut api_key = None;
    let mut record = true;
    let mut threads = None;
    let mut compress = false;
    let mut max_requests_per_connection = None;
    let mut aws_credentials = Vec::new();
    let mut ernie_clients = Vec::new();
    let mut ernie_token_ttl = DEFAULT_ERNIE_TOKEN_TTL;
    let mut google_accounts = Vec::new();
    let mut google_token_ttl = DEFAULT_TOKEN_TTL;

    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        // Accept both `--flag value` and `--flag=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = |flag: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match name {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--listen" => listen = value("--listen")?,
            "--api-key" => {
                let key = value("--api-key")?;
                if key.is_empty() {
                    return Err("--api-key must not be empty".into());
                }
                api_key = Some(key);
            }
            "--no-record" => record = false,
            "--threads" => {
                let v = value("--threads")?;
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("--threads: not a number: {v}"))?;
                if n == 0 {
                    return Err("--threads must be at least 1".into());
                }
                threads = Some(n);
            }
            "--compress" => compress = true,
            "--max-requests-per-connection" => {
                let v = value("--max-requests-per-connection")?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--max-requests-per-connection: not a number: {v}"))?;
                if n == 0 {
                    return Err("--max-requests-per-connection must be at least 1".into());
                }
                max_requests_per_connection = Some(n);
            }
            "--aws-credentials" => {
                aws_credentials.push(parse_aws_credential(&value("--aws-credentials")?)?)
            }
            "--ernie-client" => ernie_clients.push(parse_ernie_client(&value("--ernie-client")?)?),
            "--ernie-token-ttl" => {
                let v = value("--ernie-token-ttl")?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--ernie-token-ttl: not a number: {v}"))?;
                if n == 0 {
                    return Err("--ernie-token-ttl must be at least 1".into());
                }
                ernie_token_ttl = n;
            }
            "--google-service-account" => {
                google_accounts.push(parse_google_account(&value("--google-service-account")?)?)
            }
            "--google-token-ttl" => {
                let v = value("--google-token-ttl")?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--google-token-ttl: not a number: {v}"))?;
                if n == 0 {
                    return Err("--google-token-ttl must be at least 1".into());
                }
                google_token_ttl = n;
            }
            other => return Err(format!("unknown argument: {other}")),
        }
        i += 1;
    }

    let listen: SocketAddr = listen
        .parse()
        .map_err(|_| format!("--listen: not an IP:PORT address: {listen}"))?;
    Ok(Parsed::Run(Config {
        listen,
        api_key,
        record,
        threads,
        compress,
        max_requests_per_connection,
        aws_credentials,
        ernie_clients,
        ernie_token_ttl,
        google_accounts,
        google_token_ttl,
    }))
}

/// `EMAIL:PUBLIC_KEY_PEM_FILE`: reads and parses the key now, so a bad file
/// is a bad argument.
fn parse_google_account(v: &str) -> Result<ServiceAccount, String> {
    let (email, file) = match v.split_once(':') {
        Some((e, f)) if !e.is_empty() && !f.is_empty() => (e, f),
        _ => {
            return Err(format!(
                "--google-service-account: expected EMAIL:PUBLIC_KEY_PEM_FILE, got {v:?}"
            ))
        }
    };
    let pem = std::fs::read_to_string(file)
        .map_err(|e| format!("--google-service-account: cannot read {file}: {e}"))?;
    ServiceAccount::new(email, &pem).map_err(|e| format!("--google-service-account: {e}"))
}

/// `ID:SECRET` (the secret may itself contain `:`).
fn parse_ernie_client(v: &str) -> Result<(String, String), String> {
    match v.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok((id.to_string(), secret.to_string()))
        }
        _ => Err(format!("--ernie-client: expected ID:SECRET, got {v:?}")),
    }
}

/// `KEY_ID:SECRET[:SESSION_TOKEN]` (the token may itself contain `:`).
fn parse_aws_credential(v: &str) -> Result<Credential, String> {
    let mut parts = v.splitn(3, ':');
    let key_id = parts.next().unwrap_or_default();
    let secret = parts.next().unwrap_or_default();
    let token = parts.next();
    if key_id.is_empty() || secret.is_empty() || token.is_some_and(str::is_empty) {
        return Err(format!(
            "--aws-credentials: expected KEY_ID:SECRET[:SESSION_TOKEN], got {v:?}"
        ));
    }
    if key_id.contains('/') {
        return Err(format!(
            "--aws-credentials: a key id cannot contain '/': {key_id:?}"
        ));
    }
    Ok(Credential {
        key_id: key_id.to_string(),
        secret: secret.to_string(),
        session_token: token.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/vertex/public-key.pem"
    );

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_all_flags() {
        let Ok(Parsed::Run(c)) = p(&[
            "--listen",
            "127.0.0.1:0",
            "--api-key=k",
            "--no-record",
            "--threads",
            "3",
            "--compress",
            "--max-requests-per-connection=2",
            "--aws-credentials",
            "AKIDX:sec/ret+1",
            "--aws-credentials=ASIAX:s:tok:en",
            "--ernie-client",
            "ak1:sk:1",
            "--ernie-client=ak2:sk2",
            "--ernie-token-ttl",
            "5",
            "--google-service-account",
            &format!("other@p.iam.gserviceaccount.com:{PEM}"),
            "--google-token-ttl=7",
        ]) else {
            panic!("expected a config")
        };
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        assert_eq!(c.api_key.as_deref(), Some("k"));
        assert!(!c.record);
        assert_eq!(c.threads, Some(3));
        assert!(c.compress);
        assert_eq!(c.max_requests_per_connection, Some(2));
        assert_eq!(c.aws_credentials.len(), 2);
        assert_eq!(c.aws_credentials[0].key_id, "AKIDX");
        assert_eq!(c.aws_credentials[0].secret, "sec/ret+1");
        assert_eq!(c.aws_credentials[0].session_token, None);
        assert_eq!(c.aws_credentials[1].secret, "s");
        assert_eq!(
            c.aws_credentials[1].session_token.as_deref(),
            Some("tok:en")
        );
        assert_eq!(
            c.ernie_clients,
            vec![
                ("ak1".to_string(), "sk:1".to_string()),
                ("ak2".to_string(), "sk2".to_string())
            ]
        );
        assert_eq!(c.ernie_token_ttl, 5);
        assert_eq!(c.google_accounts.len(), 1);
        assert_eq!(
            c.google_accounts[0].email,
            "other@p.iam.gserviceaccount.com"
        );
        assert_eq!(c.google_token_ttl, 7);
        let Ok(Parsed::Run(c)) = p(&[]) else {
            panic!("expected a config")
        };
        assert_eq!(c.ernie_token_ttl, DEFAULT_ERNIE_TOKEN_TTL);
        assert!(c.ernie_clients.is_empty());
        assert_eq!(c.google_token_ttl, DEFAULT_TOKEN_TTL);
        assert!(c.google_accounts.is_empty());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(p(&["--listen", "nope"]).is_err());
        assert!(p(&["--threads", "0"]).is_err());
        assert!(p(&["--max-requests-per-connection", "0"]).is_err());
        assert!(p(&["--max-requests-per-connection", "x"]).is_err());
        assert!(p(&["--api-key"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&["--aws-credentials", "AKID"]).is_err());
        assert!(p(&["--aws-credentials", "AKID:"]).is_err());
        assert!(p(&["--aws-credentials", ":secret"]).is_err());
        assert!(p(&["--aws-credentials", "AKID:secret:"]).is_err());
        assert!(p(&["--ernie-client", "ak"]).is_err());
        assert!(p(&["--ernie-client", "ak:"]).is_err());
        assert!(p(&["--ernie-client", ":sk"]).is_err());
        assert!(p(&["--ernie-token-ttl", "0"]).is_err());
        assert!(p(&["--ernie-token-ttl", "-1"]).is_err());
        assert!(p(&["--ernie-token-ttl", "x"]).is_err());
        assert!(p(&["--google-token-ttl", "0"]).is_err());
        assert!(p(&["--google-token-ttl", "x"]).is_err());
        assert!(p(&["--google-service-account", "a@b"]).is_err());
        assert!(p(&["--google-service-account", &format!(":{PEM}")]).is_err());
        assert!(p(&["--google-service-account", "a@b:/nonexistent/key.pem"]).is_err());
        // A file that is not a PEM public key.
        assert!(p(&["--google-service-account", concat!("a@b:", file!())]).is_err());
        assert!(matches!(p(&["--help"]), Ok(Parsed::Help)));
    }
}
