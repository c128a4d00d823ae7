//! Both drivers run the same suite: a two-layer image whose upper layer
//! deletes a file and makes a directory opaque shows that in its view.

use std::fs;

use super::*;
use crate::sys::layers::apply_layer;

fn tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, name, *d).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, name, &b""[..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn suite(d: &dyn StorageDriver) {
    let lower = tar(&[
        ("etc/", None),
        ("etc/keep", Some(b"k")),
        ("etc/gone", Some(b"g")),
        ("opq/", None),
        ("opq/old", Some(b"o")),
    ]);
    let upper = tar(&[
        ("etc/.wh.gone", Some(b"")),
        ("opq/", None),
        ("opq/.wh..wh..opq", Some(b"")),
        ("opq/new", Some(b"n")),
    ]);
    let p1 = d.create("layer1", None).unwrap();
    apply_layer(&p1, &lower[..], d.whiteouts()).unwrap();
    let p2 = d.create("layer2", Some("layer1")).unwrap();
    apply_layer(&p2, &upper[..], d.whiteouts()).unwrap();
    assert_eq!(
        d.list().unwrap(),
        ["layer1", "layer2"].iter().map(|s| s.to_string()).collect()
    );

    let view = d.mount("layer2").unwrap();
    assert_eq!(fs::read_to_string(view.join("etc/keep")).unwrap(), "k");
    assert!(
        !view.join("etc/gone").exists(),
        "deleted file is gone in the merged view"
    );
    let opq: Vec<_> = fs::read_dir(view.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(opq, vec![std::ffi::OsString::from("new")]);
    let lower_view = d.mount("layer1").unwrap();
    assert!(
        lower_view.join("etc/gone").exists(),
        "the lower layer is unchanged"
    );
    d.unmount("layer2").unwrap();
    d.unmount("layer1").unwrap();

    // A writable layer above the image: writes and deletions stay in it.
    d.create("rw", Some("layer2")).unwrap();
    let root = d.mount_rw("rw").unwrap();
    fs::write(root.join("etc/new"), "w").unwrap();
    fs::remove_file(root.join("etc/keep")).unwrap();
    assert!(!root.join("etc/keep").exists());
    d.unmount("rw").unwrap();
    let image = d.mount("layer2").unwrap();
    assert!(image.join("etc/keep").exists(), "the image is unchanged");
    assert!(!image.join("etc/new").exists());
    d.unmount("layer2").unwrap();
    let again = d.mount_rw("rw").unwrap();
    assert_eq!(
        fs::read_to_string(again.join("etc/new")).unwrap(),
        "w",
        "writes persist in the layer"
    );
    assert!(!again.join("etc/keep").exists(), "deletions persist too");
    d.unmount("rw").unwrap();
    d.remove("rw").unwrap();
    d.remove("layer2").unwrap();
    d.remove("layer1").unwrap();
    assert!(d.list().unwrap().is_empty());
    assert!(d.create("../x", None).is_err());
}

/// Unmounts whatever the suite mounted under `0`, also when it panicked,
/// so the temp directory can be removed and no mount outlives the test.
struct Unmounter(std::path::PathBuf);

impl Drop for Unmounter {
    fn drop(&mut self) {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<std::path::PathBuf> = text
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(std::path::PathBuf::from)
            .filter(|p| p.starts_with(&self.0))
            .collect();
        mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn vfs_suite() {
    let t = tempfile::tempdir().unwrap();
    suite(&Vfs::new(&t.path().join("vfs")).unwrap());
}

#[test]
fn overlay2_suite() {
    let t = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let _unmount = Unmounter(t.path().to_path_buf());
    match Overlay2::new(&t.path().join("overlay2")) {
        Ok(d) => {
            suite(&d);
            assert!(
                fs::read_dir(t.path().join("overlay2/l"))
                    .unwrap()
                    .next()
                    .is_none(),
                "short links removed"
            );
        }
        Err(e) => panic!("overlay2 must work on this host: {e}"),
    }
}

#[test]
fn overlay2_borrowed_views_never_unmount_a_containers_mount() {
    let t = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let _unmount = Unmounter(t.path().to_path_buf());
    let root = t.path().join("overlay2");
    let d = Overlay2::new(&root).unwrap();
    let p = d.create("img", None).unwrap();
    apply_layer(&p, &tar(&[("f", Some(b"x"))])[..], d.whiteouts()).unwrap();
    d.create("ctr", Some("img")).unwrap();
    let merged = root.join("ctr/merged");
    let mounted = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(merged.to_str().unwrap()))
    };
    // A borrow alone: mounted, then unmounted when given back.
    d.borrow_rw("ctr").unwrap();
    assert!(mounted());
    d.give_back_rw("ctr").unwrap();
    assert!(!mounted());
    // The container starts while a copy holds it: it stays mounted.
    d.borrow_rw("ctr").unwrap();
    d.mount_rw("ctr").unwrap();
    d.give_back_rw("ctr").unwrap();
    assert!(mounted(), "the copy unmounted the started container's root");
    // The container's own mount outlives any borrow.
    d.borrow_rw("ctr").unwrap();
    d.give_back_rw("ctr").unwrap();
    assert!(mounted());
    // Its container lets go while a copy holds it: the copy unmounts.
    d.borrow_rw("ctr").unwrap();
    d.unmount("ctr").unwrap();
    assert!(mounted(), "unmounted under a running copy");
    d.give_back_rw("ctr").unwrap();
    assert!(!mounted());
    // After a restart (nothing in memory) a mounted view is its
    // container's: a borrow leaves it mounted.
    d.mount_rw("ctr").unwrap();
    let again = Overlay2::new(&root).unwrap();
    again.borrow_rw("ctr").unwrap();
    again.give_back_rw("ctr").unwrap();
    assert!(mounted());
    again.unmount("ctr").unwrap();
    assert!(!mounted());
}
