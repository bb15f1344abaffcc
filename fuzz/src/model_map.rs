//! `model_map`: `route_select::ModelMap` compiled from fuzzed entries, then
//! asked to resolve client model names.
//!
//! Input: text, one item per line (fields separated by TAB):
//!
//! ```text
//! a<TAB>alias<TAB>to[<TAB>model]     an alias entry
//! p<TAB>prefix<TAB>to[<TAB>model]    a prefix entry
//! r<TAB>regex<TAB>to[<TAB>model]     a regex entry
//! x<TAB>alias<TAB>prefix<TAB>to      an entry with two matchers (an error)
//! =name                              one more configured model (pool)
//! ?name                              a client model name to resolve
//! ```
//!
//! Configured models are `pool`, `alt` and `m` plus the `=` lines. Besides
//! the `?` names, each entry's own text (and variants of it) is resolved.
//! Unknown lines are ignored, so any bytes are an input.
//!
//! Checks: no panic; a compiled map resolves every name to a configured
//! model, with an upstream model (if any) that is 1 to 256 characters
//! without control characters; and it resolves exactly like a plain
//! first-match scan in config order, written here from the module's
//! documentation (the reference). Time per resolution is bounded by the
//! harness's `-timeout`.

use llm_gateway::route_select::{MapEntry, ModelMap, MAX_NAME_LEN};
use regex_lite::{Regex, RegexBuilder};

const MODELS: [&str; 3] = ["pool", "alt", "m"];

pub fn model_map(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut entries = Vec::new();
    let mut models: Vec<String> = MODELS.iter().map(|m| m.to_string()).collect();
    let mut names: Vec<String> = vec![String::new(), "x".repeat(MAX_NAME_LEN + 1)];
    for line in text.split('\n') {
        let mut chars = line.chars();
        let Some(kind) = chars.next() else { continue };
        let rest = chars.as_str();
        let f: Vec<&str> = rest.split('\t').collect();
        let get = |i: usize| f.get(i).map(|s| s.to_string());
        let entry = match kind {
            'a' | 'p' | 'r' => {
                let matcher = get(1).unwrap_or_default();
                let mut e = MapEntry {
                    to: get(2).unwrap_or_default(),
                    model: get(3),
                    ..MapEntry::default()
                };
                match kind {
                    'a' => e.alias = Some(matcher),
                    'p' => e.prefix = Some(matcher),
                    _ => e.regex = Some(matcher),
                }
                e
            }
            'x' => MapEntry {
                alias: get(1),
                prefix: get(2),
                to: get(3).unwrap_or_default(),
                ..MapEntry::default()
            },
            '=' => {
                models.push(rest.to_string());
                continue;
            }
            '?' => {
                names.push(rest.to_string());
                continue;
            }
            _ => continue,
        };
        for s in [&entry.alias, &entry.prefix, &entry.regex]
            .into_iter()
            .flatten()
        {
            names.push(s.clone());
            names.push(format!("{s}-x"));
            let mut shorter = s.clone();
            shorter.pop();
            names.push(shorter);
        }
        entries.push(entry);
    }
    if entries.len() > 64 || names.len() > 512 {
        return; // keep one execution small
    }
    let is_model = |n: &str| models.iter().any(|m| m == n);
    let map = match ModelMap::compile(&entries, &is_model) {
        Ok(map) => map,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert_eq!(map.len(), entries.len());
    let reference = Reference::new(&entries);
    for name in &names {
        let got = map.resolve(name);
        if let Some(r) = &got {
            assert!(
                is_model(r.pool),
                "resolved '{name}' to unknown pool '{}'",
                r.pool
            );
            if let Some(m) = &r.upstream_model {
                assert!(
                    usable(m),
                    "resolved '{name}' to unusable upstream model {m:?}"
                );
            }
        }
        let got = got.map(|r| (r.pool.to_string(), r.upstream_model));
        let want = reference.resolve(name);
        assert_eq!(
            got, want,
            "model_map resolves {name:?} unlike a first-match scan\nentries: {entries:#?}"
        );
    }
}

fn usable(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME_LEN && !s.chars().any(char::is_control)
}

/// A first-match scan over the entries in config order, as the module
/// documents: an entry matches when its matcher does and its expansion (if
/// any) is usable; otherwise the next entry is tried. Only built for maps
/// that compiled, so patterns and templates are known valid.
struct Reference<'a> {
    entries: Vec<(&'a MapEntry, Option<Regex>)>,
}

impl<'a> Reference<'a> {
    fn new(entries: &'a [MapEntry]) -> Self {
        let entries = entries
            .iter()
            .map(|e| {
                // The limits `route_select::mapping` compiles with.
                let re = e.regex.as_deref().map(|r| {
                    RegexBuilder::new(r)
                        .size_limit(256 * 1024)
                        .nest_limit(64)
                        .build()
                        .expect("a regex the map compiled")
                });
                (e, re)
            })
            .collect();
        Self { entries }
    }

    fn resolve(&self, name: &str) -> Option<(String, Option<String>)> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return None;
        }
        for (e, re) in &self.entries {
            let upstream = if let Some(a) = &e.alias {
                if a != name {
                    continue;
                }
                e.model
                    .as_deref()
                    .map(|t| expand(t, &|g| (g == 0).then_some(name), &[]))
            } else if let Some(p) = &e.prefix {
                let Some(rest) = name.strip_prefix(p.as_str()) else {
                    continue;
                };
                e.model.as_deref().map(|t| {
                    expand(
                        t,
                        &|g| match g {
                            0 => Some(name),
                            1 => Some(rest),
                            _ => None,
                        },
                        &[],
                    )
                })
            } else {
                let re = re.as_ref().expect("a regex entry");
                let Some(caps) = re.captures(name) else {
                    continue;
                };
                let names: Vec<(&str, usize)> = re
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| n.map(|n| (n, i)))
                    .collect();
                e.model
                    .as_deref()
                    .map(|t| expand(t, &|g| caps.get(g).map(|m| m.as_str()), &names))
            };
            match upstream {
                Some(m) if !usable(&m) => continue,
                upstream => return Some((e.to.clone(), upstream)),
            }
        }
        None
    }
}

/// `$$`, `$N` (longest digit run), `${N}`, `${name}`.
fn expand<'h>(
    template: &str,
    group: &dyn Fn(usize) -> Option<&'h str>,
    names: &[(&str, usize)],
) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (reference, next) = if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').expect("validated template");
            (&r[..end], &r[end + 1..])
        } else {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            (&after[..digits], &after[digits..])
        };
        let g = match reference.parse::<usize>() {
            Ok(g) if reference.bytes().all(|b| b.is_ascii_digit()) => g,
            _ => names
                .iter()
                .find(|(n, _)| *n == reference)
                .map(|&(_, g)| g)
                .expect("validated group name"),
        };
        out.push_str(group(g).unwrap_or(""));
        rest = next;
    }
    out.push_str(rest);
    out
}
