//! `squash` (with `experimental`): the layers a build added over its last
//! stage's base become one, as dockerd's `squash` makes them. Each layer
//! the build stored is applied in order onto a scratch layer over the
//! base (mounted, so a whiteout deletes what it names in the base and
//! overlayfs records the deletion); that layer's changes are the squashed
//! layer. The image keeps the build's config; its history keeps the
//! build's entries as empty layers and adds `merge <image> to <base>`.

use std::path::PathBuf;
use std::sync::Arc;

use berth_actors::image::ImageInfo;
use serde_json::{json, Value};

use super::session::{top_layer, Builder};
use super::BuildError;
use crate::images::commit::now;
use crate::sys::layers::{apply_layer, decompress, WhiteoutMode};

fn io(m: impl std::fmt::Display) -> BuildError {
    BuildError::Io(std::io::Error::other(m.to_string()))
}

/// The squashed image of `img` over `base` (`None`: scratch).
pub async fn squash(
    b: &Builder,
    base: Option<&ImageInfo>,
    img: &ImageInfo,
) -> Result<Arc<ImageInfo>, BuildError> {
    let base_layers: &[String] = base.map(|i| i.record.layers.as_slice()).unwrap_or(&[]);
    let n = base_layers.len();
    if img.record.layers.len() < n || img.record.layers[..n] != base_layers[..] {
        return Err(BuildError::Invalid(
            "squash: the image does not stand on its base's layers".into(),
        ));
    }
    let snap = b.images.images.snapshot();
    let mut blobs = Vec::new();
    for chain in &img.record.layers[n..] {
        let blob = snap
            .layers
            .get(chain)
            .and_then(|l| l.blob.clone())
            .ok_or_else(|| io(format!("squash: layer {chain} has no stored tar")))?;
        blobs.push(blob);
    }
    let top = top_layer(&b.images, base)?;
    let driver = b.images.driver.clone();
    let svc = b.images.clone();
    let tmp = crate::sys::blobs::random_hex(32);
    let (t, p, d) = (tmp.clone(), top.clone(), driver.clone());
    let upper = tokio::task::spawn_blocking(move || -> Result<PathBuf, BuildError> {
        let diff = d.create(&t, p.as_deref())?;
        let r = (|| {
            let root = if p.is_some() {
                d.mount_rw(&t)?
            } else {
                diff.clone()
            };
            let applied: Result<(), BuildError> = blobs.iter().try_for_each(|blob| {
                let f = std::io::BufReader::new(svc.blobs.open(&blob.digest)?);
                let (_, r) = decompress(f)?;
                apply_layer(&root, r, WhiteoutMode::Delete)
                    .map_err(|e| io(format!("squash: {e}")))?;
                Ok(())
            });
            if p.is_some() {
                d.unmount(&t)?;
            }
            applied?;
            if p.is_none() {
                return Ok(diff.clone());
            }
            d.describe(&t)
                .and_then(|m| m.get("UpperDir").cloned())
                .map(PathBuf::from)
                .ok_or_else(|| {
                    BuildError::NotImplemented("squash needs the overlay2 storage driver".into())
                })
        })();
        if r.is_err() {
            let _ = d.remove(&t);
        }
        r
    })
    .await
    .map_err(io)??;
    let layer = b.images.layer_of_dir(upper, top).await;
    let _ = tokio::task::spawn_blocking(move || driver.remove(&tmp)).await;
    let layer = b.images.drop_if_empty(Some(layer?)).await;

    let mut config: Value =
        serde_json::from_slice(&img.raw_config).map_err(|e| io(format!("squash: {e}")))?;
    let base_history = base.map_or(0, |i| i.config.history.len());
    let created = now();
    if let Some(h) = config.get_mut("history").and_then(Value::as_array_mut) {
        for e in h.iter_mut().skip(base_history) {
            e["empty_layer"] = json!(true);
        }
        let mut merge = json!({
            "created": created,
            "comment": format!("merge {} to {}", img.record.id, base.map(|i| i.record.id.as_str()).unwrap_or("scratch")),
        });
        if layer.is_none() {
            merge["empty_layer"] = json!(true);
        }
        h.push(merge);
    }
    let mut diff_ids: Vec<Value> = base
        .map(|i| i.config.rootfs.diff_ids.iter().map(|d| json!(d)).collect())
        .unwrap_or_default();
    if let Some(l) = &layer {
        diff_ids.push(json!(l.diff_id));
    }
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    config["created"] = json!(created);
    match base {
        Some(i) => config["parent"] = json!(i.record.id),
        None => {
            if let Some(o) = config.as_object_mut() {
                o.remove("parent");
            }
        }
    }
    let raw = serde_json::to_vec(&config).map_err(io)?;
    let layers = b.images.layers_of(base)?;
    let res = b.images.commit_raw(raw, layers, layer, vec![]).await?;
    super::session::committed(b, &res.id)
}
