//! Addresses and connections of the remote drivers: dockerd's
//! `proto://address` forms, blocking sockets (the shim's log writer is a
//! thread of its own), TLS for syslog's `tcp+tls`, and dial errors worded
//! as Go words them (`dial tcp 127.0.0.1:1: connect: connection refused`).

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::Arc;
use std::time::Duration;

/// A parsed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// `tcp`, `udp`, `unix`, `unixgram` or `tcp+tls`.
    pub proto: String,
    /// `host:port`, or a socket path.
    pub addr: String,
}

/// Go's `urlutil.IsTransportURL`.
pub fn is_transport_url(s: &str) -> bool {
    ["tcp://", "tcp+tls://", "udp://", "unix://", "unixgram://"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Split `proto://rest` (the caller checked the form).
pub fn split_url(s: &str) -> (&str, &str) {
    s.split_once("://").unwrap_or(("", s))
}

/// Go's `net.SplitHostPort` errors: `Ok(None)` when the port is missing.
pub fn split_host_port(hp: &str) -> Result<Option<(String, String)>, String> {
    if let Some(rest) = hp.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("address {hp}: missing ']' in address"));
        };
        return match after.strip_prefix(':') {
            Some(p) => Ok(Some((host.to_string(), p.to_string()))),
            None if after.is_empty() => Ok(None),
            None => Err(format!("address {hp}: missing port in address")),
        };
    }
    match hp.matches(':').count() {
        0 => Ok(None),
        1 => {
            let (h, p) = hp.split_once(':').unwrap_or((hp, ""));
            Ok(Some((h.to_string(), p.to_string())))
        }
        _ => Err(format!("address {hp}: too many colons in address")),
    }
}

/// Go's wording of an error from connecting.
pub fn dial_error(net: &str, addr: &str, e: &io::Error) -> String {
    let why = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        io::ErrorKind::NotFound => "connect: no such file or directory".to_string(),
        io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        io::ErrorKind::PermissionDenied => "connect: permission denied".to_string(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    };
    format!("dial {net} {addr}: {why}")
}

/// How long a connect may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write may block before the connection counts as broken.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// An open connection to a receiver.
pub enum Conn {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Udp(UdpSocket),
    Unix(UnixStream),
    UnixGram(UnixDatagram),
}

fn tcp(addr: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Conn {
    /// Connect to `a` (`tls`: the client configuration for `tcp+tls`).
    pub fn connect(a: &Addr, tls: Option<&Arc<rustls::ClientConfig>>) -> io::Result<Conn> {
        Ok(match a.proto.as_str() {
            "tcp" => Conn::Tcp(tcp(&a.addr)?),
            "udp" => {
                let target = a
                    .addr
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
                let bind = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(target)?;
                Conn::Udp(s)
            }
            "unix" => {
                let s = UnixStream::connect(&a.addr)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Conn::Unix(s)
            }
            "unixgram" => {
                let s = UnixDatagram::unbound()?;
                s.connect(&a.addr)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Conn::UnixGram(s)
            }
            "tcp+tls" => {
                let cfg = tls
                    .cloned()
                    .ok_or_else(|| io::Error::other("tcp+tls without a TLS configuration"))?;
                let host = split_host_port(&a.addr)
                    .ok()
                    .flatten()
                    .map(|(h, _)| h)
                    .unwrap_or_else(|| a.addr.clone());
                let name = rustls::pki_types::ServerName::try_from(host)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let conn = rustls::ClientConnection::new(cfg, name).map_err(io::Error::other)?;
                let mut s = rustls::StreamOwned::new(conn, tcp(&a.addr)?);
                // The handshake now, so a refused certificate fails the
                // connect, not the first line.
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Conn::Tls(Box::new(s))
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unsupported protocol {other}"),
                ))
            }
        })
    }

    /// A byte stream (messages framed by the protocol), not datagrams.
    pub fn is_stream(&self) -> bool {
        matches!(self, Conn::Tcp(_) | Conn::Tls(_) | Conn::Unix(_))
    }

    /// Send one message: a datagram, or bytes on the stream.
    pub fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(msg),
            Conn::Tls(s) => s.write_all(msg),
            Conn::Unix(s) => s.write_all(msg),
            Conn::Udp(s) => s.send(msg).map(|_| ()),
            Conn::UnixGram(s) => s.send(msg).map(|_| ()),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }

    /// The local address as Go's `LocalAddr().String()` (syslog's hostname
    /// field when none is set).
    pub fn local_addr(&self) -> String {
        match self {
            Conn::Tcp(s) => s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Conn::Tls(s) => s
                .sock
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            Conn::Udp(s) => s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Conn::Unix(_) | Conn::UnixGram(_) => String::new(),
        }
    }

    /// The stream, for reading an answer (fluentd's acks).
    pub fn reader(&mut self) -> Option<&mut dyn io::Read> {
        match self {
            Conn::Tcp(s) => Some(s),
            Conn::Tls(s) => Some(s.as_mut()),
            Conn::Unix(s) => Some(s),
            _ => None,
        }
    }
}

/// A TLS client configuration from PEM files: the CA (else the host's
/// roots in /etc/ssl/certs), a client certificate and key, or no
/// verification at all (`skip_verify`).
pub fn tls_config(
    ca: Option<&str>,
    cert: Option<&str>,
    key: Option<&str>,
    skip_verify: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let path = ca.unwrap_or("/etc/ssl/certs/ca-certificates.crt");
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("open {path}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("reading {path}: {e}"))?;
        for c in certs {
            let _ = roots.add(c);
        }
        builder.with_root_certificates(roots)
    };
    let cfg = match (cert, key) {
        (Some(c), Some(k)) => {
            let chain = CertificateDer::pem_file_iter(c)
                .map_err(|e| format!("open {c}: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("reading {c}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(k).map_err(|e| format!("reading {k}: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_and_errors() {
        assert_eq!(
            split_host_port("h:1").unwrap(),
            Some(("h".into(), "1".into()))
        );
        assert_eq!(split_host_port("h").unwrap(), None);
        assert_eq!(
            split_host_port("[::1]:5").unwrap(),
            Some(("::1".into(), "5".into()))
        );
        assert_eq!(
            split_host_port("x:y:z").unwrap_err(),
            "address x:y:z: too many colons in address"
        );
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            dial_error("tcp", "127.0.0.1:1", &e),
            "dial tcp 127.0.0.1:1: connect: connection refused"
        );
    }
}
