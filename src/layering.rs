//! Checks the layering of `lib.rs`'s doc against the source: a module may
//! use modules of its own layer and of the layers below, never above.

use std::fs;
use std::path::Path;

/// Bottom to top, as `lib.rs` documents them.
const LAYERS: &[&[&str]] = &[
    &[
        "error", "bytes", "redact", "secrets", "host", "state", "testing", "calendar",
    ],
    &["wire", "content_coding", "header_pairs"],
    &["providers"],
    &[
        "admission",
        "ratelimit",
        "health",
        "consumers",
        "replay",
        "pricing",
        "route_select",
        "metrics",
        "guardrails",
        "cache",
        "tokens",
    ],
    &["config"],
    &["flow", "telemetry"],
    &["wasm"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The code of a non-test file: comments dropped, cut at its inline test
/// module (always the last item).
fn code(text: &str) -> String {
    let end = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names as `crate::<module>`.
fn crate_refs(code: &str) -> Vec<&str> {
    code.match_indices("crate::")
        .map(|(i, m)| {
            let rest = &code[i + m.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_its_layer_and_those_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut violations = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&src).unwrap();
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str().unwrap()).collect();
        let is_test = parts.contains(&"tests") || parts.last() == Some(&"tests.rs");
        let top = parts[0].trim_end_matches(".rs");
        if is_test || top == "lib" || top == "layering" {
            continue;
        }
        let own = layer(top).unwrap_or_else(|| panic!("{top} is in no layer"));
        let text = fs::read_to_string(&path).unwrap();
        for dep in crate_refs(&code(&text)) {
            let theirs = layer(dep).unwrap_or_else(|| panic!("{dep} is in no layer"));
            if dep != top && theirs > own {
                violations.push(format!("{} uses crate::{dep}", rel.display()));
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(violations.is_empty(), "{violations:#?}");
}
