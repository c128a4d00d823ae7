//! The OCI spec berth builds runs under the real runtime (runc): the
//! busybox root from Debian's busybox-static, a user resolved from the
//! container's /etc/passwd, dockerd's default capabilities, the default
//! seccomp profile translated for this kernel.

use crate::common;

use berth::sys::runtime::{seccomp, spec, user, DEFAULT_CAPABILITIES};
use common::images::busybox_rootfs;

struct Cleanup {
    state: std::path::PathBuf,
    id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runc")
            .arg("--root")
            .arg(&self.state)
            .args(["delete", "-f", &self.id])
            .output();
        // Whatever the outcome, no cgroup of this test stays behind.
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for hierarchy in rd.flatten() {
                let _ = std::fs::remove_dir(hierarchy.path().join(&self.id));
            }
        }
    }
}

#[test]
fn the_spec_runs_under_runc_with_user_caps_and_seccomp() {
    if std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("runc is required (scripts/install-deps.sh installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("bundle/rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    berth::sys::layers::apply_layer(
        &rootfs,
        &busybox_rootfs()[..],
        berth::sys::layers::WhiteoutMode::Delete,
    )
    .unwrap();
    let u = user::resolve(&rootfs, "nobody").unwrap();
    assert_eq!(u.uid, 65534);
    let caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    let release = nix::sys::utsname::uname()
        .unwrap()
        .release()
        .to_string_lossy()
        .into_owned();
    let sc = seccomp::translate(
        seccomp::DEFAULT_PROFILE,
        &seccomp::Target {
            goarch: "amd64",
            capabilities: &caps,
            kernel: seccomp::kernel_version(&release),
        },
    )
    .unwrap();
    let id = format!("berth-spec-{}", std::process::id());
    // One level: runc removes the container's own cgroup on delete.
    let cgroup = format!("/{id}");
    let s = spec::build(&spec::SpecInput {
        rootfs: rootfs.to_str().unwrap(),
        readonly_rootfs: false,
        args: spec::args(
            &[],
            &[
                "/bin/sh".into(),
                "-c".into(),
                "echo hi-from-runc; id -u; hostname; cat /proc/self/status".into(),
            ],
        )
        .unwrap(),
        env: vec![],
        workdir: "/",
        user: &u,
        hostname: "berthtest",
        terminal: false,
        capabilities: &caps,
        seccomp: Some(seccomp::to_oci(sc).unwrap()),
        shm_size: 64 << 20,
        no_new_privileges: true,
        oom_score_adj: 0,
        cgroups_path: &cgroup,
        cgroupns: false,
    })
    .unwrap();
    std::fs::write(
        dir.path().join("bundle/config.json"),
        serde_json::to_vec_pretty(&s).unwrap(),
    )
    .unwrap();
    let state = dir.path().join("state");
    let _cleanup = Cleanup {
        state: state.clone(),
        id: id.clone(),
    };
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(dir.path().join("bundle"))
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "runc run failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("hi-from-runc"));
    assert_eq!(lines.next(), Some("65534"));
    assert_eq!(lines.next(), Some("berthtest"));
    assert!(stdout.contains("NoNewPrivs:\t1"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("Seccomp:\t2")),
        "seccomp filter mode: {stdout}"
    );
    // The process ran as nobody with the bounding set reduced to dockerd's defaults.
    let capbnd = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:\t"))
        .unwrap();
    assert_eq!(capbnd, "00000000a80425fb", "dockerd's default bounding set");
    drop(_cleanup);
    let left: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .filter(|h| h.path().join(&id).exists())
        .map(|h| h.path())
        .collect();
    assert!(left.is_empty(), "cgroups left: {left:?}");
}
