//! The ImageStore actor: the only writer of image, layer and reference
//! records. Readers use the [`ImageIndex`] snapshot it publishes.
//!
//! Records (keys of the [`RecordStore`]):
//! - `layers/<chain hex>.json`, `images/<id hex>.json`, `repositories.json`
//! - `configs/sha256/<hex>`: image configs (layer blobs are the caller's, in `blobs/`)
//!
//! Commit order is layers, config, image, references, so a crash leaves at
//! worst unreferenced records that the next start drops: never an image
//! whose layers are missing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;
use tracing::{info, warn};

use super::model::*;
use super::reference::Reference;
use crate::directory::IMAGE_STORE;
use crate::events::Events;
use crate::ports::RecordStore;
use crate::view::ViewPublisher;
use crate::{ErrorKind, HasKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("image store: {0}")]
    Store(String),
    #[error("the image store is restarting; retry")]
    Unavailable,
    /// The image store did not answer in time.
    #[error("{0}")]
    Timeout(String),
}

impl HasKind for ImageError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) => ErrorKind::NotFound,
            ImageError::Conflict(_) => ErrorKind::Conflict,
            ImageError::Invalid(_) => ErrorKind::InvalidParameter,
            ImageError::Store(_) => ErrorKind::System,
            ImageError::Unavailable | ImageError::Timeout(_) => ErrorKind::Unavailable,
        }
    }
}

fn io(e: std::io::Error) -> ImageError {
    ImageError::Store(e.to_string())
}

/// Storage the caller frees after a commit or delete (outside the actor).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Storage-driver directories no record uses any more.
    pub cache_ids: Vec<String>,
    /// Blob digests no record uses any more.
    pub blobs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitResult {
    pub id: String,
    /// References that moved here from another image.
    pub moved: Vec<Reference>,
    pub released: Released,
}

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneResult {
    pub items: Vec<DeleteItem>,
    pub space_reclaimed: u64,
    pub released: Released,
}

impl crate::supervisor::ask::Request for ImageStoreMsg {
    fn name(&self) -> &'static str {
        match self {
            ImageStoreMsg::Commit { .. } => "commit",
            ImageStoreMsg::Tag { .. } => "tag",
            ImageStoreMsg::Delete { .. } => "delete",
            ImageStoreMsg::Prune { .. } => "prune",
            ImageStoreMsg::Claim { .. } => "claim",
            ImageStoreMsg::Unclaim { .. } => "unclaim",
        }
    }
}

/// Ask the image store with a bounded wait.
async fn ask_store<T: Send + 'static>(
    build: impl FnOnce(RpcReplyPort<Result<T, ImageError>>) -> ImageStoreMsg,
) -> Result<T, ImageError> {
    use crate::supervisor::ask::{ask_named, AskError};
    let report = |request| tracing::warn!(%request, "the image store did not answer in time");
    ask_named(IMAGE_STORE, build, report)
        .await
        .map_err(|e| match e {
            AskError::Gone => ImageError::Unavailable,
            e => ImageError::Timeout(e.message("the image store")),
        })?
}

pub enum ImageStoreMsg {
    /// Register an image whose layers are already in the storage driver.
    Commit {
        config: Vec<u8>,
        layers: Vec<NewLayer>,
        refs: Vec<Reference>,
        reply: RpcReplyPort<Result<CommitResult, ImageError>>,
    },
    Tag {
        name: String,
        reference: Reference,
        reply: RpcReplyPort<Result<String, ImageError>>,
    },
    Delete {
        name: String,
        force: bool,
        /// Also delete the untagged parents nothing else uses (dockerd's
        /// default; `noprune=1` keeps them).
        prune: bool,
        reply: RpcReplyPort<Result<(Vec<DeleteItem>, Released), ImageError>>,
    },
    /// Delete the images `select` picks that no container uses.
    Prune {
        select: PruneSelect,
        /// Also images other images name as parent (the build cache's
        /// steps): their children keep their layers.
        with_children: bool,
        reply: RpcReplyPort<Result<PruneResult, ImageError>>,
    },
    /// A container being created will use the image (`NotFound` if it is
    /// gone): it cannot be deleted until [`ImageStoreMsg::Unclaim`].
    Claim {
        image: String,
        container: String,
        reply: RpcReplyPort<Result<(), ImageError>>,
    },
    /// The create ended: its record (or its failure) speaks for it now.
    Unclaim { container: String },
}

/// A container that uses an image: its writable layer sits on the image's
/// layers, so the image stays while the container does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub container: String,
    /// The image ID (`sha256:...`).
    pub image: String,
    /// Running, paused or restarting (never removable while so).
    pub live: bool,
}

/// The containers and the images they use (the containers' read model),
/// read by the store when a delete or prune decides.
pub type ImageUsers = Arc<dyn Fn() -> Vec<ImageUser> + Send + Sync>;

/// Which images a prune considers (the request's filters); the store
/// leaves out every image a container uses or claims.
pub type PruneSelect = Box<dyn Fn(&ImageInfo) -> bool + Send>;

pub struct ImageStoreArgs {
    pub records: Arc<dyn RecordStore>,
    pub index: Arc<watch::Sender<Arc<ImageIndex>>>,
    pub view: ViewPublisher,
    pub events: Events,
    /// Cache IDs present in the storage driver, to drop records whose
    /// layer directory vanished.
    pub present_layers: Arc<dyn Fn() -> BTreeSet<String> + Send + Sync>,
    /// Frees the storage of layer records the load dropped (no image uses
    /// them: a commit killed before its image record was saved).
    pub release: Arc<dyn Fn(Released) + Send + Sync>,
    pub users: ImageUsers,
}

pub struct ImageStore;

pub struct State {
    records: Arc<dyn RecordStore>,
    index: Arc<watch::Sender<Arc<ImageIndex>>>,
    view: ViewPublisher,
    events: Events,
    idx: ImageIndex,
    users: ImageUsers,
    /// Containers being created, by ID, and the image each claimed: a
    /// delete between a create's image lookup and its record sees them.
    claims: BTreeMap<String, String>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn layer_key(chain: &str) -> String {
    format!("layers/{}.json", digest_hex(chain))
}
fn image_key(id: &str) -> String {
    format!("images/{}.json", digest_hex(id))
}
/// Image configs are records of their own, apart from the blob store's
/// directory, so freeing a blob can never remove an image's config.
fn config_key(d: &str) -> String {
    format!("configs/sha256/{}", digest_hex(d))
}
const REPOS: &str = "repositories.json";

impl State {
    fn publish(&mut self) {
        // Recompute each image's refs and size.
        let mut by_image: BTreeMap<String, Vec<Reference>> = BTreeMap::new();
        for (r, id) in &self.idx.refs {
            by_image.entry(id.clone()).or_default().push(r.clone());
        }
        let layers = &self.idx.layers;
        for (id, info) in self.idx.images.iter_mut() {
            let refs = by_image.remove(id).unwrap_or_default();
            let size = info
                .record
                .layers
                .iter()
                .filter_map(|c| layers.get(c))
                .map(|l| l.size)
                .sum();
            if refs != info.refs || size != info.size {
                let mut n = (**info).clone();
                n.refs = refs;
                n.size = size;
                *info = Arc::new(n);
            }
        }
        let (images, layers_size) = (self.idx.images.len() as u64, self.idx.layers_size());
        self.view.update(|s| {
            s.images = images;
            s.layers_size = layers_size;
        });
        self.index.send_replace(Arc::new(self.idx.clone()));
    }

    fn save_refs(&self) -> Result<(), ImageError> {
        let map: BTreeMap<String, String> = self
            .idx
            .refs
            .iter()
            .map(|(r, id)| (r.to_string(), id.clone()))
            .collect();
        let bytes = serde_json::to_vec(&map).map_err(|e| ImageError::Store(e.to_string()))?;
        self.records.put(REPOS, &bytes).map_err(io)
    }

    fn event(&self, action: &str, id: &str, name: &str) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), name.to_string());
        self.events.publish("image", action, id, attrs);
    }

    fn used_layers(&self) -> BTreeSet<String> {
        self.idx
            .images
            .values()
            .flat_map(|i| i.record.layers.iter().cloned())
            .collect()
    }

    /// Drop layer records no image uses; return what the caller frees.
    fn release_unused_layers(
        &mut self,
        deleted: &mut Vec<DeleteItem>,
    ) -> Result<Released, ImageError> {
        let used = self.used_layers();
        let unused: Vec<String> = self
            .idx
            .layers
            .keys()
            .filter(|c| !used.contains(*c))
            .cloned()
            .collect();
        let mut rel = Released::default();
        for chain in unused {
            if let Some(l) = self.idx.layers.remove(&chain) {
                self.records.delete(&layer_key(&chain)).map_err(io)?;
                rel.cache_ids.push(l.cache_id.clone());
                if let Some(b) = &l.blob {
                    rel.blobs.push(b.digest.clone());
                }
                deleted.push(DeleteItem::Deleted(chain));
            }
        }
        Ok(rel)
    }

    fn delete_image(
        &mut self,
        id: &str,
        items: &mut Vec<DeleteItem>,
    ) -> Result<Released, ImageError> {
        let refs: Vec<Reference> = self
            .idx
            .refs
            .iter()
            .filter(|(_, i)| *i == id)
            .map(|(r, _)| r.clone())
            .collect();
        for r in refs {
            self.idx.refs.remove(&r);
            items.push(DeleteItem::Untagged(r.familiar()));
            self.event("untag", id, &r.familiar());
        }
        self.save_refs()?;
        self.records.delete(&image_key(id)).map_err(io)?;
        self.idx.images.remove(id);
        items.push(DeleteItem::Deleted(id.to_string()));
        self.event("delete", id, id);
        let mut rel = self.release_unused_layers(items)?;
        // The config blob is the image itself.
        self.records.delete(&config_key(id)).map_err(io)?;
        let used_blobs: BTreeSet<&String> = self
            .idx
            .layers
            .values()
            .filter_map(|l| l.blob.as_ref().map(|b| &b.digest))
            .collect();
        rel.blobs.retain(|b| !used_blobs.contains(b));
        Ok(rel)
    }

    fn commit(
        &mut self,
        config: Vec<u8>,
        layers: Vec<NewLayer>,
        refs: Vec<Reference>,
    ) -> Result<CommitResult, ImageError> {
        let parsed = ImageConfig::parse(&config).map_err(ImageError::Invalid)?;
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        if parsed.rootfs.diff_ids != diff_ids {
            return Err(ImageError::Invalid(format!(
                "layers do not match the image config: config has {:?}, got {:?}",
                parsed.rootfs.diff_ids, diff_ids
            )));
        }
        let id = sha256_digest(&config);
        let chains = chain_ids(&diff_ids);
        let mut released = Released::default();
        for (i, (l, chain)) in layers.into_iter().zip(&chains).enumerate() {
            if let Some(existing) = self.idx.layers.get(chain) {
                // Built twice (concurrent imports): keep the committed copy.
                if existing.cache_id != l.cache_id {
                    released.cache_ids.push(l.cache_id);
                    if let Some(b) = l.blob {
                        let used = self
                            .idx
                            .layers
                            .values()
                            .any(|x| x.blob.as_ref().map(|y| &y.digest) == Some(&b.digest));
                        if !used {
                            released.blobs.push(b.digest);
                        }
                    }
                }
                continue;
            }
            let rec = LayerRecord {
                chain_id: chain.clone(),
                diff_id: l.diff_id,
                parent: if i == 0 {
                    None
                } else {
                    Some(chains[i - 1].clone())
                },
                cache_id: l.cache_id,
                size: l.size,
                tar_size: l.tar_size,
                blob: l.blob,
            };
            let bytes = serde_json::to_vec(&rec).map_err(|e| ImageError::Store(e.to_string()))?;
            self.records.put(&layer_key(chain), &bytes).map_err(io)?;
            self.idx.layers.insert(chain.clone(), rec);
        }
        crate::failpoint::hit("image-commit:layers");
        self.records.put(&config_key(&id), &config).map_err(io)?;
        crate::failpoint::hit("image-commit:config");
        let tag_time = (!refs.is_empty()).then(now_rfc3339);
        let record = match self.idx.images.get(&id) {
            Some(existing) => {
                let mut r = existing.record.clone();
                if tag_time.is_some() {
                    r.last_tag_time = tag_time;
                }
                r
            }
            None => ImageRecord {
                id: id.clone(),
                layers: chains,
                last_tag_time: tag_time,
            },
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| ImageError::Store(e.to_string()))?;
        self.records.put(&image_key(&id), &bytes).map_err(io)?;
        crate::failpoint::hit("image-commit:image");
        self.idx.images.insert(
            id.clone(),
            Arc::new(ImageInfo {
                record,
                config: parsed,
                raw_config: Arc::new(config),
                size: 0,
                refs: vec![],
            }),
        );
        let mut moved = Vec::new();
        for r in refs {
            if let Some(old) = self.idx.refs.insert(r.clone(), id.clone()) {
                if old != id {
                    moved.push(r.clone());
                }
            }
        }
        self.save_refs()?;
        self.publish();
        Ok(CommitResult {
            id,
            moved,
            released,
        })
    }

    /// Delete `parent` and its own parents while each is untagged, has no
    /// other child and no container uses it (dockerd's prune of a
    /// deleted image's parents).
    fn delete_parents(
        &mut self,
        mut parent: Option<String>,
        items: &mut Vec<DeleteItem>,
        rel: &mut Released,
    ) -> Result<(), ImageError> {
        while let Some(p) = parent.take().filter(|p| !p.is_empty()) {
            let Some(info) = self.idx.images.get(&p).cloned() else {
                break;
            };
            let tagged = self.idx.refs.values().any(|i| *i == p);
            if tagged || self.idx.children().contains_key(&p) || self.used().contains_key(&p) {
                break;
            }
            let r = self.delete_image(&p, items)?;
            rel.cache_ids.extend(r.cache_ids);
            rel.blobs.extend(r.blobs);
            parent = info.config.parent.clone();
        }
        Ok(())
    }

    /// Rebuild the index from the records; drop what is inconsistent.
    fn load(&mut self, present: &BTreeSet<String>) -> Result<Released, ImageError> {
        for name in self.records.list("layers").map_err(io)? {
            let Some(bytes) = self.records.get(&format!("layers/{name}")).map_err(io)? else {
                continue;
            };
            match serde_json::from_slice::<LayerRecord>(&bytes) {
                Ok(l) if present.contains(&l.cache_id) => {
                    self.idx.layers.insert(l.chain_id.clone(), l);
                }
                Ok(l) => {
                    warn!(chain = %l.chain_id, "layer directory is missing; dropping the layer record");
                    let _ = self.records.delete(&format!("layers/{name}"));
                }
                Err(e) => warn!(%name, "unreadable layer record dropped: {e}"),
            }
        }
        for name in self.records.list("images").map_err(io)? {
            let Some(bytes) = self.records.get(&format!("images/{name}")).map_err(io)? else {
                continue;
            };
            let Ok(rec) = serde_json::from_slice::<ImageRecord>(&bytes) else {
                warn!(%name, "unreadable image record dropped");
                let _ = self.records.delete(&format!("images/{name}"));
                continue;
            };
            let complete = rec.layers.iter().all(|c| self.idx.layers.contains_key(c));
            let config = self.records.get(&config_key(&rec.id)).map_err(io)?;
            match (complete, config) {
                (true, Some(raw)) if sha256_digest(&raw) == rec.id => {
                    match ImageConfig::parse(&raw) {
                        Ok(cfg) => {
                            self.idx.images.insert(
                                rec.id.clone(),
                                Arc::new(ImageInfo {
                                    record: rec,
                                    config: cfg,
                                    raw_config: Arc::new(raw),
                                    size: 0,
                                    refs: vec![],
                                }),
                            );
                        }
                        Err(e) => {
                            warn!(id = %rec.id, "image config unreadable ({e}); dropping the image")
                        }
                    }
                }
                _ => {
                    warn!(id = %rec.id, "image is incomplete (layer or config missing); dropping it");
                    let _ = self.records.delete(&format!("images/{name}"));
                }
            }
        }
        if let Some(bytes) = self.records.get(REPOS).map_err(io)? {
            let map: BTreeMap<String, String> = serde_json::from_slice(&bytes).unwrap_or_default();
            for (r, id) in map {
                if let (Ok(r), true) = (Reference::parse(&r), self.idx.images.contains_key(&id)) {
                    self.idx.refs.insert(r, id);
                }
            }
        }
        let mut dropped = Vec::new();
        let rel = self.release_unused_layers(&mut dropped)?;
        if !rel.cache_ids.is_empty() {
            info!(
                count = rel.cache_ids.len(),
                "dropped layer records no image uses"
            );
        }
        Ok(rel)
    }
}

impl Actor for ImageStore {
    type Msg = ImageStoreMsg;
    type State = State;
    type Arguments = ImageStoreArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ImageStoreArgs,
    ) -> Result<State, ActorProcessingErr> {
        let present = (args.present_layers)();
        let mut st = State {
            records: args.records,
            index: args.index,
            view: args.view,
            events: args.events,
            idx: ImageIndex::default(),
            users: args.users,
            claims: BTreeMap::new(),
        };
        let released = st.load(&present)?;
        if released != Released::default() {
            (args.release)(released);
        }
        st.publish();
        info!(
            images = st.idx.images.len(),
            layers = st.idx.layers.len(),
            "image store loaded"
        );
        Ok(st)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ImageStoreMsg::Commit {
                config,
                layers,
                refs,
                reply,
            } => {
                let r = st.commit(config, layers, refs);
                let _ = reply.send(r);
            }
            ImageStoreMsg::Tag {
                name,
                reference,
                reply,
            } => {
                let r = (|| {
                    let id = st
                        .idx
                        .resolve(&name)
                        .map(|i| i.record.id.clone())
                        .ok_or_else(|| ImageError::NotFound(name.clone()))?;
                    st.idx.refs.insert(reference.clone(), id.clone());
                    st.save_refs()?;
                    if let Some(info) = st.idx.images.get_mut(&id) {
                        let mut n = (**info).clone();
                        n.record.last_tag_time = Some(now_rfc3339());
                        let bytes = serde_json::to_vec(&n.record)
                            .map_err(|e| ImageError::Store(e.to_string()))?;
                        st.records.put(&image_key(&id), &bytes).map_err(io)?;
                        *info = Arc::new(n);
                    }
                    st.publish();
                    st.event("tag", &id, &reference.familiar());
                    Ok(id)
                })();
                let _ = reply.send(r);
            }
            ImageStoreMsg::Delete {
                name,
                force,
                prune,
                reply,
            } => {
                let r = (|| {
                    let info = st
                        .idx
                        .resolve(&name)
                        .cloned()
                        .ok_or_else(|| ImageError::NotFound(name.clone()))?;
                    st.check_in_use(&info, &name, force)?;
                    let id = info.record.id.clone();
                    let has_children = st.idx.children().contains_key(&id);
                    let by_reference = st.idx.is_reference(&name);
                    if has_children && by_reference.is_none() {
                        return Err(ImageError::Conflict(format!(
                            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                            &digest_hex(&id)[..12]
                        )));
                    }
                    let mut items = Vec::new();
                    if let Some(r) = by_reference {
                        // By reference: untag it; when no tag of that
                        // repository is left, its digest references go too
                        // (dockerd's rule). Delete only when nothing is left.
                        st.idx.refs.remove(&r);
                        items.push(DeleteItem::Untagged(r.familiar()));
                        st.event("untag", &id, &r.familiar());
                        let same_repo: Vec<Reference> = st
                            .idx
                            .refs
                            .iter()
                            .filter(|(x, i)| **i == id && x.repo == r.repo)
                            .map(|(x, _)| x.clone())
                            .collect();
                        if same_repo.iter().all(|x| x.tag.is_none()) {
                            for x in same_repo {
                                st.idx.refs.remove(&x);
                                items.push(DeleteItem::Untagged(x.familiar()));
                                st.event("untag", &id, &x.familiar());
                            }
                        }
                        st.save_refs()?;
                        // Still tagged, or the parent of other images: the
                        // untag was all.
                        if st.idx.refs.values().any(|i| *i == id) || has_children {
                            st.publish();
                            return Ok((items, Released::default()));
                        }
                    } else {
                        let repos: BTreeSet<&str> =
                            info.refs.iter().map(|r| r.repo.as_str()).collect();
                        if repos.len() > 1 && !force {
                            return Err(ImageError::Conflict(format!(
                                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                                &digest_hex(&id)[..12]
                            )));
                        }
                    }
                    let mut rel = st.delete_image(&id, &mut items)?;
                    if prune {
                        st.delete_parents(info.config.parent.clone(), &mut items, &mut rel)?;
                    }
                    st.publish();
                    Ok((items, rel))
                })();
                let _ = reply.send(r);
            }
            ImageStoreMsg::Prune {
                select,
                with_children,
                reply,
            } => {
                let r = (|| {
                    let used = st.used();
                    let mut res = PruneResult::default();
                    // Images with children go once their children are
                    // gone (a build's steps, from the top down).
                    loop {
                        let children = st.idx.children();
                        let ids: Vec<String> = st
                            .idx
                            .images
                            .values()
                            .filter(|i| {
                                !used.contains_key(&i.record.id)
                                    && (with_children || !children.contains_key(&i.record.id))
                                    && select(i)
                            })
                            .map(|i| i.record.id.clone())
                            .collect();
                        if ids.is_empty() {
                            break;
                        }
                        for id in ids {
                            let before = st.idx.layers_size();
                            let rel = st.delete_image(&id, &mut res.items)?;
                            res.space_reclaimed += before.saturating_sub(st.idx.layers_size());
                            res.released.cache_ids.extend(rel.cache_ids);
                            res.released.blobs.extend(rel.blobs);
                        }
                    }
                    st.publish();
                    Ok(res)
                })();
                let _ = reply.send(r);
            }
            ImageStoreMsg::Claim {
                image,
                container,
                reply,
            } => {
                let r = if st.idx.images.contains_key(&image) {
                    st.claims.insert(container, image);
                    Ok(())
                } else {
                    Err(ImageError::NotFound(image))
                };
                let _ = reply.send(r);
            }
            ImageStoreMsg::Unclaim { container } => {
                st.claims.remove(&container);
            }
        }
        Ok(())
    }
}

impl State {
    /// The containers using each image: the read model's and the claims
    /// of creates in flight (as stopped users).
    fn used(&self) -> BTreeMap<String, Vec<ImageUser>> {
        let mut out: BTreeMap<String, Vec<ImageUser>> = BTreeMap::new();
        for u in (self.users)() {
            out.entry(u.image.clone()).or_default().push(u);
        }
        for (container, image) in &self.claims {
            let list = out.entry(image.clone()).or_default();
            if !list.iter().any(|u| &u.container == container) {
                list.push(ImageUser {
                    container: container.clone(),
                    image: image.clone(),
                    live: false,
                });
            }
        }
        out
    }

    /// Refuse to delete an image that containers use (their layers sit on
    /// it), with dockerd's messages; removing one of several tags is fine.
    fn check_in_use(&self, img: &ImageInfo, name: &str, force: bool) -> Result<(), ImageError> {
        let mut users = self.used().remove(&img.record.id).unwrap_or_default();
        if users.is_empty() {
            return Ok(());
        }
        users.sort_by(|a, b| a.container.cmp(&b.container));
        let is_ref = self.idx.is_reference(name).is_some();
        if is_ref && img.refs.len() > 1 {
            return Ok(());
        }
        let short = |s: &str| digest_hex(s).chars().take(12).collect::<String>();
        let img12 = short(&img.record.id);
        let conflict = |m: String| Err(ImageError::Conflict(m));
        if let Some(c) = users.iter().find(|c| c.live) {
            return conflict(format!(
                "conflict: unable to delete {img12} (cannot be forced) - image is being used by running container {}",
                short(&c.container)
            ));
        }
        let c12 = short(&users[0].container);
        if force {
            // dockerd untags and keeps the image; berth keeps both (see api-compat.md).
            return conflict(format!(
                "conflict: unable to delete {img12} (cannot be forced) - image is being used by stopped container {c12}"
            ));
        }
        if is_ref {
            conflict(format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {c12} is using its referenced image {img12}"
            ))
        } else {
            conflict(format!(
                "conflict: unable to delete {img12} (must be forced) - image is being used by stopped container {c12}"
            ))
        }
    }
}

/// A handle for callers: the snapshot and the commands.
#[derive(Clone)]
pub struct Images {
    index: watch::Receiver<Arc<ImageIndex>>,
}

impl Images {
    pub fn new(index: watch::Receiver<Arc<ImageIndex>>) -> Self {
        Images { index }
    }

    pub fn snapshot(&self) -> Arc<ImageIndex> {
        self.index.borrow().clone()
    }

    fn store() -> Result<ActorRef<ImageStoreMsg>, ImageError> {
        ActorRef::<ImageStoreMsg>::where_is(IMAGE_STORE).ok_or(ImageError::Unavailable)
    }

    pub async fn commit(
        &self,
        config: Vec<u8>,
        layers: Vec<NewLayer>,
        refs: Vec<Reference>,
    ) -> Result<CommitResult, ImageError> {
        ask_store(|reply| ImageStoreMsg::Commit {
            config,
            layers,
            refs,
            reply,
        })
        .await
    }

    pub async fn tag(&self, name: String, reference: Reference) -> Result<String, ImageError> {
        ask_store(|reply| ImageStoreMsg::Tag {
            name,
            reference,
            reply,
        })
        .await
    }

    pub async fn delete(
        &self,
        name: String,
        force: bool,
        prune: bool,
    ) -> Result<(Vec<DeleteItem>, Released), ImageError> {
        ask_store(|reply| ImageStoreMsg::Delete {
            name,
            force,
            prune,
            reply,
        })
        .await
    }

    /// Delete the unused images `select` picks.
    pub async fn prune(&self, select: PruneSelect) -> Result<PruneResult, ImageError> {
        ask_store(|reply| ImageStoreMsg::Prune {
            select,
            with_children: false,
            reply,
        })
        .await
    }

    /// Delete the images `select` picks that no container uses, parents
    /// of other images too (the build cache).
    pub async fn prune_cache(&self, select: PruneSelect) -> Result<PruneResult, ImageError> {
        ask_store(|reply| ImageStoreMsg::Prune {
            select,
            with_children: true,
            reply,
        })
        .await
    }

    /// A create claims its image (see [`ImageStoreMsg::Claim`]).
    pub async fn claim(image: &str, container: &str) -> Result<(), ImageError> {
        let (image, container) = (image.to_string(), container.to_string());
        ask_store(|reply| ImageStoreMsg::Claim {
            image,
            container,
            reply,
        })
        .await
    }

    /// The create ended (see [`ImageStoreMsg::Unclaim`]).
    pub fn unclaim(container: &str) {
        if let Ok(s) = Self::store() {
            let _ = s.cast(ImageStoreMsg::Unclaim {
                container: container.to_string(),
            });
        }
    }
}
