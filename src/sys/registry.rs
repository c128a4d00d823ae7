//! Registry access: which registries are insecure (plain HTTP), the
//! oci-clients of a registry session, and their errors in dockerd's words.

use std::net::IpAddr;

use berth_actors::ErrorKind;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;

use crate::config::DaemonConfig;

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

/// The OCI clients of one registry session under one set of credentials:
/// one per host (the registry, its mirrors) and protocol, kept so their
/// connections and cached tokens serve every later operation.
#[derive(Default)]
pub struct Clients(std::sync::Mutex<std::collections::HashMap<ClientKey, oci_client::Client>>);

type ClientKey = (String, bool, usize, usize);

impl Clients {
    /// The client of `host` (plain HTTP if it is an insecure registry).
    pub fn for_host(&self, host: &str, cfg: &DaemonConfig) -> oci_client::Client {
        self.get(host, is_insecure(host, cfg), cfg)
    }

    /// The client of `host`, over plain HTTP when `http`.
    pub fn get(&self, host: &str, http: bool, cfg: &DaemonConfig) -> oci_client::Client {
        let downloads = cfg.max_concurrent_downloads.max(1) as usize;
        let uploads = cfg.max_concurrent_uploads.max(1) as usize;
        let key = (host.to_string(), http, downloads, uploads);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| {
                let protocol = if http {
                    ClientProtocol::HttpsExcept(vec![host.to_string()])
                } else {
                    ClientProtocol::Https
                };
                oci_client::Client::new(ClientConfig {
                    protocol,
                    max_concurrent_download: downloads,
                    max_concurrent_upload: uploads,
                    ..Default::default()
                })
            })
            .clone()
    }
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
    }
}
