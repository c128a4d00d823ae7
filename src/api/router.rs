//! The route table (data, not code), dispatch, and the headers every
//! response carries.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tracing::{debug, error};

use super::body::{self, Body};
use super::errors::ApiError;
use super::filters::Query;
use super::version::{split_prefix, ApiVersion, MAX_API};
use super::ApiContext;
use berth_actors::ErrorKind;

/// Bodies of non-streaming endpoints are capped at this many bytes.
pub const MAX_BODY: usize = 4 << 20;

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, ApiError>> + Send>>;
pub type Handler = fn(Req) -> HandlerFuture;

/// How a route takes its request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Read whole, at most [`MAX_BODY`] bytes.
    Capped,
    /// Handed to the handler unread (uploads: authorization plugins see
    /// their headers, not their bodies).
    Stream,
    /// Read whole like [`BodyMode::Capped`], and the request kept for the
    /// handler to take over its connection (attach, exec start).
    Hijack,
}

pub struct Route {
    pub method: Method,
    /// Segments; `{name}` captures one segment.
    pub path: &'static str,
    pub body: BodyMode,
    pub handler: Handler,
}

/// One API request as a handler sees it.
pub struct Req {
    pub ctx: Arc<ApiContext>,
    pub method: Method,
    pub version: ApiVersion,
    pub params: Vec<(&'static str, String)>,
    pub query: Query,
    pub headers: HeaderMap,
    /// The whole body for [`BodyMode::Capped`] and [`BodyMode::Hijack`]
    /// routes.
    pub body: Bytes,
    /// The request for [`BodyMode::Stream`] routes (body unread) and
    /// [`BodyMode::Hijack`] routes (body read).
    pub incoming: Option<Request<Incoming>>,
}

impl Req {
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// Decode a JSON body; bad JSON is a 400 naming the problem.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::invalid("bad parameter: request body is empty"));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))
    }

    /// Decode a JSON body that must fit the Go type `s` of dockerd's API
    /// (see [`super::schema`]): a wrong type is a 400 with Go's message,
    /// keys come back in their canonical case.
    pub fn json_of(
        &self,
        s: &'static super::schema::Struct,
    ) -> Result<serde_json::Value, ApiError> {
        let mut v: serde_json::Value = self.json()?;
        super::schema::check(&mut v, s).map_err(ApiError::invalid)?;
        Ok(v)
    }
}

fn capture(name: &'static str, raw: &str) -> (&'static str, String) {
    (
        name,
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Match `path` against `pattern`: `{name}` captures one segment, `{name*}`
/// one or more (image names have slashes: `/images/reg:5000/a/b/json`).
fn match_path(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let pat: Vec<&'static str> = pattern.trim_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut params = Vec::new();
    let star = pat
        .iter()
        .position(|p| p.starts_with('{') && p.ends_with("*}"));
    let (head, tail) = match star {
        Some(i) => (&pat[..i], &pat[i + 1..]),
        None => (&pat[..], &pat[..0]),
    };
    if star.is_none() && segs.len() != pat.len() {
        return None;
    }
    if star.is_some() && segs.len() < head.len() + 1 + tail.len() {
        return None;
    }
    let seg_match = |p: &'static str, s: &str, params: &mut Vec<(&'static str, String)>| -> bool {
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if s.is_empty() {
                return false;
            }
            params.push(capture(name, s));
            true
        } else {
            p == s
        }
    };
    for (p, s) in head.iter().zip(&segs) {
        if !seg_match(p, s, &mut params) {
            return None;
        }
    }
    if let Some(i) = star {
        let mid = &segs[head.len()..segs.len() - tail.len()];
        if mid.iter().any(|s| s.is_empty()) {
            return None;
        }
        let name = pat[i].trim_start_matches('{').trim_end_matches("*}");
        params.push(capture(name, &mid.join("/")));
        for (p, s) in tail.iter().zip(&segs[segs.len() - tail.len()..]) {
            if !seg_match(p, s, &mut params) {
                return None;
            }
        }
    }
    Some(params)
}

fn find<'a>(
    routes: &'a [Route],
    method: &Method,
    path: &str,
) -> Option<(&'a Route, Vec<(&'static str, String)>)> {
    routes
        .iter()
        .filter(|r| r.method == method)
        .find_map(|r| match_path(r.path, path).map(|p| (r, p)))
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    if e.status() == StatusCode::NOT_MODIFIED {
        let mut r = Response::new(body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return r;
    }
    body::json(e.status(), &json!({ "message": e.message }))
}

/// An error's answer, logged (at error level when it is the daemon's).
fn failed(e: &ApiError, method: &Method, path: &str) -> Response<Body> {
    if e.status().is_server_error() {
        error!(%method, %path, "handler error: {}", e.message);
    } else {
        debug!(%method, %path, status = e.status().as_u16(), "{}", e.message);
    }
    error_response(e)
}

/// Serve one request: never fails, errors become `{"message": ...}`.
/// `peer` is what the connection knows of its client (its TLS certificate).
pub async fn handle(
    ctx: Arc<ApiContext>,
    req: Request<Incoming>,
    peer: Arc<super::authz::Peer>,
) -> Response<Body> {
    let start = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    debug!("Calling {} {}", method, req.uri());
    let mut route = None;
    let mut resp = match dispatch(ctx.clone(), req, &peer, &mut route).await {
        Ok(r) => r,
        Err(e) => failed(&e, &method, &path),
    };
    decorate(&ctx, resp.headers_mut());
    // The route's duration (and dockerd's action timer) when its response
    // ends, streams included.
    match route {
        Some(route) => resp.map(|b| {
            Body::new(crate::metrics::Timed::new(b, start, move |took| {
                crate::metrics::observe(&method, route, &query, took)
            }))
        }),
        None => resp,
    }
}

async fn dispatch(
    ctx: Arc<ApiContext>,
    mut req: Request<Incoming>,
    peer: &super::authz::Peer,
    matched: &mut Option<&'static str>,
) -> Result<Response<Body>, ApiError> {
    let cfg = ctx.config();
    if req.method() == Method::OPTIONS && !cfg.api_cors_header.is_empty() {
        return Ok(Response::new(body::empty()));
    }
    if req.headers().contains_key(super::target::BAD_FRAMING) {
        // Both framings: which one a peer believes is how requests are
        // smuggled past a proxy or a plugin. hyper closes the connection
        // after this answer.
        return Err(ApiError::invalid(
            "bad request: both Transfer-Encoding and Content-Length are set",
        ));
    }
    let full_path = req.uri().path().to_string();
    let (version, path) = split_prefix(&full_path)?;
    // Only canonical paths are routed: no empty, `.` or `..` segment, no
    // trailing slash (what an authorization plugin is shown is what runs).
    if super::authz::canonical_path(&full_path).is_none() {
        return Err(ApiError::not_found("page not found"));
    }
    let Some((route, params)) = find(&ctx.routes, req.method(), path) else {
        return Err(ApiError::not_found("page not found"));
    };
    *matched = Some(route.path);
    let query = super::filters::Query::parse(req.uri().query());
    let raw_query = req.uri().query().map(str::to_string);
    let method = req.method().clone();
    let headers = req.headers().clone();
    let (body, incoming) = match route.body {
        BodyMode::Stream => (Bytes::new(), Some(req)),
        BodyMode::Capped => (read_capped(&mut req).await?, None),
        BodyMode::Hijack => (read_capped(&mut req).await?, Some(req)),
    };
    let plugins = &cfg.authorization_plugins;
    let authz = if plugins.is_empty() {
        None
    } else {
        // The bytes the handler gets, exactly: read once, shown to the
        // plugins, then handed over.
        let a = super::authz::request(
            &method,
            &full_path,
            raw_query.as_deref(),
            &headers,
            &body,
            peer,
        );
        super::authz::check_request(plugins, &a).await?;
        Some(a)
    };
    let answer = (route.handler)(Req {
        ctx,
        method: method.clone(),
        version,
        params,
        query,
        headers,
        body,
        incoming,
    })
    .await;
    match authz {
        None => answer,
        Some(a) => {
            let resp = answer.unwrap_or_else(|e| failed(&e, &method, &full_path));
            super::authz::check_response(plugins, a, resp).await
        }
    }
}

async fn read_capped(req: &mut Request<Incoming>) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::TooLarge,
            format!("request body too large: this endpoint accepts at most {MAX_BODY} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > MAX_BODY as u64 {
            return Err(too_large());
        }
    }
    match Limited::new(req.body_mut(), MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::invalid(format!("reading request body: {e}"))),
    }
}

/// Headers on every response, as dockerd sends them.
pub fn decorate(ctx: &ApiContext, h: &mut HeaderMap) {
    let cfg = ctx.config();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION_HEADER));
    h.insert(
        "Docker-Experimental",
        HeaderValue::from_static(if cfg.experimental { "true" } else { "false" }),
    );
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Server", HeaderValue::from_static(SERVER_HEADER));
    if !cfg.api_cors_header.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&cfg.api_cors_header) {
            h.insert("Access-Control-Allow-Origin", v);
        }
        h.insert(
            "Access-Control-Allow-Headers",
            HeaderValue::from_static(
                "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth",
            ),
        );
        h.insert(
            "Access-Control-Allow-Methods",
            HeaderValue::from_static("HEAD, GET, POST, DELETE, PUT, OPTIONS"),
        );
    }
}

const API_VERSION_HEADER: &str = "1.53";
const SERVER_HEADER: &str = concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)");

const _: () = assert!(
    MAX_API.0 == 1 && MAX_API.1 == 53,
    "keep API_VERSION_HEADER in step with MAX_API"
);

/// A handler's JSON reply with status 200.
pub fn ok_json<T: serde::Serialize>(v: &T) -> Result<Response<Body>, ApiError> {
    Ok(body::json(StatusCode::OK, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_matching() {
        assert_eq!(match_path("/_ping", "/_ping"), Some(vec![]));
        assert_eq!(
            match_path("/containers/{id}/json", "/containers/abc/json"),
            Some(vec![("id", "abc".to_string())])
        );
        assert_eq!(
            match_path("/containers/{id}/json", "/containers//json"),
            None
        );
        assert_eq!(match_path("/info", "/info/x"), None);
        assert_eq!(match_path("/info", "/inf"), None);
        assert_eq!(
            match_path(
                "/images/{name*}/json",
                "/images/127.0.0.1:5000/trace/small/json"
            ),
            Some(vec![("name", "127.0.0.1:5000/trace/small".to_string())])
        );
        assert_eq!(match_path("/images/{name*}/json", "/images/json"), None);
        assert_eq!(
            match_path("/images/{name*}", "/images/a/b:1"),
            Some(vec![("name", "a/b:1".to_string())])
        );
        assert_eq!(match_path("/images/{name*}/tag", "/images//tag"), None);
    }
}
