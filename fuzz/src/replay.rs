//! Replays the committed inputs of every target through its check: the
//! minimized corpus (`corpus/<target>/`) and the seeds (`seeds/<target>/`).
//! `make fuzz-replay` runs this; it needs only cargo.

use crate::TARGETS;
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["corpus", "seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable corpus directory").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, check) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target of that name");
    let files = inputs(target);
    assert!(!files.is_empty(), "no corpus or seeds for {target}");
    for path in &files {
        let data = std::fs::read(path).expect("readable input");
        let result = std::panic::catch_unwind(|| check(&data));
        if let Err(panic) = result {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("{target}: {} fails: {why}", path.display());
        }
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in TARGETS {
                assert!(tested.contains(name), "no replay test for {name}");
            }
        }
    };
}

replay_tests!(
    sse_framer,
    stream_anthropic,
    stream_bedrock,
    stream_ernie,
    stream_gemini,
    stream_openai,
    pass_stream,
    request_openai,
    request_anthropic,
    request_responses,
    responses_decode,
    model_splice,
    model_map,
    config,
    guard_stream,
    eventstream,
);

/// `known-bugs/<target>/`: reproducers of bugs found in `src/` and not yet
/// fixed. They are not part of the replay (it would fail); this test,
/// run with `-- --ignored`, checks that each still fails, and tells when one
/// passes so it can move to `corpus/<target>/`.
#[test]
#[ignore = "reproducers of open src/ bugs: run with --ignored"]
fn known_bugs_still_fail() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("known-bugs");
    let mut fixed = Vec::new();
    for (target, check) in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory").path();
            let data = std::fs::read(&path).expect("readable input");
            match std::panic::catch_unwind(|| check(&data)) {
                Err(_) => eprintln!("still fails: {}", path.display()),
                Ok(()) => fixed.push(path.display().to_string()),
            }
        }
    }
    assert!(
        fixed.is_empty(),
        "these pass now; move them to corpus/<target>/: {fixed:?}"
    );
}
