//! The `COPY` and `ADD` step: the sources (the context, an image's or a
//! stage's root filesystem, or downloads) packed with their checksum,
//! looked up in the cache, then written over the parent in a layer of
//! their own (`copy.rs` packs and writes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_actors::image::ImageInfo;

use super::copy::{apply, pack, Packed, Sources};
use super::progress::short;
use super::session::{clean_abs, top_layer, Session, Stage};
use super::BuildError;

impl Session<'_> {
    /// The root filesystem `COPY --from` reads: a stage's image or any
    /// image (pulled when missing).
    pub(super) async fn source_image(
        &mut self,
        from: &str,
    ) -> Result<Option<Arc<ImageInfo>>, BuildError> {
        let lower = from.to_ascii_lowercase();
        if let Some((_, img)) = self
            .done
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
        {
            return Ok(img.clone());
        }
        if let Ok(ix) = from.parse::<usize>() {
            return match self.done.get(ix) {
                Some((_, img)) => Ok(img.clone()),
                None => Err(BuildError::Invalid(format!(
                    "invalid from flag value {from}: refers to current build stage"
                ))),
            };
        }
        if lower == "scratch" {
            return Ok(None);
        }
        Ok(Some(self.image(from, false).await?))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy(
        &mut self,
        st: &mut Stage,
        add: bool,
        sources: &[String],
        dest: &str,
        from: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
    ) -> Result<(), BuildError> {
        let what = if add { "ADD" } else { "COPY" };
        let mut srcs = Vec::new();
        for s in sources {
            srcs.push(self.expand(st, s)?);
        }
        let dest_raw = self.expand(st, dest)?;
        let chown = match chown {
            Some(c) => Some(self.expand(st, c)?),
            None => None,
        };
        let chmod = match chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| BuildError::Invalid(format!("invalid chmod parameter: {m}")))?,
            ),
            None => None,
        };
        let urls = srcs
            .iter()
            .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
            .count();
        if urls > 0 && !add {
            return Err(BuildError::Invalid(format!(
                "{what} failed: source can't be a URL for COPY"
            )));
        }
        if urls > 0 && urls != srcs.len() {
            return Err(BuildError::Invalid(format!(
                "{what} failed: berthd does not mix URLs and local files in one ADD; split it"
            )));
        }
        if urls > 0 && from.is_some() {
            return Err(BuildError::Invalid(format!(
                "{what} failed: --from cannot be used with a URL"
            )));
        }
        let dest_dir = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        let dest_abs = if dest_raw.starts_with('/') {
            clean_abs(&dest_raw)
        } else {
            clean_abs(&format!("{}/{dest_raw}", st.workdir()))
        };
        // Numeric owners go into the tar; names are resolved in the
        // image's own /etc/passwd when the layer is written.
        let numeric = chown.as_deref().and_then(numeric_owner);
        let named = chown.clone().filter(|_| numeric.is_none());
        let owner = numeric.unwrap_or((0, 0));
        let work = self.ctx.work.clone();
        let out = work.join(format!("pack-{}.tar", crate::sys::blobs::random_hex(8)));
        let _cleanup = RemoveOnDrop(out.clone());
        // Where the sources are: the context, an image, or downloads.
        let mut lease: Option<(String, Arc<dyn crate::sys::storage::StorageDriver>)> = None;
        let (root, ignore, keep_owners, names) = if urls > 0 {
            let dir = work.join(format!("urls-{}", crate::sys::blobs::random_hex(8)));
            std::fs::create_dir_all(&dir)?;
            let mut names = Vec::new();
            for u in &srcs {
                names.push(download(u, &dir).await?);
            }
            (dir, None, false, names)
        } else if let Some(f) = from {
            let f = self.expand(st, f)?;
            let img = self.source_image(&f).await?;
            let top = top_layer(&self.b.images, img.as_deref())?;
            let driver = self.b.images.driver.clone();
            let tmp = crate::sys::blobs::random_hex(32);
            let (d, t) = (driver.clone(), tmp.clone());
            let root = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
                let diff = d.create(&t, top.as_deref())?;
                if top.is_none() {
                    return Ok(diff);
                }
                d.mount_rw(&t).inspect_err(|_| {
                    let _ = d.remove(&t);
                })
            })
            .await
            .map_err(|e| BuildError::Io(std::io::Error::other(e.to_string())))??;
            lease = Some((tmp, driver));
            (root, None, chown.is_none(), srcs.clone())
        } else {
            (
                self.ctx.dir.clone(),
                Some(self.ctx.ignore.clone()),
                false,
                srcs.clone(),
            )
        };
        let (w, o, r2) = (what.to_string(), out.clone(), root.clone());
        let extra = format!("{}|{:?}", named.clone().unwrap_or_default(), chmod);
        let packed = tokio::task::spawn_blocking(move || {
            pack(
                Sources {
                    root: &r2,
                    ignore: ignore.as_ref(),
                    what: &w,
                    keep_owners,
                    owner,
                    chmod,
                    extract_archives: add && urls == 0,
                    extra: &extra,
                },
                &names,
                &o,
            )
        })
        .await
        .map_err(|e| BuildError::Io(std::io::Error::other(e.to_string())));
        if let Some((tmp, driver)) = lease.take() {
            let _ = tokio::task::spawn_blocking(move || {
                let _ = driver.unmount(&tmp);
                driver.remove(&tmp)
            })
            .await;
        }
        let packed: Packed = packed??;
        if packed.multi && !dest_dir {
            return Err(BuildError::Invalid(format!(
                "When using {what} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let comment = format!("{what} {} in {dest_raw} ", packed.checksum);
        let probe = Self::probe_config(st, Self::nop_one(st, &comment));
        if self.cached(st, &probe, true).await? {
            return Ok(());
        }
        let w = what.to_string();
        let layer = self
            .layer_step(st, move |rootfs| {
                let owner = match &named {
                    Some(spec) => {
                        let fd = super::context::root_fd(rootfs)?;
                        let u = crate::sys::runtime::user::resolve_in(&fd, spec)
                            .map_err(|e| BuildError::Invalid(format!("{w} failed: unable to convert uid/gid chown string to host mapping: {e}")))?;
                        Some((u.uid, u.gid))
                    }
                    None => None,
                };
                apply(
                    rootfs,
                    &packed,
                    &dest_abs,
                    dest_dir,
                    owner.unwrap_or((0, 0)),
                    named.as_deref(),
                    &w,
                    &work,
                )
            })
            .await?;
        let img = self.commit(st, &probe, "", Some(layer), None).await?;
        self.p
            .stream(format!(" ---> {}\n", short(&img.record.id)))
            .await?;
        st.image = Some(img);
        Ok(())
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
/// `1000` or `1000:1000`.
fn numeric_owner(s: &str) -> Option<(u32, u32)> {
    match s.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, g.parse().ok()?)),
        None => {
            let u = s.parse().ok()?;
            Some((u, u))
        }
    }
}

/// Download `url` into `dir` for `ADD`: the file is named by the URL's
/// last path element, mode 0600, its time the `Last-Modified` header's.
async fn download(url: &str, dir: &Path) -> Result<String, BuildError> {
    let fail = |m: String| BuildError::Invalid(format!("ADD failed: {m}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| fail(format!("invalid URL {url}: {e}")))?;
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back().map(String::from))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "__unnamed__".into());
    let path = dir.join(&name);
    let mtime = super::fetch::to_file(url, &path, std::time::Duration::from_secs(600))
        .await
        .map_err(|e| match e {
            super::fetch::FetchError::Status(s) => {
                fail(format!("failed to GET {url} with status {s}"))
            }
            e => fail(format!("failed to GET {url}: {e}")),
        })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    if let Some(t) = mtime {
        let f = std::fs::File::options().write(true).open(&path)?;
        f.set_modified(t)?;
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_owners() {
        assert_eq!(numeric_owner("1000"), Some((1000, 1000)));
        assert_eq!(numeric_owner("1:2"), Some((1, 2)));
        assert_eq!(numeric_owner("app"), None);
    }
}
