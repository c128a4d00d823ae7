//! Helpers for container tests: a busybox image with every applet, loaded
//! through `docker load`; waiting on container state.

use std::sync::OnceLock;
use std::time::Duration;

use super::images::{busybox_tar, docker_archive};
use super::{wait_for, Daemon};

/// bin/busybox (Debian's busybox-static) linked as every applet it has,
/// /etc/passwd and /etc/group, /tmp.
pub fn busybox_full_rootfs() -> Vec<u8> {
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    let applets: Vec<&str> = text
        .lines()
        .filter(|a| *a != "busybox" && !a.is_empty())
        .collect();
    busybox_tar(&applets, true)
}

/// The `busybox:latest` archive (built once per test binary).
pub fn busybox_archive() -> &'static [u8] {
    static A: OnceLock<Vec<u8>> = OnceLock::new();
    A.get_or_init(|| docker_archive(&[busybox_full_rootfs()], &["busybox:latest"], None).0)
}

/// Load `busybox:latest` into the daemon.
pub fn load_busybox(d: &Daemon) {
    let path = d.dir.path().join("busybox.tar");
    std::fs::write(&path, busybox_archive()).unwrap();
    d.docker_ok(&["load", "-q", "-i", path.to_str().unwrap()]);
}

/// A daemon with busybox loaded.
pub fn daemon_with_busybox() -> Daemon {
    let d = Daemon::start();
    load_busybox(&d);
    d
}

pub fn inspect(d: &Daemon, name: &str, fmt: &str) -> String {
    d.docker_ok(&["inspect", "-f", fmt, name])
        .trim()
        .to_string()
}

/// Wait until `docker inspect -f fmt` prints `want`.
pub fn wait_inspect(d: &Daemon, name: &str, fmt: &str, want: &str, timeout: Duration) -> bool {
    wait_for(timeout, || {
        let o = d.docker(&["inspect", "-f", fmt, name]);
        String::from_utf8_lossy(&o.stdout).trim() == want
    })
}

/// Run a command under `script` (a real pseudo-terminal), feeding it
/// `input` chunks with pauses between them; its output and exit code.
pub fn under_tty(d: &Daemon, command: &str, input: &[(&str, u64)]) -> (String, i32) {
    let mut feed = String::from("(");
    for (text, pause_ms) in input {
        feed.push_str(&format!(
            "sleep {}; printf '{}'; ",
            *pause_ms as f64 / 1000.0,
            text
        ));
    }
    feed.push_str("sleep 1)");
    let cli_cfg = d.dir.path().join("cli-config");
    let full = format!(
        "{feed} | DOCKER_CONFIG={} DOCKER_HOST={} timeout 60 script -qec \"stty rows 40 cols 120; {command}\" /dev/null",
        cli_cfg.display(),
        d.docker_host()
    );
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(&full)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}
