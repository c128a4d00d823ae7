//! TLS for TCP listeners (rustls, ring provider, TLS 1.2 and 1.3 only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::DaemonConfig;

/// dockerd's default certificate directory: `$DOCKER_CERT_PATH` or `~/.docker`.
fn default_cert_dir() -> PathBuf {
    if let Ok(p) = std::env::var("DOCKER_CERT_PATH") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    Path::new(&home).join(".docker")
}

fn pick(configured: &str, default_name: &str) -> PathBuf {
    if configured.is_empty() {
        default_cert_dir().join(default_name)
    } else {
        PathBuf::from(configured)
    }
}

/// Build the server TLS config; with `tlsverify` only clients whose
/// certificate chains to the configured CA are admitted.
pub fn server_config(c: &DaemonConfig) -> Result<Arc<ServerConfig>, String> {
    let cert_path = pick(&c.tlscert, "cert.pem");
    let key_path = pick(&c.tlskey, "key.pem");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading certificate {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("reading key {}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = if c.tlsverify.unwrap_or(false) {
        let ca_path = pick(&c.tlscacert, "ca.pem");
        let mut roots = RootCertStore::empty();
        let cas = CertificateDer::pem_file_iter(&ca_path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("reading CA {}: {e}", ca_path.display()))?;
        for ca in cas {
            roots
                .add(ca)
                .map_err(|e| format!("CA {}: {e}", ca_path.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("no CA certificate in {}", ca_path.display()));
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
