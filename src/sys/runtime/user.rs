//! `--user` resolution from the container's own /etc/passwd and
//! /etc/group, by parsing the files (no NSS, nothing of the container is
//! loaded or run). The files are opened with `openat2(RESOLVE_IN_ROOT)`
//! from the container root, so a symlinked /etc/passwd resolves inside the
//! container, never to a host file.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use berth_actors::{ErrorKind, HasKind};
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("Unable to find group {0}: no matching entries in group file")]
    NoAddedGroup(String),
    #[error("invalid user spec {0:?}")]
    Invalid(String),
    #[error("reading {0} of the container: {1}")]
    Io(&'static str, String),
}

impl HasKind for UserError {
    fn kind(&self) -> ErrorKind {
        match self {
            UserError::Io(..) => ErrorKind::System,
            _ => ErrorKind::InvalidParameter,
        }
    }
}

const MAX_FILE: u64 = 16 << 20;

/// The file's content, or empty when it does not exist in the container.
fn read_in_root(root: &OwnedFd, rel: &'static str) -> Result<String, UserError> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root.as_fd(), rel, how) {
        Ok(fd) => {
            let f = File::from(fd);
            if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
                return Ok(String::new());
            }
            let mut s = String::new();
            f.take(MAX_FILE)
                .read_to_string(&mut s)
                .map_err(|e| UserError::Io(rel, e.to_string()))?;
            Ok(s)
        }
        Err(nix::errno::Errno::ENOENT) => Ok(String::new()),
        Err(e) => Err(UserError::Io(rel, e.to_string())),
    }
}

struct Passwd<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = Passwd<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Passwd {
                name: f.first()?,
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).copied().unwrap_or(""),
            })
        })
}

struct Group<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(text: &str) -> impl Iterator<Item = Group<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: f.first()?,
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|x| !x.is_empty()).collect())
                    .unwrap_or_default(),
            })
        })
}

/// Resolve `spec` (`user`, `uid`, `user:group`, `uid:gid`, ...; empty is
/// root) inside the container root `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser, UserError> {
    let root: OwnedFd = File::open(rootfs)
        .map_err(|e| UserError::Io("/", e.to_string()))?
        .into();
    resolve_in(&root, spec)
}

/// [`resolve`] from a descriptor of the container root.
pub fn resolve_in(root: &OwnedFd, spec: &str) -> Result<ResolvedUser, UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.contains(':') || group.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(UserError::Invalid(spec.to_string()));
    }
    let passwd = read_in_root(root, "etc/passwd")?;
    let user = if user.is_empty() { "0" } else { user };
    let numeric = user.parse::<u32>().ok();
    let entry = passwd_entries(&passwd).find(|p| match numeric {
        Some(n) => p.uid == n,
        None => p.name == user,
    });
    let (uid, mut gid, home, name) = match (entry, numeric) {
        (Some(p), _) => (p.uid, p.gid, p.home.to_string(), Some(p.name.to_string())),
        (None, Some(n)) => (n, 0, "/".to_string(), None),
        (None, None) => return Err(UserError::NoUser(user.to_string())),
    };
    let groups = read_in_root(root, "etc/group")?;
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries(&groups)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        };
    }
    let mut additional: Vec<u32> = match &name {
        Some(n) => group_entries(&groups)
            .filter(|e| e.members.contains(&n.as_str()))
            .map(|e| e.gid)
            .collect(),
        None => vec![],
    };
    // As runc's user lookup that dockerd uses: without a group listing the
    // user, the supplementary groups are the primary one (`id -G` shows it).
    if additional.is_empty() {
        additional.push(gid);
    }
    additional.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

/// `--group-add` (`HostConfig.GroupAdd`): numbers as they are, names from
/// the container's /etc/group.
pub fn resolve_groups(rootfs: &Path, names: &[String]) -> Result<Vec<u32>, UserError> {
    if names.is_empty() {
        return Ok(vec![]);
    }
    let root: OwnedFd = File::open(rootfs)
        .map_err(|e| UserError::Io("/", e.to_string()))?
        .into();
    let groups = read_in_root(&root, "etc/group")?;
    names
        .iter()
        .map(|g| match g.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => group_entries(&groups)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| UserError::NoAddedGroup(g.clone())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n# comment\nbroken:line\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn names_numbers_and_groups() {
        let r = rootfs();
        let u = resolve(r.path(), "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        let u = resolve(r.path(), "app").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone(), u.home.as_str()),
            (1000, 1000, vec![10, 29], "/home/app")
        );
        let u = resolve(r.path(), "app:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        let u = resolve(r.path(), "1000:5").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 5));
        let u = resolve(r.path(), "4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert_eq!(
            resolve(r.path(), "nobody").unwrap_err(),
            UserError::NoUser("nobody".into())
        );
        assert_eq!(
            resolve(r.path(), "app:nogroup").unwrap_err(),
            UserError::NoGroup("nogroup".into())
        );
        assert!(matches!(
            resolve(r.path(), "a:b:c"),
            Err(UserError::Invalid(_))
        ));
    }

    #[test]
    fn a_symlinked_passwd_resolves_inside_the_container() {
        let r = rootfs();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("passwd"), "intruder:x:7:7::/:/bin/sh\n").unwrap();
        std::fs::remove_file(r.path().join("etc/passwd")).unwrap();
        // Absolute and climbing targets both stay inside the root.
        std::os::unix::fs::symlink(host.path().join("passwd"), r.path().join("etc/passwd"))
            .unwrap();
        assert_eq!(
            resolve(r.path(), "intruder").unwrap_err(),
            UserError::NoUser("intruder".into())
        );
        std::fs::remove_file(r.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", r.path().join("etc/passwd"))
            .unwrap();
        // Inside the root this names the symlink itself (a loop): an error,
        // where following it out would have found the host's root entry.
        assert!(matches!(resolve(r.path(), "root"), Err(UserError::Io(..))));
        // No passwd at all: numeric users still work, names do not.
        std::fs::remove_file(r.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve(r.path(), "0").unwrap().uid, 0);
        assert!(resolve(r.path(), "app").is_err());
    }
}
