//! `docker pull`: resolve the manifest (errors before any output get an
//! HTTP status), then stream dockerd's progress messages while layers
//! download concurrently (max-concurrent-downloads, max-download-attempts)
//! and are verified (digest and size) and extracted in order. Nothing is
//! committed before everything is verified; a failed or cancelled pull
//! leaves no layer, blob or record behind.

use std::sync::Arc;
use std::time::Duration;

use berth_actors::image::{chain_ids, digest_hex, BlobRef, ImageConfig, NewLayer, Reference};
use berth_actors::ErrorKind;
use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::secrets::RegistryAuth;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

use super::{ImageOpError, ImageService};
use crate::config::DaemonConfig;
use crate::sys::registry;
use crate::task::AbortOnDrop;

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];
const LAYER_TYPES: &[&str] = &[
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
];
const MAX_CONFIG: u64 = 32 << 20;

/// An error with the kind that decides its HTTP status.
#[derive(Debug)]
pub struct PullError(pub ErrorKind, pub String);

impl From<ImageOpError> for PullError {
    fn from(e: ImageOpError) -> Self {
        use berth_actors::HasKind;
        PullError(e.kind(), e.to_string())
    }
}

fn reg_err(e: oci_client::errors::OciDistributionError) -> PullError {
    let (k, m) = registry::describe(&e);
    PullError(k, m)
}

fn invalid(m: impl Into<String>) -> PullError {
    PullError(ErrorKind::InvalidParameter, m.into())
}

#[derive(Debug, Clone)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

fn desc(v: &Value) -> Result<Desc, PullError> {
    let digest = v["digest"].as_str().unwrap_or_default().to_string();
    if !berth_actors::image::reference::valid_digest(&digest) {
        return Err(invalid(format!("invalid manifest: bad digest {digest:?}")));
    }
    let size = v["size"]
        .as_u64()
        .ok_or_else(|| invalid(format!("invalid manifest: {digest} has no size")))?;
    Ok(Desc {
        media_type: v["mediaType"].as_str().unwrap_or_default().to_string(),
        digest,
        size,
    })
}

/// A pull whose manifest is resolved and checked.
pub struct Prepared {
    client: oci_client::Client,
    oref: oci_client::Reference,
    pub reference: Reference,
    pub manifest_digest: String,
    config: Desc,
    layers: Vec<Desc>,
    attempts: u32,
    downloads: usize,
}

/// The host platform as OCI names it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Parse a manifest; an index picks linux/<host arch>.
pub(crate) fn parse_manifest(raw: &[u8]) -> Result<Result<(Desc, Vec<Desc>), String>, PullError> {
    let v: Value =
        serde_json::from_slice(raw).map_err(|e| invalid(format!("invalid manifest: {e}")))?;
    let has_manifests = v.get("manifests").is_some();
    let has_layers = v.get("layers").is_some();
    if has_manifests && has_layers {
        return Err(invalid(
            "invalid manifest: it has both manifests and layers",
        ));
    }
    let mt = v["mediaType"].as_str().unwrap_or_default();
    if !mt.is_empty() && !MANIFEST_TYPES.contains(&mt) {
        return Err(invalid(format!("unsupported manifest media type {mt}")));
    }
    if has_manifests {
        let pick = v["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                m["platform"]["os"] == "linux" && m["platform"]["architecture"] == host_arch()
            })
            .ok_or_else(|| {
                PullError(
                    ErrorKind::NotFound,
                    format!(
                        "no matching manifest for linux/{} in the manifest list entries",
                        host_arch()
                    ),
                )
            })?;
        return Ok(Err(desc(pick)?.digest));
    }
    if v["schemaVersion"].as_i64() != Some(2) {
        return Err(invalid(
            "unsupported manifest: only schema version 2 is supported",
        ));
    }
    let config = desc(&v["config"])?;
    let layers = v["layers"]
        .as_array()
        .ok_or_else(|| invalid("invalid manifest: no layers"))?
        .iter()
        .map(desc)
        .collect::<Result<Vec<_>, _>>()?;
    for l in &layers {
        if !LAYER_TYPES.contains(&l.media_type.as_str()) {
            return Err(invalid(format!(
                "unsupported layer media type {:?}",
                l.media_type
            )));
        }
    }
    Ok(Ok((config, layers)))
}

/// Resolve a pull: Docker Hub references try each `registry-mirrors`
/// entry first (anonymously, as dockerd), then the registry itself.
pub async fn prepare(
    reference: Reference,
    auth: RegistryAuth,
    cfg: &DaemonConfig,
    clients: &registry::Clients,
) -> Result<Prepared, PullError> {
    if reference.domain() == berth_actors::image::reference::DEFAULT_DOMAIN {
        for m in &cfg.registry_mirrors {
            let mhost = super::auth::registry_host(m);
            let path = reference
                .repo
                .split_once('/')
                .map(|(_, p)| p)
                .unwrap_or(&reference.repo);
            let mut source = format!("{mhost}/{path}");
            if let Some(t) = &reference.tag {
                source.push_str(&format!(":{t}"));
            }
            if let Some(d) = &reference.digest {
                source.push_str(&format!("@{d}"));
            }
            let http = m.starts_with("http://") || registry::is_insecure(&mhost, cfg);
            let client = clients.get(&mhost, http, cfg);
            match prepare_at(
                reference.clone(),
                client,
                &mhost,
                &source,
                RegistryAuth::Anonymous,
                cfg,
            )
            .await
            {
                Ok(p) => return Ok(p),
                Err(e) => {
                    tracing::warn!(mirror = %m, "pull from mirror failed, trying the next source: {}", e.1)
                }
            }
        }
    }
    let host = reference.domain().to_string();
    let client = clients.for_host(&host, cfg);
    let source = reference.to_string();
    prepare_at(reference, client, &host, &source, auth, cfg).await
}

async fn prepare_at(
    reference: Reference,
    client: oci_client::Client,
    host: &str,
    source: &str,
    auth: RegistryAuth,
    cfg: &DaemonConfig,
) -> Result<Prepared, PullError> {
    let oref: oci_client::Reference = source
        .parse()
        .map_err(|e| invalid(format!("invalid reference: {e}")))?;
    let (raw, digest) = client.pull_manifest_raw(&oref, &auth, MANIFEST_TYPES).await.map_err(|e| {
        let PullError(k, m) = reg_err(e);
        match k {
            ErrorKind::NotFound => PullError(k, format!("manifest for {} not found: {m}", reference.familiar())),
            // dockerd answers 500 here (a 401 would make the CLI prompt for a login).
            ErrorKind::Unauthorized if matches!(auth, RegistryAuth::Anonymous) => {
                let scheme = if registry::is_insecure(host, cfg) { "http" } else { "https" };
                let path = reference.repo.split_once('/').map(|(_, p)| p).unwrap_or(&reference.repo);
                let what = reference.tag.clone().or(reference.digest.clone()).unwrap_or_default();
                PullError(ErrorKind::System, format!("Head \"{scheme}://{host}/v2/{path}/manifests/{what}\": no basic auth credentials"))
            }
            ErrorKind::Unauthorized => PullError(ErrorKind::System, m),
            _ => PullError(k, m),
        }
    })?;
    let mut parsed = parse_manifest(&raw)?;
    if let Err(platform_digest) = parsed {
        // The platform's manifest, from the same source (mirror or registry).
        let source_repo = source.split('@').next().unwrap_or(source);
        let source_repo = match source_repo.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => r,
            _ => source_repo,
        };
        let by_digest: oci_client::Reference =
            format!("{source_repo}@{platform_digest}")
                .parse()
                .map_err(|e| invalid(format!("invalid reference: {e}")))?;
        let (raw2, d2) = client
            .pull_manifest_raw(&by_digest, &auth, MANIFEST_TYPES)
            .await
            .map_err(reg_err)?;
        if berth_actors::image::sha256_digest(&raw2) != platform_digest {
            return Err(invalid(format!(
                "manifest {platform_digest} does not match its digest"
            )));
        }
        parsed = parse_manifest(&raw2)?;
        // The reference keeps the list's digest (RepoDigests, "Digest:"), as dockerd.
        let _ = d2;
        if parsed.is_err() {
            return Err(invalid("invalid manifest: an index inside an index"));
        }
    }
    if berth_actors::image::sha256_digest(&raw) != digest && reference.digest.is_some() {
        return Err(invalid("manifest does not match its digest"));
    }
    let Ok((config, layers)) = parsed else {
        unreachable!("handled above")
    };
    Ok(Prepared {
        client,
        oref,
        reference,
        manifest_digest: digest,
        config,
        layers,
        attempts: cfg.max_download_attempts.max(1) as u32,
        downloads: cfg.max_concurrent_downloads.max(1) as usize,
    })
}

/// Progress lines to the client; an error means the client went away.
#[derive(Clone)]
pub struct Progress(pub mpsc::Sender<Bytes>);

impl Progress {
    pub async fn send(&self, v: Value) -> Result<(), PullError> {
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.extend_from_slice(b"\r\n");
        self.0
            .send(Bytes::from(b))
            .await
            .map_err(|_| PullError(ErrorKind::Unavailable, "client went away".into()))
    }
    /// For frequent updates: drop rather than wait when the client is slow.
    pub fn try_send(&self, v: Value) {
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.extend_from_slice(b"\r\n");
        let _ = self.0.try_send(Bytes::from(b));
    }
}

pub fn short(d: &str) -> String {
    digest_hex(d).chars().take(12).collect()
}

/// dockerd's text progress bar: `[=====>     ] 1.2MB/3.4MB`.
pub fn bar(current: u64, total: u64) -> String {
    const WIDTH: usize = 50;
    let human = |n: u64| match n {
        n if n >= 1_000_000 => format!("{:.2}MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.2}kB", n as f64 / 1e3),
        n => format!("{n}B"),
    };
    let filled = ((current.min(total) * WIDTH as u64)
        .checked_div(total)
        .unwrap_or(0) as usize)
        .min(WIDTH);
    let head = match filled {
        0 => String::new(),
        WIDTH => "=".repeat(WIDTH),
        n => format!("{}>", "=".repeat(n - 1)),
    };
    format!(
        "[{head}{}] {}/{}",
        " ".repeat(WIDTH - filled),
        human(current),
        human(total)
    )
}

/// The config blob, into memory (it is small; the store keeps it as a
/// record), verified by size and digest.
async fn download_config(p: &Prepared) -> Result<Vec<u8>, PullError> {
    let mut stream = p
        .client
        .pull_blob_stream(&p.oref, p.config.digest.as_str())
        .await
        .map_err(reg_err)?;
    let mut raw = Vec::with_capacity(p.config.size as usize);
    while let Some(chunk) = stream.stream.next().await {
        let chunk = chunk.map_err(|e| invalid(format!("image config {}: {e}", p.config.digest)))?;
        if (raw.len() + chunk.len()) as u64 > p.config.size {
            return Err(invalid(format!(
                "image config {} is larger than its descriptor size",
                p.config.digest
            )));
        }
        raw.extend_from_slice(&chunk);
    }
    if raw.len() as u64 != p.config.size
        || berth_actors::image::sha256_digest(&raw) != p.config.digest
    {
        return Err(invalid(format!(
            "image config {} does not match its digest or size",
            p.config.digest
        )));
    }
    Ok(raw)
}

/// Download one blob into the blob store, verifying size and digest.
async fn download(
    p: &Prepared,
    svc: &ImageService,
    d: &Desc,
    out: &Progress,
    show: bool,
) -> Result<BlobRef, PullError> {
    let mut last_err = None;
    for attempt in 0..p.attempts {
        if attempt > 0 {
            let wait = Duration::from_millis(500 * (1 << attempt.min(5)));
            if show {
                out.try_send(json!({"status": format!("Retrying in {} seconds", wait.as_secs().max(1)), "progressDetail": {}, "id": short(&d.digest)}));
            }
            tokio::time::sleep(wait).await;
        }
        match download_once(p, svc, d, out, show).await {
            Ok(b) => return Ok(b),
            Err(e) if e.0 == ErrorKind::Unavailable => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| PullError(ErrorKind::System, "download failed".into())))
}

async fn download_once(
    p: &Prepared,
    svc: &ImageService,
    d: &Desc,
    out: &Progress,
    show: bool,
) -> Result<BlobRef, PullError> {
    let mut stream = p
        .client
        .pull_blob_stream(&p.oref, d.digest.as_str())
        .await
        .map_err(reg_err)?;
    let stored =
        |e: std::io::Error| PullError(ErrorKind::System, format!("storing blob {}: {e}", d.digest));
    let mut w = svc.blobs.writer().map_err(stored)?;
    let mut got: u64 = 0;
    let mut last_report = 0u64;
    while let Some(chunk) = stream.stream.next().await {
        let chunk = chunk.map_err(|e| {
            if e.to_string().contains("digest") {
                invalid(format!("blob {}: {e}", d.digest))
            } else {
                PullError(
                    ErrorKind::Unavailable,
                    format!("downloading {}: {e}", d.digest),
                )
            }
        })?;
        got += chunk.len() as u64;
        // A blob never reads past its descriptor's size.
        if got > d.size {
            return Err(invalid(format!(
                "blob {} is larger than its descriptor size {}",
                d.digest, d.size
            )));
        }
        std::io::Write::write_all(&mut w, &chunk).map_err(stored)?;
        if show && (got - last_report >= 512 * 1024 || got == d.size) {
            last_report = got;
            out.try_send(json!({"status": "Downloading", "progressDetail": {"current": got, "total": d.size}, "progress": bar(got, d.size), "id": short(&d.digest)}));
        }
    }
    if got != d.size {
        return Err(invalid(format!(
            "blob {} has {got} bytes, its descriptor says {}",
            d.digest, d.size
        )));
    }
    if show {
        out.try_send(
            json!({"status": "Verifying Checksum", "progressDetail": {}, "id": short(&d.digest)}),
        );
    }
    let (digest, size) = w.commit().map_err(stored)?;
    if digest != d.digest {
        // Another operation may store the same bytes: freed through gc.
        svc.gc.defer(None, Some(digest.clone()));
        return Err(invalid(format!(
            "blob digest mismatch: expected {}, got {digest}",
            d.digest
        )));
    }
    Ok(BlobRef {
        digest,
        media_type: d.media_type.clone(),
        size,
    })
}

/// Layers and blobs a pull made that are not committed yet.
struct Leftovers {
    svc: Arc<ImageService>,
    built: Vec<NewLayer>,
    blobs: Vec<String>,
    armed: bool,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (svc, built, blobs) = (
            self.svc.clone(),
            std::mem::take(&mut self.built),
            std::mem::take(&mut self.blobs),
        );
        // Removed when the pull's [`super::gc::Working`] ends (the blobs only if
        // no committed layer uses them then).
        svc.gc.defer(
            built.iter().map(|l| l.cache_id.clone()),
            built
                .iter()
                .filter_map(|l| l.blob.as_ref().map(|b| b.digest.clone()))
                .chain(blobs),
        );
    }
}

/// Run a prepared pull, writing progress; returns the image ID. Nothing
/// of the store is freed meanwhile (see [`super::gc`]); what the pull leaves is
/// freed before this returns.
pub async fn run(svc: Arc<ImageService>, p: Prepared, out: Progress) -> Result<String, PullError> {
    let working = svc.gc.working().await;
    let r = run_working(svc, p, out).await;
    working.finish().await;
    r
}

async fn run_working(
    svc: Arc<ImageService>,
    p: Prepared,
    out: Progress,
) -> Result<String, PullError> {
    let tag_or_digest = p
        .reference
        .tag
        .clone()
        .or(p.reference.digest.clone())
        .unwrap_or_default();
    out.send(json!({"status": format!("Pulling from {}", p.reference.familiar_repo()), "id": tag_or_digest})).await?;
    // The config, verified before anything else is trusted.
    if p.config.size > MAX_CONFIG {
        return Err(invalid("image config is too large"));
    }
    let raw = download_config(&p).await?;
    let cfg = ImageConfig::parse(&raw).map_err(invalid)?;
    if cfg.rootfs.diff_ids.len() != p.layers.len() {
        return Err(invalid(format!(
            "image config has {} layers, the manifest {}",
            cfg.rootfs.diff_ids.len(),
            p.layers.len()
        )));
    }
    let id = p.config.digest.clone();
    let chains = chain_ids(&cfg.rootfs.diff_ids);
    let snap = svc.images.snapshot();
    let up_to_date = snap.images.contains_key(&id);
    for (i, l) in p.layers.iter().enumerate() {
        let status = if snap.layers.contains_key(&chains[i]) {
            "Already exists"
        } else {
            "Pulling fs layer"
        };
        out.send(json!({"status": status, "progressDetail": {}, "id": short(&l.digest)}))
            .await?;
    }
    // Layers beyond the concurrent-download limit wait for a slot.
    let missing = p
        .layers
        .iter()
        .enumerate()
        .filter(|(i, _)| !snap.layers.contains_key(&chains[*i]));
    for (_, l) in missing.skip(p.downloads) {
        out.send(json!({"status": "Waiting", "progressDetail": {}, "id": short(&l.digest)}))
            .await?;
    }

    // Downloads run concurrently; extraction follows in layer order.
    let sem = Arc::new(Semaphore::new(p.downloads));
    let p = Arc::new(p);
    let mut pending = Vec::new();
    for (i, l) in p.layers.iter().enumerate() {
        if snap.layers.contains_key(&chains[i]) {
            pending.push(None);
            continue;
        }
        let (p2, svc2, out2, sem2, l2) =
            (p.clone(), svc.clone(), out.clone(), sem.clone(), l.clone());
        pending.push(Some(AbortOnDrop(tokio::spawn(async move {
            let _permit = sem2.acquire_owned().await;
            let r = download(&p2, &svc2, &l2, &out2, true).await;
            if r.is_ok() {
                out2.try_send(json!({"status": "Download complete", "progressDetail": {}, "id": short(&l2.digest)}));
            }
            r
        }))));
    }
    // Removes what this pull built unless it is committed: on errors, on a
    // client going away and when the session is killed (the future is dropped).
    let mut left = Leftovers {
        svc: svc.clone(),
        built: Vec::new(),
        blobs: Vec::new(),
        armed: true,
    };
    let mut all = Vec::new();
    let mut parent: Option<String> = None;
    let result: Result<(), PullError> = async {
        for (i, task) in pending.iter_mut().enumerate() {
            let Some(mut task) = task.take() else {
                let rec = snap.layers.get(&chains[i]).ok_or_else(|| PullError(ErrorKind::System, "layer vanished".into()))?;
                parent = Some(rec.cache_id.clone());
                all.push(NewLayer { diff_id: rec.diff_id.clone(), cache_id: rec.cache_id.clone(), size: rec.size, tar_size: rec.tar_size, blob: rec.blob.clone() });
                continue;
            };
            let blob = (&mut task.0).await.map_err(|e| PullError(ErrorKind::System, e.to_string()))??;
            left.blobs.push(blob.digest.clone());
            berth_actors::failpoint::hit("pull:blobs");
            let d = &p.layers[i];
            out.send(json!({"status": "Extracting", "progressDetail": {"current": d.size, "total": d.size}, "progress": bar(d.size, d.size), "id": short(&d.digest)})).await?;
            let (svc2, parent2, blob2) = (svc.clone(), parent.clone(), blob.clone());
            let nl = tokio::task::spawn_blocking(move || svc2.apply_blob(parent2.as_deref(), &blob2))
                .await
                .map_err(|e| PullError(ErrorKind::System, e.to_string()))??;
            left.built.push(nl.clone());
            if nl.diff_id != cfg.rootfs.diff_ids[i] {
                return Err(invalid(format!("layer {} has diffID {}, the config expects {}", d.digest, nl.diff_id, cfg.rootfs.diff_ids[i])));
            }
            parent = Some(nl.cache_id.clone());
            all.push(nl);
            out.send(json!({"status": "Pull complete", "progressDetail": {}, "id": short(&d.digest)})).await?;
        }
        Ok(())
    }
    .await;
    result?;
    let mut refs = vec![Reference {
        repo: p.reference.repo.clone(),
        tag: None,
        digest: Some(p.manifest_digest.clone()),
    }];
    if p.reference.tag.is_some() {
        refs.push(Reference {
            digest: None,
            ..p.reference.clone()
        });
    }
    let res = svc
        .images
        .commit(raw, all, refs)
        .await
        .map_err(|e| PullError::from(ImageOpError::from(e)))?;
    left.armed = false;
    let released = res.released.clone();
    let s = svc.clone();
    let _ = tokio::task::spawn_blocking(move || s.release(&released)).await;
    svc.event("pull", &res.id, &p.reference.familiar());
    out.send(json!({"status": format!("Digest: {}", p.manifest_digest)}))
        .await?;
    let status = if up_to_date {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    out.send(json!({"status": format!("Status: {status} {}", p.reference.familiar())}))
        .await?;
    Ok(res.id)
}

/// `GET /distribution/{name}/json`: the manifest descriptor and platforms.
pub async fn distribution(
    reference: Reference,
    auth: RegistryAuth,
    cfg: &DaemonConfig,
    clients: &registry::Clients,
) -> Result<Value, PullError> {
    let host = reference.domain().to_string();
    let client = clients.for_host(&host, cfg);
    let oref: oci_client::Reference = reference
        .to_string()
        .parse()
        .map_err(|e| invalid(format!("invalid reference: {e}")))?;
    let (raw, digest) = client
        .pull_manifest_raw(&oref, &auth, MANIFEST_TYPES)
        .await
        .map_err(reg_err)?;
    let v: Value =
        serde_json::from_slice(&raw).map_err(|e| invalid(format!("invalid manifest: {e}")))?;
    let media_type = v["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    let platforms: Vec<Value> = if let Some(list) = v["manifests"].as_array() {
        list.iter()
            .map(|m| m["platform"].clone())
            .filter(|p| p.is_object())
            .collect()
    } else {
        let config = desc(&v["config"])?;
        let p = Prepared {
            client,
            oref,
            reference,
            manifest_digest: digest.clone(),
            config,
            layers: vec![],
            attempts: 1,
            downloads: 1,
        };
        let c: Value = serde_json::from_slice(&download_config(&p).await?).unwrap_or(Value::Null);
        vec![json!({"architecture": c["architecture"], "os": c["os"]})]
    };
    Ok(json!({
        "Descriptor": {"mediaType": media_type, "digest": digest, "size": raw.len()},
        "Platforms": platforms,
    }))
}
