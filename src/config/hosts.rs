//! `-H/--host` and `hosts` addresses, parsed as dockerd parses them.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::model::DEFAULT_UNIX_SOCKET;

/// Where berthd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    /// `fd://` (every activated socket) or `fd://N`.
    Fd(Option<i32>),
    Tcp {
        host: String,
        port: u16,
    },
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            ListenAddr::Fd(None) => write!(f, "fd://"),
            ListenAddr::Fd(Some(n)) => write!(f, "fd://{n}"),
            ListenAddr::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            ListenAddr::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

impl ListenAddr {
    /// Parse one host; `tls` picks the default TCP port (2376, else 2375).
    pub fn parse(s: &str, tls: bool) -> Result<ListenAddr, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(ListenAddr::Unix(DEFAULT_UNIX_SOCKET.into()));
        }
        let (proto, rest) = match s.split_once("://") {
            Some(x) => x,
            None => return Err(format!("invalid bind address ({s}): unsupported proto")),
        };
        match proto {
            "unix" => {
                if rest.is_empty() {
                    Ok(ListenAddr::Unix(DEFAULT_UNIX_SOCKET.into()))
                } else if !rest.starts_with('/') {
                    Err(format!(
                        "invalid bind address ({s}): unix socket path must be absolute"
                    ))
                } else {
                    Ok(ListenAddr::Unix(rest.into()))
                }
            }
            "fd" => {
                if rest.is_empty() {
                    Ok(ListenAddr::Fd(None))
                } else {
                    rest.parse::<i32>()
                        .ok()
                        .filter(|n| *n >= 3)
                        .map(|n| ListenAddr::Fd(Some(n)))
                        .ok_or_else(|| {
                            format!("invalid bind address ({s}): fd must be a number >= 3")
                        })
                }
            }
            "tcp" => {
                let rest = rest.trim_end_matches('/');
                if rest.contains('/') {
                    return Err(format!(
                        "invalid bind address ({s}): should not contain a path element"
                    ));
                }
                let default_port = if tls { 2376 } else { 2375 };
                let (host, port) = if let Some(r) = rest.strip_prefix('[') {
                    let (h, after) = r
                        .split_once(']')
                        .ok_or_else(|| format!("invalid bind address ({s}): missing ']'"))?;
                    let port = match after.strip_prefix(':') {
                        Some(p) => p.to_string(),
                        None if after.is_empty() => String::new(),
                        None => return Err(format!("invalid bind address ({s})")),
                    };
                    (h.to_string(), port)
                } else {
                    match rest.rsplit_once(':') {
                        Some((h, p)) => (h.to_string(), p.to_string()),
                        None => (rest.to_string(), String::new()),
                    }
                };
                let host = if host.is_empty() {
                    "127.0.0.1".to_string()
                } else {
                    host
                };
                let port = if port.is_empty() {
                    default_port
                } else {
                    port.parse::<u16>()
                        .map_err(|_| format!("invalid bind address ({s}): invalid port {port:?}"))?
                };
                Ok(ListenAddr::Tcp { host, port })
            }
            _ => Err(format!(
                "invalid bind address ({s}): unsupported proto '{proto}'"
            )),
        }
    }

    /// Whether a TCP address only reaches this host.
    pub fn is_loopback(&self) -> bool {
        match self {
            ListenAddr::Tcp { host, port } => {
                if host == "localhost" {
                    return true;
                }
                match host.parse::<IpAddr>() {
                    Ok(ip) => ip.is_loopback(),
                    Err(_) => (host.as_str(), *port)
                        .to_socket_addrs()
                        .map(|mut it| it.all(|a| a.ip().is_loopback()))
                        .unwrap_or(false),
                }
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockerd_forms() {
        assert_eq!(
            ListenAddr::parse("unix:///tmp/x.sock", false).unwrap(),
            ListenAddr::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            ListenAddr::parse("unix://", false).unwrap(),
            ListenAddr::Unix(DEFAULT_UNIX_SOCKET.into())
        );
        assert_eq!(
            ListenAddr::parse("fd://", false).unwrap(),
            ListenAddr::Fd(None)
        );
        assert_eq!(
            ListenAddr::parse("fd://3", false).unwrap(),
            ListenAddr::Fd(Some(3))
        );
        assert_eq!(
            ListenAddr::parse("tcp://0.0.0.0:2375", false).unwrap(),
            ListenAddr::Tcp {
                host: "0.0.0.0".into(),
                port: 2375
            }
        );
        assert_eq!(
            ListenAddr::parse("tcp://127.0.0.1", true).unwrap(),
            ListenAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 2376
            }
        );
        assert_eq!(
            ListenAddr::parse("tcp://[::1]:99", false).unwrap(),
            ListenAddr::Tcp {
                host: "::1".into(),
                port: 99
            }
        );
        assert!(ListenAddr::parse("udp://x", false).is_err());
        assert!(ListenAddr::parse("tcp://h:99999", false).is_err());
        assert!(ListenAddr::parse("fd://1", false).is_err());
        assert!(ListenAddr::parse("unix://rel", false).is_err());
        assert!(ListenAddr::parse("/tmp/x", false).is_err());
    }

    #[test]
    fn loopback() {
        assert!(ListenAddr::parse("tcp://127.0.0.1:1", false)
            .unwrap()
            .is_loopback());
        assert!(ListenAddr::parse("tcp://[::1]:1", false)
            .unwrap()
            .is_loopback());
        assert!(!ListenAddr::parse("tcp://0.0.0.0:1", false)
            .unwrap()
            .is_loopback());
    }
}
