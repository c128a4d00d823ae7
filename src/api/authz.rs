//! Authorization plugins in front of every routed request
//! (`authorization-plugins`), in dockerd's protocol and stricter than
//! dockerd where dockerd let requests past the plugin:
//!
//! - The body the plugin sees is the body the handler gets: the router
//!   reads it once (whole, at most [`super::router::MAX_BODY`] bytes,
//!   whatever its framing) and hands the same bytes to both. dockerd sends
//!   no body over 1 MiB (and, before its fix of CVE-2024-41110, none for a
//!   `Content-Length: 0` request that carried one).
//! - The URI the plugin sees is the path the router routes: paths with
//!   empty, `.` or `..` segments are not routed at all, and the segments
//!   are sent decoded and re-encoded the one way (`/containers/s%65cret`
//!   reaches the plugin as `/containers/secret`, the container it names).
//! - An answer of known length is held until every plugin allowed it
//!   (`AuthZRes` sees its whole body); a streamed or hijacked answer is
//!   asked about with its status and headers before its first byte leaves.
//!
//! Uploads (image load, import, build context, archive put) are streamed:
//! their plugins see the headers and no body, as dockerd sends none for
//! bodies that are not JSON. `/auth` bodies (passwords) are never sent,
//! nor the `Authorization`, `X-Registry-Auth` and `X-Registry-Config`
//! headers, as dockerd.

use std::collections::BTreeMap;

use berth_actors::plugin::authz::{authorize, AuthzRequest, Phase};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::HeaderMap;
use hyper::{Method, Response};
use rustls::pki_types::CertificateDer;

use super::body::{self, Body};
use super::errors::ApiError;

/// What a connection tells about its client: from its TLS certificate.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The common name of the first certificate.
    pub user: String,
    /// The chain, PEM.
    pub certificates: Vec<String>,
}

impl Peer {
    pub fn from_certificates(certs: Option<&[CertificateDer<'_>]>) -> Self {
        let Some(certs) = certs.filter(|c| !c.is_empty()) else {
            return Peer::default();
        };
        let user = x509_parser::parse_x509_certificate(certs[0].as_ref())
            .ok()
            .and_then(|(_, c)| {
                c.subject()
                    .iter_common_name()
                    .next()
                    .and_then(|cn| cn.as_str().ok().map(str::to_string))
            })
            .unwrap_or_default();
        Peer {
            user,
            certificates: certs.iter().map(|c| pem(c.as_ref())).collect(),
        }
    }
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(line));
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

/// Go's canonical header key (`content-type` → `Content-Type`).
fn canonical_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// The headers a plugin is shown: credentials left out, one value per
/// key (the last, as dockerd's loop leaves it), `Host` and
/// `Transfer-Encoding` left out as Go's server moves them out of the map.
pub fn plugin_headers(h: &HeaderMap) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (k, v) in h {
        let k = canonical_key(k.as_str());
        if matches!(
            k.as_str(),
            "Authorization"
                | "X-Registry-Auth"
                | "X-Registry-Config"
                | "Host"
                | "Transfer-Encoding"
        ) || k.starts_with("X-Berth-")
        {
            continue;
        }
        m.insert(k, String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    m
}

/// Bytes a path segment keeps as they are; every other byte is sent
/// percent-encoded.
fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// The request's path as the router splits it, each segment decoded and
/// encoded again the one canonical way; `None` for a path the router
/// does not route (empty, `.` or `..` segments, a trailing slash).
pub fn canonical_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let mut out = String::with_capacity(path.len());
    for seg in rest.split('/') {
        let raw: Vec<u8> = percent_encoding::percent_decode_str(seg).collect();
        if raw.is_empty() || raw == b"." || raw == b".." {
            return None;
        }
        out.push('/');
        for b in raw {
            if keep(b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Some(out)
}

/// The plugin's view of a request about to be handled.
pub fn request(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    peer: &Peer,
) -> AuthzRequest {
    let mut uri = canonical_path(path).unwrap_or_else(|| path.to_string());
    if let Some(q) = query {
        uri.push('?');
        uri.push_str(q);
    }
    let is_auth = super::version::split_prefix(path).is_ok_and(|(_, p)| p == "/auth");
    AuthzRequest {
        user: peer.user.clone(),
        user_authn_method: if peer.user.is_empty() {
            String::new()
        } else {
            "TLS".into()
        },
        request_method: method.to_string(),
        request_uri: uri,
        request_body: if is_auth { Bytes::new() } else { body.clone() },
        request_headers: plugin_headers(headers),
        request_peer_certificates: peer.certificates.clone(),
        ..Default::default()
    }
}

/// Ask the plugins before the handler runs.
pub async fn check_request(plugins: &[String], req: &AuthzRequest) -> Result<(), ApiError> {
    authorize(plugins, Phase::Request, req)
        .await
        .map_err(|e| ApiError::from_err(&e))
}

/// Ask the plugins about the handler's answer before it leaves: the
/// answer, or the plugins' refusal in its place.
pub async fn check_response(
    plugins: &[String],
    mut req: AuthzRequest,
    resp: Response<Body>,
) -> Result<Response<Body>, ApiError> {
    use hyper::body::Body as _;
    req.response_status_code = resp.status().as_u16();
    req.response_headers = plugin_headers(resp.headers());
    let whole = resp
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= super::router::MAX_BODY as u64);
    if !whole {
        // A stream: asked about before its first byte.
        authorize(plugins, Phase::Response, &req)
            .await
            .map_err(|e| ApiError::from_err(&e))?;
        return Ok(resp);
    }
    let (parts, b) = resp.into_parts();
    let bytes = b
        .collect()
        .await
        .map_err(|e| ApiError::system(format!("reading the answer: {e}")))?
        .to_bytes();
    req.response_body = bytes.clone();
    authorize(plugins, Phase::Response, &req)
        .await
        .map_err(|e| ApiError::from_err(&e))?;
    Ok(Response::from_parts(parts, body::full(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_routed() {
        assert_eq!(
            canonical_path("/v1.41/containers/create").as_deref(),
            Some("/v1.41/containers/create")
        );
        assert_eq!(
            canonical_path("/containers/s%65cret/exec").as_deref(),
            Some("/containers/secret/exec")
        );
        assert_eq!(
            canonical_path("/containers/a%2fb/json").as_deref(),
            Some("/containers/a%2Fb/json")
        );
        assert_eq!(
            canonical_path("/images/127.0.0.1:5000/a/b/json").as_deref(),
            Some("/images/127.0.0.1:5000/a/b/json")
        );
        for bad in [
            "//containers/create",
            "/containers//create",
            "/containers/create/",
            "/containers/./create",
            "/containers/%2e%2e/create",
            "",
            "/",
        ] {
            assert_eq!(canonical_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_shown_to_plugins() {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("x-registry-auth", "secret".parse().unwrap());
        h.insert("authorization", "Basic x".parse().unwrap());
        h.insert("host", "docker".parse().unwrap());
        h.insert("user-agent", "Docker-Client/28".parse().unwrap());
        let m = plugin_headers(&h);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["Content-Type", "User-Agent"]);
    }
}
