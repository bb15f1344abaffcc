//! `routing_rules`: conditional routing to a pool. Rules are tried in config
//! order and the first whose conditions all hold names the pool; no match
//! leaves the choice to the model name (exact, then `model_map`).
//!
//! Conditions (each optional; all present ones must hold):
//!
//! | condition | holds when |
//! |---|---|
//! | `model: [chat, "gpt-*"]` | the client's model is one of these (`*` at the end: prefix; `*` alone: any) |
//! | `consumer: [team-a]` | the request's consumer is one of these (never for anonymous requests) |
//! | `header: {name, equals \| present \| prefix}` | the request header has that value / is (not) sent / starts so; values case sensitive |
//! | `min_prompt_tokens`, `max_prompt_tokens` | the estimated prompt tokens are within these bounds (inclusive) |
//! | `min_messages`, `max_messages` | the number of messages is within these bounds (inclusive) |
//! | `keywords: [translate]` | the last user message contains any of these, case-insensitively (Unicode lowercase) |
//!
//! Cheap conditions are checked first; the last user message is lowercased
//! at most once per request, and only when a rule gets as far as its
//! keywords.

use super::config::{HeaderMatchConfig, RuleConfig, WhenConfig};
use super::MAX_NAME_LEN;
use crate::error::ConfigError;
use crate::providers::is_header_name;
use std::cell::OnceCell;

/// Most entries in one rule's `model`, `consumer` or `keywords` list.
const MAX_LIST: usize = 1024;

/// What the rules look at, gathered by the flow for one request.
#[derive(Clone, Copy)]
pub struct RuleFacts<'a> {
    /// The model name the client sent.
    pub model: &'a str,
    /// The authenticated consumer's name.
    pub consumer: Option<&'a str>,
    /// A request header by lowercase name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// Number of messages in the request.
    pub messages: usize,
    /// Text of the last message with role `user` ("" when none).
    pub last_user_text: &'a str,
}

/// Compiled `routing_rules`.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    pool: String,
    models: Option<Vec<NamePattern>>,
    consumers: Option<Vec<String>>,
    header: Option<(String, HeaderTest)>,
    prompt_tokens: (u64, u64),
    messages: (usize, usize),
    /// Lowercased.
    keywords: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NamePattern {
    Exact(String),
    /// "" for a lone `*`.
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HeaderTest {
    Equals(String),
    Present(bool),
    Prefix(String),
}

impl RuleSet {
    /// Validates `routing_rules` (field paths `routing_rules[i].…`).
    /// `is_model` says whether a name is a configured model (pool),
    /// `is_consumer` whether one is a configured consumer.
    pub fn compile(
        rules: &[RuleConfig],
        is_model: &dyn Fn(&str) -> bool,
        is_consumer: &dyn Fn(&str) -> bool,
    ) -> Result<Self, ConfigError> {
        let mut out: Vec<Rule> = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let field = format!("routing_rules[{i}]");
            let valid_name = !r.name.is_empty()
                && r.name.len() <= 64
                && r.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !valid_name {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    format!(
                        "'{}' must be 1-64 characters of A-Z, a-z, 0-9, '_', '.' or '-'",
                        r.name
                    ),
                ));
            }
            if let Some(j) = out.iter().position(|o| o.name == r.name) {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    format!("duplicate rule name '{}' (routing_rules[{j}])", r.name),
                ));
            }
            if let Some((j, o)) = out.iter().enumerate().find(|(_, o)| o.always()) {
                return Err(ConfigError::new(
                    &field,
                    format!(
                        "unreachable: routing_rules[{j}] '{}' has no conditions and matches every request",
                        o.name
                    ),
                ));
            }
            if !is_model(&r.pool) {
                return Err(ConfigError::new(
                    format!("{field}.pool"),
                    format!(
                        "unknown model '{}'; a rule routes to a model declared under models",
                        r.pool
                    ),
                ));
            }
            let mut rule = compile_when(&r.when, &format!("{field}.when"), is_consumer)?;
            rule.name = r.name.clone();
            rule.pool = r.pool.clone();
            out.push(rule);
        }
        Ok(Self { rules: out })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The first rule that matches: `(rule name, pool)`.
    pub fn choose(&self, facts: &RuleFacts<'_>) -> Option<(&str, &str)> {
        let lowered = OnceCell::new();
        self.rules
            .iter()
            .find(|r| r.matches(facts, &lowered))
            .map(|r| (r.name.as_str(), r.pool.as_str()))
    }
}

impl Rule {
    fn always(&self) -> bool {
        self.models.is_none()
            && self.consumers.is_none()
            && self.header.is_none()
            && self.prompt_tokens == (0, u64::MAX)
            && self.messages == (0, usize::MAX)
            && self.keywords.is_none()
    }

    fn matches(&self, f: &RuleFacts<'_>, lowered: &OnceCell<String>) -> bool {
        if !in_range(f.prompt_tokens, self.prompt_tokens) || !in_range(f.messages, self.messages) {
            return false;
        }
        if let Some(models) = &self.models {
            let hit = models.iter().any(|p| match p {
                NamePattern::Exact(n) => n == f.model,
                NamePattern::Prefix(pre) => f.model.starts_with(pre.as_str()),
            });
            if !hit {
                return false;
            }
        }
        if let Some(consumers) = &self.consumers {
            match f.consumer {
                Some(c) if consumers.iter().any(|x| x == c) => {}
                _ => return false,
            }
        }
        if let Some((name, test)) = &self.header {
            let value = (f.header)(name);
            let hit = match (test, value.as_deref()) {
                (HeaderTest::Present(want), v) => *want == v.is_some(),
                (HeaderTest::Equals(want), Some(v)) => v == want,
                (HeaderTest::Prefix(want), Some(v)) => v.starts_with(want.as_str()),
                (_, None) => false,
            };
            if !hit {
                return false;
            }
        }
        if let Some(keywords) = &self.keywords {
            let text = lowered.get_or_init(|| f.last_user_text.to_lowercase());
            if !keywords.iter().any(|k| text.contains(k.as_str())) {
                return false;
            }
        }
        true
    }
}

fn in_range<T: PartialOrd>(v: T, (lo, hi): (T, T)) -> bool {
    lo <= v && v <= hi
}

fn compile_when(
    w: &WhenConfig,
    field: &str,
    is_consumer: &dyn Fn(&str) -> bool,
) -> Result<Rule, ConfigError> {
    let err = |sub: &str, problem: String| ConfigError::new(format!("{field}.{sub}"), problem);
    let list = |sub: &str, items: &Option<Vec<String>>| -> Result<(), ConfigError> {
        match items {
            Some(v) if v.is_empty() => Err(err(
                sub,
                "must list at least one entry; omit it to match any".into(),
            )),
            Some(v) if v.len() > MAX_LIST => {
                Err(err(sub, format!("must list at most {MAX_LIST} entries")))
            }
            _ => Ok(()),
        }
    };

    list("model", &w.model)?;
    let models = match &w.model {
        None => None,
        Some(v) => Some(
            v.iter()
                .enumerate()
                .map(|(j, m)| {
                    let p = |problem: String| err(&format!("model[{j}]"), problem);
                    if m.is_empty() || m.len() > MAX_NAME_LEN {
                        return Err(p("must be 1 to 256 characters".into()));
                    }
                    match m.find('*') {
                        None => Ok(NamePattern::Exact(m.clone())),
                        Some(at) if at + 1 == m.len() => {
                            Ok(NamePattern::Prefix(m.get(..at).unwrap_or("").to_string()))
                        }
                        Some(_) => Err(p(format!(
                            "'{m}': '*' may only end a name (a prefix match)"
                        ))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };

    list("consumer", &w.consumer)?;
    if let Some(v) = &w.consumer {
        for (j, c) in v.iter().enumerate() {
            if !is_consumer(c) {
                return Err(err(
                    &format!("consumer[{j}]"),
                    format!("unknown consumer '{c}'"),
                ));
            }
        }
    }

    let header = match &w.header {
        None => None,
        Some(h) => Some(compile_header(h, &format!("{field}.header"))?),
    };

    let prompt_tokens = (
        w.min_prompt_tokens.unwrap_or(0),
        w.max_prompt_tokens.unwrap_or(u64::MAX),
    );
    if prompt_tokens.0 > prompt_tokens.1 {
        return Err(err(
            "min_prompt_tokens",
            "must not exceed max_prompt_tokens".into(),
        ));
    }
    let messages = (
        w.min_messages.unwrap_or(0),
        w.max_messages.unwrap_or(usize::MAX),
    );
    if messages.0 > messages.1 {
        return Err(err("min_messages", "must not exceed max_messages".into()));
    }

    list("keywords", &w.keywords)?;
    let keywords = match &w.keywords {
        None => None,
        Some(v) => Some(
            v.iter()
                .enumerate()
                .map(|(j, k)| {
                    if k.is_empty() || k.len() > MAX_NAME_LEN {
                        Err(err(
                            &format!("keywords[{j}]"),
                            "must be 1 to 256 characters".into(),
                        ))
                    } else {
                        Ok(k.to_lowercase())
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };

    Ok(Rule {
        name: String::new(),
        pool: String::new(),
        models,
        consumers: w.consumer.clone(),
        header,
        prompt_tokens,
        messages,
        keywords,
    })
}

fn compile_header(h: &HeaderMatchConfig, field: &str) -> Result<(String, HeaderTest), ConfigError> {
    let name = h.name.to_ascii_lowercase();
    if !is_header_name(&name) {
        return Err(ConfigError::new(
            format!("{field}.name"),
            format!("'{}' is not a header name", h.name),
        ));
    }
    let test = match (&h.equals, h.present, &h.prefix) {
        (Some(v), None, None) => HeaderTest::Equals(v.clone()),
        (None, Some(p), None) => HeaderTest::Present(p),
        (None, None, Some(v)) if !v.is_empty() => HeaderTest::Prefix(v.clone()),
        (None, None, Some(_)) => {
            return Err(ConfigError::new(
                format!("{field}.prefix"),
                "must not be empty; use present: true",
            ))
        }
        _ => {
            return Err(ConfigError::new(
                field,
                "needs exactly one of equals, present or prefix",
            ))
        }
    };
    Ok((name, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_model(n: &str) -> bool {
        ["chat", "chat-mini", "chat-next", "coder"].contains(&n)
    }

    fn is_consumer(n: &str) -> bool {
        ["team-a", "team-b"].contains(&n)
    }

    fn compile(json: &str) -> Result<RuleSet, ConfigError> {
        let rules: Vec<RuleConfig> = serde_json::from_str(json).unwrap();
        RuleSet::compile(&rules, &is_model, &is_consumer)
    }

    fn no_headers(_: &str) -> Option<String> {
        None
    }

    fn facts<'a>(model: &'a str) -> RuleFacts<'a> {
        RuleFacts {
            model,
            consumer: None,
            header: &no_headers,
            prompt_tokens: 100,
            messages: 1,
            last_user_text: "",
        }
    }

    #[test]
    fn cost_aware_first_match_wins() {
        let rules = compile(
            r#"[
            {"name": "short-to-mini", "when": {"model": ["chat"], "max_prompt_tokens": 500}, "pool": "chat-mini"},
            {"name": "code", "when": {"keywords": ["Rust", "stack trace"]}, "pool": "coder"},
            {"name": "default", "pool": "chat"}
        ]"#,
        )
        .unwrap();
        assert_eq!(rules.len(), 3);
        let f = RuleFacts {
            prompt_tokens: 500,
            ..facts("chat")
        };
        assert_eq!(rules.choose(&f), Some(("short-to-mini", "chat-mini")));
        let f = RuleFacts {
            prompt_tokens: 501,
            last_user_text: "Why does my RUST code panic?",
            ..facts("chat")
        };
        assert_eq!(rules.choose(&f), Some(("code", "coder")));
        let f = RuleFacts {
            prompt_tokens: 501,
            last_user_text: "Hello",
            ..facts("chat")
        };
        assert_eq!(rules.choose(&f), Some(("default", "chat")));
        let f = RuleFacts {
            last_user_text: "here is a STACK TRACE",
            ..facts("other")
        };
        assert_eq!(rules.choose(&f), Some(("code", "coder")));
    }

    #[test]
    fn every_condition_must_hold() {
        let rules = compile(
            r#"[{"name": "all", "pool": "chat-next", "when": {
                "model": ["gpt-*", "chat"], "consumer": ["team-a"],
                "header": {"name": "X-Beta", "equals": "1"},
                "min_prompt_tokens": 10, "max_prompt_tokens": 1000,
                "min_messages": 2, "max_messages": 4, "keywords": ["ÉTÉ"]}}]"#,
        )
        .unwrap();
        let beta = |n: &str| (n == "x-beta").then(|| "1".to_string());
        let good = RuleFacts {
            model: "gpt-4o",
            consumer: Some("team-a"),
            header: &beta,
            prompt_tokens: 10,
            messages: 4,
            last_user_text: "un bel été",
        };
        assert_eq!(rules.choose(&good), Some(("all", "chat-next")));
        let other = |n: &str| (n == "x-beta").then(|| "2".to_string());
        let variants: Vec<RuleFacts> = vec![
            RuleFacts {
                model: "claude",
                ..good
            },
            RuleFacts {
                model: "gpt",
                ..good
            },
            RuleFacts {
                consumer: Some("team-b"),
                ..good
            },
            RuleFacts {
                consumer: None,
                ..good
            },
            RuleFacts {
                header: &no_headers,
                ..good
            },
            RuleFacts {
                header: &other,
                ..good
            },
            RuleFacts {
                prompt_tokens: 9,
                ..good
            },
            RuleFacts {
                prompt_tokens: 1001,
                ..good
            },
            RuleFacts {
                messages: 1,
                ..good
            },
            RuleFacts {
                messages: 5,
                ..good
            },
            RuleFacts {
                last_user_text: "hiver",
                ..good
            },
        ];
        for (i, f) in variants.iter().enumerate() {
            assert_eq!(rules.choose(f), None, "variant {i}");
        }
        assert_eq!(
            rules.choose(&RuleFacts {
                model: "chat",
                ..good
            }),
            Some(("all", "chat-next"))
        );
    }

    #[test]
    fn header_tests() {
        let rules = compile(
            r#"[
            {"name": "eq", "when": {"header": {"name": "x-t", "equals": "gold"}}, "pool": "chat"},
            {"name": "pre", "when": {"header": {"name": "x-t", "prefix": "sil"}}, "pool": "chat-mini"},
            {"name": "absent", "when": {"header": {"name": "x-t", "present": false}}, "pool": "coder"},
            {"name": "present", "when": {"header": {"name": "x-t", "present": true}}, "pool": "chat-next"}
        ]"#,
        )
        .unwrap();
        let with = |v: &'static str| move |n: &str| (n == "x-t").then(|| v.to_string());
        let gold = with("gold");
        let silver = with("silver");
        let gold_upper = with("GOLD");
        let choose = |h: &dyn Fn(&str) -> Option<String>| {
            rules
                .choose(&RuleFacts {
                    header: h,
                    ..facts("m")
                })
                .map(|(n, _)| n.to_string())
        };
        assert_eq!(choose(&gold).as_deref(), Some("eq"));
        assert_eq!(choose(&silver).as_deref(), Some("pre"));
        assert_eq!(choose(&no_headers).as_deref(), Some("absent"));
        assert_eq!(choose(&gold_upper).as_deref(), Some("present"));
    }

    #[test]
    fn keywords_lowercase_the_text_once_and_only_when_needed() {
        let rules = compile(
            r#"[
            {"name": "a", "when": {"model": ["x"], "keywords": ["zzz"]}, "pool": "chat"},
            {"name": "b", "when": {"keywords": ["qqq"]}, "pool": "chat"},
            {"name": "c", "when": {"keywords": ["HeLLo"]}, "pool": "coder"}
        ]"#,
        )
        .unwrap();
        let f = RuleFacts {
            last_user_text: "well, hello there",
            ..facts("m")
        };
        assert_eq!(rules.choose(&f), Some(("c", "coder")));
        assert_eq!(rules.choose(&facts("m")), None);
        assert!(RuleSet::default().choose(&facts("m")).is_none());
        assert!(RuleSet::default().is_empty());
    }

    #[test]
    fn model_patterns() {
        let rules = compile(
            r#"[
            {"name": "exact", "when": {"model": ["gpt-4o"]}, "pool": "chat"},
            {"name": "prefix", "when": {"model": ["gpt-*"]}, "pool": "chat-mini"},
            {"name": "any", "when": {"model": ["*"], "min_messages": 3}, "pool": "coder"}
        ]"#,
        )
        .unwrap();
        let name = |m: &str, messages: usize| {
            rules
                .choose(&RuleFacts {
                    messages,
                    ..facts(m)
                })
                .map(|(n, _)| n.to_string())
        };
        assert_eq!(name("gpt-4o", 1).as_deref(), Some("exact"));
        assert_eq!(name("gpt-4o-mini", 1).as_deref(), Some("prefix"));
        assert_eq!(name("gpt-", 1).as_deref(), Some("prefix"));
        assert_eq!(name("gpt", 1), None);
        assert_eq!(name("gpt", 3).as_deref(), Some("any"));
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (
                r#"[{"name": "", "pool": "chat"}]"#,
                "routing_rules[0].name",
                "1-64",
            ),
            (
                r#"[{"name": "a b", "pool": "chat"}]"#,
                "routing_rules[0].name",
                "1-64",
            ),
            (
                r#"[{"name": "a", "when": {"model": ["x"]}, "pool": "chat"}, {"name": "a", "pool": "chat"}]"#,
                "routing_rules[1].name",
                "duplicate",
            ),
            (
                r#"[{"name": "a", "pool": "nope"}]"#,
                "routing_rules[0].pool",
                "unknown model 'nope'",
            ),
            (
                r#"[{"name": "a", "pool": "chat"}, {"name": "b", "pool": "chat"}]"#,
                "routing_rules[1]",
                "unreachable: routing_rules[0] 'a'",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {}}, {"name": "b", "pool": "chat"}]"#,
                "routing_rules[1]",
                "unreachable",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"model": []}}]"#,
                "routing_rules[0].when.model",
                "at least one",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"model": ["a*b"]}}]"#,
                "routing_rules[0].when.model[0]",
                "may only end",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"model": ["ok", ""]}}]"#,
                "routing_rules[0].when.model[1]",
                "1 to 256",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"consumer": ["team-a", "team-z"]}}]"#,
                "routing_rules[0].when.consumer[1]",
                "unknown consumer 'team-z'",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"consumer": []}}]"#,
                "routing_rules[0].when.consumer",
                "at least one",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"header": {"name": "bad name", "present": true}}}]"#,
                "routing_rules[0].when.header.name",
                "not a header name",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"header": {"name": "x"}}}]"#,
                "routing_rules[0].when.header",
                "exactly one",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"header": {"name": "x", "equals": "1", "present": true}}}]"#,
                "routing_rules[0].when.header",
                "exactly one",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"header": {"name": "x", "prefix": ""}}}]"#,
                "routing_rules[0].when.header.prefix",
                "present: true",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"min_prompt_tokens": 5, "max_prompt_tokens": 4}}]"#,
                "routing_rules[0].when.min_prompt_tokens",
                "must not exceed",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"min_messages": 5, "max_messages": 4}}]"#,
                "routing_rules[0].when.min_messages",
                "must not exceed",
            ),
            (
                r#"[{"name": "a", "pool": "chat", "when": {"keywords": ["x", ""]}}]"#,
                "routing_rules[0].when.keywords[1]",
                "1 to 256",
            ),
        ];
        for (json, field, problem) in cases {
            let e = compile(json).unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
            assert!(e.problem.contains(problem), "{json}: {e}");
        }
        // Bounds equal to each other are fine.
        compile(
            r#"[{"name": "a", "pool": "chat", "when": {"min_messages": 4, "max_messages": 4}}]"#,
        )
        .unwrap();
    }
}
