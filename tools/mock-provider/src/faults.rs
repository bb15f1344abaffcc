//! Knobs applied to an answer once it is built: `x-mock-body`,
//! `x-mock-content-type`, `x-mock-connection-close`, `x-mock-truncate-body`,
//! compression, and cutting a non-stream body short (`x-mock-reset-mid-body`,
//! `x-mock-stall-after`).

use bytes::Bytes;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH};

use crate::body::{Body, CutBody, CutEnd};
use crate::common::{bytes_resp, Resp};
use crate::encoding::{self, Encoding, StreamEncoder};
use crate::knobs::Knobs;

/// `x-mock-body`: the raw body, JSON content type when it looks like JSON,
/// else HTML (a captive portal's or proxy's page).
pub fn raw_body_resp(status: u16, body: &Bytes) -> Resp {
    let ct = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => "application/json",
        _ => "text/html; charset=utf-8",
    };
    bytes_resp(status, ct, body.clone())
}

/// Whether any knob handled by `shape` is set (keeps the common path free of work).
pub fn shapes(knobs: &Knobs) -> bool {
    knobs.content_type.is_some()
        || knobs.connection_close
        || knobs.truncate_body.is_some()
        || knobs.reset_mid_body.is_some()
        || knobs.stall_after.is_some()
}

/// Apply the response-level knobs, in wire order: headers, truncation of the
/// JSON document, compression, then cutting the (compressed) bytes short.
pub fn shape(mut resp: Resp, knobs: &Knobs, encoding: Option<Encoding>) -> Resp {
    if let Some(ct) = &knobs.content_type {
        resp.headers_mut()
            .insert(hyper::header::CONTENT_TYPE, ct.clone());
    }
    if knobs.connection_close {
        // hyper closes the connection after a response carrying this header.
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(n) = knobs.truncate_body {
        if resp.status() == hyper::StatusCode::OK {
            if let Body::Full(Some(b)) = resp.body_mut() {
                if b.len() > n {
                    let head = b.slice(..n);
                    *resp.body_mut() = Body::full(head);
                }
            }
        }
    }
    if let Some(enc) = encoding {
        compress(&mut resp, enc);
    }
    let cut = match (knobs.reset_mid_body, knobs.stall_after) {
        (Some(r), Some(s)) if s < r => Some((s, CutEnd::Stall)),
        (Some(r), _) => Some((r, CutEnd::Reset)),
        (None, Some(s)) => Some((s, CutEnd::Stall)),
        (None, None) => None,
    };
    if let Some((n, end)) = cut {
        if let Body::Full(Some(b)) = resp.body_mut() {
            if n < b.len() {
                let head = b.slice(..n);
                let full_len = b.len();
                *resp.body_mut() = Body::Cut(Box::new(CutBody::new(head, end)));
                // The full body's length, so the client waits for bytes that never come.
                resp.headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(full_len));
            } else if end == CutEnd::Reset {
                // The whole body goes out (hyper stops polling a body once its
                // length is reached), so the close has to be announced.
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
        }
    }
    resp
}

/// Compress the body (a full body at once, a stream event by event).
pub fn compress(resp: &mut Resp, enc: Encoding) {
    match resp.body_mut() {
        Body::Full(Some(b)) => match encoding::compress(enc, b) {
            Ok(c) => *b = Bytes::from(c),
            Err(_) => return,
        },
        Body::Stream(s) => s.set_encoder(StreamEncoder::new(enc)),
        // Nothing to compress (empty) or already cut.
        _ => return,
    }
    resp.headers_mut()
        .insert(CONTENT_ENCODING, enc.header_value());
}
