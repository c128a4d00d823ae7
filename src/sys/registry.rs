//! Registry access: credentials from `X-Registry-Auth`, which registries
//! are insecure (plain HTTP), the oci-client for a registry, and its errors
//! in dockerd's words.

use std::net::IpAddr;

use base64::Engine;
use berth_actors::ErrorKind;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::config::DaemonConfig;

/// The JSON the CLI sends base64-encoded in `X-Registry-Auth` and `/auth`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub serveraddress: String,
    #[serde(default)]
    pub identitytoken: String,
    #[serde(default)]
    pub registrytoken: String,
}

impl AuthConfig {
    /// Decode `X-Registry-Auth` (URL-safe or standard base64, padding optional).
    pub fn from_header(h: Option<&str>) -> Result<AuthConfig, String> {
        let Some(h) = h.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(AuthConfig::default());
        };
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(h)
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.trim_end_matches('='))
            })
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
            .map_err(|e| format!("invalid X-Registry-Auth header: {e}"))?;
        serde_json::from_slice(&raw).map_err(|e| format!("invalid X-Registry-Auth header: {e}"))
    }

    pub fn registry_auth(&self) -> RegistryAuth {
        if !self.registrytoken.is_empty() {
            return RegistryAuth::Bearer(self.registrytoken.clone());
        }
        if !self.username.is_empty() {
            return RegistryAuth::Basic(self.username.clone(), self.password.clone());
        }
        if !self.auth.is_empty() {
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(&self.auth) {
                if let Some((u, p)) = String::from_utf8_lossy(&b).split_once(':') {
                    return RegistryAuth::Basic(u.to_string(), p.to_string());
                }
            }
        }
        RegistryAuth::Anonymous
    }
}

/// `host[:port]` of a server address as users write it.
pub fn registry_host(addr: &str) -> String {
    let a = addr.trim();
    let a = a
        .strip_prefix("https://")
        .or_else(|| a.strip_prefix("http://"))
        .unwrap_or(a);
    let a = a.split('/').next().unwrap_or(a);
    if a.is_empty() || a == "index.docker.io" || a == "registry-1.docker.io" {
        "docker.io".into()
    } else {
        a.to_string()
    }
}

/// dockerd's rule: loopback registries and those in `insecure-registries`
/// (host:port or a CIDR holding the host's IP) are reached over plain HTTP.
pub fn is_insecure(host: &str, cfg: &DaemonConfig) -> bool {
    let bare = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    if bare == "localhost" {
        return true;
    }
    let ip = bare.parse::<IpAddr>().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    cfg.insecure_registries.iter().any(|r| {
        r == host
            || r == bare
            || r.parse::<ipnet::IpNet>()
                .ok()
                .zip(ip)
                .is_some_and(|(net, ip)| net.contains(&ip))
    })
}

pub fn client(host: &str, cfg: &DaemonConfig) -> oci_client::Client {
    client_with(host, is_insecure(host, cfg), cfg)
}

/// A client for `host`, over plain HTTP when `http`.
pub fn client_with(host: &str, http: bool, cfg: &DaemonConfig) -> oci_client::Client {
    let protocol = if http {
        ClientProtocol::HttpsExcept(vec![host.to_string()])
    } else {
        ClientProtocol::Https
    };
    oci_client::Client::new(ClientConfig {
        protocol,
        max_concurrent_download: cfg.max_concurrent_downloads.max(1) as usize,
        max_concurrent_upload: cfg.max_concurrent_uploads.max(1) as usize,
        ..Default::default()
    })
}

fn words(code: &str) -> String {
    let mut out = String::new();
    for (i, c) in code.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A registry error as dockerd words it, with its kind.
pub fn describe(e: &OciDistributionError) -> (ErrorKind, String) {
    match e {
        OciDistributionError::UnauthorizedError { .. } => (
            ErrorKind::Unauthorized,
            "unauthorized: authentication required".into(),
        ),
        OciDistributionError::AuthenticationFailure(m) => {
            (ErrorKind::Unauthorized, format!("unauthorized: {m}"))
        }
        OciDistributionError::ImageManifestNotFoundError(m) => {
            (ErrorKind::NotFound, format!("manifest unknown: {m}"))
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let first = envelope.errors.first();
            let code = first
                .map(|e| words(&format!("{:?}", e.code)))
                .unwrap_or_else(|| "unknown".into());
            let msg = first.map(|e| e.message.clone()).unwrap_or_default();
            let kind = match code.as_str() {
                "unauthorized" => ErrorKind::Unauthorized,
                "denied" => ErrorKind::Forbidden,
                "manifest unknown" | "name unknown" | "blob unknown" => ErrorKind::NotFound,
                _ => ErrorKind::System,
            };
            (kind, format!("{code}: {msg}"))
        }
        OciDistributionError::ServerError { code, message, url } if *code == 401 => (
            ErrorKind::Unauthorized,
            format!("unauthorized: {message} ({url})"),
        ),
        OciDistributionError::ServerError { code, message, url } if *code == 404 => {
            (ErrorKind::NotFound, format!("not found: {message} ({url})"))
        }
        OciDistributionError::RequestError(e) => {
            (ErrorKind::Unavailable, format!("registry unreachable: {e}"))
        }
        other => (ErrorKind::System, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_header_forms() {
        assert!(matches!(
            AuthConfig::from_header(Some("e30="))
                .unwrap()
                .registry_auth(),
            RegistryAuth::Anonymous
        ));
        let h = base64::engine::general_purpose::URL_SAFE
            .encode(br#"{"username":"u","password":"p?>"}"#);
        assert!(
            matches!(AuthConfig::from_header(Some(&h)).unwrap().registry_auth(), RegistryAuth::Basic(u, p) if u == "u" && p == "p?>")
        );
        assert!(AuthConfig::from_header(Some("!!!")).is_err());
    }

    #[test]
    fn insecure_rules() {
        let mut c = DaemonConfig::default();
        assert!(is_insecure("127.0.0.1:5000", &c));
        assert!(is_insecure("localhost:5000", &c));
        assert!(is_insecure("[::1]:5000", &c));
        assert!(!is_insecure("10.1.2.3:5000", &c));
        c.insecure_registries = vec!["10.0.0.0/8".into(), "reg.example:443".into()];
        assert!(is_insecure("10.1.2.3:5000", &c));
        assert!(is_insecure("reg.example:443", &c));
        assert!(!is_insecure("docker.io", &c));
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("127.0.0.1:5001"), "127.0.0.1:5001");
    }
}
