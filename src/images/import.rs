//! `docker import` (`POST /images/create?fromSrc=-`): a tar (plain or
//! compressed) becomes the one layer of a new image whose config carries
//! the `--change` lines and the message.

use std::io::Read;
use std::sync::Arc;

use berth_actors::image::{CommitResult, Reference};
use serde_json::{json, Value};

use super::{ImageOpError, ImageService};

impl ImageService {
    /// Import `reader` as an image tagged `refs`; `arch` is the host's
    /// (`uname -m`). Nothing of the store is freed meanwhile, and nothing
    /// of a failed import stays.
    pub async fn import(
        self: &Arc<Self>,
        reader: impl Read + Send + 'static,
        refs: Vec<Reference>,
        container_config: Value,
        message: String,
        arch: &str,
    ) -> Result<CommitResult, ImageOpError> {
        let working = self.gc.working().await;
        let r = self
            .import_working(reader, refs, container_config, message, arch)
            .await;
        working.finish().await;
        r
    }

    async fn import_working(
        self: &Arc<Self>,
        reader: impl Read + Send + 'static,
        refs: Vec<Reference>,
        container_config: Value,
        message: String,
        arch: &str,
    ) -> Result<CommitResult, ImageOpError> {
        let svc = self.clone();
        let layer = tokio::task::spawn_blocking(move || svc.build_layer(None, reader))
            .await
            .map_err(|e| ImageOpError::Io(std::io::Error::other(e.to_string())))??;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let comment = if message.is_empty() {
            "Imported from -".to_string()
        } else {
            message
        };
        let arch = match arch {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let config = json!({
            "architecture": arch,
            "comment": comment,
            "config": container_config,
            "created": now,
            "history": [{"created": now, "comment": comment}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        });
        let raw = serde_json::to_vec(&config)
            .map_err(|e| ImageOpError::Io(std::io::Error::other(e.to_string())))?;
        let res = match self.images.commit(raw, vec![layer.clone()], refs).await {
            Ok(res) => res,
            Err(e) => {
                let s = self.clone();
                let _ = tokio::task::spawn_blocking(move || s.discard(&[layer])).await;
                return Err(e.into());
            }
        };
        let (s, released) = (self.clone(), res.released.clone());
        let _ = tokio::task::spawn_blocking(move || s.release(&released)).await;
        Ok(res)
    }
}
