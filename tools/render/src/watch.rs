//! `--watch`: re-renders into the watched directory whenever the gateway
//! file, a `file:` key or the filter's `.wasm` changes, one line per change.
//!
//! It polls instead of using inotify: a Kubernetes ConfigMap or Secret
//! volume changes by swapping its `..data` symlink, which a watch on the
//! file itself misses, while reading through the path sees the new target.
//! What counts as applied is exactly the bytes that were parsed, so a save
//! landing while a change is applied is seen by the next poll, never lost.

use crate::apply::{apply, Applied};
use crate::gateway_file::GatewayFile;
use llm_gateway::consumers::sha256;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a changed file must stay unchanged before it is read.
const SETTLE: Duration = Duration::from_millis(100);

/// The inputs as of one moment: the gateway file's and the key files'
/// digests, and the `.wasm`'s size, modification time and inode.
#[derive(PartialEq, Eq, Clone, Debug)]
pub struct Seen {
    config: Vec<u8>,
    keys: Vec<(PathBuf, Vec<u8>)>,
    wasm: Vec<u8>,
}

fn digest_of(path: &Path) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(bytes) => sha256(&bytes).to_vec(),
        Err(e) => e.to_string().into_bytes(),
    }
}

fn wasm_stamp(wasm: &Path) -> Vec<u8> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(wasm) {
        Ok(m) => [m.len() as i64, m.mtime(), m.mtime_nsec(), m.ino() as i64]
            .iter()
            .flat_map(|n| n.to_le_bytes())
            .collect(),
        Err(e) => e.to_string().into_bytes(),
    }
}

impl Seen {
    /// The inputs as they are on disk now, for the key files `like` names.
    fn on_disk(config: &Path, like: &Seen, wasm: &Path) -> Seen {
        Seen {
            config: digest_of(config),
            keys: like
                .keys
                .iter()
                .map(|(p, _)| (p.clone(), digest_of(p)))
                .collect(),
            wasm: wasm_stamp(wasm),
        }
    }
}

/// Reads and parses the gateway file once (relative `file:` keys from its
/// directory); returns what was read, parsed or not.
pub fn load(
    config: &Path,
    wasm: &Path,
    before: Option<&Seen>,
) -> (Seen, Result<GatewayFile, String>) {
    let stamp = wasm_stamp(wasm);
    let bytes = match std::fs::read(config) {
        Ok(b) => b,
        Err(e) => {
            let seen = Seen {
                config: e.to_string().into_bytes(),
                keys: before.map(|b| b.keys.clone()).unwrap_or_default(),
                wasm: stamp,
            };
            return (seen, Err(format!("cannot read {}: {e}", config.display())));
        }
    };
    let base = config.parent().unwrap_or(Path::new("."));
    let parsed = String::from_utf8(bytes.clone())
        .map_err(|_| format!("{}: not UTF-8 text", config.display()))
        .and_then(|text| {
            GatewayFile::parse_in(&text, base).map_err(|e| format!("{}: {e}", config.display()))
        });
    let keys = match &parsed {
        Ok(gw) => gw
            .key_files
            .iter()
            .map(|(p, d)| (p.clone(), d.to_vec()))
            .collect(),
        // Unparsed: the key files of the last good file still matter.
        Err(_) => before
            .map(|b| Seen::on_disk(config, b, wasm).keys)
            .unwrap_or_default(),
    };
    let seen = Seen {
        config: sha256(&bytes).to_vec(),
        keys,
        wasm: stamp,
    };
    (seen, parsed)
}

/// One line about an apply.
pub fn describe(config: &Path, gw: &GatewayFile, a: &Applied) -> String {
    let what = format!(
        "{}: {} providers, {} models",
        config.display(),
        gw.gateway.providers.len(),
        gw.gateway.models.len()
    );
    let mut line = if a.written.is_empty() {
        format!("unchanged {what} (nothing to apply)")
    } else {
        format!("applied {what} (wrote {})", a.written.join(", "))
    };
    if !a.removed_clusters.is_empty() {
        line += &format!("; removed clusters {}", a.removed_clusters.join(", "));
    }
    if a.bootstrap_changed {
        line += "; the admin section changed: restart Envoy for it to take effect";
    }
    line
}

/// Applies every change until killed. `known` is what the caller's first
/// apply read.
pub fn watch(config: &Path, wasm: &Path, dir: &Path, interval: Duration, mut known: Seen) {
    loop {
        std::thread::sleep(interval);
        let now = Seen::on_disk(config, &known, wasm);
        if now == known {
            continue;
        }
        // A file still being written (an editor saving in place) is not
        // read half done: the change counts once it holds still.
        std::thread::sleep(SETTLE);
        if Seen::on_disk(config, &known, wasm) != now {
            continue;
        }
        let (seen, parsed) = load(config, wasm, Some(&known));
        known = seen;
        match parsed.and_then(|gw| apply(dir, &gw, wasm).map(|a| (gw, a))) {
            Ok((gw, a)) => println!("llm-gateway-render: {}", describe(config, &gw, &a)),
            Err(e) => {
                println!("llm-gateway-render: refused {e} (Envoy keeps the previous configuration)")
            }
        }
    }
}
