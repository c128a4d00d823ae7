//! `POST /commit` (`docker commit`): the container's writable layer as a
//! new layer over its image, with an image config as dockerd writes it.
//! The container is paused meanwhile unless `pause=0`; the image service
//! does the rest (`images::commit`).

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::api::body;
use crate::api::errors::ApiError;
use crate::api::router::{HandlerFuture, Req};
use crate::api::shared::*;
use crate::images::commit::{merge, ContainerCommit};

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
        let author = r.query.get("author").unwrap_or_default().to_string();
        let comment = r.query.get("comment").unwrap_or_default().to_string();
        let res = r
            .ctx
            .images
            .commit_container(ContainerCommit {
                rec: &rec,
                config,
                container_config: &container_config,
                pause,
                author: &author,
                comment: &comment,
                refs: refs.clone(),
            })
            .await
            .map_err(|e| {
                // A failure names the container (a full disk: which commit).
                let e = ApiError::from_err(&e);
                ApiError::new(
                    e.kind,
                    format!("committing container {}: {}", rec.short_name(), e.message),
                )
            })?;
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
