//! The Docker SDK for Python (`docker` from PyPI, pinned in
//! tests/python/requirements.txt) against a berthd: the compatibility
//! suite in tests/python/sdk_suite.py, in a venv under target/ that this
//! test creates once.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::containers::*;

/// The venv's python, made on first use (into a temporary directory then
/// renamed, so an interrupted install is never taken for a finished one).
fn venv_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/sdk-venv");
    let reqs = root.join("tests/python/requirements.txt");
    let stamp = venv.join("requirements.txt");
    let want = std::fs::read(&reqs).unwrap();
    if std::fs::read(&stamp).ok().as_deref() == Some(&want[..]) {
        return venv.join("bin/python");
    }
    let tmp = root.join(format!("target/sdk-venv.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    // Debian's python3 (with python3-venv), not whatever is first in PATH.
    let ok = Command::new("/usr/bin/python3")
        .args(["-m", "venv"])
        .arg(&tmp)
        .status()
        .expect("python3 -m venv")
        .success();
    assert!(ok, "python3 -m venv failed (is python3-venv installed?)");
    let o = Command::new(tmp.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&reqs)
        .output()
        .expect("pip install");
    assert!(
        o.status.success(),
        "pip install failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(tmp.join("requirements.txt"), &want).unwrap();
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::rename(&tmp, &venv).unwrap();
    venv.join("bin/python")
}

#[test]
fn python_sdk_suite_passes_against_berthd() {
    let python = venv_python();
    let d = daemon_with_busybox();
    let subnet4 = d.subnet(1);
    let (x, y) = {
        let parts: Vec<&str> = subnet4.split('.').collect();
        (parts[1].to_string(), parts[2].to_string())
    };
    let o = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_suite.py"))
        .env("DOCKER_HOST", d.docker_host())
        .env("SUITE_PREFIX", "sdk")
        .env("SUITE_SUBNET4", &subnet4)
        .env("SUITE_SUBNET6", format!("fd00:b5:{x}:{y}::/64"))
        .output()
        .expect("run the suite");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "the Python SDK suite failed:\n{out}\n{}\nberthd log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    assert!(out.contains("all passed"), "{out}");
    // Every check ran (a suite that ran nothing cannot pass).
    assert!(
        out.lines().filter(|l| l.starts_with("ok ")).count() >= 15,
        "{out}"
    );
    d.stop();
}
