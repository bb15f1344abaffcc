//! Writes a rendered configuration into the directory Envoy watches: each
//! file atomically (a temporary file renamed over it, the move Envoy reacts
//! to), only when its content changed, in an order where every change is
//! safe on its own.

use crate::envoy;
use crate::gateway_file::GatewayFile;
use crate::xds::{self, Bundle};
use llm_gateway::consumers::sha256;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long clusters a new configuration dropped stay: requests the old
/// routing sent before every worker switched still find them.
const CLUSTER_GRACE: Duration = Duration::from_millis(1500);

/// What one apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Files written (changed), in order.
    pub written: Vec<String>,
    /// Clusters removed after the grace period.
    pub removed_clusters: Vec<String>,
    /// The bootstrap differs from the one Envoy started with (admin
    /// address, node): that part needs a restart.
    pub bootstrap_changed: bool,
}

/// Writes `text` to `path` atomically when it differs; returns whether it
/// was written. Files holding keys are readable by the owner only.
fn write_if_changed(path: &Path, text: &str, private: bool) -> Result<bool, String> {
    if fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(false);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    {
        use std::io::Write;
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        let mut f = opts.open(&tmp).map_err(fail)?;
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    fs::rename(&tmp, path).map_err(fail)?;
    Ok(true)
}

/// Copies the filter into `dir` under a name made from its content, so a
/// new build is a new path in the configuration (Envoy loads the new code)
/// and an unchanged one keeps its VM.
pub fn stage_wasm(dir: &Path, wasm: &Path) -> Result<PathBuf, String> {
    let code = fs::read(wasm).map_err(|e| format!("cannot read {}: {e}", wasm.display()))?;
    let digest: String = sha256(&code)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let staged = dir.join(format!("llm_gateway-{digest}.wasm"));
    if !staged.exists() {
        let tmp = dir.join(format!(".llm_gateway-{digest}.wasm.tmp"));
        fs::write(&tmp, &code).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        fs::rename(&tmp, &staged).map_err(|e| format!("cannot write {}: {e}", staged.display()))?;
    }
    Ok(staged)
}

/// The `.wasm` files an ECDS file names.
fn code_files(resources: &[Value]) -> BTreeSet<String> {
    resources
        .iter()
        .filter_map(|r| {
            r["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"].as_str()
        })
        .map(String::from)
        .collect()
}

/// Renders `gw` into `dir` (created if missing) with the filter at `wasm`.
pub fn apply(dir: &Path, gw: &GatewayFile, wasm: &Path) -> Result<Applied, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dir = fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let staged = stage_wasm(&dir, wasm)?;
    let bootstrap = envoy::render_with(gw, &staged.to_string_lossy(), true);
    let Bundle {
        bootstrap,
        resources,
    } = xds::split(bootstrap, &dir)?;
    let mut applied = Applied::default();

    let ecds_main = dir.join(xds::ecds_file(envoy::PLUGIN_NAME));
    let previous_code = code_files(&xds::read_resources(&ecds_main));

    // Clusters the new configuration drops are kept until routes and filter
    // no longer name them.
    let cds_path = dir.join(xds::CDS);
    let mut leaving = Vec::new();
    for (file, list) in &resources {
        let path = dir.join(file);
        let mut list = list.clone();
        if file == xds::CDS {
            let names: BTreeSet<String> = list
                .iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect();
            for old in xds::read_resources(&path) {
                if let Some(name) = old["name"].as_str() {
                    if !names.contains(name) {
                        leaving.push(name.to_string());
                        list.push(old.clone());
                    }
                }
            }
        }
        let private = file.starts_with("ecds-");
        if write_if_changed(&path, &xds::file_text(&list), private)? {
            applied.written.push(file.clone());
        }
    }
    if !leaving.is_empty() {
        std::thread::sleep(CLUSTER_GRACE);
        let clusters = resources
            .iter()
            .find(|(f, _)| f == xds::CDS)
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        write_if_changed(&cds_path, &xds::file_text(&clusters), false)?;
        applied.removed_clusters = leaving;
    }

    let yaml = serde_yaml::to_string(&bootstrap).map_err(|e| format!("cannot write YAML: {e}"))?;
    let text = format!("{}{yaml}", crate::HEADER);
    let boot_path = dir.join(xds::BOOTSTRAP);
    let existed = boot_path.exists();
    applied.bootstrap_changed = write_if_changed(&boot_path, &text, false)? && existed;

    // Earlier builds of the filter, except the one just replaced (its VMs
    // may still be starting on a worker), are no longer named anywhere.
    let keep: BTreeSet<String> = previous_code
        .into_iter()
        .chain([staged.to_string_lossy().into_owned()])
        .collect();
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let is_code = name.starts_with("llm_gateway-") && name.ends_with(".wasm");
            if is_code && !keep.contains(path.to_string_lossy().as_ref()) {
                let _ = fs::remove_file(&path);
            }
        }
    }
    Ok(applied)
}
