//! Pieces of the OCI runtime spec berth derives from dockerd's defaults
//! (used by the containers work): the default capability set and the
//! seccomp profile translation.

pub mod devices;
pub mod seccomp;
pub mod spec;
pub mod user;
pub mod version;

/// Whether mounts can be made read-only recursively (`rro`): the kernel
/// has `mount_setattr` (5.12) and the runtime lists `rro` among the mount
/// options of `<runtime> features`. Asked once per runtime binary.
pub fn supports_recursive_ro(runtime: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(v) = seen.lock().ok().and_then(|m| m.get(runtime).copied()) {
        return v;
    }
    let kernel = nix::sys::utsname::uname()
        .ok()
        .and_then(|u| {
            let r = u.release().to_string_lossy().into_owned();
            let mut it = r.split(['.', '-']).map(|x| x.parse::<u32>().unwrap_or(0));
            Some((it.next()?, it.next()?))
        })
        .is_some_and(|v| v >= (5, 12));
    let listed = kernel
        && std::process::Command::new(runtime)
            .arg("features")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .is_some_and(|v| {
                v["mountOptions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "rro"))
            });
    if let Ok(mut m) = seen.lock() {
        m.insert(runtime.to_string(), listed);
    }
    listed
}

/// dockerd's default capability set for containers (moby `oci/caps`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];
