//! Layer apply: correctness and the attacks it must refuse. Each attack test
//! checks a sentinel directory beside the layer root is untouched.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::*;

enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

/// A tar with raw names (no validation, so attacks can be written).
fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_old();
        let (name, kind, data, mode, link): (&str, tar::EntryType, &[u8], u32, Option<&str>) =
            match e {
                E::Dir(n, m) => (n, tar::EntryType::Directory, b"", *m, None),
                E::File(n, d, m) => (n, tar::EntryType::Regular, d, *m, None),
                E::Sym(n, t) => (n, tar::EntryType::Symlink, b"", 0o777, Some(t)),
                E::Hard(n, t) => (n, tar::EntryType::Link, b"", 0o644, Some(t)),
            };
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    sentinel: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layer");
    let sentinel = dir.path().join("sentinel");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(sentinel.join("sub")).unwrap();
    fs::write(sentinel.join("secret"), "untouched").unwrap();
    fs::set_permissions(&sentinel, fs::Permissions::from_mode(0o700)).unwrap();
    Fixture {
        _dir: dir,
        root,
        sentinel,
    }
}

fn sentinel_intact(s: &Path) {
    assert_eq!(fs::read_to_string(s.join("secret")).unwrap(), "untouched");
    assert_eq!(
        fs::metadata(s).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    let names: Vec<_> = fs::read_dir(s)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "sentinel gained entries: {names:?}");
    assert_eq!(fs::read_dir(s.join("sub")).unwrap().count(), 0);
}

fn apply(f: &Fixture, tar: &[u8], mode: WhiteoutMode) -> Result<ApplyStats, LayerError> {
    apply_layer(&f.root, tar, mode)
}

#[test]
fn applies_files_dirs_links_and_metadata() {
    let f = fixture();
    let t = tar_of(&[
        E::Dir("etc/", 0o755),
        E::File("etc/conf", b"hello", 0o4640),
        E::Sym("etc/link", "/etc/conf"),
        E::Hard("etc/hard", "etc/conf"),
        E::File("deep/er/file", b"x", 0o600),
    ]);
    let st = apply(&f, &t, WhiteoutMode::Overlay).unwrap();
    assert_eq!(
        st.diff_id,
        format!("sha256:{}", berth_actors::image::hex(&Sha256::digest(&t)))
    );
    assert_eq!(st.tar_size, t.len() as u64);
    assert_eq!(st.size, 6);
    let conf = fs::metadata(f.root.join("etc/conf")).unwrap();
    assert_eq!(
        conf.mode() & 0o7777,
        0o4640,
        "setuid kept (chown before chmod)"
    );
    assert_eq!((conf.uid(), conf.gid()), (1000, 1001));
    assert_eq!(conf.mtime(), 1_600_000_000);
    assert_eq!(
        fs::read_link(f.root.join("etc/link")).unwrap(),
        Path::new("/etc/conf")
    );
    assert_eq!(
        fs::metadata(f.root.join("etc/hard")).unwrap().ino(),
        conf.ino()
    );
    assert_eq!(
        fs::metadata(f.root.join("etc")).unwrap().mtime(),
        1_600_000_000
    );
    assert!(f.root.join("deep/er/file").exists());
    sentinel_intact(&f.sentinel);
}

#[test]
fn overlay_whiteouts() {
    let f = fixture();
    let t = tar_of(&[
        E::Dir("d/", 0o755),
        E::File("d/.wh..wh..opq", b"", 0o644),
        E::File(".wh.gone", b"", 0o644),
    ]);
    apply(&f, &t, WhiteoutMode::Overlay).unwrap();
    let wh = fs::symlink_metadata(f.root.join("gone")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    let mut buf = [0u8; 8];
    let p = std::ffi::CString::new(f.root.join("d").to_str().unwrap()).unwrap();
    // SAFETY: p and the name are NUL-terminated; buf has the 8 bytes passed.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            8,
        )
    };
    assert_eq!(&buf[..n as usize], b"y");
    assert!(!f.root.join("d/.wh..wh..opq").exists());
}

#[test]
fn delete_whiteouts_and_opaque_dirs() {
    let f = fixture();
    apply(
        &f,
        &tar_of(&[
            E::File("a/old", b"1", 0o644),
            E::File("a/keep-not", b"2", 0o644),
            E::File("b", b"3", 0o644),
        ]),
        WhiteoutMode::Delete,
    )
    .unwrap();
    let upper = tar_of(&[
        E::Dir("a/", 0o755),
        E::File("a/.wh..wh..opq", b"", 0o644),
        E::File("a/new", b"4", 0o644),
        E::File(".wh.b", b"", 0o644),
    ]);
    apply(&f, &upper, WhiteoutMode::Delete).unwrap();
    let names: Vec<_> = fs::read_dir(f.root.join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("new")]);
    assert!(!f.root.join("b").exists());
}

#[test]
fn refuses_dotdot_names() {
    let f = fixture();
    let t = tar_of(&[E::File("../sentinel/secret", b"pwned", 0o644)]);
    let e = apply(&f, &t, WhiteoutMode::Overlay).unwrap_err();
    assert!(matches!(e, LayerError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("climbs out"), "{e}");
    sentinel_intact(&f.sentinel);
}

#[test]
fn inner_dotdot_that_stays_inside_is_contained() {
    let f = fixture();
    apply(
        &f,
        &tar_of(&[E::File("a/../b", b"ok", 0o644)]),
        WhiteoutMode::Overlay,
    )
    .unwrap();
    assert_eq!(fs::read_to_string(f.root.join("b")).unwrap(), "ok");
    sentinel_intact(&f.sentinel);
}

#[test]
fn refuses_writing_through_an_absolute_symlink() {
    let f = fixture();
    let s = f.sentinel.to_str().unwrap().to_string();
    for target in ["/", s.as_str(), "../sentinel"] {
        let t = tar_of(&[
            E::Sym("a", target),
            E::File("a/secret", b"pwned", 0o644),
            E::File("a/new", b"pwned", 0o644),
        ]);
        let e = apply(&f, &t, WhiteoutMode::Overlay).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        sentinel_intact(&f.sentinel);
    }
}

#[test]
fn refuses_chmod_through_a_symlinked_parent() {
    let f = fixture();
    let s = f.sentinel.to_str().unwrap();
    let t = tar_of(&[E::Sym("a", s), E::Dir("a/sub/", 0o777)]);
    assert!(apply(&f, &t, WhiteoutMode::Overlay).is_err());
    let t = tar_of(&[E::Sym("a", s), E::File("a/.wh.secret", b"", 0o644)]);
    assert!(apply(&f, &t, WhiteoutMode::Delete).is_err());
    sentinel_intact(&f.sentinel);
    assert_eq!(
        fs::metadata(f.sentinel.join("sub"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
}

#[test]
fn refuses_hardlinks_to_outside_paths() {
    let f = fixture();
    let e = apply(
        &f,
        &tar_of(&[E::Hard("x", "../sentinel/secret")]),
        WhiteoutMode::Overlay,
    )
    .unwrap_err();
    assert!(e.to_string().contains("climbs out"), "{e}");
    // An absolute target resolves inside the layer root, where it does not exist.
    let s = format!("{}/secret", f.sentinel.display());
    let e = apply(&f, &tar_of(&[E::Hard("y", &s)]), WhiteoutMode::Overlay).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    // Through a symlink pointing out.
    let t = tar_of(&[
        E::Sym("out", f.sentinel.to_str().unwrap()),
        E::Hard("z", "out/secret"),
    ]);
    assert!(apply(&f, &t, WhiteoutMode::Overlay).is_err());
    sentinel_intact(&f.sentinel);
    assert_eq!(fs::metadata(f.sentinel.join("secret")).unwrap().nlink(), 1);
}

#[test]
fn replacing_a_symlink_does_not_write_through_it() {
    let f = fixture();
    let s = format!("{}/secret", f.sentinel.display());
    let t = tar_of(&[E::Sym("f", &s), E::File("f", b"new", 0o644)]);
    apply(&f, &t, WhiteoutMode::Overlay).unwrap();
    assert_eq!(fs::read_to_string(f.root.join("f")).unwrap(), "new");
    sentinel_intact(&f.sentinel);
}

#[test]
fn trailing_garbage_is_bounded() {
    let f = fixture();
    let mut t = tar_of(&[E::File("a", b"1", 0o644)]);
    t.extend(std::iter::repeat_n(0u8, 2 << 20));
    let e = apply(&f, &t, WhiteoutMode::Overlay).unwrap_err();
    assert!(e.to_string().contains("after the end"), "{e}");
}

#[test]
fn gzip_bomb_of_zeros_stops_early() {
    use std::io::Write;
    let f = fixture();
    // 1 GiB of zeros as 1024 gzip members of 1 MiB each (MultiGzDecoder
    // reads them all): about a megabyte of blob.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 1 << 20]).unwrap();
    let member = gz.finish().unwrap();
    let blob: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 1024)
        .collect();
    assert!(blob.len() < 4 << 20, "a small blob: {}", blob.len());
    let started = std::time::Instant::now();
    let (c, r) = decompress(&blob[..]).unwrap();
    assert_eq!(c, Compression::Gzip);
    assert!(apply_layer(&f.root, r, WhiteoutMode::Overlay).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn truncated_gzip_fails() {
    use std::io::Write;
    let f = fixture();
    let t = tar_of(&[E::File("a", &[7u8; 100_000], 0o644)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&t).unwrap();
    let blob = gz.finish().unwrap();
    let (_, r) = decompress(&blob[..blob.len() / 2]).unwrap();
    assert!(apply_layer(&f.root, r, WhiteoutMode::Overlay).is_err());
}

#[test]
fn zstd_layers_apply() {
    let f = fixture();
    let t = tar_of(&[E::File("z", b"zstd", 0o644)]);
    let blob = zstd::encode_all(&t[..], 3).unwrap();
    let (c, r) = decompress(&blob[..]).unwrap();
    assert_eq!(c, Compression::Zstd);
    let st = apply_layer(&f.root, r, WhiteoutMode::Overlay).unwrap();
    assert_eq!(
        st.diff_id,
        format!("sha256:{}", berth_actors::image::hex(&Sha256::digest(&t)))
    );
}

/// A tar with one GNU long name (the tar crate writes the long-name member).
fn deep_tar(depth: usize, seg: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(1);
    h.set_mode(0o644);
    let name = format!("{}f", format!("{seg}/").repeat(depth));
    b.append_data(&mut h, name, &b"x"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn deep_paths_are_refused_and_memory_stays_linear() {
    let f = fixture();
    // 9000 directories deep in an 18 KB name: beyond PATH_MAX, refused
    // before anything is created.
    let err = apply(&f, &deep_tar(9000, "a"), WhiteoutMode::Overlay).unwrap_err();
    assert!(matches!(err, LayerError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("levels deep"), "{err}");
    assert_eq!(fs::read_dir(&f.root).unwrap().count(), 0);
    // Within the kernel's limits (1000 levels, 2 KB) it applies.
    apply(&f, &deep_tar(1000, "b"), WhiteoutMode::Delete).unwrap();
    let mut d: std::os::fd::OwnedFd = fs::File::open(&f.root).unwrap().into();
    for _ in 0..1000 {
        d = crate::sys::fsfd::open_dir(d.as_fd(), std::ffi::OsStr::new("b")).unwrap();
    }
    let (_, st) = crate::sys::fsfd::open_entry(d.as_fd(), std::ffi::OsStr::new("f")).unwrap();
    assert_eq!(st.st_size, 1);
    // A name longer than PATH_MAX with few levels: refused too.
    let err = apply(&f, &deep_tar(20, &"c".repeat(250)), WhiteoutMode::Overlay).unwrap_err();
    assert!(err.to_string().contains("bytes long"), "{err}");
    sentinel_intact(&f.sentinel);
}
