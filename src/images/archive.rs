//! `docker load` and `docker save`: docker-archive (manifest.json,
//! repositories) written together with an OCI image layout, as docker 25+
//! writes it; loading reads manifest.json or, without it, the OCI index.
//! A load streams the archive once: every file goes into the blob store as
//! it passes (names are map keys, never paths), then layers are applied
//! from their blobs and verified against the config's diffIDs.

use crate::sys::blobs::BlobStore;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::sync::Arc;

use berth_actors::image::{
    chain_ids, digest_hex, BlobRef, ImageConfig, ImageInfo, NewLayer, Reference,
};
use serde::Deserialize;
use serde_json::json;

use super::{media_type, ImageOpError, ImageService};
use crate::sys::layers::{decompress, Compression};

const MAX_JSON: u64 = 32 << 20;

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// One image a load registered.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub id: String,
    pub tags: Vec<String>,
}

fn invalid(m: impl Into<String>) -> ImageOpError {
    ImageOpError::Invalid(m.into())
}

/// The files of an archive, stored as blobs as they stream by: names are
/// only keys (never paths on disk), symlinks resolve among the names.
#[derive(Default)]
struct Entries {
    files: HashMap<String, (String, u64)>,
    links: HashMap<String, String>,
}

/// Lexically normalise an archive name (`./a/../b` → `b`); None if it climbs out.
fn norm(name: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

impl Entries {
    fn resolve(&self, name: &str) -> Result<(String, u64), ImageOpError> {
        let mut n = norm(name).ok_or_else(|| {
            invalid(format!(
                "invalid archive: {name:?} climbs out of the archive"
            ))
        })?;
        for _ in 0..16 {
            if let Some(f) = self.files.get(&n) {
                return Ok(f.clone());
            }
            match self.links.get(&n) {
                Some(t) => n = t.clone(),
                None => return Err(invalid(format!("invalid archive: {name} is missing"))),
            }
        }
        Err(invalid(format!(
            "invalid archive: {name}: too many levels of symbolic links"
        )))
    }

    fn read_json(&self, blobs: &BlobStore, name: &str) -> Result<Vec<u8>, ImageOpError> {
        let (digest, size) = self.resolve(name)?;
        if size > MAX_JSON {
            return Err(invalid(format!("invalid archive: {name} is too large")));
        }
        let mut buf = Vec::new();
        blobs.open(&digest)?.read_to_end(&mut buf)?;
        Ok(buf)
    }
}

/// The archive's files stored as blobs into `e` (those stored before an
/// error stay listed in `e`, for the caller to drop).
fn read_entries(blobs: &BlobStore, input: impl Read, e: &mut Entries) -> Result<(), ImageOpError> {
    crate::sys::fsfd::entries(
        input,
        |err| invalid(format!("invalid archive: {err}")),
        |entry| {
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = norm(&raw).ok_or_else(|| {
                invalid(format!(
                    "invalid archive: {raw:?} climbs out of the archive"
                ))
            })?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let stored = |err: std::io::Error| {
                        ImageOpError::Io(std::io::Error::new(
                            err.kind(),
                            format!("loading the archive: {raw}: {err}"),
                        ))
                    };
                    let mut w = blobs.writer().map_err(stored)?;
                    // A read error is the archive's; a write error the
                    // store's (a full disk is not an invalid archive).
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match entry.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => n,
                            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(err) => {
                                return Err(invalid(format!("invalid archive: {raw}: {err}")))
                            }
                        };
                        w.write_all(&buf[..n]).map_err(stored)?;
                    }
                    let (digest, size) = w.commit().map_err(stored)?;
                    e.files.insert(name, (digest, size));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let joined = if entry.header().entry_type() == tar::EntryType::Symlink
                        && !target.starts_with('/')
                    {
                        match name.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target,
                        }
                    } else {
                        target
                    };
                    let t = norm(&joined).ok_or_else(|| {
                        invalid(format!(
                            "invalid archive: link {raw:?} climbs out of the archive"
                        ))
                    })?;
                    e.links.insert(name, t);
                }
                _ => {}
            }
            Ok(())
        },
    )
    .map(drop)
}

/// Turn an OCI layout's index into manifest.json-style entries.
fn oci_entries(blobs: &BlobStore, files: &Entries) -> Result<Vec<ManifestEntry>, ImageOpError> {
    let index: serde_json::Value =
        serde_json::from_slice(&files.read_json(blobs, "index.json")?)
            .map_err(|e| invalid(format!("invalid archive: index.json: {e}")))?;
    let blob_path = |d: &str| -> Result<String, ImageOpError> {
        if !berth_actors::image::reference::valid_digest(d) {
            return Err(invalid(format!("invalid archive: bad digest {d:?}")));
        }
        Ok(format!("blobs/sha256/{}", digest_hex(d)))
    };
    let mut out = Vec::new();
    for m in index["manifests"].as_array().cloned().unwrap_or_default() {
        let digest = m["digest"].as_str().unwrap_or_default();
        let raw = files.read_json(blobs, &blob_path(digest)?)?;
        if berth_actors::image::sha256_digest(&raw) != digest {
            return Err(invalid(format!(
                "invalid archive: manifest {digest} does not match its digest"
            )));
        }
        let man: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| invalid(format!("invalid archive: manifest: {e}")))?;
        if man.get("manifests").is_some() {
            return Err(invalid("invalid archive: nested indexes are not supported"));
        }
        let config = blob_path(man["config"]["digest"].as_str().unwrap_or_default())?;
        let layers = man["layers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|l| blob_path(l["digest"].as_str().unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()?;
        let tag = m["annotations"]["io.containerd.image.name"]
            .as_str()
            .map(|s| vec![s.to_string()]);
        out.push(ManifestEntry {
            config,
            repo_tags: tag,
            layers,
        });
    }
    Ok(out)
}

/// Load every image of an archive. Images committed before an error stay;
/// the failing image leaves nothing behind, and no blob of the archive that
/// no layer keeps stays in the store.
pub fn load_archive(
    svc: &ImageService,
    input: impl Read + Send,
    rt: &tokio::runtime::Handle,
) -> Result<Vec<LoadedImage>, ImageOpError> {
    // Plain or compressed, as dockerd accepts it.
    let (_, input) = decompress(input)?;
    // Nothing of the store is freed while the load runs (another load or
    // pull may store the same blobs; an rmi may free a layer it reuses).
    let working = svc.gc.working_blocking();
    let mut files = Entries::default();
    let result = read_entries(&svc.blobs, input, &mut files).and_then(|()| {
        berth_actors::failpoint::hit("load:blobs");
        load_from(svc, rt, &files)
    });
    // The archive's blobs that did not become layers (all it stored when
    // reading it failed: a full disk, a cut archive) go once no operation
    // is in flight, unless a layer uses them by then.
    svc.gc
        .defer(None, files.files.values().map(|(digest, _)| digest.clone()));
    working.finish_blocking();
    result
}

/// An image of an archive: its index entry, raw and parsed config, tags.
type Image = (ManifestEntry, Vec<u8>, ImageConfig, Vec<Reference>);

/// The images an archive's index names (docker-archive `manifest.json`,
/// else OCI layout `index.json`): each entry with its parsed config and
/// tags, checked against each other, nothing committed yet.
fn images_of(blobs: &BlobStore, files: &Entries) -> Result<Vec<Image>, ImageOpError> {
    let entries: Vec<ManifestEntry> = match files.read_json(blobs, "manifest.json") {
        Ok(raw) => serde_json::from_slice(&raw)
            .map_err(|e| invalid(format!("invalid archive: manifest.json: {e}")))?,
        Err(_) => {
            oci_entries(blobs, files).map_err(|e| invalid(format!("{e} (and no manifest.json)")))?
        }
    };
    if entries.is_empty() {
        return Err(invalid("invalid archive: it holds no image"));
    }
    let mut out = Vec::new();
    for entry in entries {
        let config_raw = files.read_json(blobs, &entry.config)?;
        let cfg = ImageConfig::parse(&config_raw).map_err(ImageOpError::Invalid)?;
        if cfg.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(invalid(format!(
                "invalid archive: {} lists {} layers, its config {}",
                entry.config,
                entry.layers.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        for l in &entry.layers {
            files.resolve(l)?;
        }
        let refs = entry
            .repo_tags
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                Reference::parse(t)
                    .map(|r| r.with_default_tag())
                    .map_err(|e| invalid(format!("invalid tag {t:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((entry, config_raw, cfg, refs));
    }
    Ok(out)
}

/// For the fuzzers: an archive (any compression) read into `blobs` and
/// its images resolved as a load would, without storing them.
pub fn fuzz_index(blobs: &BlobStore, data: &[u8]) -> Result<usize, ImageOpError> {
    let (_, input) = decompress(data)?;
    let mut files = Entries::default();
    let read = read_entries(blobs, input, &mut files);
    let r = read.and_then(|()| images_of(blobs, &files).map(|v| v.len()));
    for (digest, _) in files.files.values() {
        blobs.remove(digest);
    }
    r
}

fn load_from(
    svc: &ImageService,
    rt: &tokio::runtime::Handle,
    files: &Entries,
) -> Result<Vec<LoadedImage>, ImageOpError> {
    let mut loaded = Vec::new();
    for (entry, config_raw, cfg, refs) in images_of(&svc.blobs, files)? {
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        let snap = svc.images.snapshot();
        let mut parent: Option<String> = None;
        let mut all = Vec::new();
        let mut built: Vec<NewLayer> = Vec::new();
        let step = (|| {
            for (i, path) in entry.layers.iter().enumerate() {
                if let Some(rec) = snap.layers.get(&chains[i]) {
                    parent = Some(rec.cache_id.clone());
                    all.push(NewLayer {
                        diff_id: rec.diff_id.clone(),
                        cache_id: rec.cache_id.clone(),
                        size: rec.size,
                        tar_size: rec.tar_size,
                        blob: rec.blob.clone(),
                    });
                    continue;
                }
                let (digest, size) = files.resolve(path)?;
                let mut head = [0u8; 8];
                let n = svc.blobs.open(&digest)?.read(&mut head)?;
                let blob = BlobRef {
                    digest,
                    media_type: media_type(Compression::detect(&head[..n])).into(),
                    size,
                };
                let nl = svc.apply_blob(parent.as_deref(), &blob)?;
                built.push(nl.clone());
                if nl.diff_id != cfg.rootfs.diff_ids[i] {
                    return Err(invalid(format!(
                        "invalid archive: layer {path} has diffID {} but the config expects {}",
                        nl.diff_id, cfg.rootfs.diff_ids[i]
                    )));
                }
                parent = Some(nl.cache_id.clone());
                all.push(nl);
            }
            Ok(())
        })();
        if let Err(e) = step {
            svc.discard(&built);
            return Err(e);
        }
        let res = match rt.block_on(svc.images.commit(config_raw, all, refs.clone())) {
            Ok(r) => r,
            Err(e) => {
                svc.discard(&built);
                return Err(e.into());
            }
        };
        svc.release(&res.released);
        let tags: Vec<String> = refs.iter().map(|r| r.familiar()).collect();
        svc.event(
            "load",
            &res.id,
            tags.first().map(String::as_str).unwrap_or(&res.id),
        );
        loaded.push(LoadedImage { id: res.id, tags });
    }
    Ok(loaded)
}

fn header(path: &str, size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_mtime(0);
    let _ = h.set_path(path);
    h.set_cksum();
    h
}

fn add_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> std::io::Result<()> {
    b.append(&header(path, data.len() as u64, false), data)
}

/// Write `images` (each with the references to record) as one archive.
pub fn save_archive(
    svc: &ImageService,
    images: &[(Arc<ImageInfo>, Vec<Reference>)],
    out: impl Write,
) -> Result<(), ImageOpError> {
    // The blobs it reads are not freed meanwhile (an rmi's wait for it).
    let working = svc.gc.working_blocking();
    let r = save_working(svc, images, out);
    working.finish_blocking();
    r
}

fn save_working(
    svc: &ImageService,
    images: &[(Arc<ImageInfo>, Vec<Reference>)],
    out: impl Write,
) -> Result<(), ImageOpError> {
    let snap = svc.images.snapshot();
    let mut b = tar::Builder::new(out);
    b.append(&header("blobs/", 0, true), std::io::empty())?;
    b.append(&header("blobs/sha256/", 0, true), std::io::empty())?;
    let mut written: BTreeSet<String> = BTreeSet::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index = Vec::new();
    for (info, refs) in images {
        let id = &info.record.id;
        let cfg_path = format!("blobs/sha256/{}", digest_hex(id));
        if written.insert(cfg_path.clone()) {
            add_bytes(&mut b, &cfg_path, &info.raw_config)?;
        }
        let mut layer_paths = Vec::new();
        let mut oci_layers = Vec::new();
        for chain in &info.record.layers {
            let rec = snap.layers.get(chain).ok_or_else(|| {
                ImageOpError::Invalid(format!("layer {chain} of {id} is missing"))
            })?;
            let path = format!("blobs/sha256/{}", digest_hex(&rec.diff_id));
            if written.insert(path.clone()) {
                let blob = rec.blob.as_ref().ok_or_else(|| {
                    ImageOpError::Invalid(format!("layer {chain} has no stored blob"))
                })?;
                let f = svc.blobs.open(&blob.digest)?;
                let (_, reader) = decompress(std::io::BufReader::new(f))?;
                let mut counted = reader.take(rec.tar_size);
                b.append(&header(&path, rec.tar_size, false), &mut counted)?;
                if counted.limit() != 0 {
                    return Err(ImageOpError::Invalid(format!(
                        "layer blob {} is shorter than recorded",
                        blob.digest
                    )));
                }
            }
            oci_layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": rec.diff_id, "size": rec.tar_size}));
            layer_paths.push(path);
        }
        let oci_manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": id, "size": info.raw_config.len()},
            "layers": oci_layers,
        }))
        .unwrap_or_default();
        let man_digest = berth_actors::image::sha256_digest(&oci_manifest);
        let man_path = format!("blobs/sha256/{}", digest_hex(&man_digest));
        if written.insert(man_path.clone()) {
            add_bytes(&mut b, &man_path, &oci_manifest)?;
        }
        let tags: Vec<String> = refs
            .iter()
            .filter(|r| r.tag.is_some())
            .map(|r| r.familiar())
            .collect();
        for r in refs.iter().filter(|r| r.tag.is_some()) {
            repositories.entry(r.familiar_repo()).or_default().insert(
                r.tag.clone().unwrap_or_default(),
                digest_hex(id).to_string(),
            );
        }
        if refs.is_empty() {
            index.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man_digest, "size": oci_manifest.len()}));
        }
        for r in refs.iter().filter(|r| r.tag.is_some()) {
            index.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man_digest, "size": oci_manifest.len(),
                "annotations": {"io.containerd.image.name": r.to_string(), "org.opencontainers.image.ref.name": r.tag.clone().unwrap_or_default()}
            }));
        }
        manifest.push(json!({"Config": cfg_path, "RepoTags": if tags.is_empty() { serde_json::Value::Null } else { json!(tags) }, "Layers": layer_paths}));
    }
    add_bytes(&mut b, "index.json", &serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})).unwrap_or_default())?;
    add_bytes(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap_or_default(),
    )?;
    add_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if !repositories.is_empty() {
        add_bytes(
            &mut b,
            "repositories",
            &serde_json::to_vec(&repositories).unwrap_or_default(),
        )?;
    }
    b.into_inner()?.flush()?;
    Ok(())
}
