//! `--device`: the host's device nodes for a container's spec, as dockerd
//! gathers them (a node, or every node under a directory, followed through
//! symlinks; the path inside the container keeps the part below the
//! directory).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

/// How deep a device directory is walked.
const MAX_DEPTH: usize = 8;

fn node(path_in_container: &Path, host: &Path) -> Result<Option<LinuxDevice>, std::io::Error> {
    let m = std::fs::metadata(host)?;
    let ft = m.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let rdev = m.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(path_in_container.to_path_buf())
        .set_typ(typ)
        .set_major(nix::sys::stat::major(rdev) as i64)
        .set_minor(nix::sys::stat::minor(rdev) as i64)
        .set_file_mode(Some(m.mode() & 0o777))
        .set_uid(Some(m.uid()))
        .set_gid(Some(m.gid()));
    Ok(Some(d))
}

fn walk(
    host: &Path,
    inside: &Path,
    depth: usize,
    out: &mut Vec<LinuxDevice>,
) -> Result<(), std::io::Error> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(host)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        let Some(name) = e.file_name() else { continue };
        let target = inside.join(name);
        match std::fs::metadata(&e) {
            Ok(m) if m.is_dir() => walk(&e, &target, depth + 1, out)?,
            Ok(_) => {
                if let Some(d) = node(&target, &e)? {
                    out.push(d);
                }
            }
            Err(_) => continue,
        }
    }
    Ok(())
}

/// The device nodes of `path_on_host` (a node or a directory of nodes) to
/// create at `path_in_container` (empty: the same path). dockerd's message
/// when it cannot be read.
pub fn gather(path_on_host: &str, path_in_container: &str) -> Result<Vec<LinuxDevice>, String> {
    let inside = if path_in_container.is_empty() {
        path_on_host
    } else {
        path_in_container
    };
    let err = |e: std::io::Error| {
        format!(
            "error gathering device information while adding custom device {path_on_host:?}: {e}"
        )
    };
    let host = Path::new(path_on_host);
    let m = std::fs::metadata(host).map_err(err)?;
    if m.is_dir() {
        let mut out = Vec::new();
        walk(host, Path::new(inside), 0, &mut out).map_err(err)?;
        return Ok(out);
    }
    match node(Path::new(inside), host).map_err(err)? {
        Some(d) => Ok(vec![d]),
        None => Err(format!(
            "error gathering device information while adding custom device {path_on_host:?}: not a device node"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_directories_and_errors() {
        let d = gather("/dev/null", "/dev/n2").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path(), Path::new("/dev/n2"));
        assert_eq!((d[0].major(), d[0].minor()), (1, 3));
        assert_eq!(
            gather("/dev/zero", "").unwrap()[0].path(),
            Path::new("/dev/zero")
        );
        let e = gather("/dev/nosuch", "/dev/x").unwrap_err();
        assert!(
            e.starts_with(
                "error gathering device information while adding custom device \"/dev/nosuch\""
            ),
            "{e}"
        );
        assert!(gather("/etc/hostname", "/x").is_err());
        // A directory: its nodes, under the path inside.
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/null", t.path().join("a")).unwrap();
        std::fs::write(t.path().join("plain"), "x").unwrap();
        let d = gather(t.path().to_str().unwrap(), "/dev/mine").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path(), Path::new("/dev/mine/a"));
    }
}
