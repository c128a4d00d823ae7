//! overlay2, laid out like dockerd's: `<id>/diff` holds the layer's own
//! changes, `<id>/link` a short name with `l/<short>` → `../<id>/diff`, and
//! `<id>/lower` the colon-separated short links of everything below, so the
//! mount data of deep images stays within a page.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{valid_id, StorageDriver};
use crate::sys::blobs::random_hex;
use crate::sys::layers::WhiteoutMode;

pub struct Overlay2 {
    root: PathBuf,
    backing: String,
    /// Who holds each mounted writable view (in memory: after a restart a
    /// view found mounted belongs to its container).
    holds: Mutex<HashMap<String, Holds>>,
}

#[derive(Default)]
struct Holds {
    /// Mounted for its container (`mount_rw` until `unmount`).
    container: bool,
    /// Borrowers of the moment (`borrow_rw` until `give_back_rw`).
    borrowed: usize,
}

fn short_id() -> String {
    // 26 characters of [A-Z0-9], as dockerd's.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    random_hex(26)
        .bytes()
        .map(|b| alphabet[(b as usize) % 32] as char)
        .collect()
}

fn mounted_under(root: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(root))
        .collect()
}

impl Overlay2 {
    pub fn new(root: &Path) -> io::Result<Overlay2> {
        let has_overlay = fs::read_to_string("/proc/filesystems")
            .map(|t| t.lines().any(|l| l.ends_with("\toverlay")))
            .unwrap_or(false);
        if !has_overlay {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the kernel has no overlay filesystem",
            ));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o710)
            .create(root.join("l"))?;
        let d = Overlay2 {
            root: root.to_path_buf(),
            backing: crate::sys::host::backing_filesystem(root),
            holds: Mutex::new(HashMap::new()),
        };
        d.check_mount()?;
        Ok(d)
    }

    /// Mount a two-lower overlay once to prove overlay works on this filesystem.
    fn check_mount(&self) -> io::Result<()> {
        let t = self.root.join(format!("check-{}", random_hex(6)));
        let (a, b, m) = (t.join("a"), t.join("b"), t.join("m"));
        for d in [&a, &b, &m] {
            fs::create_dir_all(d)?;
        }
        let data = format!("lowerdir={}:{}", a.display(), b.display());
        let r = mount(
            Some("overlay"),
            &m,
            Some("overlay"),
            MsFlags::MS_RDONLY,
            Some(data.as_str()),
        );
        if r.is_ok() {
            let _ = umount2(&m, MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&t);
        r.map_err(|e| {
            io::Error::other(format!(
                "overlay mount test failed on {}: {e}",
                self.backing
            ))
        })
    }

    fn layer(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Short links of `id` and everything below, top first.
    fn lowers(&self, id: &str) -> io::Result<Vec<PathBuf>> {
        let link = fs::read_to_string(self.layer(id).join("link"))?;
        let mut out = vec![self.root.join("l").join(link.trim())];
        if let Ok(lower) = fs::read_to_string(self.layer(id).join("lower")) {
            out.extend(
                lower
                    .trim()
                    .split(':')
                    .filter(|s| !s.is_empty())
                    .map(|s| self.root.join(s)),
            );
        }
        Ok(out)
    }
}

impl StorageDriver for Overlay2 {
    fn name(&self) -> &'static str {
        "overlay2"
    }
    fn status(&self) -> Vec<[String; 2]> {
        vec![
            ["Backing Filesystem".into(), self.backing.clone()],
            ["Supports d_type".into(), "true".into()],
            ["Using metacopy".into(), "false".into()],
            ["Native Overlay Diff".into(), "true".into()],
            ["userxattr".into(), "false".into()],
        ]
    }
    fn whiteouts(&self) -> WhiteoutMode {
        WhiteoutMode::Overlay
    }
    fn create(&self, id: &str, parent: Option<&str>) -> io::Result<PathBuf> {
        valid_id(id)?;
        let dir = self.layer(id);
        fs::DirBuilder::new().mode(0o710).create(&dir)?;
        let result = (|| {
            fs::DirBuilder::new().mode(0o755).create(dir.join("diff"))?;
            fs::DirBuilder::new().mode(0o700).create(dir.join("work"))?;
            let short = short_id();
            std::os::unix::fs::symlink(format!("../{id}/diff"), self.root.join("l").join(&short))?;
            fs::write(dir.join("link"), &short)?;
            if let Some(parent) = parent {
                valid_id(parent)?;
                let plink = fs::read_to_string(self.layer(parent).join("link"))?;
                let mut lower = format!("l/{}", plink.trim());
                if let Ok(pl) = fs::read_to_string(self.layer(parent).join("lower")) {
                    lower.push(':');
                    lower.push_str(pl.trim());
                }
                fs::write(dir.join("lower"), lower)?;
            }
            Ok(dir.join("diff"))
        })();
        if result.is_err() {
            let _ = self.remove(id);
        }
        result
    }
    fn remove(&self, id: &str) -> io::Result<()> {
        valid_id(id)?;
        let dir = self.layer(id);
        self.lock_holds().remove(id);
        let _ = umount2(&dir.join("merged"), MntFlags::MNT_DETACH);
        if let Ok(link) = fs::read_to_string(dir.join("link")) {
            let link = link.trim();
            if !link.is_empty() && !link.contains('/') {
                let _ = fs::remove_file(self.root.join("l").join(link));
            }
        }
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
    fn list(&self) -> io::Result<BTreeSet<String>> {
        Ok(fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("diff").is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
    fn mount(&self, id: &str) -> io::Result<PathBuf> {
        valid_id(id)?;
        let lowers = self.lowers(id)?;
        if lowers.len() == 1 {
            return Ok(self.layer(id).join("diff"));
        }
        let merged = self.layer(id).join("merged");
        fs::create_dir_all(&merged)?;
        if mounted_under(&merged).contains(&merged) {
            return Ok(merged);
        }
        let data = format!(
            "lowerdir={}",
            lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        );
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::MS_RDONLY,
            Some(data.as_str()),
        )
        .map_err(|e| io::Error::other(format!("mounting overlay for {id}: {e}")))?;
        Ok(merged)
    }
    fn reconcile_mounts(&self, keep: &std::collections::BTreeSet<String>) {
        for p in mounted_under(&self.root) {
            let owner = p
                .strip_prefix(&self.root)
                .ok()
                .and_then(|r| r.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            if keep.contains(&owner) {
                continue;
            }
            tracing::info!(path = %p.display(), "unmounting a stale overlay mount");
            let _ = umount2(&p, MntFlags::MNT_DETACH);
        }
    }
    fn mount_rw(&self, id: &str) -> io::Result<PathBuf> {
        let mut holds = self.lock_holds();
        let merged = self.mount_rw_locked(id)?;
        holds.entry(id.to_string()).or_default().container = true;
        Ok(merged)
    }
    fn borrow_rw(&self, id: &str) -> io::Result<PathBuf> {
        let mut holds = self.lock_holds();
        let merged = self.layer(id).join("merged");
        let before = mounted_under(&merged).contains(&merged);
        let merged = self.mount_rw_locked(id)?;
        let h = holds.entry(id.to_string()).or_default();
        if before && h.borrowed == 0 {
            // Mounted, and not by a borrower: its container's.
            h.container = true;
        }
        h.borrowed += 1;
        Ok(merged)
    }
    fn give_back_rw(&self, id: &str) -> io::Result<()> {
        let mut holds = self.lock_holds();
        let Some(h) = holds.get_mut(id) else {
            return Ok(());
        };
        h.borrowed = h.borrowed.saturating_sub(1);
        if h.borrowed > 0 || h.container {
            return Ok(());
        }
        holds.remove(id);
        self.umount_merged(id)
    }
    fn describe(&self, id: &str) -> Option<std::collections::BTreeMap<String, String>> {
        valid_id(id).ok()?;
        let dir = self.layer(id);
        let mut m = std::collections::BTreeMap::new();
        m.insert("UpperDir".into(), dir.join("diff").display().to_string());
        m.insert("WorkDir".into(), dir.join("work").display().to_string());
        m.insert("MergedDir".into(), dir.join("merged").display().to_string());
        let lowers: Vec<String> = self
            .lowers(id)
            .ok()?
            .iter()
            .skip(1)
            .filter_map(|l| fs::canonicalize(l).ok())
            .map(|p| p.display().to_string())
            .collect();
        if !lowers.is_empty() {
            m.insert("LowerDir".into(), lowers.join(":"));
        }
        Some(m)
    }
    fn unmount(&self, id: &str) -> io::Result<()> {
        let mut holds = self.lock_holds();
        if let Some(h) = holds.get_mut(id) {
            h.container = false;
            if h.borrowed > 0 {
                // A copy is using it: the last borrower unmounts.
                return Ok(());
            }
            holds.remove(id);
        }
        self.umount_merged(id)
    }
}

impl Overlay2 {
    fn lock_holds(&self) -> std::sync::MutexGuard<'_, HashMap<String, Holds>> {
        self.holds.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn umount_merged(&self, id: &str) -> io::Result<()> {
        valid_id(id)?;
        let merged = self.layer(id).join("merged");
        match umount2(&merged, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The writable view of `id`, mounted if it is not (holds locked).
    fn mount_rw_locked(&self, id: &str) -> io::Result<PathBuf> {
        valid_id(id)?;
        let dir = self.layer(id);
        let merged = dir.join("merged");
        fs::create_dir_all(&merged)?;
        if mounted_under(&merged).contains(&merged) {
            return Ok(merged);
        }
        // Everything below `id` is the lower stack; `id`'s diff is the upper.
        let lowers: Vec<String> = self
            .lowers(id)?
            .iter()
            .skip(1)
            .map(|p| p.display().to_string())
            .collect();
        if lowers.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("layer {id} has no parent to write above"),
            ));
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            dir.join("diff").display(),
            dir.join("work").display()
        );
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| io::Error::other(format!("mounting overlay for {id}: {e}")))?;
        Ok(merged)
    }
}
