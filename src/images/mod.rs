//! Image operations that move bytes: import, load, save. They run on
//! blocking threads, apply layers into the storage driver, store blobs, and
//! then commit through the ImageStore actor (the only writer of records).

pub(crate) mod archive;
pub mod auth;
mod changes;
pub mod commit;
pub mod gc;
mod import;
pub mod io;
pub mod pull;
pub mod push;
pub mod session;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use berth_actors::events::Events;
use berth_actors::image::{BlobRef, ImageError, Images, NewLayer, Released};
use berth_actors::{ErrorKind, HasKind};

pub use archive::{load_archive, save_archive, LoadedImage};
pub use changes::{apply_changes, apply_changes_to, empty_config as changes_empty_config};
pub use io::{pump_body, ChannelReader, ChannelWriter};

use crate::sys::blobs::{random_hex, BlobStore};
use crate::sys::layers::{apply_layer, decompress, Compression, LayerError};
use crate::sys::storage::StorageDriver;

#[derive(Debug, thiserror::Error)]
pub enum ImageOpError {
    #[error("{0}")]
    Layer(#[from] LayerError),
    #[error("{0}")]
    Image(#[from] ImageError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A container the operation works on (a commit's) refused.
    #[error("{0}")]
    Container(berth_actors::container::ContainerError),
}

impl ImageOpError {
    /// The error with what failed in front (`what`: the layer, blob or
    /// file): a client sees which object a full disk or a bad layer hit.
    pub fn about(self, what: impl std::fmt::Display) -> Self {
        let wrap = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"));
        match self {
            ImageOpError::Io(e) => ImageOpError::Io(wrap(e)),
            ImageOpError::Layer(LayerError::Io(e)) => ImageOpError::Layer(LayerError::Io(wrap(e))),
            ImageOpError::Layer(LayerError::Invalid(m)) => {
                ImageOpError::Layer(LayerError::Invalid(format!("{what}: {m}")))
            }
            e => e,
        }
    }
}

impl HasKind for ImageOpError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImageOpError::Layer(e) => e.kind(),
            ImageOpError::Image(e) => e.kind(),
            ImageOpError::Invalid(_) => ErrorKind::InvalidParameter,
            ImageOpError::Io(_) => ErrorKind::System,
            ImageOpError::Container(e) => e.kind(),
        }
    }
}

/// Everything image operations need; shared by the API handlers.
pub struct ImageService {
    pub images: Images,
    pub driver: Arc<dyn StorageDriver>,
    pub blobs: BlobStore,
    pub events: Events,
    /// One lock per blob digest being downloaded: concurrent pulls of the
    /// same layer download it once, the others find it in the blob store.
    pub downloads: std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Content is freed only while no image operation is in flight.
    pub gc: gc::Gc,
}

/// Copies what it reads into a blob writer.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut crate::sys::blobs::BlobWriter,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        std::io::Write::write_all(self.out, &buf[..n])?;
        Ok(n)
    }
}

pub fn media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.docker.image.rootfs.diff.tar",
        Compression::Gzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

impl ImageService {
    /// Apply one layer blob (compressed or not) above `parent`, keeping the
    /// blob as received. On failure nothing of it stays on disk.
    pub fn build_layer(
        &self,
        parent: Option<&str>,
        input: impl Read + Send,
    ) -> Result<NewLayer, ImageOpError> {
        let cache_id = random_hex(32);
        let dir = self
            .driver
            .create(&cache_id, parent)
            .map_err(|e| ImageOpError::Io(e).about(format!("creating layer {cache_id}")))?;
        let result = (|| {
            let mut blob = self.blobs.writer()?;
            let stats;
            let compression;
            {
                let mut tee = Tee {
                    inner: input,
                    out: &mut blob,
                };
                let (c, reader) = decompress(&mut tee)?;
                compression = c;
                stats = apply_layer(&dir, reader, self.driver.whiteouts())?;
                // Keep the rest of the blob (compression trailer, padding).
                std::io::copy(&mut tee, &mut std::io::sink())?;
            }
            let (digest, size) = blob.commit()?;
            Ok(NewLayer {
                diff_id: stats.diff_id,
                cache_id: cache_id.clone(),
                size: stats.size,
                tar_size: stats.tar_size,
                blob: Some(BlobRef {
                    digest,
                    media_type: media_type(compression).into(),
                    size,
                }),
            })
        })();
        if result.is_err() {
            let _ = self.driver.remove(&cache_id);
        }
        result.map_err(|e: ImageOpError| e.about(format!("layer {cache_id}")))
    }

    /// Apply an already stored (and verified) blob as a layer above `parent`.
    pub fn apply_blob(
        &self,
        parent: Option<&str>,
        blob: &BlobRef,
    ) -> Result<NewLayer, ImageOpError> {
        let cache_id = random_hex(32);
        let dir = self
            .driver
            .create(&cache_id, parent)
            .map_err(|e| ImageOpError::Io(e).about(format!("creating layer {cache_id}")))?;
        let result = (|| {
            let f = std::io::BufReader::new(self.blobs.open(&blob.digest)?);
            let (_, reader) = decompress(f)?;
            let stats = apply_layer(&dir, reader, self.driver.whiteouts())?;
            Ok(NewLayer {
                diff_id: stats.diff_id,
                cache_id: cache_id.clone(),
                size: stats.size,
                tar_size: stats.tar_size,
                blob: Some(blob.clone()),
            })
        })();
        if result.is_err() {
            let _ = self.driver.remove(&cache_id);
        }
        result.map_err(|e: ImageOpError| e.about(&blob.digest))
    }

    /// Free what the store no longer references.
    pub fn release(&self, r: &Released) {
        self.gc
            .free(r.cache_ids.iter().cloned(), r.blobs.iter().cloned());
    }

    /// Drop layers built for an operation that then failed (their blobs
    /// only if no committed layer shares them, see [`gc`]).
    pub fn discard(&self, layers: &[NewLayer]) {
        self.gc.free(
            layers.iter().map(|l| l.cache_id.clone()),
            layers
                .iter()
                .filter_map(|l| l.blob.as_ref().map(|b| b.digest.clone())),
        );
    }

    /// The download lock of `digest` (see [`ImageService::downloads`]).
    pub fn download_lock(&self, digest: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, l| Arc::strong_count(l) > 1);
        m.entry(digest.to_string()).or_default().clone()
    }

    pub fn event(&self, action: &str, id: &str, name: &str) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), name.to_string());
        self.events.publish("image", action, id, attrs);
    }
}

/// At startup, before anything imports: remove storage-driver directories
/// that no layer record and no container names (left by a crash during an
/// import or load).
pub fn remove_orphan_layers(
    records: &dyn berth_actors::ports::RecordStore,
    driver: &dyn StorageDriver,
    containers: &std::collections::BTreeSet<String>,
) {
    let mut used = containers.clone();
    for name in records.list("layers").unwrap_or_default() {
        if let Ok(Some(b)) = records.get(&format!("layers/{name}")) {
            if let Ok(l) = serde_json::from_slice::<berth_actors::image::LayerRecord>(&b) {
                used.insert(l.cache_id);
            }
        }
    }
    for id in driver.list().unwrap_or_default() {
        if !used.contains(&id) {
            tracing::info!(%id, "removing a layer directory no record uses");
            let _ = driver.remove(&id);
        }
    }
}

/// At startup: remove layer blobs no layer record names (a pull or load
/// cut short). Image configs live apart (`configs/`), so they are safe.
pub fn remove_orphan_blobs(records: &dyn berth_actors::ports::RecordStore, blobs: &BlobStore) {
    let mut used = std::collections::BTreeSet::new();
    for name in records.list("layers").unwrap_or_default() {
        if let Ok(Some(b)) = records.get(&format!("layers/{name}")) {
            if let Ok(l) = serde_json::from_slice::<berth_actors::image::LayerRecord>(&b) {
                if let Some(blob) = l.blob {
                    used.insert(berth_actors::image::digest_hex(&blob.digest).to_string());
                }
            }
        }
    }
    for hex in records.list("blobs/sha256").unwrap_or_default() {
        if !used.contains(&hex) {
            tracing::info!(blob = %hex, "removing a blob no layer uses");
            blobs.remove(&format!("sha256:{hex}"));
        }
    }
}
