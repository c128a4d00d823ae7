//! changes and export: a container's filesystem seen from the host.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};

/// `docker diff`: walk the writable layer (overlay's upper directory).
/// Whiteouts (0:0 character devices) are deletions; a path the image has
/// is a change, any other an addition.
/// Mount points the runtime creates in every container: not the user's
/// changes (dockerd keeps them in its init layer).
const MOUNT_POINTS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/sbin/docker-init",
    "/sbin",
];

pub fn changes(upper: &Path, lower: Option<&Path>) -> std::io::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut stack = vec![upper.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = Path::new("/").join(p.strip_prefix(upper).unwrap_or(&p));
            let m = std::fs::symlink_metadata(&p)?;
            let whiteout = m.file_type().is_char_device() && m.rdev() == 0;
            let kind = if whiteout {
                2
            } else if lower.is_some_and(|l| {
                std::fs::symlink_metadata(l.join(rel.strip_prefix("/").unwrap_or(&rel))).is_ok()
            }) {
                0
            } else {
                1
            };
            let path = rel.display().to_string();
            let empty_dir = m.is_dir()
                && std::fs::read_dir(&p)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
            if kind == 1 && MOUNT_POINTS.contains(&path.as_str()) && (empty_dir || m.len() == 0) {
                continue;
            }
            out.push(json!({"Path": path, "Kind": kind}));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort_by(|a, b| a["Path"].as_str().cmp(&b["Path"].as_str()));
    Ok(out)
}

/// `docker export`: the container's whole filesystem as a tar stream.
pub fn export<W: Write>(root: &Path, out: W) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
            let m = std::fs::symlink_metadata(&p)?;
            let ft = m.file_type();
            if ft.is_socket() {
                continue;
            }
            if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                let mut h = tar::Header::new_gnu();
                h.set_metadata(&m);
                h.set_entry_type(if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Fifo
                });
                let dev = m.rdev();
                h.set_device_major(nix::sys::stat::major(dev) as u32)?;
                h.set_device_minor(nix::sys::stat::minor(dev) as u32)?;
                h.set_size(0);
                b.append_data(&mut h, &rel, std::io::empty())?;
                continue;
            }
            b.append_path_with_name(&p, &rel)?;
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    b.into_inner()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_upper_and_lower() {
        let t = tempfile::tempdir().unwrap();
        let (up, low) = (t.path().join("up"), t.path().join("low"));
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::create_dir_all(low.join("etc")).unwrap();
        std::fs::write(low.join("etc/passwd"), "x").unwrap();
        std::fs::write(up.join("etc/passwd"), "y").unwrap();
        std::fs::write(up.join("etc/new"), "z").unwrap();
        nix::sys::stat::mknod(
            &up.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let c = changes(&up, Some(&low)).unwrap();
        let pairs: Vec<(String, i64)> = c
            .iter()
            .map(|v| {
                (
                    v["Path"].as_str().unwrap().to_string(),
                    v["Kind"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("/etc".into(), 0),
                ("/etc/new".into(), 1),
                ("/etc/passwd".into(), 0),
                ("/gone".into(), 2)
            ]
        );
        let mut tarball = Vec::new();
        export(&up, &mut tarball).unwrap();
        let mut a = tar::Archive::new(&tarball[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"etc/new".to_string()), "{names:?}");
    }
}
