//! Userland proxies (`userland-proxy: true`, dockerd's default): one
//! process per published port (berth-proxy, or `userland-proxy-path`, e.g.
//! docker-proxy: same command line, same fd-3 protocol). They run in their
//! own session with the exec-root as working directory, so they outlive
//! berthd and a restarted berthd finds them by scanning /proc.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use berth_actors::network::PortMapping;
use tracing::{debug, warn};

/// The proxy binary: `userland-proxy-path`, else berth-proxy next to
/// berthd, else on PATH.
pub fn binary(configured: &str) -> PathBuf {
    if !configured.is_empty() {
        return PathBuf::from(configured);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berth-proxy")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("berth-proxy"))
}

fn args(m: &PortMapping, container_ip: &str) -> Vec<String> {
    vec![
        "-proto".into(),
        m.proto.clone(),
        "-host-ip".into(),
        m.host_ip.clone(),
        "-host-port".into(),
        m.host_port.to_string(),
        "-container-ip".into(),
        container_ip.to_string(),
        "-container-port".into(),
        m.container_port.to_string(),
    ]
}

/// PIDs of this berthd's proxies (working directory `exec_root`) for
/// the mapping.
pub fn find(exec_root: &Path, m: &PortMapping, container_ip: &str) -> Vec<i32> {
    let want = args(m, container_ip).join("\0");
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if !cmd.contains(&want) {
            continue;
        }
        if std::fs::read_link(format!("/proc/{pid}/cwd"))
            .ok()
            .as_deref()
            == Some(exec_root)
        {
            out.push(pid);
        }
    }
    out
}

/// Start a proxy and wait for its verdict on fd 3.
pub async fn start(
    bin: &Path,
    exec_root: &Path,
    m: &PortMapping,
    container_ip: &str,
) -> Result<(), String> {
    let (rd, wr): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let wfd = wr.as_raw_fd();
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args(m, container_ip))
        .current_dir(exec_root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls: setsid
    // and dup2 of a descriptor the parent keeps open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(wfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    drop(wr);
    // The child is reaped by tokio when it ends (dropped handle).
    let pid = child.id().unwrap_or(0);
    drop(child);
    let verdict = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::from(rd);
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    });
    let text = tokio::time::timeout(Duration::from_secs(16), verdict)
        .await
        .map_err(|_| "timed out waiting for the userland proxy".to_string())?
        .map_err(|e| e.to_string())?;
    if text.starts_with('0') {
        debug!(pid, port = m.host_port, "userland proxy started");
        return Ok(());
    }
    let msg = text
        .split_once('\n')
        .map(|(_, m)| m)
        .unwrap_or(&text)
        .trim();
    Err(format!(
        "Error starting userland proxy: {}",
        if msg.is_empty() {
            "the proxy exited"
        } else {
            msg
        }
    ))
}

/// Stop the proxies of a mapping.
pub fn stop(exec_root: &Path, m: &PortMapping, container_ip: &str) {
    for pid in find(exec_root, m, container_ip) {
        if let Err(e) = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        ) {
            warn!(pid, "stopping a userland proxy: {e}");
        }
    }
}
