//! `model_map`: maps the model name a client sends to a configured model
//! (pool) and optionally to the upstream model name to send.
//!
//! Entries are tried in config order; the first that matches wins. Each has
//! exactly one matcher:
//!
//! | matcher | matches | groups for `model` |
//! |---|---|---|
//! | `alias: gpt4` | exactly `gpt4` | `$0` the name |
//! | `prefix: "claude-"` | names starting with `claude-` (case sensitive) | `$0` the name, `$1` the rest after the prefix |
//! | `regex: "^qwen-(\\w+)$"` | names the regex finds a match in | `$0` the whole match, `$N`, `${N}`, `${name}` |
//!
//! The optional `model` is a template for the upstream model name: `$N`
//! (the longest run of digits), `${N}` or `${name}` insert a group (a group
//! that did not take part in the match inserts nothing), `$$` is a literal
//! `$`; any other `$` is a config error, and so is a reference to a group
//! the matcher does not have. Without `model`, the pool's targets send their
//! own configured upstream models.
//!
//! Regexes use `regex-lite` syntax: unanchored unless written with `^…$`,
//! and `\w`, `\d`, `\s` are ASCII classes. They are compiled once, here.
//!
//! An entry whose expansion comes out empty, longer than
//! [`MAX_NAME_LEN`], or with a control character does not match (the next
//! entry is tried). Client names longer than [`MAX_NAME_LEN`] match
//! nothing, which also bounds the regex work per request.
//!
//! Exact configured model names are resolved by the caller before the map
//! and need no entry; an alias equal to one is refused, as is an entry an
//! earlier one always shadows (when that can be decided at compile time).

use super::config::MapEntry;
use super::MAX_NAME_LEN;
use crate::error::ConfigError;
use hashbrown::HashMap;
use regex_lite::{Regex, RegexBuilder};

/// Longest `regex` pattern accepted.
const MAX_PATTERN_LEN: usize = 1024;
/// Compiled-program size limit for one regex (regex-lite's default is
/// 10 MiB; a model-name pattern needs a tiny fraction of this).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
const REGEX_NEST_LIMIT: u32 = 64;

/// Where a mapped request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// The configured model (pool) name.
    pub pool: &'a str,
    /// Upstream model to send instead of the targets' configured ones.
    pub upstream_model: Option<String>,
}

/// A compiled `model_map`.
#[derive(Debug, Clone, Default)]
pub struct ModelMap {
    entries: Vec<Entry>,
    /// Alias → its position in `entries`, for a lookup without a scan.
    aliases: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
struct Entry {
    matcher: Matcher,
    pool: String,
    model: Option<Template>,
}

#[derive(Debug, Clone)]
enum Matcher {
    Alias(String),
    Prefix(String),
    Regex(Regex),
}

/// A parsed `model` template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
}

/// The capture groups a matcher offers to its template.
struct Groups<'a> {
    count: usize,
    /// `(name, index)` of named groups.
    names: Vec<(&'a str, usize)>,
    /// How the groups are described in errors.
    what: &'static str,
}

impl ModelMap {
    /// Validates `model_map` (field paths `model_map[i].…`). `is_model` says
    /// whether a name is a configured model (pool).
    pub fn compile(
        entries: &[MapEntry],
        is_model: &dyn Fn(&str) -> bool,
    ) -> Result<Self, ConfigError> {
        let mut map = Self::default();
        for (i, e) in entries.iter().enumerate() {
            let field = format!("model_map[{i}]");
            let entry = compile_entry(e, &field, is_model)?;
            map.check_reachable(&entry, &field)?;
            if let Matcher::Alias(alias) = &entry.matcher {
                map.aliases.insert(alias.clone(), map.entries.len());
            }
            map.entries.push(entry);
        }
        Ok(map)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The first entry matching `client_model`, in config order.
    pub fn resolve<'a>(&'a self, client_model: &str) -> Option<Resolved<'a>> {
        if client_model.is_empty() || client_model.len() > MAX_NAME_LEN {
            return None;
        }
        // In config order: the one alias that can match (aliases are
        // unique, found without a scan) and every non-alias entry. An entry
        // whose expansion is unusable passes to the next one.
        let alias = self.aliases.get(client_model).copied();
        self.entries
            .iter()
            .enumerate()
            .filter(|&(i, e)| !matches!(e.matcher, Matcher::Alias(_)) || Some(i) == alias)
            .find_map(|(_, e)| e.apply(client_model))
    }

    /// Refuses an entry that an earlier one makes unreachable, when that is
    /// certain: an alias some earlier entry resolves, a duplicate alias, a
    /// prefix within an earlier template-less prefix.
    fn check_reachable(&self, entry: &Entry, field: &str) -> Result<(), ConfigError> {
        let shadow = |j: usize, why: String| {
            Err(ConfigError::new(
                field,
                format!("unreachable: model_map[{j}] {why}"),
            ))
        };
        for (j, earlier) in self.entries.iter().enumerate() {
            match (&entry.matcher, &earlier.matcher) {
                (Matcher::Alias(a), Matcher::Alias(b)) if a == b => {
                    return shadow(j, format!("already maps alias '{a}'"));
                }
                (Matcher::Alias(a), _) if earlier.apply(a).is_some() => {
                    return shadow(j, format!("already matches '{a}'"));
                }
                (Matcher::Prefix(p), Matcher::Prefix(q))
                    if earlier.model.is_none() && p.starts_with(q.as_str()) =>
                {
                    return shadow(j, format!("already matches every name starting with '{q}'"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Entry {
    fn apply(&self, name: &str) -> Option<Resolved<'_>> {
        let upstream_model = match &self.matcher {
            Matcher::Alias(a) => {
                if a != name {
                    return None;
                }
                self.model.as_ref().map(|t| t.expand(|_| Some(name)))
            }
            Matcher::Prefix(p) => {
                let rest = name.strip_prefix(p.as_str())?;
                self.model.as_ref().map(|t| {
                    t.expand(|g| match g {
                        0 => Some(name),
                        1 => Some(rest),
                        _ => None,
                    })
                })
            }
            Matcher::Regex(re) => match &self.model {
                None => {
                    if !re.is_match(name) {
                        return None;
                    }
                    None
                }
                Some(t) => {
                    let caps = re.captures(name)?;
                    Some(t.expand(|g| caps.get(g).map(|m| m.as_str())))
                }
            },
        };
        match upstream_model {
            Some(m) if !usable_name(&m) => None,
            upstream_model => Some(Resolved {
                pool: &self.pool,
                upstream_model,
            }),
        }
    }
}

fn usable_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME_LEN && !s.chars().any(char::is_control)
}

impl Template {
    fn expand<'h>(&self, group: impl Fn(usize) -> Option<&'h str>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Group(g) => out.push_str(group(*g).unwrap_or("")),
            }
        }
        out
    }

    /// Parses `$N`, `${N}`, `${name}`, `$$`, checking every reference
    /// against `groups`.
    fn parse(text: &str, groups: &Groups<'_>) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            let (head, tail) = rest.split_at(at);
            literal.push_str(head);
            // `tail` starts with the '$'.
            let after = tail.get(1..).unwrap_or("");
            let (group, consumed) = if let Some(r) = after.strip_prefix('$') {
                literal.push('$');
                rest = r;
                continue;
            } else if let Some(r) = after.strip_prefix('{') {
                let end = r
                    .find('}')
                    .ok_or_else(|| format!("unclosed '${{' in '{text}'"))?;
                let name = r.get(..end).unwrap_or("");
                (groups.resolve(name)?, end + 2)
            } else {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    return Err(format!(
                        "'$' in '{text}' must be followed by a group number, {{name}} or another '$' (for a literal '$')"
                    ));
                }
                (groups.resolve(after.get(..digits).unwrap_or(""))?, digits)
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Group(group));
            rest = after.get(consumed..).unwrap_or("");
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self(pieces))
    }
}

impl Groups<'_> {
    fn resolve(&self, reference: &str) -> Result<usize, String> {
        if reference.is_empty() {
            return Err("'${}' names no group".into());
        }
        if reference.bytes().all(|b| b.is_ascii_digit()) {
            return match reference.parse::<usize>() {
                Ok(g) if g < self.count => Ok(g),
                _ => Err(format!(
                    "refers to group {reference}, but {} only ${}",
                    self.what,
                    if self.count == 1 {
                        "0".to_string()
                    } else {
                        format!("0 to ${}", self.count.saturating_sub(1))
                    }
                )),
            };
        }
        self.names
            .iter()
            .find(|(n, _)| *n == reference)
            .map(|&(_, g)| g)
            .ok_or_else(|| format!("refers to group '{reference}', which {} lacks", self.what))
    }
}

fn compile_entry(
    e: &MapEntry,
    field: &str,
    is_model: &dyn Fn(&str) -> bool,
) -> Result<Entry, ConfigError> {
    let err = |sub: &str, problem: String| ConfigError::new(format!("{field}.{sub}"), problem);
    let name_ok = |s: &str| !s.is_empty() && s.len() <= MAX_NAME_LEN;
    let (matcher, groups) = match (&e.alias, &e.prefix, &e.regex) {
        (Some(a), None, None) => {
            if !name_ok(a) {
                return Err(err("alias", "must be 1 to 256 characters".into()));
            }
            if is_model(a) {
                return Err(err(
                    "alias",
                    format!(
                        "'{a}' is a configured model; exact model names are resolved before model_map, so this entry could never apply"
                    ),
                ));
            }
            let groups = Groups {
                count: 1,
                names: Vec::new(),
                what: "an alias has",
            };
            (Matcher::Alias(a.clone()), groups)
        }
        (None, Some(p), None) => {
            if !name_ok(p) {
                return Err(err(
                    "prefix",
                    "must be 1 to 256 characters (for a catch-all, use regex: \"^\")".into(),
                ));
            }
            let groups = Groups {
                count: 2,
                names: Vec::new(),
                what: "a prefix has",
            };
            (Matcher::Prefix(p.clone()), groups)
        }
        (None, None, Some(pattern)) => {
            if pattern.len() > MAX_PATTERN_LEN {
                return Err(err(
                    "regex",
                    format!("must be at most {MAX_PATTERN_LEN} characters"),
                ));
            }
            let re = RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .nest_limit(REGEX_NEST_LIMIT)
                .build()
                .map_err(|e| err("regex", format!("'{pattern}' is not a valid regex: {e}")))?;
            let groups = Groups {
                count: re.captures_len(),
                names: Vec::new(),
                what: "the regex has",
            };
            (Matcher::Regex(re), groups)
        }
        _ => {
            return Err(ConfigError::new(
                field,
                "needs exactly one of alias, prefix or regex",
            ))
        }
    };
    let model = match &e.model {
        None => None,
        Some(text) => {
            if !name_ok(text) || text.chars().any(char::is_control) {
                return Err(err(
                    "model",
                    "must be 1 to 256 characters without control characters".into(),
                ));
            }
            let names: Vec<(String, usize)> = match &matcher {
                Matcher::Regex(re) => re
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| n.map(|n| (n.to_string(), i)))
                    .collect(),
                _ => Vec::new(),
            };
            let groups = Groups {
                names: names.iter().map(|(n, i)| (n.as_str(), *i)).collect(),
                ..groups
            };
            Some(Template::parse(text, &groups).map_err(|p| err("model", p))?)
        }
    };
    if !is_model(&e.to) {
        return Err(err(
            "to",
            format!(
                "unknown model '{}'; model_map maps to a model declared under models",
                e.to
            ),
        ));
    }
    Ok(Entry {
        matcher,
        pool: e.to.clone(),
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODELS: &[&str] = &["gpt-4o", "claude-pool", "qwen-pool", "oa-pool", "any"];

    fn is_model(n: &str) -> bool {
        MODELS.contains(&n)
    }

    fn entries(json: &str) -> Vec<MapEntry> {
        serde_json::from_str(json).unwrap()
    }

    fn map(json: &str) -> ModelMap {
        ModelMap::compile(&entries(json), &is_model).unwrap()
    }

    fn err(json: &str) -> ConfigError {
        ModelMap::compile(&entries(json), &is_model).unwrap_err()
    }

    fn resolved<'a>(pool: &'a str, model: Option<&str>) -> Option<Resolved<'a>> {
        Some(Resolved {
            pool,
            upstream_model: model.map(str::to_string),
        })
    }

    #[test]
    fn alias_prefix_and_regex_with_captures() {
        let m = map(r#"[
            {"alias": "gpt4", "to": "gpt-4o"},
            {"prefix": "claude-", "to": "claude-pool"},
            {"prefix": "openai/", "to": "oa-pool", "model": "$1"},
            {"regex": "^qwen-(\\w+)$", "to": "qwen-pool", "model": "qwen-$1"},
            {"regex": "^(?P<family>llama)-(?<size>\\d+)b$", "to": "any", "model": "${family}3:${size}B-$$-${1}x"}
        ]"#);
        assert_eq!(m.len(), 5);
        assert_eq!(m.resolve("gpt4"), resolved("gpt-4o", None));
        assert_eq!(m.resolve("GPT4"), None);
        assert_eq!(
            m.resolve("claude-sonnet-4-5"),
            resolved("claude-pool", None)
        );
        assert_eq!(m.resolve("claude-"), resolved("claude-pool", None));
        assert_eq!(
            m.resolve("openai/gpt-4o"),
            resolved("oa-pool", Some("gpt-4o"))
        );
        assert_eq!(
            m.resolve("qwen-max"),
            resolved("qwen-pool", Some("qwen-max"))
        );
        assert_eq!(m.resolve("qwen-max-x"), None, "anchored, \\w has no '-'");
        assert_eq!(
            m.resolve("llama-70b"),
            resolved("any", Some("llama3:70B-$-llamax"))
        );
        assert_eq!(m.resolve("mistral"), None);
        assert_eq!(m.resolve(""), None);
    }

    #[test]
    fn first_match_in_config_order_wins() {
        let m = map(r#"[
            {"prefix": "qwen-", "to": "any", "model": "first-$1"},
            {"regex": "^qwen-(\\w+)$", "to": "qwen-pool"},
            {"alias": "special", "to": "gpt-4o"},
            {"regex": "^spec", "to": "any"}
        ]"#);
        assert_eq!(m.resolve("qwen-max"), resolved("any", Some("first-max")));
        // The alias comes before the regex that also matches it.
        assert_eq!(m.resolve("special"), resolved("gpt-4o", None));
        assert_eq!(m.resolve("specific"), resolved("any", None));
        // A pattern before an alias that resolves the alias would always beat
        // it, so that alias is refused at compile time (see below); an alias
        // after a pattern that does not cover it is reached by lookup.
        let m = map(r#"[
            {"regex": "^x\\d$", "to": "any"},
            {"alias": "xyz", "to": "gpt-4o"}
        ]"#);
        assert_eq!(m.resolve("x1"), resolved("any", None));
        assert_eq!(m.resolve("xyz"), resolved("gpt-4o", None));
        // An alias whose expansion is unusable (a control character here)
        // passes to the entries after it, as every other entry does
        // (found by the model_map fuzz target).
        let m = map(r#"[
            {"alias": "a\u0001", "to": "any", "model": "$0"},
            {"prefix": "a", "to": "gpt-4o"}
        ]"#);
        assert_eq!(m.resolve("a\u{1}"), resolved("gpt-4o", None));
    }

    #[test]
    fn regex_groups_must_exist() {
        let cases = [
            (
                r#"[{"regex": "^a(b)$", "to": "any", "model": "$2"}]"#,
                "group 2",
            ),
            (
                r#"[{"regex": "^a(b)$", "to": "any", "model": "${x}"}]"#,
                "'x'",
            ),
            (
                r#"[{"regex": "^a$", "to": "any", "model": "$1"}]"#,
                "only $0",
            ),
            (
                r#"[{"prefix": "a", "to": "any", "model": "$2"}]"#,
                "0 to $1",
            ),
            (
                r#"[{"alias": "a", "to": "any", "model": "$1"}]"#,
                "an alias",
            ),
            (
                r#"[{"regex": "^(a)$", "to": "any", "model": "x$"}]"#,
                "followed by",
            ),
            (
                r#"[{"regex": "^(a)$", "to": "any", "model": "x$y"}]"#,
                "followed by",
            ),
            (
                r#"[{"regex": "^(a)$", "to": "any", "model": "${1"}]"#,
                "unclosed",
            ),
            (
                r#"[{"regex": "^(a)$", "to": "any", "model": "${}"}]"#,
                "names no group",
            ),
            (
                r#"[{"regex": "^(a)$", "to": "any", "model": "$99999999999999999999999"}]"#,
                "refers to group",
            ),
        ];
        for (json, problem) in cases {
            let e = err(json);
            assert_eq!(e.field, "model_map[0].model", "{json}");
            assert!(e.problem.contains(problem), "{json}: {e}");
        }
        // `$10` is group ten, `${1}0` group one then '0'.
        let m = map(
            r#"[{"regex": "^(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)$", "to": "any", "model": "$10-${1}0"}]"#,
        );
        assert_eq!(m.resolve("abcdefghij"), resolved("any", Some("j-a0")));
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (r#"[{"to": "any"}]"#, "model_map[0]", "exactly one"),
            (
                r#"[{"alias": "a", "prefix": "b", "to": "any"}]"#,
                "model_map[0]",
                "exactly one",
            ),
            (
                r#"[{"alias": "a", "to": "any"}, {"regex": "(", "to": "any"}]"#,
                "model_map[1].regex",
                "not a valid regex",
            ),
            (
                r#"[{"alias": "a", "to": "nope"}]"#,
                "model_map[0].to",
                "unknown model 'nope'",
            ),
            (
                r#"[{"alias": "gpt-4o", "to": "any"}]"#,
                "model_map[0].alias",
                "configured model",
            ),
            (
                r#"[{"alias": "", "to": "any"}]"#,
                "model_map[0].alias",
                "1 to 256",
            ),
            (
                r#"[{"prefix": "", "to": "any"}]"#,
                "model_map[0].prefix",
                "catch-all",
            ),
            (
                r#"[{"alias": "a", "to": "any", "model": ""}]"#,
                "model_map[0].model",
                "1 to 256",
            ),
            (
                r#"[{"alias": "a", "to": "any", "model": "a\u0007"}]"#,
                "model_map[0].model",
                "control",
            ),
            (
                r#"[{"alias": "a", "to": "any"}, {"alias": "a", "to": "gpt-4o"}]"#,
                "model_map[1]",
                "already maps alias 'a'",
            ),
            (
                r#"[{"prefix": "cl", "to": "any"}, {"alias": "claude", "to": "gpt-4o"}]"#,
                "model_map[1]",
                "model_map[0] already matches 'claude'",
            ),
            (
                r#"[{"regex": "^c", "to": "any"}, {"alias": "claude", "to": "gpt-4o"}]"#,
                "model_map[1]",
                "model_map[0] already matches",
            ),
            (
                r#"[{"prefix": "cl", "to": "any"}, {"prefix": "claude-", "to": "gpt-4o"}]"#,
                "model_map[1]",
                "starting with 'cl'",
            ),
        ];
        for (json, field, problem) in cases {
            let e = err(json);
            assert_eq!(e.field, field, "{json}: {e}");
            assert!(e.problem.contains(problem), "{json}: {e}");
        }
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        let e = err(&format!(r#"[{{"regex": "{long}", "to": "any"}}]"#));
        assert_eq!(e.field, "model_map[0].regex");
        // Patterns that blow the size limit are refused at compile time.
        let e = err(r#"[{"regex": "(?:\\w{1000}){100}", "to": "any"}]"#);
        assert_eq!(e.field, "model_map[0].regex");
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        let e = err(&format!(r#"[{{"regex": "{deep}", "to": "any"}}]"#));
        assert_eq!(e.field, "model_map[0].regex");
    }

    #[test]
    fn shadowing_is_only_refused_when_certain() {
        // A prefix with a template can fail to expand (empty rest), so a
        // later, longer prefix is not certainly shadowed.
        let m = map(r#"[
            {"prefix": "cl", "to": "any", "model": "$1"},
            {"prefix": "cl", "to": "gpt-4o"}
        ]"#);
        assert_eq!(m.resolve("claude"), resolved("any", Some("aude")));
        assert_eq!(m.resolve("cl"), resolved("gpt-4o", None));
        // An alias the earlier regex's template cannot expand stays reachable.
        let m = map(r#"[
            {"regex": "^a(b?)$", "to": "any", "model": "$1"},
            {"alias": "a", "to": "gpt-4o"}
        ]"#);
        assert_eq!(m.resolve("ab"), resolved("any", Some("b")));
        assert_eq!(m.resolve("a"), resolved("gpt-4o", None));
    }

    #[test]
    fn unusable_expansions_fall_through_and_long_names_match_nothing() {
        let m = map(r#"[
            {"regex": "^x-(.*)$", "to": "any", "model": "$1"},
            {"regex": "^x-(.*)$", "to": "qwen-pool", "model": "$1$1"},
            {"prefix": "x-", "to": "gpt-4o"}
        ]"#);
        // Empty expansion: the next entry.
        assert_eq!(m.resolve("x-"), resolved("gpt-4o", None));
        // Control character from the client: skipped to the template-less one.
        assert_eq!(m.resolve("x-a\nb"), resolved("gpt-4o", None));
        let long = format!("x-{}", "a".repeat(200));
        assert_eq!(m.resolve(&long), resolved("any", Some(&"a".repeat(200))));
        // 400 bytes after doubling: too long, next entry.
        let first_too_long = format!("x-{}", "a".repeat(200));
        let m2 = map(r#"[
            {"regex": "^x-(.*)$", "to": "qwen-pool", "model": "$1$1"},
            {"prefix": "x-", "to": "gpt-4o"}
        ]"#);
        assert_eq!(m2.resolve(&first_too_long), resolved("gpt-4o", None));
        let too_long = format!("x-{}", "a".repeat(MAX_NAME_LEN));
        assert_eq!(m.resolve(&too_long), None);
    }

    #[test]
    fn unicode_names_are_handled() {
        let m = map(r#"[
            {"prefix": "模型-", "to": "any", "model": "up-$1"},
            {"regex": "^é(.)$", "to": "gpt-4o", "model": "$1$0"}
        ]"#);
        assert_eq!(m.resolve("模型-大"), resolved("any", Some("up-大")));
        assert_eq!(m.resolve("éà"), resolved("gpt-4o", Some("àéà")));
        assert!(ModelMap::compile(&[], &is_model).unwrap().is_empty());
    }
}
