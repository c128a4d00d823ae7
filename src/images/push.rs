//! `docker push`: every layer blob (as stored) and the config go up unless
//! the registry has them (or can mount them from another repository), then
//! a schema2 manifest; progress in dockerd's words.

use std::sync::Arc;

use berth_actors::image::{ImageInfo, Reference};
use berth_actors::ErrorKind;
use bytes::Bytes;
use futures_util::StreamExt;
use hyper::header::HeaderValue;
use oci_client::secrets::RegistryAuth;
use serde_json::json;

use super::pull::{bar, short, Progress, PullError};
use super::ImageService;
use crate::config::DaemonConfig;
use crate::sys::registry;

fn reg_err(e: oci_client::errors::OciDistributionError) -> PullError {
    let (k, m) = registry::describe(&e);
    PullError(k, m)
}

/// Push `info` as `reference` (which carries the tag); returns the manifest digest.
pub async fn run(
    svc: Arc<ImageService>,
    info: Arc<ImageInfo>,
    reference: Reference,
    auth: RegistryAuth,
    cfg: &DaemonConfig,
    clients: &registry::Clients,
    out: Progress,
) -> Result<String, PullError> {
    // The blobs it reads are not freed meanwhile (an rmi's wait for it).
    let working = svc.gc.working().await;
    let r = run_working(svc, info, reference, auth, cfg, clients, out).await;
    working.finish().await;
    r
}

async fn run_working(
    svc: Arc<ImageService>,
    info: Arc<ImageInfo>,
    reference: Reference,
    auth: RegistryAuth,
    cfg: &DaemonConfig,
    clients: &registry::Clients,
    out: Progress,
) -> Result<String, PullError> {
    let host = reference.domain().to_string();
    let client = clients.for_host(&host, cfg);
    let oref: oci_client::Reference = reference.to_string().parse().map_err(|e| {
        PullError(
            ErrorKind::InvalidParameter,
            format!("invalid reference: {e}"),
        )
    })?;
    out.send(
        json!({"status": format!("The push refers to repository [{}]", reference.familiar_repo())}),
    )
    .await?;
    client
        .auth(&oref, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(reg_err)?;
    let snap = svc.images.snapshot();
    let mut layers = Vec::new();
    for chain in &info.record.layers {
        let rec = snap
            .layers
            .get(chain)
            .ok_or_else(|| PullError(ErrorKind::System, format!("layer {chain} is missing")))?;
        let blob = rec.blob.clone().ok_or_else(|| {
            PullError(
                ErrorKind::System,
                format!("layer {chain} has no stored blob"),
            )
        })?;
        layers.push(blob);
    }
    for b in layers.iter().rev() {
        out.send(json!({"status": "Preparing", "progressDetail": {}, "id": short(&b.digest)}))
            .await?;
    }
    // Repositories of this registry known to hold each blob: those of
    // images with a digest reference there (pulled from or pushed to it).
    let mut sources: std::collections::HashMap<String, Vec<oci_client::Reference>> =
        Default::default();
    for (r, id) in &snap.refs {
        if r.digest.is_none() || r.domain() != host || r.repo == reference.repo {
            continue;
        }
        let Some(img) = snap.images.get(id) else {
            continue;
        };
        let Ok(src) = format!("{}@{}", r.repo, r.digest.clone().unwrap_or_default())
            .parse::<oci_client::Reference>()
        else {
            continue;
        };
        for chain in &img.record.layers {
            if let Some(b) = snap.layers.get(chain).and_then(|l| l.blob.as_ref()) {
                sources
                    .entry(b.digest.clone())
                    .or_default()
                    .push(src.clone());
            }
        }
    }
    let sources = Arc::new(sources);
    // Layers go up concurrently (max-concurrent-uploads), each skipped
    // when the registry already has it, or mounted from another
    // repository of the registry that has it.
    let sem = Arc::new(tokio::sync::Semaphore::new(
        cfg.max_concurrent_uploads.max(1) as usize,
    ));
    let mut tasks = Vec::new();
    for b in layers.iter().rev().cloned() {
        let (client, oref, out, svc, sem, sources) = (
            client.clone(),
            oref.clone(),
            out.clone(),
            svc.clone(),
            sem.clone(),
            sources.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let id = short(&b.digest);
            if client.blob_exists(&oref, &b.digest).await.map_err(reg_err)? {
                return out.send(json!({"status": "Layer already exists", "progressDetail": {}, "id": id})).await;
            }
            for src in sources.get(&b.digest).into_iter().flatten() {
                if client.mount_blob(&oref, src, &b.digest).await.is_ok() {
                    let from = src.repository().to_string();
                    return out.send(json!({"status": format!("Mounted from {from}"), "progressDetail": {}, "id": id})).await;
                }
            }
            // Errors name the blob and its path (they reach the client).
            let svc2 = svc.clone();
            let digest = b.digest.clone();
            let file = tokio::task::spawn_blocking(move || svc2.blobs.open(&digest))
                .await
                .map_err(|e| PullError(ErrorKind::System, e.to_string()))?
                .map_err(|e| PullError(ErrorKind::System, format!("pushing layer {}: {e}", b.digest)))?;
            let file = tokio::fs::File::from_std(file);
            let (total, out2, id2) = (b.size, out.clone(), id.clone());
            let mut sent = 0u64;
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |r| {
                if let Ok(chunk) = &r {
                    sent += chunk.len() as u64;
                    out2.try_send(json!({"status": "Pushing", "progressDetail": {"current": sent, "total": total}, "progress": bar(sent, total), "id": id2}));
                }
                r.map_err(oci_client::errors::OciDistributionError::IoError)
            });
            client.push_blob_stream(&oref, stream, &b.digest, Some(b.size)).await.map_err(reg_err)?;
            out.send(json!({"status": "Pushed", "progressDetail": {}, "id": id})).await
        }));
    }
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(e) => first_err = first_err.or(Some(PullError(ErrorKind::System, e.to_string()))),
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    berth_actors::failpoint::hit("push:layers");
    let config_digest = info.record.id.clone();
    if !client
        .blob_exists(&oref, &config_digest)
        .await
        .map_err(reg_err)?
    {
        client
            .push_blob(
                &oref,
                Bytes::from((*info.raw_config).clone()),
                &config_digest,
            )
            .await
            .map_err(reg_err)?;
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": info.raw_config.len(), "digest": config_digest},
        "layers": layers.iter().map(|b| json!({"mediaType": b.media_type, "size": b.size, "digest": b.digest})).collect::<Vec<_>>(),
    }))
    .unwrap_or_default();
    let digest = berth_actors::image::sha256_digest(&manifest);
    client
        .push_manifest_raw(
            &oref,
            manifest.clone(),
            HeaderValue::from_static("application/vnd.docker.distribution.manifest.v2+json"),
        )
        .await
        .map_err(reg_err)?;
    let tag = reference.tag.clone().unwrap_or_default();
    out.send(json!({"status": format!("{tag}: digest: {digest} size: {}", manifest.len())}))
        .await?;
    out.send(json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": manifest.len()}})).await?;
    let digest_ref = Reference {
        repo: reference.repo.clone(),
        tag: None,
        digest: Some(digest.clone()),
    };
    let _ = svc.images.tag(info.record.id.clone(), digest_ref).await;
    svc.event("push", &info.record.id, &reference.familiar());
    Ok(digest)
}
