//! Binding the API sockets: unix (mode 0660, group), systemd fds, TCP with
//! TLS. Bound once at startup; the FrontDoor actor serves clones of them, so
//! a FrontDoor restart never closes a socket.

use std::fs;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use nix::sys::socket::{getsockname, AddressFamily, SockaddrLike, SockaddrStorage};
use nix::unistd::{Gid, Group};
use rustls::ServerConfig;
use tracing::{info, warn};

use super::{tls, StartupError};
use crate::config::{DaemonConfig, ListenAddr};

/// One bound API socket.
#[derive(Debug)]
pub enum Bound {
    Unix {
        listener: UnixListener,
        /// Removed at shutdown (not for activated sockets).
        path: Option<PathBuf>,
    },
    Tcp {
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
    },
}

#[derive(Debug)]
pub struct BoundListener {
    /// As the user wrote it, for logs.
    pub addr: String,
    pub socket: Bound,
}

impl BoundListener {
    /// Remove the socket file we created.
    pub fn cleanup(&self) {
        if let Bound::Unix { path: Some(p), .. } = &self.socket {
            let _ = fs::remove_file(p);
        }
    }
}

const ATTACK_SURFACE: &str = "Access to the remote API is equivalent to root access on the host. Refer\n         to the 'Docker daemon attack surface' section in the documentation for\n         more information: https://docs.docker.com/go/attack-surface/";

/// Bind every configured host; `fds` are the systemd-activated sockets.
/// Returns the listeners and warnings for `docker info`.
pub fn bind_all(
    c: &DaemonConfig,
    fds: &[RawFd],
) -> Result<(Vec<BoundListener>, Vec<String>), StartupError> {
    let mut warnings = Vec::new();
    let tls_on = c.tls_enabled();
    let hosts: Vec<String> = if c.hosts.is_empty() {
        vec![format!("unix://{}", crate::config::DEFAULT_UNIX_SOCKET)]
    } else {
        c.hosts.clone()
    };
    let group = socket_group(c, &mut warnings)?;
    let mut out = Vec::new();
    match bind_each(c, fds, &hosts, group, tls_on, &mut out, &mut warnings) {
        Ok(()) => Ok((out, warnings)),
        Err(e) => {
            // Leave nothing half-done: remove the sockets already created.
            for l in &out {
                l.cleanup();
            }
            Err(e)
        }
    }
}

fn bind_each(
    c: &DaemonConfig,
    fds: &[RawFd],
    hosts: &[String],
    group: Gid,
    tls_on: bool,
    out: &mut Vec<BoundListener>,
    warnings: &mut Vec<String>,
) -> Result<(), StartupError> {
    let mut fds_used = false;
    for h in hosts {
        let addr = ListenAddr::parse(h, tls_on).map_err(StartupError::Listener)?;
        match addr {
            ListenAddr::Unix(path) => {
                let listener = bind_unix(&path, group)?;
                info!(addr = %h, "API listen on {}", path.display());
                out.push(BoundListener {
                    addr: h.clone(),
                    socket: Bound::Unix {
                        listener,
                        path: Some(path),
                    },
                });
            }
            ListenAddr::Fd(which) => {
                if fds.is_empty() {
                    return Err(StartupError::Listener("no sockets found via socket activation: make sure the service was started by systemd".into()));
                }
                let chosen: Vec<RawFd> = match which {
                    None => fds.to_vec(),
                    Some(n) if fds.contains(&n) => vec![n],
                    Some(n) => return Err(StartupError::Listener(format!("too few socket activated files passed in by systemd: fd {n} not among {fds:?}"))),
                };
                for fd in chosen {
                    let socket = adopt_fd(fd, c, warnings)?;
                    info!(addr = %h, fd, "API listen on activated socket");
                    out.push(BoundListener {
                        addr: format!("fd://{fd}"),
                        socket,
                    });
                }
                fds_used = true;
            }
            ListenAddr::Tcp { ref host, port } => {
                let loopback = addr.is_loopback();
                let tls = tcp_security(c, &addr, loopback, warnings)?;
                let listener = TcpListener::bind((host.as_str(), port)).map_err(|e| {
                    StartupError::Listener(format!("listen tcp {host}:{port}: {e}"))
                })?;
                info!(addr = %h, tls = tls.is_some(), "API listen on {}", listener.local_addr().map(|a| a.to_string()).unwrap_or_default());
                out.push(BoundListener {
                    addr: h.clone(),
                    socket: Bound::Tcp { listener, tls },
                });
            }
        }
    }
    if !fds.is_empty() && !fds_used {
        warn!("systemd passed sockets but no fd:// host was configured; ignoring them");
    }
    Ok(())
}

fn socket_group(c: &DaemonConfig, warnings: &mut Vec<String>) -> Result<Gid, StartupError> {
    let (name, explicit) = if c.group.is_empty() {
        ("docker", false)
    } else {
        (c.group.as_str(), true)
    };
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        _ if explicit => Err(StartupError::Listener(format!(
            "can't create unix socket: group {name} not found"
        ))),
        _ => {
            let w = format!("WARNING: could not change group of the API socket to {name}: group not found; the socket belongs to root");
            warn!("{w}");
            warnings.push(w);
            Ok(Gid::from_raw(0))
        }
    }
}

fn bind_unix(path: &std::path::Path, group: Gid) -> Result<UnixListener, StartupError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            fs::remove_file(path)
                .map_err(|e| StartupError::io("removing stale socket", path, e))?;
        }
        Ok(_) => {
            return Err(StartupError::Listener(format!(
                "can't create unix socket {}: the path exists and is not a socket",
                path.display()
            )))
        }
        Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| StartupError::io("creating directory", parent, e))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| StartupError::io("binding unix socket", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))
        .map_err(|e| StartupError::io("setting mode of", path, e))?;
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), Some(group))
        .map_err(|e| StartupError::io("changing group of", path, e.into()))?;
    Ok(listener)
}

fn adopt_fd(
    fd: RawFd,
    c: &DaemonConfig,
    warnings: &mut Vec<String>,
) -> Result<Bound, StartupError> {
    let fam = getsockname::<SockaddrStorage>(fd)
        .map_err(|e| StartupError::Listener(format!("fd {fd} is not a socket: {e}")))?
        .family();
    // Children must never inherit the API socket.
    nix::fcntl::fcntl(
        // SAFETY: fd is an open socket handed over by systemd and owned by us from here on.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| StartupError::Listener(format!("fd {fd}: {e}")))?;
    match fam {
        Some(AddressFamily::Unix) => Ok(Bound::Unix {
            // SAFETY: the fd is an activated unix socket we now own; it is wrapped exactly once.
            listener: unsafe { UnixListener::from_raw_fd(fd) },
            path: None,
        }),
        Some(AddressFamily::Inet) | Some(AddressFamily::Inet6) => {
            // SAFETY: the fd is an activated TCP socket we now own; it is wrapped exactly once.
            let listener = unsafe { TcpListener::from_raw_fd(fd) };
            let local = listener
                .local_addr()
                .map_err(|e| StartupError::Listener(e.to_string()))?;
            let addr = ListenAddr::Tcp {
                host: local.ip().to_string(),
                port: local.port(),
            };
            let tls = tcp_security(c, &addr, local.ip().is_loopback(), warnings)?;
            Ok(Bound::Tcp { listener, tls })
        }
        other => Err(StartupError::Listener(format!(
            "fd {fd}: unsupported socket family {other:?}"
        ))),
    }
}

/// dockerd's rule: a non-loopback TCP socket needs `--tlsverify` unless TLS
/// was explicitly turned off (then it starts, with warnings).
fn tcp_security(
    c: &DaemonConfig,
    addr: &ListenAddr,
    loopback: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<Arc<ServerConfig>>, StartupError> {
    let verify = c.tlsverify.unwrap_or(false);
    let explicitly_off = c.tls == Some(false) || c.tlsverify == Some(false);
    if !loopback && !verify && !explicitly_off {
        return Err(StartupError::Listener(format!(
            "API is accessible on {addr} without TLS client verification (--tlsverify). {ATTACK_SURFACE}\n         Use --tls=false or --tlsverify=false to start anyway"
        )));
    }
    if !c.tls_enabled() {
        let w = format!("WARNING: API is accessible on http://{} without encryption.\n         {ATTACK_SURFACE}", addr.to_string().trim_start_matches("tcp://"));
        warn!("{w}");
        warnings.push(w);
        return Ok(None);
    }
    if !verify {
        let w = format!("WARNING: API is accessible on https://{} without TLS client verification.\n         {ATTACK_SURFACE}", addr.to_string().trim_start_matches("tcp://"));
        warn!("{w}");
        warnings.push(w);
    }
    tls::server_config(c)
        .map(Some)
        .map_err(|reason| StartupError::Tls {
            addr: addr.to_string(),
            reason,
        })
}
