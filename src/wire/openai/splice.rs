//! Replacing one top-level member's value in the raw bytes of a JSON object
//! that has already been parsed and validated. Passthrough requests keep the
//! client's bytes exactly (order, spacing, numbers) with only `model`
//! changed, and skip re-serializing the whole body.

/// `json` with the value of its top-level member `name` replaced by
/// `value_json` (already JSON-encoded). `None` when that cannot be done
/// safely from the bytes: the member is absent or repeated, or a key is
/// spelled with escapes (it could spell `name`). The caller then falls back
/// to re-serializing.
pub fn replace_member(json: &[u8], name: &str, value_json: &str) -> Option<Vec<u8>> {
    let (start, end) = member_span(json, name.as_bytes())?;
    let mut out = Vec::with_capacity(json.len() - (end - start) + value_json.len());
    out.extend_from_slice(&json[..start]);
    out.extend_from_slice(value_json.as_bytes());
    out.extend_from_slice(&json[end..]);
    Some(out)
}

/// Byte span of the value of top-level member `name`.
fn member_span(json: &[u8], name: &[u8]) -> Option<(usize, usize)> {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut found = None;
    loop {
        i = skip_ws(json, i);
        match json.get(i)? {
            b'}' => return found,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = string_end(json, i)?;
        let key = &json[i + 1..key_end];
        if key.contains(&b'\\') {
            return None;
        }
        i = skip_ws(json, key_end + 1);
        if json.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(json, i + 1);
        let end = value_end(json, start)?;
        if key == name {
            if found.is_some() {
                return None;
            }
            found = Some((start, end));
        }
        i = end;
    }
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while matches!(json.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Index of the closing quote of the string opening at `i`.
fn string_end(json: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match json.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j),
            _ => j += 1,
        }
    }
}

/// Index just past the value starting at `i`.
fn value_end(json: &[u8], i: usize) -> Option<usize> {
    match json.get(i)? {
        b'"' => string_end(json, i).map(|e| e + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match json.get(j)? {
                    b'"' => j = string_end(json, j)?,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            // Number or literal: up to the next delimiter.
            let mut j = i;
            while !matches!(
                json.get(j),
                None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            ) {
                j += 1;
            }
            Some(j)
        }
    }
}

/// A passthrough request body: the client's bytes with only the top-level
/// `model` replaced when they were kept (`raw`), else `body` re-serialized.
pub fn with_model(req: &mut super::ParsedRequest, upstream_model: &str) -> Vec<u8> {
    let value = serde_json::to_string(upstream_model).unwrap_or_default();
    match replace_member(&req.raw, "model", &value) {
        Some(bytes) => bytes,
        None => {
            let mut body = req.take_body();
            let bytes = rename_model(&mut body, upstream_model);
            req.put_body(body);
            bytes
        }
    }
}

/// Replaces the top-level `model` of a validated request body, keeping every
/// other field (vendor extensions included) as the client sent it.
pub fn rename_model(
    body: &mut serde_json::Map<String, serde_json::Value>,
    upstream_model: &str,
) -> Vec<u8> {
    body.insert(
        "model".into(),
        serde_json::Value::String(upstream_model.into()),
    );
    serde_json::to_vec(body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn renamed(body: &str) -> Option<String> {
        replace_member(body.as_bytes(), "model", "\"up\\\"stream\"")
            .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn replaces_only_the_top_level_member() {
        let cases = [
            r#"{"model":"m","messages":[]}"#,
            r#"  {  "messages" : [ {"model":"inner","content":"\"model\":\"x\""} ] ,  "model"  :  "m" , "n": -1.5e3 }  "#,
            r#"{"a":{"model":"deep","b":[1,[2,{"model":3}]]},"model":"m","t":true,"f":null}"#,
            "{\"x\":\"\\\\\",\"model\":\"\u{00e9}\\u00e9\",\"y\":[\"]\",\"}\"]}",
            r#"{"model":"m"}"#,
        ];
        for body in cases {
            let out = renamed(body).unwrap_or_else(|| panic!("no span in {body}"));
            let mut want: Value = serde_json::from_str(body).unwrap();
            want["model"] = Value::String("up\"stream".into());
            let got: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(got, want, "{body} -> {out}");
        }
        // Everything but the value is kept byte for byte.
        assert_eq!(
            renamed(r#"{ "b":1.0,  "model" : "m" }"#).unwrap(),
            r#"{ "b":1.0,  "model" : "up\"stream" }"#
        );
    }

    #[test]
    fn refuses_what_it_cannot_do_safely() {
        for body in [
            r#"{"messages":[]}"#,
            r#"{"model":"a","model":"b"}"#,
            r#"{"mod\u0065l":"a","model":"b"}"#,
            r#"["model"]"#,
            r#"{"model":"m""#,
            "",
        ] {
            assert_eq!(renamed(body), None, "{body}");
        }
    }

    #[test]
    fn truncated_input_never_panics() {
        let body = r#"{"a":[{"b":"c\"d"}],"model":"m","e":{"f":[1,2]}}"#;
        for cut in 0..body.len() {
            let _ = replace_member(&body.as_bytes()[..cut], "model", "\"x\"");
        }
    }

    #[test]
    fn model_rename_keeps_everything_else() {
        let mut body: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"model":"a","messages":[],"x_vendor":{"k":1}}"#).unwrap();
        let out = rename_model(&mut body, "b");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "b");
        assert_eq!(v["x_vendor"]["k"], 1);
        let raw = br#"{"model" : "a", "messages":[{"role":"user","content":"x"}], "z": 1.0}"#;
        let mut req = crate::wire::Api::ChatCompletions
            .parse(raw.to_vec())
            .unwrap();
        assert_eq!(
            with_model(&mut req, "c"),
            br#"{"model" : "c", "messages":[{"role":"user","content":"x"}], "z": 1.0}"#
        );
    }
}
