//! Pieces of the OCI runtime spec berth derives from dockerd's defaults
//! (used by the containers work): the default capability set and the
//! seccomp profile translation.

pub mod devices;
pub mod seccomp;
pub mod spec;
pub mod user;
pub mod version;

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
