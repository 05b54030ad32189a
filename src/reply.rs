//! What HTTP answers are made of, for the hook and status boundary
//! (`http.rs`) and the page (`web.rs`) alike.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

/// Responses are whole JSON, or the web page's event stream (`web.rs`).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

pub fn json_response(status: StatusCode, value: Value) -> Response<Body> {
    json_bytes(status, Bytes::from(value.to_string() + "\n"))
}

/// JSON already serialised (a shared answer, see `readcache.rs`).
pub fn json_bytes(status: StatusCode, json: Bytes) -> Response<Body> {
    let body = Full::new(json).boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    json_response(status, json!({ "error": message.into() }))
}
