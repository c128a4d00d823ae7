//! What the image store records and what it publishes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::reference::Reference;

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

/// The hex part of `sha256:<hex>`.
pub fn digest_hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

/// OCI chain IDs: chain(1) = diff(1); chain(n) = sha256(chain(n-1) + " " + diff(n)).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// A stored layer blob (as received: compressed or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// One layer: its content in the storage driver under `cache_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub chain_id: String,
    pub diff_id: String,
    pub parent: Option<String>,
    /// Directory name in the storage driver.
    pub cache_id: String,
    /// Bytes of the files in the layer.
    pub size: u64,
    /// Bytes of the uncompressed tar stream (for `docker save`).
    pub tar_size: u64,
    pub blob: Option<BlobRef>,
}

/// A layer produced by an import, load or pull, not yet committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayer {
    pub diff_id: String,
    pub cache_id: String,
    pub size: u64,
    pub tar_size: u64,
    pub blob: Option<BlobRef>,
}

/// An image's record: the config blob is the image (ID = its digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: String,
    /// Chain IDs, bottom first.
    pub layers: Vec<String>,
    /// RFC 3339 time of the last tag (`Metadata.LastTagTime`).
    #[serde(default)]
    pub last_tag_time: Option<String>,
}

/// The parts of an image config berth reads (the raw bytes are kept).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub docker_version: Option<String>,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub container_config: Option<serde_json::Value>,
    /// The container a commit made it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parse and check what berth relies on.
    pub fn parse(raw: &[u8]) -> Result<ImageConfig, String> {
        let c: ImageConfig =
            serde_json::from_slice(raw).map_err(|e| format!("invalid image config: {e}"))?;
        if c.rootfs.kind != "layers" {
            return Err(format!(
                "invalid image config: rootfs type {:?} is not \"layers\"",
                c.rootfs.kind
            ));
        }
        for d in &c.rootfs.diff_ids {
            if !super::reference::valid_digest(d) {
                return Err(format!("invalid image config: bad diff_id {d:?}"));
            }
        }
        Ok(c)
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.get("Labels"))
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default()
    }

    /// Creation time in Unix seconds (0 if absent or unparseable).
    pub fn created_unix(&self) -> i64 {
        self.created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0)
    }
}

/// One image as readers see it.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub record: ImageRecord,
    pub config: ImageConfig,
    pub raw_config: Arc<Vec<u8>>,
    /// Sum of the layers' sizes.
    pub size: u64,
    /// References (tags and digests) pointing at it, sorted.
    pub refs: Vec<Reference>,
}

/// The immutable snapshot the ImageStore publishes.
#[derive(Debug, Clone, Default)]
pub struct ImageIndex {
    pub images: BTreeMap<String, Arc<ImageInfo>>,
    pub refs: BTreeMap<Reference, String>,
    pub layers: BTreeMap<String, LayerRecord>,
}

impl ImageIndex {
    /// How many images name each image as their parent (a build's steps,
    /// commits): images with children are "intermediate" when untagged.
    pub fn children(&self) -> BTreeMap<String, usize> {
        let mut out: BTreeMap<String, usize> = BTreeMap::new();
        for i in self.images.values() {
            if let Some(p) = i.config.parent.as_deref().filter(|p| !p.is_empty()) {
                *out.entry(p.to_string()).or_default() += 1;
            }
        }
        out
    }

    /// dockerd's lookup: a reference (normalised, `latest` added), a full or
    /// `sha256:`-prefixed ID, or a unique ID prefix.
    pub fn resolve(&self, name: &str) -> Option<&Arc<ImageInfo>> {
        if let Ok(r) = Reference::parse(name) {
            let r = r.with_default_tag();
            if let Some(id) = self.refs.get(&r) {
                return self.images.get(id);
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        if let Some(i) = self.images.get(&format!("sha256:{hex}")) {
            return Some(i);
        }
        let mut it = self
            .images
            .iter()
            .filter(|(id, _)| digest_hex(id).starts_with(hex));
        match (it.next(), it.next()) {
            (Some((_, i)), None) => Some(i),
            _ => None,
        }
    }

    /// Whether `name` names a reference that exists (rather than an ID).
    pub fn is_reference(&self, name: &str) -> Option<Reference> {
        let r = Reference::parse(name).ok()?.with_default_tag();
        self.refs.contains_key(&r).then_some(r)
    }

    pub fn layers_size(&self) -> u64 {
        self.layers.values().map(|l| l.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], sha256_digest(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn config_checks() {
        assert!(ImageConfig::parse(br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#).is_ok());
        assert!(ImageConfig::parse(br#"{"rootfs":{"type":"other"}}"#).is_err());
        assert!(ImageConfig::parse(br#"{"rootfs":{"type":"layers","diff_ids":["x"]}}"#).is_err());
        assert!(ImageConfig::parse(b"nope").is_err());
    }
}
