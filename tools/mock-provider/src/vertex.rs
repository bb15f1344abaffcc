//! Google Vertex AI: Gemini (`publishers/google`) and Anthropic's Claude
//! (`publishers/anthropic`) in a project and location,
//! `/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}`
//! (`/v1beta1/…` too), authenticated by `Authorization: Bearer` with a token
//! of the Google token endpoint or the metadata server (`google.rs`).
//!
//! Vertex's own errors (routing, auth, location, `x-mock-status`) come in
//! Google's `{"error": {"code", "message", "status"}}` shape for both
//! publishers; the publishers' request validation answers in their own shapes
//! (Claude's errors are Anthropic's).

use hyper::header::{HeaderValue, WWW_AUTHENTICATE};
use hyper::Method;

use crate::common::{percent_decode, Ctx, Resp};
use crate::oauth::TokenState;
use crate::{anthropic, gemini};

const PREFIXES: [&str; 2] = ["/v1/projects/", "/v1beta1/projects/"];

const MSG_MISSING: &str = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.";
const MSG_INVALID: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.";

/// Whether `path` belongs to Vertex AI.
pub fn is_vertex_path(path: &str) -> bool {
    PREFIXES.iter().any(|p| path.starts_with(p))
}

#[derive(Debug, PartialEq)]
struct Route<'a> {
    project: &'a str,
    location: &'a str,
    publisher: &'a str,
    /// Percent-decoded (`claude-sonnet-4-5@20250929` may come as `%40`).
    model: String,
    method: &'a str,
}

fn parse_path(path: &str) -> Option<Route<'_>> {
    let rest = PREFIXES.iter().find_map(|p| path.strip_prefix(p))?;
    let segs: Vec<&str> = rest.split('/').collect();
    let [project, "locations", location, "publishers", publisher, "models", last] = segs.as_slice()
    else {
        return None;
    };
    let (model, method) = last.rsplit_once(':')?;
    (!model.is_empty()).then(|| Route {
        project,
        location,
        publisher,
        model: percent_decode(model),
        method,
    })
}

/// `global`, or a region such as `us-central1` (`[a-z]+-[a-z]+[0-9]+`).
fn valid_location(loc: &str) -> bool {
    if loc == "global" {
        return true;
    }
    let Some((area, rest)) = loc.split_once('-') else {
        return false;
    };
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    let digits = &rest[letters..];
    !area.is_empty()
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && letters > 0
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
}

fn unauthenticated(message: &str) -> Resp {
    let mut resp = gemini::error(401, message);
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
    );
    resp
}

/// The bearer token of the request: `Err` answer when it is missing or not
/// a valid token of this mock.
fn authenticate(ctx: &Ctx<'_>) -> Result<(), Resp> {
    let Some(auth) = ctx.header("authorization").map(str::trim) else {
        return Err(unauthenticated(MSG_MISSING));
    };
    let token = match auth.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(unauthenticated(MSG_INVALID)),
    };
    match ctx.state.google_tokens.check(token) {
        TokenState::Valid => Ok(()),
        TokenState::Expired | TokenState::Invalid => Err(unauthenticated(MSG_INVALID)),
    }
}

pub fn handle(ctx: &Ctx<'_>) -> Resp {
    let not_found = || gemini::error(404, "Requested entity was not found.");
    let Some(route) = parse_path(ctx.path) else {
        return not_found();
    };
    let known = match route.publisher {
        "google" => matches!(
            route.method,
            "generateContent" | "streamGenerateContent" | "countTokens"
        ),
        "anthropic" => matches!(route.method, "rawPredict" | "streamRawPredict"),
        _ => false,
    };
    if !known || ctx.method != Method::POST {
        return not_found();
    }
    if let Err(resp) = authenticate(ctx) {
        return resp;
    }
    if route.project.is_empty() {
        return gemini::error(400, "Invalid resource name: the project is empty.");
    }
    if !valid_location(route.location) {
        return gemini::error(
            400,
            &format!(
                "Invalid location: {:?}. Use global or a region such as us-central1.",
                route.location
            ),
        );
    }
    match route.publisher {
        "google" => gemini::handle_vertex(ctx, &route.model, route.method),
        _ => anthropic::handle_vertex(ctx, &route.model, route.method == "streamRawPredict"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let r = parse_path(
            "/v1/projects/p-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent",
        );
        assert_eq!(
            r,
            Some(Route {
                project: "p-1",
                location: "us-central1",
                publisher: "google",
                model: "gemini-2.5-flash".into(),
                method: "generateContent",
            })
        );
        let r = parse_path(
            "/v1beta1/projects/p/locations/global/publishers/anthropic/models/claude-sonnet-4-5%4020250929:rawPredict",
        );
        assert_eq!(
            r.map(|r| (r.model, r.method)),
            Some(("claude-sonnet-4-5@20250929".to_string(), "rawPredict"))
        );
        assert!(
            parse_path("/v1/projects//locations/global/publishers/google/models/m:x")
                .is_some_and(|r| r.project.is_empty())
        );
        assert_eq!(
            parse_path("/v1/projects/p/locations/global/publishers/google/models/:x"),
            None
        );
        assert_eq!(
            parse_path("/v1/projects/p/locations/global/publishers/google/models/m"),
            None
        );
        assert_eq!(
            parse_path("/v1/projects/p/locations/global/models/m:generateContent"),
            None
        );
        assert_eq!(
            parse_path("/v1/projects/p/locations/global/publishers/google/models/m:x/y"),
            None
        );
        assert!(is_vertex_path("/v1/projects/x"));
        assert!(!is_vertex_path("/v1/messages"));
    }

    #[test]
    fn locations() {
        for ok in [
            "global",
            "us-central1",
            "europe-west4",
            "asia-northeast1",
            "northamerica-northeast2",
        ] {
            assert!(valid_location(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-central",
            "us-central1a",
            "US-central1",
            "-central1",
            "us-1",
            "us-central-1",
            "us-east1-b",
        ] {
            assert!(!valid_location(bad), "{bad}");
        }
    }
}
