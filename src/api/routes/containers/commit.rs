//! `POST /commit` (`docker commit`): the container's writable layer as a
//! new layer over its image, with an image config as dockerd writes it.
//! The container is paused meanwhile unless `pause=0`; its actor lends the
//! layer directories (as for `docker diff`).

use berth_actors::container::fs::{FsView, FsWant};
use berth_actors::container::{ContainerMsg, Containers};
use berth_actors::image::NewLayer;
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{HandlerFuture, Req};
use crate::api::shared::*;
use crate::images::commit::{child_image, merge, Child, EMPTY_LAYER};

pub fn commit(r: Req) -> HandlerFuture {
    Box::pin(async move {
        let name = r.query.get("container").unwrap_or("").to_string();
        let rec = r
            .ctx
            .containers
            .containers
            .lookup(&name)
            .map_err(|_| ApiError::not_found(format!("No such container: {name}")))?;
        // The reference first: a bad one refuses before anything is done.
        let refs = repo_tag(&r)?;
        let container_config =
            serde_json::to_value(&rec.config).map_err(|e| ApiError::system(e.to_string()))?;
        // The request's config (none: the container's), the `--change`
        // lines over it, then what it leaves empty from the container's.
        let given: Value = if r.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            r.json()?
        };
        let base = if given.is_object() {
            given
        } else {
            container_config.clone()
        };
        let mut config =
            crate::images::apply_changes_to(base, &change_lines(&r)).map_err(ApiError::invalid)?;
        merge(&mut config, &container_config);

        let pause = !matches!(
            r.query.get("pause"),
            Some("0") | Some("false") | Some("False")
        );
        let paused_here = pause
            && rec.state.status.is_live()
            && rec.state.status != berth_actors::container::state::Status::Paused
            && Containers::ask(&rec.id, ContainerMsg::Pause).await.is_ok();
        let layer = diff_layer(&r, &rec).await;
        if paused_here {
            let _ = Containers::ask(&rec.id, ContainerMsg::Unpause).await;
        }
        let layer = layer?;
        let svc = r.ctx.images.clone();

        // The image's layers, then the new one (unless nothing changed).
        let snap = svc.images.snapshot();
        let parent = snap
            .images
            .get(&rec.image)
            .cloned()
            .ok_or_else(|| ApiError::system(format!("the image {} is gone", rec.image)))?;
        let mut layers: Vec<NewLayer> = Vec::new();
        for chain in &parent.record.layers {
            let l = snap
                .layers
                .get(chain)
                .ok_or_else(|| ApiError::system(format!("layer {chain} is missing")))?;
            layers.push(NewLayer {
                diff_id: l.diff_id.clone(),
                cache_id: l.cache_id.clone(),
                size: l.size,
                tar_size: l.tar_size,
                blob: l.blob.clone(),
            });
        }
        let changed = layer.diff_id != EMPTY_LAYER;
        let parent_config: Value = serde_json::from_slice(&parent.raw_config)
            .map_err(|e| ApiError::system(format!("the image's config: {e}")))?;
        let author = r.query.get("author").unwrap_or_default().to_string();
        let comment = r.query.get("comment").unwrap_or_default().to_string();
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let image = child_image(
            &parent_config,
            Child {
                config,
                container_config: &container_config,
                container_id: &rec.id,
                author: &author,
                comment: &comment,
                diff_id: changed.then_some(layer.diff_id.as_str()),
                created: &created,
                parent_id: &rec.image,
            },
        );
        let raw = serde_json::to_vec(&image).map_err(|e| ApiError::system(e.to_string()))?;
        let new = [layer.clone()];
        if changed {
            layers.push(layer);
        } else {
            let (s, l) = (svc.clone(), new.clone());
            let _ = tokio::task::spawn_blocking(move || s.discard(&l)).await;
        }
        let res = match svc.images.commit(raw, layers, refs.clone()).await {
            Ok(res) => res,
            Err(e) => {
                if changed {
                    let s = svc.clone();
                    let _ = tokio::task::spawn_blocking(move || s.discard(&new)).await;
                }
                return Err(ApiError::from_err(&e));
            }
        };
        let released = res.released.clone();
        let s = svc.clone();
        let _ = tokio::task::spawn_blocking(move || s.release(&released)).await;
        let image_ref = refs.first().map(|r| r.familiar()).unwrap_or_default();
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("name".to_string(), rec.short_name().to_string());
        attrs.insert("image".to_string(), rec.image_name.clone());
        attrs.insert("comment".to_string(), comment);
        attrs.insert("imageID".to_string(), res.id.clone());
        attrs.insert("imageRef".to_string(), image_ref);
        r.ctx.events.publish("container", "commit", &rec.id, attrs);
        Ok(body::json(StatusCode::CREATED, &json!({"Id": res.id})))
    })
}

/// The container's writable layer as a new layer in the store: the tar is
/// written on one thread and read into the storage driver on another.
async fn diff_layer(
    r: &Req,
    rec: &berth_actors::container::ContainerRecord,
) -> Result<NewLayer, ApiError> {
    let view = Containers::ask(&rec.id, |reply| ContainerMsg::Filesystem {
        want: FsWant::Layers,
        reply,
    })
    .await
    .map_err(err)?;
    let FsView::Layers { upper, .. } = view else {
        return Err(ApiError::system("not the container's layers"));
    };
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ApiError::system(e.to_string()))?;
    let (reader, writer) = (std::fs::File::from(reader), std::fs::File::from(writer));
    let writing = std::thread::Builder::new()
        .name("berth-commit".into())
        .spawn(move || crate::containers::changes::layer_diff(&upper, writer).map(drop))
        .map_err(|e| ApiError::system(e.to_string()))?;
    let svc = r.ctx.images.clone();
    let parent = rec.image_layer.clone();
    let built = tokio::task::spawn_blocking(move || svc.build_layer(parent.as_deref(), reader))
        .await
        .map_err(|e| ApiError::system(e.to_string()))?;
    let written = writing
        .join()
        .map_err(|_| ApiError::system("the layer's writer failed"))?;
    match (built, written) {
        (Ok(l), Ok(())) => Ok(l),
        (Ok(l), Err(e)) => {
            let s = r.ctx.images.clone();
            let _ = tokio::task::spawn_blocking(move || s.discard(&[l])).await;
            Err(ApiError::system(format!(
                "reading the container's changes: {e}"
            )))
        }
        (Err(e), _) => Err(ApiError::system(format!(
            "storing the container's changes: {e}"
        ))),
    }
}
