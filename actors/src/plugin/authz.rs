//! Authorization plugins (`authorization-plugins`): every API request is
//! asked of each plugin in order before its handler runs
//! (`AuthZPlugin.AuthZReq`), and its answer after (`AuthZPlugin.AuthZRes`).
//! The JSON is dockerd's (`pkg/authorization/api.go`), field for field.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};
use tracing::debug;

use super::{get, PluginError};
use crate::ErrorKind;

/// The interface an authorization plugin implements.
pub const INTERFACE: &str = "authz";
pub const AUTHZ_REQ: &str = "AuthZPlugin.AuthZReq";
pub const AUTHZ_RES: &str = "AuthZPlugin.AuthZRes";

fn b64<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
}

/// Go's `[]*PeerCertificate` marshals each certificate as the base64 of
/// its PEM text.
fn b64_each<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        v.iter()
            .map(|p| base64::engine::general_purpose::STANDARD.encode(p.as_bytes())),
    )
}

/// What an authorization plugin is told of one request (and, after the
/// handler, of its answer).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuthzRequest {
    /// The common name of the client's TLS certificate, if it sent one.
    #[serde(rename = "User", skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// `TLS` when `user` comes from a client certificate.
    #[serde(rename = "UserAuthNMethod", skip_serializing_if = "String::is_empty")]
    pub user_authn_method: String,
    #[serde(rename = "RequestMethod", skip_serializing_if = "String::is_empty")]
    pub request_method: String,
    /// The path the router routes, with its query.
    #[serde(rename = "RequestUri", skip_serializing_if = "String::is_empty")]
    pub request_uri: String,
    /// Exactly the bytes the handler gets.
    #[serde(
        rename = "RequestBody",
        skip_serializing_if = "Bytes::is_empty",
        serialize_with = "b64"
    )]
    pub request_body: Bytes,
    #[serde(rename = "RequestHeaders", skip_serializing_if = "BTreeMap::is_empty")]
    pub request_headers: BTreeMap<String, String>,
    /// The client's certificate chain, PEM.
    #[serde(
        rename = "RequestPeerCertificates",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "b64_each"
    )]
    pub request_peer_certificates: Vec<String>,
    #[serde(
        rename = "ResponseBody",
        skip_serializing_if = "Bytes::is_empty",
        serialize_with = "b64"
    )]
    pub response_body: Bytes,
    #[serde(rename = "ResponseHeaders", skip_serializing_if = "BTreeMap::is_empty")]
    pub response_headers: BTreeMap<String, String>,
    #[serde(rename = "ResponseStatusCode", skip_serializing_if = "is_zero")]
    pub response_status_code: u16,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// A plugin's verdict.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AuthzResponse {
    #[serde(rename = "Allow", default)]
    pub allow: bool,
    #[serde(rename = "Msg", default)]
    pub msg: String,
    #[serde(rename = "Err", default)]
    pub err: String,
}

/// Which half of a request is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the handler (`AuthZReq`).
    Request,
    /// After the handler, before the answer leaves (`AuthZRes`).
    Response,
}

impl Phase {
    pub fn method(self) -> &'static str {
        match self {
            Phase::Request => AUTHZ_REQ,
            Phase::Response => AUTHZ_RES,
        }
    }
}

fn failed(plugin: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::new(
        ErrorKind::System,
        format!("plugin {plugin} failed with error: {e}"),
    )
}

/// What one plugin's answer means: allowed, or the error to answer with.
/// Anything but a well-formed `Allow: true` denies (fail closed).
pub fn verdict(plugin: &str, phase: Phase, body: &[u8]) -> Result<(), PluginError> {
    let r: AuthzResponse = serde_json::from_slice(body)
        .map_err(|e| failed(plugin, format!("{}: invalid answer: {e}", phase.method())))?;
    if r.allow {
        return Ok(());
    }
    if !r.err.is_empty() {
        return Err(failed(plugin, format!("{}: {}", phase.method(), r.err)));
    }
    Err(PluginError::new(
        ErrorKind::Forbidden,
        format!("authorization denied by plugin {plugin}: {}", r.msg),
    ))
}

/// Ask every plugin of `plugins`, in order, about `req`: the first that
/// denies (or cannot be asked) decides.
pub async fn authorize(
    plugins: &[String],
    phase: Phase,
    req: &AuthzRequest,
) -> Result<(), PluginError> {
    if plugins.is_empty() {
        return Ok(());
    }
    let body = Bytes::from(
        serde_json::to_vec(req).map_err(|e| failed(&plugins[0], format!("encoding: {e}")))?,
    );
    for name in plugins {
        debug!(plugin = %name, uri = %req.request_uri, "AuthZ {:?}", phase);
        let h = get(name, INTERFACE).await.map_err(|e| failed(name, e))?;
        let answer = h
            .call(phase.method(), body.clone())
            .await
            .map_err(|e| failed(name, e))?;
        verdict(name, phase, &answer)?;
    }
    Ok(())
}
