//! The build cache, as dockerd's legacy builder keeps it: every step's
//! image records the container config that made it (`container_config`,
//! whose `Cmd` names the step: the `RUN` command with its build args, or
//! `#(nop) COPY file:<checksum> in /dest`). A step is cached when an image
//! whose parent is the step's parent image has the same config; the
//! newest such image wins. `--cache-from` images are candidates too,
//! matched by their history instead (their parents are not local).

use std::sync::Arc;

use berth_actors::image::{ImageIndex, ImageInfo};

use serde_json::{Map, Value};

/// The config fields that say nothing about what a step did.
const IGNORED: &[&str] = &[
    "Hostname",
    "Domainname",
    "Image",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "ArgsEscaped",
];

/// `config` with what the comparison ignores removed and empty values
/// (null, "", [], {}) dropped, so `null` and `[]` compare equal.
pub fn normalize(config: &Value) -> Value {
    let Some(o) = config.as_object() else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (k, v) in o {
        if IGNORED.contains(&k.as_str()) {
            continue;
        }
        let empty = match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(m) => m.is_empty(),
            Value::Bool(b) => !b,
            _ => false,
        };
        if !empty {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The cached image for a step over `parent` (`""`: scratch) whose probe
/// config is `probe`.
pub fn probe(idx: &ImageIndex, parent: &str, probe: &Value) -> Option<Arc<ImageInfo>> {
    let want = normalize(probe);
    idx.images
        .values()
        .filter(|i| i.config.parent.as_deref().unwrap_or("") == parent)
        .filter(|i| {
            // An image of `FROM scratch` has no parent, as a pulled one:
            // only a build's own (with its container config) may match.
            i.config
                .container_config
                .as_ref()
                .is_some_and(|c| normalize(c) == want)
        })
        .max_by_key(|i| i.config.created.clone().unwrap_or_default())
        .cloned()
}

/// A `--cache-from` image that holds the step: its history continues the
/// parent's with this step (`created_by`), and its layers continue the
/// parent's (with one more when the step adds one). The answer is that
/// image and how many of its layers the step's image has: the builder
/// makes the step's image from them (dockerd's `restoreCachedImage`).
pub fn probe_from(
    sources: &[Arc<ImageInfo>],
    parent: Option<&ImageInfo>,
    created_by: &str,
    adds_layer: bool,
) -> Option<(Arc<ImageInfo>, usize)> {
    let (ph, pl) = parent
        .map(|p| (p.config.history.clone(), p.record.layers.clone()))
        .unwrap_or_default();
    for src in sources {
        let h = &src.config.history;
        if h.len() <= ph.len() || h[..ph.len()] != ph[..] {
            continue;
        }
        let step = &h[ph.len()];
        if step.created_by.as_deref() != Some(created_by) || step.empty_layer == adds_layer {
            continue;
        }
        let n = pl.len() + usize::from(adds_layer);
        if src.record.layers.len() < n || src.record.layers[..pl.len()] != pl[..] {
            continue;
        }
        return Some((src.clone(), n));
    }
    None
}

/// One entry of the build cache as `docker system df` and `docker builder
/// prune` see it: an untagged image made over another (a build's step).
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub parent: String,
    pub description: String,
    /// Its own layer's size (0 for a configuration step).
    pub size: u64,
    pub created: String,
    /// An ancestor of a tagged image (its layer is that image's too).
    pub shared: bool,
}

/// The build cache of `idx`: untagged images with a parent that no
/// container uses.
pub fn records(idx: &ImageIndex, used: &std::collections::BTreeSet<String>) -> Vec<Record> {
    let mut ancestors = std::collections::BTreeSet::new();
    for i in idx.images.values().filter(|i| !i.refs.is_empty()) {
        let mut p = i.config.parent.clone();
        while let Some(id) = p.filter(|p| !p.is_empty()) {
            if !ancestors.insert(id.clone()) {
                break;
            }
            p = idx.images.get(&id).and_then(|x| x.config.parent.clone());
        }
    }
    let mut out: Vec<Record> = idx
        .images
        .values()
        .filter(|i| i.refs.is_empty() && !used.contains(&i.record.id))
        .filter_map(|i| {
            let parent = i.config.parent.clone().filter(|p| !p.is_empty())?;
            let last = i.config.history.last();
            let adds = last.is_some_and(|h| !h.empty_layer);
            let size = if adds {
                i.record
                    .layers
                    .last()
                    .and_then(|c| idx.layers.get(c))
                    .map_or(0, |l| l.size)
            } else {
                0
            };
            Some(Record {
                id: i.record.id.clone(),
                parent,
                description: last.and_then(|h| h.created_by.clone()).unwrap_or_default(),
                size,
                created: i.config.created.clone().unwrap_or_default(),
                shared: ancestors.contains(&i.record.id),
            })
        })
        .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created));
    out
}

/// What `docker builder prune` asks for.
pub struct PruneSpec {
    /// Also the steps a tagged image stands on.
    pub all: bool,
    /// Only entries made before this.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only entries whose ID starts with one of these.
    pub ids: Vec<String>,
    /// Keep this many bytes of cache (the oldest go first); 0: no bound.
    pub keep: u64,
}

/// The entries of `records` (oldest first) a prune removes.
pub fn select(records: &[Record], spec: &PruneSpec) -> std::collections::BTreeSet<String> {
    let total: u64 = records.iter().map(|c| c.size).sum();
    let mut chosen: Vec<&Record> = records
        .iter()
        .filter(|c| spec.all || !c.shared)
        .filter(|c| {
            spec.until.is_none_or(|u| {
                chrono::DateTime::parse_from_rfc3339(&c.created).is_ok_and(|t| t < u)
            })
        })
        .filter(|c| {
            spec.ids.is_empty()
                || spec.ids.iter().any(|i| {
                    c.id.trim_start_matches("sha256:")
                        .starts_with(i.trim_start_matches("sha256:"))
                })
        })
        .collect();
    if spec.keep > 0 {
        // Oldest first, until what is left fits.
        let mut left = total;
        chosen.retain(|c| {
            if left <= spec.keep {
                return false;
            }
            left = left.saturating_sub(c.size);
            true
        });
    }
    chosen.iter().map(|c| c.id.clone()).collect()
}

impl Record {
    /// The API's `BuildCache` entry.
    pub fn json(&self) -> Value {
        serde_json::json!({
            "ID": super::progress::short(&self.id),
            "Parent": super::progress::short(&self.parent),
            "Parents": [super::progress::short(&self.parent)],
            "Type": "regular",
            "Description": self.description,
            "InUse": false,
            "Shared": self.shared,
            "Size": self.size,
            "CreatedAt": self.created,
            "LastUsedAt": self.created,
            "UsageCount": 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(id: &str, size: u64, created: &str, shared: bool) -> Record {
        Record {
            id: id.into(),
            parent: "sha256:p".into(),
            description: String::new(),
            size,
            created: created.into(),
            shared,
        }
    }

    #[test]
    fn prune_selection() {
        let recs = vec![
            rec("sha256:aa", 10, "2026-01-01T00:00:00Z", false),
            rec("sha256:bb", 20, "2026-06-01T00:00:00Z", true),
            rec("sha256:cc", 30, "2026-12-01T00:00:00Z", false),
        ];
        let spec = |all, keep| PruneSpec {
            all,
            until: None,
            ids: vec![],
            keep,
        };
        let ids = |s: std::collections::BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
        assert_eq!(
            ids(select(&recs, &spec(false, 0))),
            ["sha256:aa", "sha256:cc"]
        );
        assert_eq!(select(&recs, &spec(true, 0)).len(), 3);
        // keep 35 of 60 bytes: the oldest go until the rest fits.
        assert_eq!(
            ids(select(&recs, &spec(true, 35))),
            ["sha256:aa", "sha256:bb"]
        );
        let mut s = spec(true, 0);
        s.until = chrono::DateTime::parse_from_rfc3339("2026-07-01T00:00:00Z")
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc));
        assert_eq!(ids(select(&recs, &s)), ["sha256:aa", "sha256:bb"]);
        let mut s = spec(true, 0);
        s.ids = vec!["cc".into()];
        assert_eq!(ids(select(&recs, &s)), ["sha256:cc"]);
    }

    #[test]
    fn empty_and_ignored_fields_do_not_matter() {
        let a = json!({"Cmd": ["/bin/sh", "-c", "#(nop) ", "ENV A=1"], "Env": ["A=1"],
            "Hostname": "abc", "Image": "sha256:1", "Entrypoint": null, "Labels": {}});
        let b = json!({"Cmd": ["/bin/sh", "-c", "#(nop) ", "ENV A=1"], "Env": ["A=1"],
            "Hostname": "def", "Entrypoint": [], "Volumes": null});
        assert_eq!(normalize(&a), normalize(&b));
        let c = json!({"Cmd": ["/bin/sh", "-c", "#(nop) ", "ENV A=2"], "Env": ["A=2"]});
        assert_ne!(normalize(&a), normalize(&c));
    }
}
